import {readGgufHeader, readGgufTensorData, type GgufHeader, type GgufTensorInfo} from "../gguf/GgufReader.js";
import {gguf, type GgufValue} from "../gguf/GgufValue.js";
import {writeGguf, type GgufTensorToWrite} from "../gguf/GgufWriter.js";
import {float16BitsToFloat32, float32ToFloat16Bits} from "../gguf/float16.js";
import {GgmlType, ggmlTypeName} from "../gguf/ggmlTypes.js";
import {quantizeQ4_0Rows, Q4_0} from "./q4_0Quantizer.js";
import {quantizeQ8_0Rows, Q8_0} from "./q8_0Quantizer.js";
import {dequantizeSparse24Rows, fractionAlreadySparse24, quantizeSparse24Rows, Q4_S24} from "./sparse24Quantizer.js";

/** What the linear weights of an output file are stored as. */
export type WeightFormat = "q4_s24" | "q4_0" | "q8_0" | "f16" | "f32";

export interface ConvertedTensor {
    readonly name: string;
    readonly from: string;
    readonly to: string;
    /** For Q4_S24: share of groups of 4 that already had at most two nonzeros (1 = the weight was already 2:4). */
    readonly alreadySparse24?: number;
}

export interface ConversionReport {
    readonly output: string;
    readonly format: WeightFormat;
    readonly tensors: readonly ConvertedTensor[];
}

export interface ConvertModelOptions {
    readonly input: string;
    readonly output: string;
    /** Format of the linear weights in `output`. */
    readonly format: WeightFormat;
    /**
     * Q4_S24 only: also write a copy whose linear weights are the dequantized sparse weights in F32, the exact dense
     * equivalent of `output` (what an end-to-end logits test compares against).
     */
    readonly dequantizedReference?: string;
    /**
     * "q8_0" stores the token embedding (and a separate output matrix) as Q8_0. In a small model they are most of the
     * bytes: 32k tokens x 512 in F16 is 33 MB, three times the 2:4 sparse layers.
     */
    readonly embeddings?: "keep" | "q8_0";
    readonly log?: (message: string) => void;
}

const EMBEDDING_WEIGHT = /^(token_embd|output)\.weight$/;

const LINEAR_WEIGHT = /^blk\.\d+\.(attn_(q|k|v|qkv|output)|ffn_(gate|up|down))\.weight$/;
const FLOAT_TYPES = new Set<number>([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);
const FILE_TYPE: Record<WeightFormat, number> = {q4_s24: Q4_S24.llamaFileType, q4_0: Q4_0.llamaFileType, q8_0: Q8_0.llamaFileType, f16: 1, f32: 0};
const GGML_TYPE: Record<WeightFormat, number> = {q4_s24: Q4_S24.ggmlType, q4_0: Q4_0.ggmlType, q8_0: Q8_0.ggmlType, f16: GgmlType.F16, f32: GgmlType.F32};
const BLOCK_COLUMNS: Record<WeightFormat, number> = {q4_s24: Q4_S24.blockColumns, q4_0: Q4_0.blockColumns, q8_0: Q8_0.blockColumns, f16: 1, f32: 1};

/** A float tensor's values as float32 (F32, F16 and BF16 are read exactly). */
export function tensorToFloat32(tensor: GgufTensorInfo, bytes: Uint8Array): Float32Array {
    const count = tensor.byteLength / (tensor.type === GgmlType.F32 ? 4 : 2);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(count);
    if (tensor.type === GgmlType.F32) {
        for (let i = 0; i < count; i++)
            out[i] = view.getFloat32(4 * i, true);
    } else if (tensor.type === GgmlType.F16) {
        for (let i = 0; i < count; i++)
            out[i] = float16BitsToFloat32(view.getUint16(2 * i, true));
    } else if (tensor.type === GgmlType.BF16) {
        const word = new DataView(new ArrayBuffer(4));
        for (let i = 0; i < count; i++) {
            word.setUint32(0, view.getUint16(2 * i, true) << 16);
            out[i] = word.getFloat32(0);
        }
    } else {
        throw new Error(`tensor ${tensor.name} is ${ggmlTypeName(tensor.type)}; the converter reads F32, F16 or BF16 weights`);
    }
    return out;
}

function encodeFloats(values: Float32Array, format: "f16" | "f32"): Uint8Array {
    if (format === "f32")
        return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    const out = new Uint8Array(values.length * 2);
    const view = new DataView(out.buffer);
    for (let i = 0; i < values.length; i++)
        view.setUint16(2 * i, float32ToFloat16Bits(values[i]!), true);
    return out;
}

/** Whether a tensor is a linear (matmul) weight this format can hold. */
export function isConvertibleLinearWeight(tensor: GgufTensorInfo, format: WeightFormat): boolean {
    return LINEAR_WEIGHT.test(tensor.name) && tensor.dims.length === 2 && FLOAT_TYPES.has(tensor.type) &&
        tensor.dims[0]! % BLOCK_COLUMNS[format] === 0;
}

async function convertWeight(header: GgufHeader, tensor: GgufTensorInfo, format: WeightFormat, dequantize: boolean): Promise<{bytes: Uint8Array, alreadySparse24?: number}> {
    const values = tensorToFloat32(tensor, await readGgufTensorData(header, tensor));
    const columns = tensor.dims[0]!, rows = tensor.dims[1]!;
    switch (format) {
        case "q4_s24": {
            const bytes = quantizeSparse24Rows(values, rows, columns);
            const alreadySparse24 = fractionAlreadySparse24(values);
            return dequantize ? {bytes: encodeFloats(dequantizeSparse24Rows(bytes, rows, columns), "f32"), alreadySparse24} : {bytes, alreadySparse24};
        }
        case "q4_0": return {bytes: quantizeQ4_0Rows(values, rows, columns)};
        case "q8_0": return {bytes: quantizeQ8_0Rows(values, rows, columns)};
        default: return {bytes: encodeFloats(values, format)};
    }
}

async function writeConverted(header: GgufHeader, output: string, format: WeightFormat, dequantize: boolean,
    embeddings: "keep" | "q8_0", log: (message: string) => void): Promise<ConversionReport> {
    const converted: ConvertedTensor[] = [];
    const outputFormat = dequantize ? "f32" : format;
    if (!header.tensors.some((tensor) => isConvertibleLinearWeight(tensor, format)))
        throw new Error(`${header.filePath} has no linear weight that can be stored as ${format} ` +
            `(F32/F16/BF16 blk.N.attn_*/ffn_* matrices with rows of a multiple of ${BLOCK_COLUMNS[format]} columns)`);
    const tensors: GgufTensorToWrite[] = header.tensors.map((tensor) => {
        if (embeddings === "q8_0" && !dequantize && EMBEDDING_WEIGHT.test(tensor.name) && FLOAT_TYPES.has(tensor.type) &&
            tensor.dims.length === 2 && tensor.dims[0]! % Q8_0.blockColumns === 0)
            return {
                name: tensor.name, dims: tensor.dims, type: Q8_0.ggmlType,
                data: async () => quantizeQ8_0Rows(tensorToFloat32(tensor, await readGgufTensorData(header, tensor)), tensor.dims[1]!, tensor.dims[0]!)
            };
        if (!isConvertibleLinearWeight(tensor, format)) {
            if (LINEAR_WEIGHT.test(tensor.name))
                log(`keeping ${tensor.name} (${ggmlTypeName(tensor.type)} ${tensor.dims.join("x")}) as it is: not a float weight with rows of a multiple of ${BLOCK_COLUMNS[format]}`);
            return {name: tensor.name, dims: tensor.dims, type: tensor.type, data: () => readGgufTensorData(header, tensor)};
        }
        return {
            name: tensor.name,
            dims: tensor.dims,
            type: GGML_TYPE[outputFormat],
            data: async () => {
                const {bytes, alreadySparse24} = await convertWeight(header, tensor, format, dequantize);
                converted.push({name: tensor.name, from: ggmlTypeName(tensor.type), to: ggmlTypeName(GGML_TYPE[outputFormat]),
                    ...(alreadySparse24 != null ? {alreadySparse24} : {})});
                return bytes;
            }
        };
    });
    const metadata = new Map<string, GgufValue>(header.metadata);
    metadata.set("general.file_type", gguf.u32(FILE_TYPE[outputFormat]));
    if (outputFormat !== "f32" && outputFormat !== "f16")
        metadata.set("general.quantization_version", gguf.u32(2));
    else
        metadata.delete("general.quantization_version");
    await writeGguf(output, metadata, tensors, {alignment: header.alignment});
    log(`wrote ${output}: ${converted.length} linear weights as ${dequantize ? "dequantized q4_s24 (f32)" : format}`);
    return {output, format: outputFormat, tensors: converted};
}

/** Converts a GGUF with F32/F16/BF16 weights so its linear weights use `format`; other tensors are copied unchanged. */
export async function convertModel(options: ConvertModelOptions): Promise<ConversionReport[]> {
    const log = options.log ?? (() => undefined);
    const header = await readGgufHeader(options.input);
    const embeddings = options.embeddings ?? "keep";
    const reports = [await writeConverted(header, options.output, options.format, false, embeddings, log)];
    if (options.dequantizedReference != null) {
        if (options.format !== "q4_s24")
            throw new Error("a dequantized reference is only written for q4_s24");
        reports.push(await writeConverted(header, options.dequantizedReference, "q4_s24", true, embeddings, log));
    }
    return reports;
}
