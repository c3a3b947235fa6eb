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
        /** llama.cpp's source as bundled by node-llama-cpp (extracted by the set-up step). */
        llamaCppSource: path.join(root, "node_modules", "node-llama-cpp", "llama", "llama.cpp"),
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
    return {variant: settings.modelVariant, path: path.join(projectPaths(root).modelsDir, bundled.file), label: settings.modelVariant};
}
