// Compiles one of our small C programs (tests, bench) with the system C compiler, only when a
// source or the linked libraries are newer than the binary. Outputs go to native-kernels/.out/.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { nativeKernelsDir } from "./sparseBuildPaths.mjs";

export const outDir = path.join(nativeKernelsDir, ".out");

/** The C compiler to use ($CC or cc), or null when none runs. */
export function findCCompiler() {
    const cc = process.env.CC || "cc";
    const res = spawnSync(cc, ["--version"], { stdio: "ignore" });
    return res.status === 0 ? cc : null;
}

/**
 * @param {{ name: string, sources: string[], includeDirs?: string[], libraries?: string[], flags?: string[] }} options
 * @returns {string} path of the executable
 */
export function compileCProgram({ name, sources, includeDirs = [], libraries = [], flags = [] }) {
    const cc = findCCompiler();
    if (cc == null) throw new Error("no C compiler found (set CC or install gcc)");
    fs.mkdirSync(outDir, { recursive: true });
    const exe = path.join(outDir, name);
    const inputs = [...sources, ...libraries, ...includeDirs.flatMap((dir) => headersIn(dir))];
    const exeTime = fs.existsSync(exe) ? fs.statSync(exe).mtimeMs : 0;
    if (exeTime > 0 && inputs.every((file) => fs.statSync(file).mtimeMs < exeTime) && sameFlags(exe, flags, libraries))
        return exe;
    const rpaths = [...new Set(libraries.map((lib) => path.dirname(lib)))].map((dir) => `-Wl,-rpath,${dir}`);
    const args = ["-O2", "-std=c11", "-Wall", ...flags, ...includeDirs.map((dir) => `-I${dir}`), ...sources,
        "-o", exe, ...libraries, ...rpaths, "-lm", "-lpthread"];
    const res = spawnSync(cc, args, { encoding: "utf8" });
    if (res.status !== 0) throw new Error(`${cc} ${args.join(" ")}\n${res.stderr}`);
    fs.writeFileSync(exe + ".flags", JSON.stringify({ flags, libraries }));
    return exe;
}

function headersIn(dir) {
    return fs.readdirSync(dir).filter((name) => name.endsWith(".h")).map((name) => path.join(dir, name));
}

function sameFlags(exe, flags, libraries) {
    try {
        return fs.readFileSync(exe + ".flags", "utf8") === JSON.stringify({ flags, libraries });
    } catch {
        return false;
    }
}
