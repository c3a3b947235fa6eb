// Which CPU backend library of our build a C program that calls ggml's CPU backend directly should link: the only
// one of a native build, or in a portable build the feature level ggml itself would load on this CPU (highest score).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { compileCProgram, outDir } from "./compileCProgram.mjs";

/**
 * @param {{ cpuVariants: { name: string, library: string }[] }} build from getSparseBuildPaths()
 * @returns {{ name: string, library: string } | null} null when this CPU runs none of them
 */
export function bestCpuVariant(build) {
    if (build.cpuVariants.length === 1 && build.cpuVariants[0].name === "cpu") return build.cpuVariants[0];
    fs.mkdirSync(outDir, { recursive: true });
    const source = path.join(outDir, "cpu_variant_score.c");
    const text = '#include <stdio.h>\nint ggml_backend_score(void);\nint main(void) { printf("%d\\n", ggml_backend_score()); return 0; }\n';
    if (!fs.existsSync(source) || fs.readFileSync(source, "utf8") !== text) fs.writeFileSync(source, text);
    let best = null, bestScore = 0;
    for (const variant of build.cpuVariants) {
        const exe = compileCProgram({ name: `cpu_variant_score_${variant.name}`, sources: [source], libraries: [variant.library] });
        const score = Number(spawnSync(exe, { encoding: "utf8" }).stdout);
        if (score > bestScore) {
            best = variant;
            bestScore = score;
        }
    }
    return best;
}
