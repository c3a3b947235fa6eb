import {createHash} from "node:crypto";
import {createReadStream} from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import {EngineError} from "./errors.js";
import type {CompletionSettings, ModelVariant} from "./settings.js";

/** One bundled model, as listed in models/manifest.json. */
export interface BundledModel {
    readonly file: string;
    readonly variant: Exclude<ModelVariant, "custom">;
    readonly bytes: number;
    readonly sha256: string;
    readonly description?: string;
}

export interface ModelChoice {
    readonly variant: ModelVariant;
    readonly path: string;
    /** For status bar and pickers. */
    readonly label: string;
}

/** Where everything the extension ships lives, relative to its root (the repository, or the installed extension). */
export function projectPaths(root: string) {
    return {
        root,
        engineEntry: path.join(root, "dist", "engineHost.mjs"),
        modelsDir: path.join(root, "models"),
        manifest: path.join(root, "models", "manifest.json"),
        /** Real code shipped for the benchmark's prompts and the README's demo. */
        samplesDir: path.join(root, "samples"),
        /** The code tokenizer our models use: deepseek-coder's 32k BPE vocabulary with fill-in-the-middle tokens. */
        codeVocabulary: path.join(root, "node_modules", "node-llama-cpp", "llama", "llama.cpp", "models", "ggml-vocab-deepseek-coder.gguf")
    };
}

export async function readBundledModels(root: string): Promise<BundledModel[]> {
    const {manifest} = projectPaths(root);
    let parsed: unknown;
    try {
        parsed = JSON.parse(await fs.readFile(manifest, "utf8"));
    } catch {
        return [];
    }
    const models = (parsed as {models?: unknown}).models;
    return Array.isArray(models) ? models.filter((m): m is BundledModel =>
        typeof m === "object" && m != null && typeof m.file === "string" && (m.variant === "sparse" || m.variant === "dense")) : [];
}

/** The model file a settings object selects. Custom paths are taken only from settings the caller trusts. */
export async function chooseModel(root: string, settings: Pick<CompletionSettings, "modelVariant" | "customModelPath">): Promise<ModelChoice> {
    if (settings.modelVariant === "custom") {
        if (settings.customModelPath.trim().length === 0)
            throw new EngineError("model-not-found", "the model variant is \"custom\" but no custom model path is set");
        return {variant: "custom", path: settings.customModelPath, label: path.basename(settings.customModelPath)};
    }
    const bundled = (await readBundledModels(root)).find((model) => model.variant === settings.modelVariant);
    if (bundled == null)
        throw new EngineError("model-not-found", `no bundled ${settings.modelVariant} model is listed in ${projectPaths(root).manifest}`);
    const file = path.join(projectPaths(root).modelsDir, bundled.file);
    await verifyBundledModel(file, bundled);
    return {variant: settings.modelVariant, path: file, label: settings.modelVariant};
}

/** Files already checked against the manifest, keyed by path, size and modification time. */
const verified = new Set<string>();

/** Checks a bundled model against its manifest's sha256 before its first use, so a damaged install is reported, not run. */
async function verifyBundledModel(file: string, model: BundledModel): Promise<void> {
    let stat;
    try {
        stat = await fs.stat(file);
    } catch {
        throw new EngineError("model-not-found", `the bundled ${model.variant} model ${file} is missing; reinstall the extension`);
    }
    const key = `${file}:${stat.size}:${stat.mtimeMs}`;
    if (verified.has(key))
        return;
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file))
        hash.update(chunk as Buffer);
    const digest = hash.digest("hex");
    if (digest !== model.sha256)
        throw new EngineError("model-invalid", `the bundled ${model.variant} model ${file} does not match its manifest (sha256 ${digest.slice(0, 12)}..., ` +
            `expected ${model.sha256.slice(0, 12)}...); reinstall the extension`);
    verified.add(key);
}
