/**
 * Writes small Llama checkpoints the way Hugging Face + compressed-tensors publish them (safetensors shards with an
 * index, config.json, tokenizer.json, tokenizer_config.json), in each weight format the importer reads. The
 * compressors below follow compressed-tensors' published steps forward (quantize -> 2:4 compress with CUTLASS
 * metadata -> transpose -> Marlin tiles and permutations -> pack), independently of the importer, which inverts them.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import {float32ToFloat16Bits} from "../../src/gguf/float16.js";
import {readGgufHeader} from "../../src/gguf/GgufReader.js";
import {GgufValueType} from "../../src/gguf/GgufValue.js";

export const llamaBpeVocabulary = path.join("node_modules", "node-llama-cpp", "llama", "llama.cpp", "models", "ggml-vocab-llama-bpe.gguf");

export interface TinyCheckpointShape {
    readonly embedding: number;
    readonly layers: number;
    readonly heads: number;
    readonly kvHeads: number;
    readonly feedForward: number;
}

/** Rows of 256 and 512 columns: Q4_S24 needs multiples of 256, marlin-24 out_features multiples of 64. */
export const tinyCheckpointShape: TinyCheckpointShape = {embedding: 256, layers: 2, heads: 4, kvHeads: 2, feedForward: 512};

export type CheckpointFormat = "marlin-24" | "pack-quantized" | "pack-quantized-dense" | "sparse-24-bitmask" | "dense-2of4" | "dense";

export interface SafetensorsEntry {
    readonly name: string;
    readonly dtype: string;
    readonly shape: readonly number[];
    readonly data: Uint8Array;
}

/** A safetensors file: u64 header length, JSON header with data offsets, then the tensors' bytes. */
export async function writeSafetensors(file: string, entries: readonly SafetensorsEntry[], metadata: Record<string, string> = {format: "pt"}): Promise<void> {
    const header: Record<string, unknown> = {__metadata__: metadata};
    let offset = 0;
    for (const entry of entries) {
        header[entry.name] = {dtype: entry.dtype, shape: entry.shape, data_offsets: [offset, offset + entry.data.length]};
        offset += entry.data.length;
    }
    let json = JSON.stringify(header);
    json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // the format pads the header with spaces to 8 bytes
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    await fs.writeFile(file, Buffer.concat([length, Buffer.from(json), ...entries.map((entry) => Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.length))]));
}

/** Deterministic xorshift numbers in [0, 1). */
export function randomSource(seed: number): () => number {
    let state = (seed * 2654435761) >>> 0 || 1;
    return () => {
        state ^= state << 13; state >>>= 0;
        state ^= state >>> 17;
        state ^= state << 5; state >>>= 0;
        return state / 4294967296;
    };
}

const floatScratch = new Float32Array(1);
const bitsScratch = new Uint32Array(floatScratch.buffer);

function bf16Bits(value: number): number {
    floatScratch[0] = value;
    const bits = bitsScratch[0]!;
    return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16; // round to nearest even
}

export function bf16Bytes(values: ArrayLike<number>): Uint8Array {
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++)
        out[i] = bf16Bits(values[i]!);
    return new Uint8Array(out.buffer);
}

export function bf16Value(value: number): number {
    bitsScratch[0] = bf16Bits(value) << 16;
    return floatScratch[0]!;
}

/** A symmetric int4 weight with group-128 scales: value(r, c) = q * scale. */
export interface Int4Weight {
    readonly rows: number;
    readonly columns: number;
    readonly q: Int8Array;
    /** rows x columns/128, each exactly representable in both fp16 and bf16. */
    readonly scales: Float32Array;
}

/**
 * A random int4 weight. 2:4 ones keep two positions per group of 4, and about one kept value in six is 0 (a kept
 * weight that quantized to 0), so groups with one or no nonzero occur: the case where marlin's metadata is not
 * the pruning mask.
 */
export function randomInt4Weight(rows: number, columns: number, seed: number, twoFour: boolean): Int4Weight {
    const next = randomSource(seed);
    const q = new Int8Array(rows * columns);
    for (let group = 0; group < rows * columns / 4; group++) {
        const first = Math.floor(next() * 4);
        let second = Math.floor(next() * 3);
        if (second >= first)
            second++;
        for (let p = 0; p < 4; p++)
            if (!twoFour || p === first || p === second)
                q[4 * group + p] = next() < 1 / 6 ? 0 : Math.floor(next() * 16) - 8;
    }
    // Scales m * 2^-14 with an 8-bit m: fp16 normal numbers with 8 significant bits, so bf16 holds them too.
    const scales = new Float32Array(rows * columns / 128);
    for (let i = 0; i < scales.length; i++)
        scales[i] = (128 + Math.floor(next() * 128)) * 2 ** -14;
    return {rows, columns, q, scales};
}

export function int4WeightValues(weight: Int4Weight): Float32Array {
    const out = new Float32Array(weight.q.length);
    for (let i = 0; i < out.length; i++)
        out[i] = weight.q[i]! * weight.scales[Math.floor(i / weight.columns) * (weight.columns / 128) + Math.floor((i % weight.columns) / 128)]!;
    return out;
}

/** compressed-tensors `pack-quantized`: weight_packed int32 [n, k/8] of q + 8, weight_scale [n, G] bf16, weight_shape. */
export function packQuantized(prefix: string, weight: Int4Weight): SafetensorsEntry[] {
    const packed = new Int32Array(weight.q.length / 8);
    for (let i = 0; i < weight.q.length; i++)
        packed[i >> 3]! |= (weight.q[i]! + 8) << (4 * (i & 7));
    return [
        {name: `${prefix}.weight_packed`, dtype: "I32", shape: [weight.rows, weight.columns / 8], data: new Uint8Array(packed.buffer)},
        {name: `${prefix}.weight_scale`, dtype: "BF16", shape: [weight.rows, weight.columns / 128], data: bf16Bytes(weight.scales)},
        {name: `${prefix}.weight_shape`, dtype: "I64", shape: [2], data: new Uint8Array(new BigInt64Array([BigInt(weight.rows), BigInt(weight.columns)]).buffer)}
    ];
}

/** compressed-tensors `sparse-24-bitmask`: the kept values row by row, a little-endian bit mask, the shape. */
export function sparse24Bitmask(prefix: string, values: Float32Array, rows: number, columns: number): SafetensorsEntry[] {
    const kept: number[] = [];
    const mask = new Uint8Array(rows * columns / 8);
    for (let row = 0; row < rows; row++)
        for (let group = 0; group < columns / 4; group++) {
            // The library keeps the two largest magnitudes of each group (topk), zeros included when fewer are nonzero.
            const at = row * columns + 4 * group;
            const order = [0, 1, 2, 3].sort((a, b) => Math.abs(values[at + b]!) - Math.abs(values[at + a]!) || a - b);
            const keep = order.slice(0, 2).sort((a, b) => a - b);
            for (const p of keep) {
                kept.push(values[at + p]!);
                mask[(at + p) >> 3]! |= 1 << ((at + p) & 7);
            }
        }
    return [
        {name: `${prefix}.compressed`, dtype: "BF16", shape: [rows, columns / 2], data: bf16Bytes(kept)},
        {name: `${prefix}.bitmask`, dtype: "U8", shape: [rows, columns / 8], data: mask},
        {name: `${prefix}.shape`, dtype: "I64", shape: [2, 1], data: new Uint8Array(new BigInt64Array([BigInt(rows), BigInt(columns)]).buffer)}
    ];
}

/** Marlin's 4-bit 2:4 permutation of 1024 tile values (get_permutations_24(4)): stored j = tile element perm[j]. */
function marlinPermutation(): number[] {
    const list: number[] = [];
    for (let i = 0; i < 32; i++) {
        const perm1: number[] = [];
        const col = Math.floor(i / 4);
        for (const block of [0, 1])
            for (const row of [2 * (i % 4), 2 * (i % 4) + 1, 2 * (i % 4 + 4), 2 * (i % 4 + 4) + 1])
                perm1.push(16 * row + Math.floor(col / 2) * 256 + 8 * (col % 2) + 4 * block);
        for (let j = 0; j < 4; j++)
            list.push(...perm1.map((p) => p + j));
    }
    const out: number[] = [];
    for (let i = 0; i < list.length; i += 8)
        for (const k of [0, 2, 4, 6, 1, 3, 5, 7])
            out.push(list[i + k]!);
    return out;
}

/** CUTLASS ColumnMajorInterleaved<2> scatter offsets of int16 metadata (_calculate_meta_reordering_scatter_offsets). */
function metaScatterOffset(row: number, col: number, m: number): number {
    let dstRow = Math.floor(row / 64) * 64 + (row % 2) * 2 + Math.floor((row % 8) / 4) + Math.floor(((row % 32) % 4) / 2) * 32 + Math.floor((row % 64) / 8) * 4;
    let dstCol = col;
    const topRight = dstRow % 2 === 0 && dstCol % 2 === 1 ? 1 : 0;
    const bottomLeft = dstRow % 2 === 1 && dstCol % 2 === 0 ? 1 : 0;
    dstRow += topRight - bottomLeft;
    dstCol -= topRight - bottomLeft;
    return Math.floor(dstCol / 2) * m * 2 + dstRow * 2 + (dstCol % 2);
}

/**
 * compressed-tensors `marlin-24` (Marlin24Compressor.compress_module) of a 2:4 int4 weight; `unpermutedScales` writes
 * the scales as versions before 0.8.0 did.
 */
export function marlin24(prefix: string, weight: Int4Weight, {unpermutedScales = false}: {unpermutedScales?: boolean} = {}): SafetensorsEntry[] {
    const {rows: n, columns: k, q} = weight;
    // sparse_semi_structured_from_dense_cutlass on the quantized values: the nonzero flags pick two indices per group.
    const kept = new Int8Array(n * k / 2);
    const metaColumns = k / 16;
    const meta = new Int16Array(n * metaColumns);
    for (let r = 0; r < n; r++)
        for (let g = 0; g < k / 4; g++) {
            const at = r * k + 4 * g;
            const [m0, m1, , m3] = [0, 1, 2, 3].map((p) => q[at + p] !== 0) as [boolean, boolean, boolean, boolean];
            const expr0 = m0 && m1, expr1 = !m0 && m1, expr2 = !m0 && !m1;
            const idx0 = (expr1 ? 1 : 0) | ((expr2 ? 1 : 0) << 1);
            const idx1 = (expr0 || expr2 || m3 ? 1 : 0) | ((expr1 || !m1 ? 1 : 0) << 1);
            kept[r * k / 2 + 2 * g] = q[at + idx0]!;
            kept[r * k / 2 + 2 * g + 1] = q[at + idx1]!;
            const c = Math.floor(g / 4);
            meta[metaScatterOffset(r, c, n)]! |= (idx0 | (idx1 << 2)) << (4 * (g % 4));
        }
    // Transposed to (k/2, n), shifted to unsigned, cut into 16x16 tiles, permuted per 1024, packed 8 per int32.
    const sizeK = k / 2;
    const perm = marlinPermutation();
    const rowsOut = sizeK / 16, rowLength = 16 * n;
    const packed = new Int32Array(rowsOut * rowLength / 8);
    for (let R = 0; R < rowsOut; R++) {
        const tiled = new Uint8Array(rowLength);
        for (let tn = 0; tn < n / 16; tn++)
            for (let tr = 0; tr < 16; tr++)
                for (let tc = 0; tc < 16; tc++)
                    tiled[(tn * 16 + tr) * 16 + tc] = kept[(tn * 16 + tc) * sizeK + R * 16 + tr]! + 8;
        for (let j = 0; j < rowLength; j++) {
            const value = tiled[j - (j % 1024) + perm[j % 1024]!]!;
            packed[(R * rowLength + j) >> 3]! |= value << (4 * (j % 8));
        }
    }
    // Scales transposed to (G, n); permuted in runs of 64 when group_size < size_k, where size_k is the compressed k/2.
    const groups = k / 128;
    const transposed = new Uint16Array(groups * n);
    for (let r = 0; r < n; r++)
        for (let g = 0; g < groups; g++)
            transposed[g * n + r] = float32ToFloat16Bits(weight.scales[r * groups + g]!);
    const scalePerm = Array.from({length: 64}, (_, j) => Math.floor(j / 8) * 8 + [0, 4, 1, 5, 2, 6, 3, 7][j % 8]!);
    const scalePacked = 128 < sizeK && !unpermutedScales ? transposed.map((_, j) => transposed[j - (j % 64) + scalePerm[j % 64]!]!) : transposed;
    return [
        {name: `${prefix}.weight_packed`, dtype: "I32", shape: [k / 32, 2 * n], data: new Uint8Array(packed.buffer)},
        {name: `${prefix}.meta`, dtype: "I16", shape: [k / 32, 2 * n], data: new Uint8Array(meta.buffer)},
        {name: `${prefix}.scale_packed`, dtype: "F16", shape: [groups, n], data: new Uint8Array(scalePacked.buffer)}
    ];
}

const LINEAR_MODULES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] as const;

/** [out_features, in_features] of a linear module. */
export function linearShape(shape: TinyCheckpointShape, module: string): [number, number] {
    const headDim = shape.embedding / shape.heads;
    switch (module) {
        case "self_attn.k_proj": case "self_attn.v_proj": return [shape.kvHeads * headDim, shape.embedding];
        case "mlp.gate_proj": case "mlp.up_proj": return [shape.feedForward, shape.embedding];
        case "mlp.down_proj": return [shape.embedding, shape.feedForward];
        default: return [shape.embedding, shape.embedding];
    }
}

export interface WrittenCheckpoint {
    readonly directory: string;
    /** Every linear weight's int4 values, by Hugging Face module prefix (model.layers.N.self_attn.q_proj). */
    readonly weights: ReadonlyMap<string, Int4Weight>;
    readonly vocabularySize: number;
}

function quantizationConfig(format: CheckpointFormat): Record<string, unknown> | undefined {
    const weights = {num_bits: 4, type: "int", symmetric: true, strategy: "group", group_size: 128, actorder: null, dynamic: false, observer: "minmax", observer_kwargs: {}, block_structure: null};
    const quantized = (quantizationFormat: string, sparsity: Record<string, unknown> | null) => ({
        quant_method: "compressed-tensors", format: quantizationFormat, quantization_status: "compressed", kv_cache_scheme: null,
        ignore: ["lm_head"], global_compression_ratio: 1.5, version: "0.8.1",
        config_groups: {group_0: {targets: ["Linear"], weights, input_activations: null, output_activations: null}},
        sparsity_config: sparsity
    });
    const sparsity = (sparsityFormat: string) => ({format: sparsityFormat, sparsity_structure: "2:4", global_sparsity: 0.45, targets: ["Linear"], ignore: ["lm_head"], registry_requires_subclass: false});
    switch (format) {
        case "marlin-24": return quantized("marlin-24", sparsity("dense"));
        case "pack-quantized": return quantized("pack-quantized", sparsity("dense"));
        case "pack-quantized-dense": return quantized("pack-quantized", null);
        case "sparse-24-bitmask": return {quant_method: "compressed-tensors", config_groups: {}, ignore: [], version: "0.9.1", sparsity_config: sparsity("sparse-24-bitmask")};
        case "dense-2of4": return {quant_method: "compressed-tensors", config_groups: {}, ignore: [], sparsity_config: sparsity("dense")};
        case "dense": return undefined;
    }
}

/** tokenizer.json / tokenizer_config.json of the Llama 3 tokenizer, from llama.cpp's vocabulary-only GGUF of it. */
async function writeLlama3Tokenizer(directory: string): Promise<number> {
    const header = await readGgufHeader(llamaBpeVocabulary);
    const tokens = header.metadata.get("tokenizer.ggml.tokens")!.value as string[];
    const types = header.metadata.get("tokenizer.ggml.token_type")!.value as number[];
    const merges = header.metadata.get("tokenizer.ggml.merges")!.value as string[];
    if (header.metadata.get("tokenizer.ggml.tokens")!.type !== GgufValueType.ARRAY)
        throw new Error("no token list");
    const vocab: Record<string, number> = {};
    const added: unknown[] = [];
    tokens.forEach((token, id) => {
        if (types[id] === 3)
            added.push({id, content: token, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true});
        else
            vocab[token] = id;
    });
    const tokenizer = {
        version: "1.0", truncation: null, padding: null, added_tokens: added, normalizer: null,
        pre_tokenizer: {type: "Sequence", pretokenizers: [
            {type: "Split", pattern: {Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, behavior: "Isolated", invert: false},
            {type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false}
        ]},
        post_processor: {type: "Sequence", processors: [
            {type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true},
            {type: "TemplateProcessing", single: [{SpecialToken: {id: "<|begin_of_text|>", type_id: 0}}, {Sequence: {id: "A", type_id: 0}}],
                pair: [], special_tokens: {"<|begin_of_text|>": {id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"]}}}
        ]},
        decoder: {type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true},
        model: {type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false,
            byte_fallback: false, ignore_merges: true, vocab, merges: merges.map((merge) => merge.split(" "))}
    };
    await fs.writeFile(path.join(directory, "tokenizer.json"), JSON.stringify(tokenizer));
    await fs.writeFile(path.join(directory, "tokenizer_config.json"), JSON.stringify({
        bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>", clean_up_tokenization_spaces: true, model_max_length: 131072,
        tokenizer_class: "PreTrainedTokenizerFast",
        chat_template: "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
    }));
    await fs.writeFile(path.join(directory, "generation_config.json"), JSON.stringify({bos_token_id: 128000, eos_token_id: [128001, 128008, 128009]}));
    return tokens.length;
}

/** Embeddings, norms and lm_head as BF16, shared by every format (they are never compressed). */
function denseParts(shape: TinyCheckpointShape, vocabularySize: number): SafetensorsEntry[] {
    const next = randomSource(7);
    const matrix = (rows: number, columns: number, scale: number) => {
        const values = new Float32Array(rows * columns);
        for (let i = 0; i < values.length; i++)
            values[i] = (next() + next() + next() - 1.5) * 2 * scale;
        return bf16Bytes(values);
    };
    const norm = () => bf16Bytes(Array.from({length: shape.embedding}, () => 0.75 + next() / 2));
    const entries: SafetensorsEntry[] = [
        {name: "model.embed_tokens.weight", dtype: "BF16", shape: [vocabularySize, shape.embedding], data: matrix(vocabularySize, shape.embedding, 1)},
        {name: "lm_head.weight", dtype: "BF16", shape: [vocabularySize, shape.embedding], data: matrix(vocabularySize, shape.embedding, 1 / Math.sqrt(shape.embedding))},
        {name: "model.norm.weight", dtype: "BF16", shape: [shape.embedding], data: norm()}
    ];
    for (let layer = 0; layer < shape.layers; layer++)
        entries.push(
            {name: `model.layers.${layer}.input_layernorm.weight`, dtype: "BF16", shape: [shape.embedding], data: norm()},
            {name: `model.layers.${layer}.post_attention_layernorm.weight`, dtype: "BF16", shape: [shape.embedding], data: norm()}
        );
    return entries;
}

const writtenDenseShards = new Map<string, {file: string, names: string[]}>();

export interface WriteCheckpointOptions {
    readonly shape?: TinyCheckpointShape;
    /** Rewrites config.json before it is written (for unsupported-variant tests). */
    readonly editConfig?: (config: Record<string, unknown>) => void;
    /**
     * Multiplies the q_proj and k_proj scales (a power of two keeps them exact), so that attention is sharp and a wrong
     * rope layout changes the logits clearly (random small weights attend almost uniformly).
     */
    readonly attentionScaleMultiplier?: number;
    /** marlin-24 as compressed-tensors before 0.8.0 wrote it: scales not permuted, config version 0.7.1. */
    readonly legacyMarlinScales?: boolean;
    /** Extra tensors for the second shard (for unsupported-variant tests). */
    readonly extraTensors?: readonly SafetensorsEntry[];
}

/**
 * Writes a tiny Llama 3.1 checkpoint in `format` to `directory`: shard 1 holds the dense parts, shard 2 the linear
 * weights, listed by model.safetensors.index.json. Shard 1 (130 MB: the real Llama 3 vocabulary) is written once per
 * process and hard-linked into later checkpoints of the same shape.
 */
export async function writeCompressedTensorsCheckpoint(directory: string, format: CheckpointFormat, options: WriteCheckpointOptions = {}): Promise<WrittenCheckpoint> {
    const shape = options.shape ?? tinyCheckpointShape;
    await fs.mkdir(directory, {recursive: true});
    const vocabularySize = await writeLlama3Tokenizer(directory);
    const config: Record<string, unknown> = {
        architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: shape.embedding, intermediate_size: shape.feedForward,
        num_hidden_layers: shape.layers, num_attention_heads: shape.heads, num_key_value_heads: shape.kvHeads,
        max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000,
        rope_scaling: {factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192, rope_type: "llama3"},
        vocab_size: vocabularySize, tie_word_embeddings: false, torch_dtype: "bfloat16", bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
        attention_bias: false, mlp_bias: false, hidden_act: "silu"
    };
    const cached = writtenDenseShards.get(JSON.stringify(shape));
    if (cached != null && !await fs.access(cached.file).then(() => true, () => false))
        writtenDenseShards.delete(JSON.stringify(shape));
    const quantization = quantizationConfig(format);
    if (quantization != null)
        config[format === "dense-2of4" ? "compression_config" : "quantization_config"] = quantization;
    if (options.legacyMarlinScales === true)
        (config.quantization_config as Record<string, unknown>).version = "0.7.1";
    options.editConfig?.(config);
    await fs.writeFile(path.join(directory, "config.json"), JSON.stringify(config, null, 2));

    const weights = new Map<string, Int4Weight>();
    const linear: SafetensorsEntry[] = [];
    let seed = 100;
    for (let layer = 0; layer < shape.layers; layer++)
        for (const module of LINEAR_MODULES) {
            const prefix = `model.layers.${layer}.${module}`;
            const [rows, columns] = linearShape(shape, module);
            const weight = randomInt4Weight(rows, columns, seed++, format !== "pack-quantized-dense" && format !== "dense");
            if (module === "self_attn.q_proj" || module === "self_attn.k_proj")
                weight.scales.forEach((scale, i) => weight.scales[i] = scale * (options.attentionScaleMultiplier ?? 1));
            weights.set(prefix, weight);
            if (format === "marlin-24")
                linear.push(...marlin24(prefix, weight, {unpermutedScales: options.legacyMarlinScales === true}));
            else if (format === "pack-quantized" || format === "pack-quantized-dense")
                linear.push(...packQuantized(prefix, weight));
            else if (format === "sparse-24-bitmask")
                linear.push(...sparse24Bitmask(prefix, int4WeightValues(weight), rows, columns));
            else
                linear.push({name: `${prefix}.weight`, dtype: "BF16", shape: [rows, columns], data: bf16Bytes(int4WeightValues(weight))});
        }
    linear.push(...options.extraTensors ?? []);
    const shards: [string, SafetensorsEntry[]][] = [["model-00001-of-00002.safetensors", writtenDenseShards.has(JSON.stringify(shape)) ? [] : denseParts(shape, vocabularySize)], ["model-00002-of-00002.safetensors", linear]];
    const weightMap: Record<string, string> = {};
    const denseKey = JSON.stringify(shape);
    for (const [file, entries] of shards) {
        const target = path.join(directory, file);
        const written = writtenDenseShards.get(denseKey);
        const isDense = file === shards[0]![0];
        if (isDense && written != null)
            await fs.link(written.file, target).catch(() => fs.copyFile(written.file, target));
        else
            await writeSafetensors(target, entries);
        if (isDense && written == null)
            writtenDenseShards.set(denseKey, {file: target, names: entries.map((entry) => entry.name)});
        for (const name of isDense ? writtenDenseShards.get(denseKey)!.names : entries.map((entry) => entry.name))
            weightMap[name] = file;
    }
    await fs.writeFile(path.join(directory, "model.safetensors.index.json"), JSON.stringify({metadata: {total_size: 0}, weight_map: weightMap}));
    return {directory, weights, vocabularySize};
}
