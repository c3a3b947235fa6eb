import * as fs from "node:fs/promises";
import * as path from "node:path";
import {quantizeQ4_0Rows, Q4_0} from "../convert/q4_0Quantizer.js";
import {quantizeQ8_0Rows, Q8_0} from "../convert/q8_0Quantizer.js";
import {fractionAlreadySparse24, quantizeSparse24Rows, Q4_S24} from "../convert/sparse24Quantizer.js";
import {encodeFloat16} from "../gguf/float16.js";
import {GgmlType, ggmlTensorByteLength, ggmlTypeName} from "../gguf/ggmlTypes.js";
import type {GgufValue} from "../gguf/GgufValue.js";
import {writeGguf, type GgufTensorToWrite} from "../gguf/GgufWriter.js";
import {decodeMarlin24} from "./decodeMarlin24.js";
import {decodePackQuantized} from "./decodePackQuantized.js";
import {decodeSparse24Bitmask} from "./decodeSparse24Bitmask.js";
import {dequantizeQuantizedWeight, encodeQuantizedAsQ4_0, encodeQuantizedAsQ4S24, isQuantizedTwoFour, type ScaleRounding} from "./encodeQuantizedWeight.js";
import {llama3RopeFactors, llamaGgufMetadata, readLlamaHyperparameters, type LlamaHyperparameters} from "./llamaGgufMetadata.js";
import {llamaRopeRowOrder} from "./llamaRopeRowOrder.js";
import {reorderQuantizedRows, type QuantizedWeight} from "./QuantizedWeight.js";
import {isVersionBefore, readCompressionScheme, UnsupportedCheckpointError, type CompressionScheme} from "./readCompressionScheme.js";
import {readLlamaTokenizerMetadata} from "./readLlamaTokenizerMetadata.js";
import {decodeFloats, decodeIntegers, SafetensorsCheckpoint} from "./SafetensorsCheckpoint.js";

/** ggml types a linear weight can be written as. */
export const LINEAR_TYPES = ["q4_s24", "q4_0", "q8_0", "f16", "f32"] as const;
export type LinearType = typeof LINEAR_TYPES[number];
/** Types for the token embedding and output matrix. */
export const EMBEDDING_TYPES = ["f16", "f32", "q8_0", "q4_0"] as const;
export type EmbeddingType = typeof EMBEDDING_TYPES[number];

export interface ImportCheckpointOptions {
    /** Folder with config.json, tokenizer.json and the safetensors files. */
    readonly checkpoint: string;
    readonly output: string;
    /**
     * "auto" (default): 2:4 weights become Q4_S24 (exactly for int4 checkpoints), dense int4 weights Q4_0 (exactly), dense
     * float weights `denseLinear`. A type forces every linear weight to it (f32 of an int4 checkpoint is exact).
     */
    readonly linear?: "auto" | LinearType;
    /** With linear "auto": what float weights that are not 2:4 become (default q8_0). */
    readonly denseLinear?: Exclude<LinearType, "q4_s24">;
    /** token_embd and output (lm_head): default f16. */
    readonly embeddings?: EmbeddingType;
    /** Accept scales fp16 cannot hold exactly by rounding them (default: refuse). */
    readonly roundScales?: boolean;
    /** general.name (default: the checkpoint folder's name). */
    readonly name?: string;
    readonly signal?: AbortSignal;
    /** Called after each tensor with the fraction of source bytes done. */
    readonly onProgress?: (fraction: number, message: string) => void;
    readonly log?: (message: string) => void;
}

export interface ImportedTensor {
    readonly name: string;
    /** Where it came from: the checkpoint's module and format. */
    readonly source: string;
    readonly format: string;
    readonly type: string;
}

export interface ImportReport {
    readonly output: string;
    readonly tensors: readonly ImportedTensor[];
    readonly scheme: CompressionScheme;
    readonly roundedScales: number;
}

type SourceFormat = "dense" | "sparse-24-bitmask" | "marlin-24" | "pack-quantized";

interface ModuleSource {
    readonly prefix: string;
    readonly format: SourceFormat;
    readonly rows: number;
    readonly columns: number;
    /** Bytes of the checkpoint's tensors for this module (for progress). */
    readonly bytes: number;
}

const GGML_TYPE: Record<LinearType, number> = {q4_s24: Q4_S24.ggmlType, q4_0: GgmlType.Q4_0, q8_0: GgmlType.Q8_0, f16: GgmlType.F16, f32: GgmlType.F32};
/** Floats converted per step when a float tensor is streamed in row chunks. */
const CHUNK_VALUES = 1 << 24;
/** Rows read to decide whether a float or pack-quantized weight is 2:4 before converting it. */
const SAMPLE_ROWS = 64;

const LINEAR_MODULES: readonly (readonly [string, string])[] = [
    ["self_attn.q_proj", "attn_q"], ["self_attn.k_proj", "attn_k"], ["self_attn.v_proj", "attn_v"], ["self_attn.o_proj", "attn_output"],
    ["mlp.gate_proj", "ffn_gate"], ["mlp.up_proj", "ffn_up"], ["mlp.down_proj", "ffn_down"]
];

function throwIfAborted(signal: AbortSignal | undefined): void {
    if (signal?.aborted) {
        const error = new Error("import cancelled");
        error.name = "AbortError";
        throw error;
    }
}

/** Float rows as ggml bytes of `type`. */
function encodeFloatRows(values: Float32Array, rows: number, columns: number, type: LinearType): Uint8Array {
    switch (type) {
        case "q4_s24": return quantizeSparse24Rows(values, rows, columns);
        case "q4_0": return quantizeQ4_0Rows(values, rows, columns);
        case "q8_0": return quantizeQ8_0Rows(values, rows, columns);
        case "f16": return encodeFloat16(values);
        case "f32": return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    }
}

class CheckpointImporter {
    private readonly log: (message: string) => void;
    private readonly rounding: ScaleRounding;
    private readonly consumed = new Set<string>();
    public readonly imported: ImportedTensor[] = [];

    public constructor(private readonly checkpoint: SafetensorsCheckpoint, private readonly scheme: CompressionScheme,
        private readonly options: ImportCheckpointOptions) {
        this.log = options.log ?? (() => undefined);
        this.rounding = {allowRounding: options.roundScales === true, rounded: 0};
    }

    public get roundedScales(): number {
        return this.rounding.rounded;
    }

    /** Checkpoint tensors no GGUF tensor was made from. */
    public unusedTensors(): string[] {
        return [...this.checkpoint.tensors.keys()].filter((name) => !this.consumed.has(name));
    }

    private use(name: string): void {
        this.consumed.add(name);
    }

    /** How a module's weight is stored, from the tensors present (the config only names the format in general). */
    public async source(prefix: string): Promise<ModuleSource> {
        const has = (suffix: string) => this.checkpoint.has(`${prefix}.${suffix}`);
        const tensor = (suffix: string) => this.checkpoint.get(`${prefix}.${suffix}`);
        const bytesOf = (...suffixes: string[]) => suffixes.filter(has).reduce((sum, suffix) => sum + tensor(suffix).byteLength, 0);
        if (has("weight_zero_point"))
            throw new UnsupportedCheckpointError(`${prefix}: asymmetric quantization (weight_zero_point) is not supported`);
        if (has("weight_g_idx"))
            throw new UnsupportedCheckpointError(`${prefix}: activation reordering (weight_g_idx, actorder) is not supported`);
        if (has("weight_packed") && has("meta") && has("scale_packed")) {
            const packed = tensor("weight_packed");
            return {prefix, format: "marlin-24", rows: packed.shape[1]! / 2, columns: packed.shape[0]! * 32, bytes: bytesOf("weight_packed", "meta", "scale_packed")};
        }
        if (has("weight_packed") && has("weight_scale")) {
            const packed = tensor("weight_packed");
            let [rows, columns] = [packed.shape[0]!, packed.shape[1]! * 8];
            if (has("weight_shape")) {
                const shape = decodeIntegers(await this.checkpoint.read(`${prefix}.weight_shape`), tensor("weight_shape").dtype, `${prefix}.weight_shape`);
                [rows, columns] = [Number(shape[0]), Number(shape[1])];
            }
            if (packed.dtype !== "I32" || packed.shape[1]! * 8 !== columns)
                throw new UnsupportedCheckpointError(`${prefix}: weight_packed ${packed.dtype} [${packed.shape.join(", ")}] for a ${rows} x ${columns} weight is not 4-bit pack-quantized (8 values per int32)`);
            return {prefix, format: "pack-quantized", rows, columns, bytes: bytesOf("weight_packed", "weight_scale", "weight_shape")};
        }
        if (has("compressed") && has("bitmask")) {
            if (has("row_offsets"))
                throw new UnsupportedCheckpointError(`${prefix}: unstructured sparse-bitmask compression is not supported (only sparse-24-bitmask)`);
            const compressed = tensor("compressed");
            let [rows, columns] = [compressed.shape[0]!, tensor("bitmask").shape[1]! * 8];
            if (has("shape")) {
                const shape = decodeIntegers(await this.checkpoint.read(`${prefix}.shape`), tensor("shape").dtype, `${prefix}.shape`);
                [rows, columns] = [Number(shape[0]), Number(shape[1])];
            }
            return {prefix, format: "sparse-24-bitmask", rows, columns, bytes: bytesOf("compressed", "bitmask", "shape")};
        }
        if (has("weight")) {
            const weight = tensor("weight");
            if (weight.dtype.startsWith("F8_"))
                throw new UnsupportedCheckpointError(`${prefix}.weight is FP8 (${weight.dtype}); FP8 checkpoints are not supported`);
            if (has("weight_scale"))
                throw new UnsupportedCheckpointError(`${prefix}: ${weight.dtype} weights with weight_scale (int-quantized / naive-quantized) are not supported`);
            return {prefix, format: "dense", rows: weight.shape[0]!, columns: weight.shape[1] ?? 1, bytes: weight.byteLength};
        }
        throw new Error(`the checkpoint has no weight for ${prefix} (looked for weight, weight_packed, compressed)`);
    }

    private async readScales(prefix: string, suffix: string): Promise<Float32Array> {
        const name = `${prefix}.${suffix}`;
        this.use(name);
        return decodeFloats(await this.checkpoint.read(name), this.checkpoint.get(name).dtype, name);
    }

    /** The int4 values and scales of a quantized module. */
    public async readQuantized(source: ModuleSource): Promise<QuantizedWeight> {
        const {prefix, rows, columns} = source;
        const raw = async (suffix: string) => {
            this.use(`${prefix}.${suffix}`);
            return this.checkpoint.read(`${prefix}.${suffix}`);
        };
        if (source.format === "marlin-24") {
            const scaleTensor = this.checkpoint.get(`${prefix}.scale_packed`);
            if (scaleTensor.dtype !== "F16")
                throw new UnsupportedCheckpointError(`${prefix}.scale_packed is ${scaleTensor.dtype}; marlin-24 scales are fp16`);
            const packed = await raw("weight_packed"), meta = await raw("meta"), scales = await raw("scale_packed");
            return decodeMarlin24({
                name: prefix, rows, columns,
                weightPacked: new Int32Array(packed.buffer, packed.byteOffset, packed.length / 4),
                meta: new Int16Array(meta.buffer, meta.byteOffset, meta.length / 2),
                scalePacked: new Uint16Array(scales.buffer, scales.byteOffset, scales.length / 2),
                unpermutedScales: this.scheme.version != null && isVersionBefore(this.scheme.version, 0, 8)
            });
        }
        if (source.format === "pack-quantized") {
            const packed = await raw("weight_packed");
            if (this.checkpoint.has(`${prefix}.weight_shape`))
                this.use(`${prefix}.weight_shape`);
            return decodePackQuantized({
                name: prefix, rows, columns,
                weightPacked: new Int32Array(packed.buffer, packed.byteOffset, packed.length / 4),
                scales: await this.readScales(prefix, "weight_scale")
            });
        }
        throw new Error(`${prefix} is not quantized`);
    }

    /** Rows [first, first + count) of a float module (dense or sparse-24-bitmask) as float32. */
    public async readFloatRows(source: ModuleSource, first: number, count: number): Promise<Float32Array> {
        const {prefix, columns} = source;
        if (source.format === "dense") {
            const name = `${prefix}.weight`;
            this.use(name);
            return decodeFloats(await this.checkpoint.read(name, first, count), this.checkpoint.get(name).dtype, name);
        }
        if (source.format === "sparse-24-bitmask") {
            for (const suffix of ["compressed", "bitmask", "shape"])
                if (this.checkpoint.has(`${prefix}.${suffix}`))
                    this.use(`${prefix}.${suffix}`);
            const compressedName = `${prefix}.compressed`;
            return decodeSparse24Bitmask({
                name: prefix, rows: count, columns,
                compressed: decodeFloats(await this.checkpoint.read(compressedName, first, count), this.checkpoint.get(compressedName).dtype, compressedName),
                bitmask: await this.checkpoint.read(`${prefix}.bitmask`, first, count)
            });
        }
        return dequantizeQuantizedWeight(await this.readQuantized(source)).subarray(first * columns, (first + count) * columns);
    }

    /** Whether a module's weight looks 2:4 sparse (decided on its first rows, before the output types are fixed). */
    public async looksTwoFour(source: ModuleSource): Promise<boolean> {
        if (source.format === "marlin-24" || source.format === "sparse-24-bitmask")
            return true;
        if (source.format === "pack-quantized") {
            const rows = Math.min(SAMPLE_ROWS, source.rows);
            const packed = await this.checkpoint.read(`${source.prefix}.weight_packed`, 0, rows);
            return isQuantizedTwoFour(decodePackQuantized({
                name: source.prefix, rows, columns: source.columns, scales: new Float32Array(rows),
                weightPacked: new Int32Array(packed.buffer, packed.byteOffset, packed.length / 4)
            }));
        }
        return fractionAlreadySparse24(await this.readFloatRows(source, 0, Math.min(SAMPLE_ROWS, source.rows))) === 1;
    }

    /** A module's GGUF bytes as `type`, with its rows in `order` when given (q/k rope layout). */
    public async convert(source: ModuleSource, type: LinearType, ggufName: string, order?: Int32Array, orderBlock = 1): Promise<Uint8Array> {
        const {rows, columns, prefix} = source;
        if (source.format === "marlin-24" || source.format === "pack-quantized") {
            let weight = await this.readQuantized(source);
            if (order != null)
                weight = reorderQuantizedRows(weight, order);
            if (type === "q4_s24")
                return encodeQuantizedAsQ4S24(weight, prefix, this.rounding);
            if (type === "q4_0")
                return encodeQuantizedAsQ4_0(weight, prefix, this.rounding);
            return encodeFloatRows(dequantizeQuantizedWeight(weight), rows, columns, type);
        }
        const out = new Uint8Array(ggmlTensorByteLength(GGML_TYPE[type], [columns, rows]));
        const rowBytes = out.length / rows;
        // Chunks of whole heads when reordering: the rope order only moves rows within a head.
        let chunkRows = Math.max(1, Math.floor(CHUNK_VALUES / columns));
        chunkRows = Math.max(orderBlock, chunkRows - (chunkRows % orderBlock));
        let notTwoFour = 0;
        for (let first = 0; first < rows; first += chunkRows) {
            throwIfAborted(this.options.signal);
            const count = Math.min(chunkRows, rows - first);
            let values = await this.readFloatRows(source, first, count);
            if (order != null) {
                const reordered = new Float32Array(values.length);
                for (let i = 0; i < count; i++) {
                    const from = order[first + i]! - first;
                    reordered.set(values.subarray(from * columns, (from + 1) * columns), i * columns);
                }
                values = reordered;
            }
            if (type === "q4_s24")
                notTwoFour += (1 - fractionAlreadySparse24(values)) * values.length / 4;
            out.set(encodeFloatRows(values, count, columns, type), first * rowBytes);
        }
        if (notTwoFour > 0)
            this.log(`warning: ${ggufName}: ${Math.round(notTwoFour)} groups of 4 had more than two nonzeros and were pruned by magnitude`);
        return out;
    }

    public record(tensor: ImportedTensor): void {
        this.imported.push(tensor);
    }
}

async function readConfig(directory: string): Promise<Record<string, unknown>> {
    const file = path.join(directory, "config.json");
    try {
        return JSON.parse(await fs.readFile(file, "utf8")) as Record<string, unknown>;
    } catch (error) {
        throw new Error(`cannot read ${file}: ${(error as Error).message}`);
    }
}

/**
 * Imports a Hugging Face Llama checkpoint in compressed-tensors format (marlin-24, pack-quantized, sparse-24-bitmask)
 * or plain BF16/F16 into a GGUF llama.cpp runs, with 2:4 weights as Q4_S24. Reads one tensor (or row chunk) at a time.
 */
export async function importCheckpoint(options: ImportCheckpointOptions): Promise<ImportReport> {
    const log = options.log ?? (() => undefined);
    const config = await readConfig(options.checkpoint);
    const hyper = readLlamaHyperparameters(config);
    const scheme = readCompressionScheme(config);
    const tokenizer = await readLlamaTokenizerMetadata(options.checkpoint, config);
    const checkpoint = await SafetensorsCheckpoint.open(options.checkpoint);
    try {
        const importer = new CheckpointImporter(checkpoint, scheme, options);
        const plan = await planTensors(importer, hyper, options, log);
        const totalBytes = plan.reduce((sum, entry) => sum + entry.sourceBytes, 0) || 1;
        let doneBytes = 0;
        const tensors: GgufTensorToWrite[] = plan.map((entry) => ({
            name: entry.name, dims: entry.dims, type: entry.type,
            data: async () => {
                throwIfAborted(options.signal);
                const bytes = await entry.produce();
                doneBytes += entry.sourceBytes;
                options.onProgress?.(doneBytes / totalBytes, entry.name);
                return bytes;
            }
        }));
        const linearTypes = new Set(importer.imported.filter((t) => /^blk\.\d+\.(attn|ffn)_(q|k|v|output|gate|up|down)\./.test(t.name)).map((t) => t.type));
        const fileType = linearTypes.has("Q4_S24") ? Q4_S24.llamaFileType : linearTypes.has("Q4_0") ? Q4_0.llamaFileType
            : linearTypes.has("Q8_0") ? Q8_0.llamaFileType : linearTypes.has("F16") ? 1 : 0;
        const metadata = new Map<string, GgufValue>([
            ...llamaGgufMetadata(hyper, options.name ?? path.basename(path.resolve(options.checkpoint)), fileType),
            ...tokenizer
        ]);
        await writeGguf(options.output, metadata, tensors);
        const unused = importer.unusedTensors();
        if (unused.length > 0)
            log(`not imported (not part of a Llama model): ${unused.slice(0, 10).join(", ")}${unused.length > 10 ? ` and ${unused.length - 10} more` : ""}`);
        if (importer.roundedScales > 0)
            log(`warning: ${importer.roundedScales} scales were rounded to fp16 (--round-scales)`);
        log(`wrote ${options.output}: ${plan.length} tensors`);
        return {output: options.output, tensors: importer.imported, scheme, roundedScales: importer.roundedScales};
    } finally {
        await checkpoint.close();
    }
}

interface PlannedTensor {
    readonly name: string;
    readonly dims: readonly number[];
    readonly type: number;
    readonly sourceBytes: number;
    produce(): Promise<Uint8Array>;
}

/** Every GGUF tensor with its type, decided before any is written (the GGUF header comes first). */
async function planTensors(importer: CheckpointImporter, hyper: LlamaHyperparameters, options: ImportCheckpointOptions,
    log: (message: string) => void): Promise<PlannedTensor[]> {
    const plan: PlannedTensor[] = [];
    const embeddingType = options.embeddings ?? "f16";
    const linear = options.linear ?? "auto";
    const denseLinear = options.denseLinear ?? "q8_0";

    const addMatrix = async (name: string, prefix: string, expected: readonly [number, number], chooseType: (source: ModuleSource) => Promise<LinearType>,
        order?: {order: Int32Array, block: number}) => {
        const source = await importer.source(prefix);
        if (source.rows !== expected[0] || source.columns !== expected[1])
            throw new Error(`${prefix} is ${source.rows} x ${source.columns}; config.json implies ${expected[0]} x ${expected[1]}`);
        const type = await chooseType(source);
        importer.record({name, source: prefix, format: source.format, type: ggmlTypeName(GGML_TYPE[type])});
        plan.push({
            name, dims: [source.columns, source.rows], type: GGML_TYPE[type], sourceBytes: source.bytes,
            produce: () => importer.convert(source, type, name, order?.order, order?.block)
        });
    };
    const addNorm = async (name: string, tensorName: string) => {
        const source = await importer.source(tensorName.replace(/\.weight$/, ""));
        plan.push({
            name, dims: [source.rows], type: GgmlType.F32, sourceBytes: source.bytes,
            produce: async () => {
                const values = await importer.readFloatRows(source, 0, source.rows);
                return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
            }
        });
        importer.record({name, source: tensorName, format: source.format, type: "F32"});
    };
    const embeddingChoice = async (source: ModuleSource): Promise<LinearType> => {
        const blockColumns = embeddingType === "q8_0" ? Q8_0.blockColumns : embeddingType === "q4_0" ? Q4_0.blockColumns : 1;
        if (source.columns % blockColumns !== 0) {
            log(`${source.prefix}: rows of ${source.columns} columns cannot be ${embeddingType}; writing f16`);
            return "f16";
        }
        return embeddingType;
    };
    const linearChoice = async (source: ModuleSource): Promise<LinearType> => {
        if (linear !== "auto")
            return linear;
        const quantized = source.format === "marlin-24" || source.format === "pack-quantized";
        const twoFour = source.columns % Q4_S24.blockColumns === 0 && await importer.looksTwoFour(source);
        if (twoFour)
            return "q4_s24";
        if (quantized) {
            if (source.columns % Q4_0.blockColumns !== 0)
                throw new Error(`${source.prefix}: ${source.columns} columns fit neither Q4_S24 (256) nor Q4_0 (32)`);
            return "q4_0";
        }
        return denseLinear;
    };

    const {embedding, feedForward, vocabularySize, headDim} = hyper;
    const linearShape: Record<string, readonly [number, number]> = {
        "self_attn.q_proj": [hyper.heads * headDim, embedding], "self_attn.k_proj": [hyper.kvHeads * headDim, embedding],
        "self_attn.v_proj": [hyper.kvHeads * headDim, embedding], "self_attn.o_proj": [embedding, hyper.heads * headDim],
        "mlp.gate_proj": [feedForward, embedding], "mlp.up_proj": [feedForward, embedding], "mlp.down_proj": [embedding, feedForward]
    };
    await addMatrix("token_embd.weight", "model.embed_tokens", [vocabularySize, embedding], embeddingChoice);
    for (let layer = 0; layer < hyper.layers; layer++) {
        const hf = `model.layers.${layer}`;
        await addNorm(`blk.${layer}.attn_norm.weight`, `${hf}.input_layernorm.weight`);
        for (const [module, ggufModule] of LINEAR_MODULES) {
            const heads = module === "self_attn.q_proj" ? hyper.heads : module === "self_attn.k_proj" ? hyper.kvHeads : undefined;
            const order = heads != null ? {order: llamaRopeRowOrder(heads * hyper.headDim, heads), block: hyper.headDim} : undefined;
            await addMatrix(`blk.${layer}.${ggufModule}.weight`, `${hf}.${module}`, linearShape[module]!, linearChoice, order);
        }
        await addNorm(`blk.${layer}.ffn_norm.weight`, `${hf}.post_attention_layernorm.weight`);
    }
    await addNorm("output_norm.weight", "model.norm.weight");
    if (!hyper.tiedEmbeddings)
        await addMatrix("output.weight", "lm_head", [vocabularySize, embedding], embeddingChoice);
    if (hyper.llama3RopeScaling != null) {
        const factors = llama3RopeFactors(hyper);
        plan.push({name: "rope_freqs.weight", dims: [factors.length], type: GgmlType.F32, sourceBytes: 0, produce: async () => new Uint8Array(factors.buffer)});
        importer.record({name: "rope_freqs.weight", source: "config.json rope_scaling (llama3)", format: "computed", type: "F32"});
    }
    return plan;
}
