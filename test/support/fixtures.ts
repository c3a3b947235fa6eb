import * as fs from "node:fs";
import * as path from "node:path";
import {fileURLToPath} from "node:url";
import {projectPaths} from "../../src/core/modelCatalog.js";
import {writeTinyLlamaGguf} from "./writeTinyLlamaGguf.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const paths = projectPaths(repoRoot);
export const generatedDir = path.join(repoRoot, "test-fixtures", "generated");

/** The tiny random-weight Llama GGUF (written once per checkout; deterministic). */
export async function tinyModelPath(): Promise<string> {
    const file = path.join(generatedDir, "tiny-llama-fim.gguf");
    if (!fs.existsSync(file))
        await writeTinyLlamaGguf(file, paths.codeVocabulary);
    return file;
}

/** A second tiny model that differs from the first only by its name, for switching between models. */
export async function secondTinyModelPath(): Promise<string> {
    const file = path.join(generatedDir, "tiny-llama-fim-b.gguf");
    if (!fs.existsSync(file))
        await writeTinyLlamaGguf(file, paths.codeVocabulary, undefined, {name: "tiny-random-llama B (test fixture)"});
    return file;
}

export function requireBuiltEngine(): string {
    if (!fs.existsSync(paths.engineEntry))
        throw new Error(`${paths.engineEntry} is missing: run \`npm run build\` first (npm test does)`);
    return paths.engineEntry;
}
