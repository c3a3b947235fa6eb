// Where the Q4_S24 build of node-llama-cpp's llama.cpp lives: the stamp written by build.mjs
// names the localBuilds folder; headers come from the patched llama.cpp tree.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const nativeKernelsDir = path.dirname(fileURLToPath(import.meta.url));
export const projectRoot = path.dirname(nativeKernelsDir);

/** node-llama-cpp's package folder, found the way Node resolves it from the project root. */
export function getNodeLlamaCppDir() {
    const require = createRequire(path.join(projectRoot, "package.json"));
    let dir = path.dirname(require.resolve("node-llama-cpp"));
    while (dir !== path.dirname(dir)) {
        const pkgPath = path.join(dir, "package.json");
        if (fs.existsSync(pkgPath) && JSON.parse(fs.readFileSync(pkgPath, "utf8")).name === "node-llama-cpp")
            return dir;
        dir = path.dirname(dir);
    }
    throw new Error("node-llama-cpp is not installed");
}

/**
 * Paths of the last successful build.mjs build, or null when there is none (or it was removed).
 * `libraries` are ggml-base and ggml; `cpuVariants` the CPU backend libraries: one (`cpu`, libggml-cpu) in a native
 * build, one per feature level (`haswell`, `icelake`, ...; libggml-cpu-<name>) in a portable build, where ggml
 * loads the best one the running CPU supports. A program that calls the CPU backend directly links one of them.
 * @returns {{ stamp: object, releaseDir: string, includeDirs: string[], libraries: string[],
 *             cpuVariants: { name: string, library: string }[] } | null}
 */
export function getSparseBuildPaths() {
    const llamaDir = path.join(getNodeLlamaCppDir(), "llama");
    let stamp;
    try {
        stamp = JSON.parse(fs.readFileSync(path.join(llamaDir, "q4_s24-build-stamp.json"), "utf8"));
    } catch {
        return null;
    }
    const releaseDir = path.join(llamaDir, "localBuilds", stamp.folderName, "Release");
    const includeDir = path.join(llamaDir, "llama.cpp", "ggml", "include");
    if (!fs.existsSync(releaseDir) || !fs.existsSync(includeDir)) return null;
    // libggml may carry a version suffix (libggml.v0.5.0.so); the CPU backend and base do not.
    const names = fs.readdirSync(releaseDir).sort();
    const pick = (re) => names.find((name) => re.test(name));
    const libraries = [pick(/^libggml-base\.(so|dylib)$/), pick(/^libggml(\.v[\w.]+)?\.(so|dylib)$/)]
        .filter((name) => name != null)
        .map((name) => path.join(releaseDir, name));
    const cpuVariants = names
        .map((name) => /^libggml-(cpu(?:-([\w.]+))?)\.(so|dylib)$/.exec(name))
        .filter((match) => match != null)
        .map((match) => ({ name: match[2] ?? match[1], library: path.join(releaseDir, match[0]) }));
    if (libraries.length !== 2 || cpuVariants.length === 0) return null;
    return { stamp, releaseDir, includeDirs: [includeDir], libraries, cpuVariants };
}
