#!/usr/bin/env node
// `npm run bench:kernels [-- --json] [-- --threads N --reps N --quick]`: compiles the C benchmark
// against the Q4_S24 build (node native-kernels/build.mjs) and runs it. Text output shows times
// and the Q4_0/type ratio per shape and batch; --json prints one JSON document with the raw times
// plus the ratios (q4_0 / q4_s24, q4_K / q4_s24, ...) computed here.
import { spawnSync } from "node:child_process";
import path from "node:path";
import process from "node:process";
import { bestCpuVariant } from "../bestCpuVariant.mjs";
import { compileCProgram } from "../compileCProgram.mjs";
import { getSparseBuildPaths, nativeKernelsDir } from "../sparseBuildPaths.mjs";

const build = getSparseBuildPaths();
if (build == null) {
    console.error("No Q4_S24 build found: run `node native-kernels/build.mjs` first.");
    process.exit(1);
}
const cpuVariant = bestCpuVariant(build);
if (cpuVariant == null) {
    console.error("This CPU runs none of the build's CPU libraries.");
    process.exit(1);
}
const exe = compileCProgram({
    name: `q4_s24_bench_${cpuVariant.name}`,
    sources: [path.join(nativeKernelsDir, "bench", "q4_s24_bench.c")],
    includeDirs: build.includeDirs,
    libraries: [cpuVariant.library, ...build.libraries]
});

const args = process.argv.slice(2);
const json = args.includes("--json");
const res = spawnSync(exe, args, { encoding: "utf8", stdio: json ? ["ignore", "pipe", "inherit"] : "inherit" });
if (res.status !== 0) process.exit(res.status ?? 1);

if (json) {
    const report = JSON.parse(res.stdout);
    const time = (r, type) => report.results.find((x) => x.op === r.op && x.m === r.m && x.k === r.k && x.batch === r.batch && x.type === type)?.us;
    report.ratios = report.results
        .filter((r) => r.type === "q4_s24")
        .map((r) => ({
            op: r.op, m: r.m, k: r.k, batch: r.batch,
            // > 1 means Q4_S24 is faster than the named type
            speedupVs: Object.fromEntries(["f16", "q4_0", "q4_K", "q4_0 repacked", "q4_K repacked"]
                .filter((type) => time(r, type) != null)
                .map((type) => [type, Number((time(r, type) / r.us).toFixed(3))]))
        }));
    report.build = { folder: build.stamp.folderName, gpu: build.stamp.gpu, cpuVariant: cpuVariant.name, nodeLlamaCpp: build.stamp.nodeLlamaCppVersion };
    console.log(JSON.stringify(report, null, 2));
}
