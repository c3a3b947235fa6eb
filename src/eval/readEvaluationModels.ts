import {createHash} from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** A model the harness evaluates. */
export interface EvaluationModel {
    /** "dense-8bit", "sparse-4bit", ... or the file name of a GGUF given by path. */
    readonly name: string;
    readonly path: string;
    readonly description?: string;
}

interface ManifestEntry {
    readonly file?: unknown;
    readonly evalName?: unknown;
    readonly sha256?: unknown;
    readonly description?: unknown;
}

/** The order of the table: the near-lossless dense reference first (the baseline), then what quantization and sparsity change. */
const TABLE_ORDER = ["dense-8bit", "dense-4bit", "sparse-8bit", "sparse-4bit"];

/**
 * The models listed in models/manifest.json with an `evalName` (the shipped sparse and dense models and the eval-only
 * 8-bit references), in table order, each checked against its sha256 so the table names the files it measured.
 */
export function readEvaluationModels(root: string): EvaluationModel[] {
    const manifestPath = path.join(root, "models", "manifest.json");
    const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8")) as {models?: ManifestEntry[]};
    const models: EvaluationModel[] = [];
    for (const entry of manifest.models ?? []) {
        if (typeof entry.evalName !== "string" || typeof entry.file !== "string")
            continue;
        const file = path.join(root, "models", entry.file);
        if (!fs.existsSync(file))
            throw new Error(`${file} (${entry.evalName}) is listed in ${manifestPath} but missing`);
        const digest = createHash("sha256").update(fs.readFileSync(file)).digest("hex");
        if (digest !== entry.sha256)
            throw new Error(`${file} does not match its sha256 in ${manifestPath}; rebuild it (docs/model.md) or rewrite the manifest`);
        models.push({name: entry.evalName, path: file, ...(typeof entry.description === "string" ? {description: entry.description} : {})});
    }
    const rank = (model: EvaluationModel) => TABLE_ORDER.includes(model.name) ? TABLE_ORDER.indexOf(model.name) : TABLE_ORDER.length;
    return models.sort((a, b) => rank(a) - rank(b));
}

/** `--model` arguments: manifest names ("sparse-4bit") or paths of GGUF files. Without any, every manifest model. */
export function chooseEvaluationModels(root: string, requested: readonly string[]): EvaluationModel[] {
    const listed = readEvaluationModels(root);
    if (requested.length === 0)
        return listed;
    return requested.map((request) => {
        const named = listed.find((model) => model.name === request);
        if (named != null)
            return named;
        if (fs.existsSync(request))
            return {name: path.basename(request, ".gguf"), path: path.resolve(request)};
        throw new Error(`unknown model "${request}": use one of ${listed.map((model) => model.name).join(", ")} or a GGUF path`);
    });
}
