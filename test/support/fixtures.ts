import * as fs from "node:fs";
import * as path from "node:path";
import {fileURLToPath} from "node:url";
import {EngineClient} from "../../src/core/EngineClient.js";
import {chooseModel, projectPaths} from "../../src/core/modelCatalog.js";
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

/** An engine process (the built one) with a bundled model loaded on the CPU, with a 2048-token context. */
export async function startEngineWithBundledModel(variant: "sparse" | "dense", sequences: number): Promise<EngineClient> {
    const engine = new EngineClient({enginePath: requireBuiltEngine(), log: () => undefined});
    const model = await chooseModel(repoRoot, {modelVariant: variant, customModelPath: ""});
    await engine.load({modelPath: model.path, device: "cpu", contextSize: 2048, sequences});
    return engine;
}

export function requireBuiltEngine(): string {
    if (!fs.existsSync(paths.engineEntry))
        throw new Error(`${paths.engineEntry} is missing: run \`npm run build\` first (npm test does)`);
    return paths.engineEntry;
}
