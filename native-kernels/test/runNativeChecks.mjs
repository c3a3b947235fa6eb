#!/usr/bin/env node
// Compiles and runs the C checks: the standalone one (our sources only) and the one through the
// built ggml (needs `node native-kernels/build.mjs` first). Used by test/native/*.test.ts and
// runnable alone: node native-kernels/test/runNativeChecks.mjs [standalone|ggml|all] [seed]
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compileCProgram } from "../compileCProgram.mjs";
import { getSparseBuildPaths, nativeKernelsDir } from "../sparseBuildPaths.mjs";

const srcDir = path.join(nativeKernelsDir, "src");
const testDir = path.join(nativeKernelsDir, "test");

/**
 * Builds the standalone check for this machine's best SIMD path, the AVX2 path and the portable path.
 * @returns {{ variant: string, status: number, output: string }[]}
 */
export function runStandaloneChecks(seed) {
    const sources = ["q4_s24_ref.c", "q4_s24_cpu.c"].map((name) => path.join(srcDir, name));
    sources.push(path.join(testDir, "q4_s24_test.c"));
    const variants = [{ variant: "native", flags: ["-march=native"] }];
    if (process.arch === "x64") {
        // the AVX2 path too when this machine would pick AVX-512, and the portable path
        variants.push({ variant: "avx2", flags: ["-march=haswell"] });
        variants.push({ variant: "portable", flags: ["-march=x86-64"] });
    }
    return variants.map(({ variant, flags }) => {
        const exe = compileCProgram({ name: `q4_s24_test_${variant}`, sources, includeDirs: [srcDir], flags });
        return { variant, ...run(exe, seed) };
    });
}

/** @returns {{ status: number, output: string } | null} null when the sparse build is missing */
export function runGgmlCheck(seed) {
    const build = getSparseBuildPaths();
    if (build == null) return null;
    const exe = compileCProgram({
        name: "q4_s24_ggml_test",
        sources: [path.join(testDir, "q4_s24_ggml_test.c")],
        includeDirs: build.includeDirs,
        libraries: build.libraries
    });
    return run(exe, seed);
}

function run(exe, seed) {
    const res = spawnSync(exe, seed != null ? [String(seed)] : [], { encoding: "utf8", timeout: 300000 });
    return { status: res.status ?? 1, output: (res.stdout ?? "") + (res.stderr ?? "") };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
    const which = process.argv[2] ?? "all";
    const seed = process.argv[3];
    let failed = false;
    if (which === "standalone" || which === "all") {
        for (const res of runStandaloneChecks(seed)) {
            console.log(`--- standalone (${res.variant})\n${res.output}`);
            failed ||= res.status !== 0;
        }
    }
    if (which === "ggml" || which === "all") {
        const res = runGgmlCheck(seed);
        if (res == null) {
            console.log("--- ggml: no Q4_S24 build found; run `node native-kernels/build.mjs` first");
            failed = true;
        } else {
            console.log(`--- ggml\n${res.output}`);
            failed ||= res.status !== 0;
        }
    }
    process.exit(failed ? 1 : 0);
}
