// Whether this machine's compilers can build every CPU variant of ggml's portable build (GGML_CPU_ALL_VARIANTS).
// ggml compiles one CPU library per feature level, up to Sapphire Rapids (AMX, AVX-VNNI) on x86 and Armv9.2 with SME
// on ARM; a compiler that lacks those flags (gcc before 11 has no -mavxvnni or -mamx-*) fails the whole build
// halfway, after minutes. build.mjs asks first and builds for this machine's CPU instead (GGML_NATIVE), with a warning.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/** The flags of the newest variant ggml builds per architecture (ggml/src/ggml-cpu/CMakeLists.txt). */
export const newestCpuVariantFlags = {
    x64: ["-mavx2", "-mavx512f", "-mavx512vbmi", "-mavx512vnni", "-mavx512bf16", "-mavxvnni", "-mamx-tile", "-mamx-int8"],
    arm64: ["-march=armv9.2-a+dotprod+fp16+sve+i8mm+sve2+sme"],
};

function compiles(compiler, language, flags) {
    // The source goes in a file, not on stdin: a compiler that rejects a flag exits before reading stdin, and writing to
    // it then fails with EPIPE, which would hide the compiler's own error (seen in CI).
    let dir;
    try {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "cpu-variant-probe-"));
        const sourceFile = path.join(dir, language === "c" ? "probe.c" : "probe.cpp");
        fs.writeFileSync(sourceFile, language === "c" ? "int main(void) { return 0; }\n" : "int main() { return 0; }\n");
        const res = spawnSync(compiler, ["-x", language, ...flags, "-c", "-o", os.devNull, sourceFile], {
            stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", timeout: 30000,
        });
        // Only a compiler that is not there counts as missing; one that could not be run (busy, timed out) counts as
        // failing, so that the build falls back to this machine's CPU rather than fail halfway.
        if (res.error != null) {
            return res.error.code === "ENOENT" ? { ok: false, missing: true } : { ok: false, missing: false, stderr: `error: ${res.error.message}` };
        }
        return { ok: res.status === 0, missing: false, stderr: res.stderr ?? "" };
    } catch (error) {
        // no temporary folder to probe in: count as failing, so the build falls back to this machine's CPU
        return { ok: false, missing: false, stderr: `error: ${error.message}` };
    } finally {
        if (dir != null) fs.rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * @param {{ cc?: string, cxx?: string, arch?: string }} [options] compilers as CMake would pick them ($CC / $CXX,
 *   else cc / c++) and the target architecture (process.arch)
 * @returns {{ ok: true } | { ok: false, reason: string }} ok when every variant should compile, or when there is
 *   nothing to check (no variant list for the architecture, or no compiler found: the build itself reports that)
 */
export function compilersBuildAllCpuVariants({ cc = process.env.CC || "cc", cxx = process.env.CXX || "c++", arch = process.arch } = {}) {
    const flags = newestCpuVariantFlags[arch];
    if (flags == null) return { ok: true };
    for (const [compiler, language] of [[cc, "c"], [cxx, "c++"]]) {
        const result = compiles(compiler, language, flags);
        if (result.missing) continue;
        if (!result.ok) {
            const firstError = result.stderr.split("\n").find((line) => /error/i.test(line))?.trim();
            return { ok: false, reason: `${compiler} rejects ${flags.join(" ")}${firstError ? ` (${firstError})` : ""}` };
        }
    }
    return { ok: true };
}
