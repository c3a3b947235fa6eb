import * as fs from "node:fs/promises";
import * as path from "node:path";
import {readCodeTokenizerMetadata} from "../../src/gguf/codeTokenizerMetadata.js";
import {encodeFloat16} from "../../src/gguf/float16.js";
import {gguf, GgufValueType, type GgufValue} from "../../src/gguf/GgufValue.js";
import {writeGguf, type GgufTensorToWrite} from "../../src/gguf/GgufWriter.js";
import {GgmlType} from "../../src/gguf/ggmlTypes.js";

export interface TinyLlamaShape {
    readonly embedding: number;
    readonly layers: number;
    readonly heads: number;
    readonly kvHeads: number;
    readonly feedForward: number;
    readonly contextLength: number;
}

export const tinyLlamaShape: TinyLlamaShape = {embedding: 64, layers: 2, heads: 4, kvHeads: 2, feedForward: 192, contextLength: 4096};

/** Deterministic normal-ish numbers (xorshift + sum of uniforms), so every run writes the same model. */
function randomWeights(count: number, scale: number, seed: number): Float32Array {
    let state = (seed * 2654435761) >>> 0 || 1;
    const next = () => {
        state ^= state << 13; state >>>= 0;
        state ^= state >>> 17;
        state ^= state << 5; state >>>= 0;
        return state / 4294967296;
    };
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++)
        values[i] = (next() + next() + next() - 1.5) * 2 * scale;
    return values;
}

/**
 * Writes a small Llama-architecture GGUF with random weights and the real code tokenizer (deepseek-coder's vocabulary
 * with FIM tokens). Its completions are not useful code, but llama.cpp runs it exactly as it runs a real model, so
 * the engine, the IPC and the pipeline are tested for real, in seconds, on a CPU.
 */
export async function writeTinyLlamaGguf(outPath: string, vocabularyPath: string, shape: TinyLlamaShape = tinyLlamaShape,
    {name = "tiny-random-llama (test fixture)", withFim = true}: {name?: string, withFim?: boolean} = {}): Promise<void> {
    const tokenizer = await readCodeTokenizerMetadata(vocabularyPath);
    if (!withFim)
        for (const key of ["tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id"])
            tokenizer.delete(key);
    const tokens = tokenizer.get("tokenizer.ggml.tokens")!;
    const vocabularySize = tokens.type === GgufValueType.ARRAY ? tokens.value.length : 0;
    const headDim = shape.embedding / shape.heads;
    const metadata = new Map<string, GgufValue>([
        ["general.architecture", gguf.str("llama")],
        ["general.name", gguf.str(name)],
        ["general.file_type", gguf.u32(1)],
        ["llama.context_length", gguf.u32(shape.contextLength)],
        ["llama.embedding_length", gguf.u32(shape.embedding)],
        ["llama.block_count", gguf.u32(shape.layers)],
        ["llama.feed_forward_length", gguf.u32(shape.feedForward)],
        ["llama.attention.head_count", gguf.u32(shape.heads)],
        ["llama.attention.head_count_kv", gguf.u32(shape.kvHeads)],
        ["llama.rope.dimension_count", gguf.u32(headDim)],
        ["llama.rope.freq_base", gguf.f32(10000)],
        ["llama.attention.layer_norm_rms_epsilon", gguf.f32(1e-5)],
        ["llama.vocab_size", gguf.u32(vocabularySize)],
        ...tokenizer
    ]);
    let seed = 1;
    const matrix = (name: string, columns: number, rows: number): GgufTensorToWrite => {
        const tensorSeed = seed++;
        return {name, dims: [columns, rows], type: GgmlType.F16, data: () => encodeFloat16(randomWeights(columns * rows, 1 / Math.sqrt(columns), tensorSeed))};
    };
    const norm = (name: string): GgufTensorToWrite => ({name, dims: [shape.embedding], type: GgmlType.F32, data: new Uint8Array(new Float32Array(shape.embedding).fill(1).buffer)});
    const tensors: GgufTensorToWrite[] = [matrix("token_embd.weight", shape.embedding, vocabularySize), norm("output_norm.weight")];
    for (let layer = 0; layer < shape.layers; layer++) {
        const block = `blk.${layer}`;
        tensors.push(
            norm(`${block}.attn_norm.weight`),
            matrix(`${block}.attn_q.weight`, shape.embedding, shape.embedding),
            matrix(`${block}.attn_k.weight`, shape.embedding, shape.kvHeads * headDim),
            matrix(`${block}.attn_v.weight`, shape.embedding, shape.kvHeads * headDim),
            matrix(`${block}.attn_output.weight`, shape.embedding, shape.embedding),
            norm(`${block}.ffn_norm.weight`),
            matrix(`${block}.ffn_gate.weight`, shape.embedding, shape.feedForward),
            matrix(`${block}.ffn_up.weight`, shape.embedding, shape.feedForward),
            matrix(`${block}.ffn_down.weight`, shape.feedForward, shape.embedding)
        );
    }
    await fs.mkdir(path.dirname(outPath), {recursive: true});
    await writeGguf(outPath, metadata, tensors);
}
