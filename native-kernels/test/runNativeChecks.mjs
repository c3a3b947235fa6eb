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

/** Exit status of the ggml check when the running CPU lacks the features of the CPU variant it was linked to. */
export const VARIANT_UNSUPPORTED_STATUS = 77;

/**
 * Runs the ggml check once per CPU backend library of the build: the native one, or in a portable build every
 * feature level (each carries its own compile of our CPU kernels). Variants this CPU cannot run report
 * `supported: false` instead of a result.
 * @returns {{ variant: string, supported: boolean, status: number, output: string }[] | null} null when the
 *          sparse build is missing
 */
export function runGgmlChecks(seed) {
    const build = getSparseBuildPaths();
    if (build == null) return null;
    return build.cpuVariants.map(({ name, library }) => {
        const exe = compileCProgram({
            name: `q4_s24_ggml_test_${name}`,
            sources: [path.join(testDir, "q4_s24_ggml_test.c")],
            includeDirs: build.includeDirs,
            libraries: [library, ...build.libraries],
            flags: name === "cpu" ? [] : [`-DQ4S24_CPU_VARIANT="${name}"`]
        });
        const result = run(exe, seed);
        return { variant: name, supported: result.status !== VARIANT_UNSUPPORTED_STATUS, ...result };
    });
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
        const results = runGgmlChecks(seed);
        if (results == null) {
            console.log("--- ggml: no Q4_S24 build found; run `node native-kernels/build.mjs` first");
            failed = true;
        } else {
            for (const res of results) {
                console.log(`--- ggml (CPU variant ${res.variant})\n${res.output}`);
                failed ||= res.supported && res.status !== 0;
            }
        }
    }
    process.exit(failed ? 1 : 0);
}
