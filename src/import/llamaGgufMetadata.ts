import {gguf, type GgufValue} from "../gguf/GgufValue.js";
import {UnsupportedCheckpointError} from "./readCompressionScheme.js";

export interface LlamaHyperparameters {
    readonly embedding: number;
    readonly feedForward: number;
    readonly layers: number;
    readonly heads: number;
    readonly kvHeads: number;
    readonly headDim: number;
    readonly contextLength: number;
    readonly ropeTheta: number;
    readonly rmsEpsilon: number;
    readonly vocabularySize: number;
    readonly tiedEmbeddings: boolean;
    /** Llama 3.1 rope scaling ("llama3"), when the config has it. */
    readonly llama3RopeScaling?: {readonly factor: number, readonly lowFreqFactor: number, readonly highFreqFactor: number, readonly originalContextLength: number};
}

type Json = Record<string, unknown>;

function required(config: Json, key: string): number {
    const value = config[key];
    if (typeof value !== "number")
        throw new Error(`config.json has no numeric ${key}`);
    return value;
}

/** The Llama hyperparameters of a Hugging Face config.json (LlamaForCausalLM). */
export function readLlamaHyperparameters(config: Json): LlamaHyperparameters {
    const architectures = (config.architectures ?? []) as string[];
    if (config.model_type !== "llama" && !architectures.includes("LlamaForCausalLM"))
        throw new UnsupportedCheckpointError(`model type ${JSON.stringify(config.model_type)} (${architectures.join(", ") || "no architectures"}) is not supported; the importer handles Llama (LlamaForCausalLM) checkpoints`);
    const embedding = required(config, "hidden_size");
    const heads = required(config, "num_attention_heads");
    const headDim = typeof config.head_dim === "number" ? config.head_dim : embedding / heads;
    if (headDim !== embedding / heads)
        throw new UnsupportedCheckpointError(`head_dim ${headDim} differs from hidden_size / num_attention_heads (${embedding / heads}); not supported`);
    if (config.attention_bias === true || config.mlp_bias === true)
        throw new UnsupportedCheckpointError("attention or MLP biases (attention_bias / mlp_bias) are not supported");
    const scaling = config.rope_scaling as Json | null | undefined;
    let llama3RopeScaling: LlamaHyperparameters["llama3RopeScaling"];
    if (scaling != null) {
        const type = scaling.rope_type ?? scaling.type;
        if (type !== "llama3")
            throw new UnsupportedCheckpointError(`rope scaling ${JSON.stringify(type)} is not supported (only Llama 3.1's "llama3")`);
        llama3RopeScaling = {
            factor: (scaling.factor as number | undefined) ?? 8,
            lowFreqFactor: (scaling.low_freq_factor as number | undefined) ?? 1,
            highFreqFactor: (scaling.high_freq_factor as number | undefined) ?? 4,
            originalContextLength: (scaling.original_max_position_embeddings as number | undefined) ?? 8192
        };
    }
    return {
        embedding, heads, headDim,
        feedForward: required(config, "intermediate_size"),
        layers: required(config, "num_hidden_layers"),
        kvHeads: typeof config.num_key_value_heads === "number" ? config.num_key_value_heads : heads,
        contextLength: required(config, "max_position_embeddings"),
        ropeTheta: typeof config.rope_theta === "number" ? config.rope_theta : 10000,
        rmsEpsilon: typeof config.rms_norm_eps === "number" ? config.rms_norm_eps : 1e-6,
        vocabularySize: required(config, "vocab_size"),
        tiedEmbeddings: config.tie_word_embeddings === true,
        ...(llama3RopeScaling != null ? {llama3RopeScaling} : {})
    };
}

/**
 * Llama 3.1's per-frequency rope divisors, which llama.cpp reads from a `rope_freqs.weight` tensor (one per pair of
 * dims): 1 for short wavelengths, `factor` for long ones, a smooth blend between. Computed in float32 steps, like
 * llama.cpp's converter does with torch float32 tensors.
 */
export function llama3RopeFactors(hyper: LlamaHyperparameters): Float32Array {
    const scaling = hyper.llama3RopeScaling;
    if (scaling == null)
        throw new Error("the model has no llama3 rope scaling");
    const f = Math.fround;
    const dim = hyper.headDim;
    const lowFreqWavelength = scaling.originalContextLength / scaling.lowFreqFactor;
    const highFreqWavelength = scaling.originalContextLength / scaling.highFreqFactor;
    const factors = new Float32Array(dim / 2);
    for (let i = 0; i < dim / 2; i++) {
        const frequency = f(1 / f(f(hyper.ropeTheta) ** f(f(2 * i) / dim)));
        const wavelength = f(f(2 * Math.PI) / frequency);
        if (wavelength < highFreqWavelength)
            factors[i] = 1;
        else if (wavelength > lowFreqWavelength)
            factors[i] = scaling.factor;
        else {
            const smooth = (scaling.originalContextLength / wavelength - scaling.lowFreqFactor) / (scaling.highFreqFactor - scaling.lowFreqFactor);
            factors[i] = 1 / ((1 - smooth) / scaling.factor + smooth);
        }
    }
    return factors;
}

/** llama.cpp's `llama.*` hyperparameter keys. */
export function llamaGgufMetadata(hyper: LlamaHyperparameters, name: string, fileType: number): Map<string, GgufValue> {
    return new Map<string, GgufValue>([
        ["general.architecture", gguf.str("llama")],
        ["general.name", gguf.str(name)],
        ["general.file_type", gguf.u32(fileType)],
        ["general.quantization_version", gguf.u32(2)],
        ["llama.context_length", gguf.u32(hyper.contextLength)],
        ["llama.embedding_length", gguf.u32(hyper.embedding)],
        ["llama.feed_forward_length", gguf.u32(hyper.feedForward)],
        ["llama.block_count", gguf.u32(hyper.layers)],
        ["llama.attention.head_count", gguf.u32(hyper.heads)],
        ["llama.attention.head_count_kv", gguf.u32(hyper.kvHeads)],
        ["llama.rope.freq_base", gguf.f32(hyper.ropeTheta)],
        ["llama.rope.dimension_count", gguf.u32(hyper.headDim)],
        ["llama.attention.layer_norm_rms_epsilon", gguf.f32(hyper.rmsEpsilon)],
        ["llama.vocab_size", gguf.u32(hyper.vocabularySize)]
    ]);
}
