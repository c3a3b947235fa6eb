import * as fs from "node:fs/promises";
import {readGgufHeader} from "../gguf/GgufReader.js";
import {GgufFormatError} from "../gguf/GgufFormatError.js";
import {ggufValueAsNumber, ggufValueAsString} from "../gguf/GgufValue.js";
import {ggmlTypeName} from "../gguf/ggmlTypes.js";
import {EngineError} from "./errors.js";

export interface ModelFileSummary {
    readonly path: string;
    readonly sizeBytes: number;
    readonly name: string;
    readonly architecture: string;
    readonly supportsFim: boolean;
    readonly trainContextSize: number;
    /** Distinct weight types, most frequent first. */
    readonly weightTypes: readonly string[];
}

const architecturesLlamaCppRuns = new Set(["llama", "qwen2", "qwen3", "starcoder2", "deepseek2", "mistral", "gemma", "gemma2", "phi3", "granite"]);

/**
 * Checks a model file before llama.cpp sees it, so a missing, truncated or foreign file gets a clear error
 * instead of a native abort, and reports what the user is about to load.
 */
export async function inspectModelFile(modelPath: string): Promise<ModelFileSummary> {
    let sizeBytes: number;
    try {
        const stat = await fs.stat(modelPath);
        if (!stat.isFile())
            throw new EngineError("model-not-found", `model path ${modelPath} is not a file`);
        sizeBytes = stat.size;
    } catch (error) {
        if (error instanceof EngineError)
            throw error;
        throw new EngineError("model-not-found", `model file ${modelPath} does not exist`);
    }
    let header;
    try {
        header = await readGgufHeader(modelPath);
    } catch (error) {
        if (error instanceof GgufFormatError)
            throw new EngineError("model-invalid", error.message);
        throw new EngineError("model-invalid", `cannot read ${modelPath}: ${(error as Error).message}`);
    }
    const architecture = ggufValueAsString(header.metadata.get("general.architecture")) ?? "unknown";
    if (!architecturesLlamaCppRuns.has(architecture))
        throw new EngineError("model-invalid", `${modelPath} is a "${architecture}" model; this extension runs Llama-family code models`);
    if (header.tensors.length === 0)
        throw new EngineError("model-invalid", `${modelPath} holds no weights (a vocabulary-only file?)`);
    const typeCounts = new Map<string, number>();
    for (const tensor of header.tensors)
        if (tensor.dims.length >= 2)
            typeCounts.set(ggmlTypeName(tensor.type), (typeCounts.get(ggmlTypeName(tensor.type)) ?? 0) + 1);
    const fimKeys = ["tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id"];
    return {
        path: modelPath,
        sizeBytes,
        name: ggufValueAsString(header.metadata.get("general.name")) ?? modelPath,
        architecture,
        supportsFim: fimKeys.every((key) => header.metadata.has(key)),
        trainContextSize: ggufValueAsNumber(header.metadata.get(`${architecture}.context_length`)) ?? 0,
        weightTypes: [...typeCounts.entries()].sort((a, b) => b[1] - a[1]).map(([type]) => type)
    };
}
