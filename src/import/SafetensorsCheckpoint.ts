import * as fs from "node:fs/promises";
import * as path from "node:path";
import {float16BitsToFloat32} from "../gguf/float16.js";

/** Element types of the safetensors format, with their byte sizes. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
    BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
    I16: 2, U16: 2, F16: 2, BF16: 2,
    I32: 4, U32: 4, F32: 4,
    I64: 8, U64: 8, F64: 8
};

export interface SafetensorsTensorInfo {
    readonly name: string;
    readonly dtype: string;
    readonly shape: readonly number[];
    readonly file: string;
    /** Absolute offset of the tensor's first byte in `file`. */
    readonly fileOffset: number;
    readonly byteLength: number;
}

/** Longest header we accept: the 8B checkpoint's is about 40 KB; this only guards against a corrupt length. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

async function readHeader(file: string): Promise<SafetensorsTensorInfo[]> {
    const handle = await fs.open(file, "r");
    try {
        const {size} = await handle.stat();
        const lengthBytes = Buffer.alloc(8);
        if ((await handle.read(lengthBytes, 0, 8, 0)).bytesRead !== 8)
            throw new Error(`${file} is not a safetensors file (shorter than 8 bytes)`);
        const headerLength = Number(lengthBytes.readBigUInt64LE(0));
        if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > size)
            throw new Error(`${file} is not a safetensors file (header length ${headerLength}, file size ${size})`);
        const headerBytes = Buffer.alloc(headerLength);
        await handle.read(headerBytes, 0, headerLength, 8);
        let header: Record<string, unknown>;
        try {
            header = JSON.parse(headerBytes.toString("utf8")) as Record<string, unknown>;
        } catch (error) {
            throw new Error(`${file}: the safetensors header is not JSON (${(error as Error).message})`);
        }
        const dataStart = 8 + headerLength;
        const tensors: SafetensorsTensorInfo[] = [];
        for (const [name, entry] of Object.entries(header)) {
            if (name === "__metadata__")
                continue;
            const {dtype, shape, data_offsets: offsets} = entry as {dtype?: unknown, shape?: unknown, data_offsets?: unknown};
            if (typeof dtype !== "string" || SAFETENSORS_DTYPE_BYTES[dtype] == null || !Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2)
                throw new Error(`${file}: tensor ${name} has an invalid header entry ${JSON.stringify(entry)}`);
            const [begin, end] = offsets as [number, number];
            const elements = (shape as number[]).reduce((a, b) => a * b, 1);
            if (end - begin !== elements * SAFETENSORS_DTYPE_BYTES[dtype]! || dataStart + end > size)
                throw new Error(`${file}: tensor ${name} (${dtype} [${shape.join(", ")}]) has data offsets [${begin}, ${end}] that do not fit its shape or the file`);
            tensors.push({name, dtype, shape: shape as number[], file, fileOffset: dataStart + begin, byteLength: end - begin});
        }
        return tensors;
    } finally {
        await handle.close();
    }
}

/**
 * The tensors of a Hugging Face safetensors checkpoint (one file, or shards listed by model.safetensors.index.json).
 * Only headers are read when opened; tensor bytes are read on request, one tensor (or a range of its rows) at a time.
 */
export class SafetensorsCheckpoint {
    private readonly handles = new Map<string, Promise<fs.FileHandle>>();

    private constructor(public readonly directory: string, public readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>) {}

    public static async open(directory: string): Promise<SafetensorsCheckpoint> {
        const entries = await fs.readdir(directory);
        let files: string[];
        const indexFile = entries.find((name) => name.endsWith(".safetensors.index.json"));
        if (indexFile != null) {
            const index = JSON.parse(await fs.readFile(path.join(directory, indexFile), "utf8")) as {weight_map?: Record<string, string>};
            if (index.weight_map == null)
                throw new Error(`${indexFile} has no weight_map`);
            files = [...new Set(Object.values(index.weight_map))];
        } else {
            files = entries.filter((name) => name.endsWith(".safetensors")).sort();
        }
        if (files.length === 0)
            throw new Error(`${directory} has no .safetensors files`);
        const tensors = new Map<string, SafetensorsTensorInfo>();
        for (const file of files)
            for (const tensor of await readHeader(path.join(directory, file))) {
                if (tensors.has(tensor.name))
                    throw new Error(`tensor ${tensor.name} is in both ${path.basename(tensors.get(tensor.name)!.file)} and ${file}`);
                tensors.set(tensor.name, tensor);
            }
        return new SafetensorsCheckpoint(directory, tensors);
    }

    public get(name: string): SafetensorsTensorInfo {
        const tensor = this.tensors.get(name);
        if (tensor == null)
            throw new Error(`the checkpoint has no tensor ${name}`);
        return tensor;
    }

    public has(name: string): boolean {
        return this.tensors.has(name);
    }

    /** The bytes of a tensor, or of `rowCount` rows (along the first dimension) from `firstRow`. */
    public async read(name: string, firstRow = 0, rowCount?: number): Promise<Uint8Array> {
        const tensor = this.get(name);
        const rows = tensor.shape[0] ?? 1;
        const rowBytes = tensor.shape.length === 0 ? tensor.byteLength : tensor.byteLength / Math.max(rows, 1);
        const count = rowCount ?? rows - firstRow;
        if (firstRow < 0 || count < 0 || firstRow + count > Math.max(rows, 1))
            throw new Error(`rows [${firstRow}, ${firstRow + count}) are outside tensor ${name} (${rows} rows)`);
        let handle = this.handles.get(tensor.file);
        if (handle == null) {
            handle = fs.open(tensor.file, "r");
            this.handles.set(tensor.file, handle);
        }
        // 8-byte aligned storage, so typed views of any element size can be made on it.
        const bytes = new Uint8Array(new ArrayBuffer(Math.ceil((count * rowBytes) / 8) * 8), 0, count * rowBytes);
        let done = 0;
        while (done < bytes.length) {
            const {bytesRead} = await (await handle).read(bytes, done, Math.min(bytes.length - done, 1 << 30), tensor.fileOffset + firstRow * rowBytes + done);
            if (bytesRead === 0)
                throw new Error(`${tensor.file} ended inside tensor ${name}`);
            done += bytesRead;
        }
        return bytes;
    }

    public async close(): Promise<void> {
        const handles = [...this.handles.values()];
        this.handles.clear();
        await Promise.all(handles.map(async (handle) => (await handle).close()));
    }
}

let float16Table: Float32Array | undefined;

/** Float32 values of F32, F16 or BF16 little-endian bytes (all exact). */
export function decodeFloats(bytes: Uint8Array, dtype: string, what: string): Float32Array {
    if (dtype === "F32")
        return new Float32Array(bytes.slice().buffer, 0, bytes.length / 4);
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
    const out = new Float32Array(halves.length);
    if (dtype === "BF16") {
        const bits = new Uint32Array(out.buffer);
        for (let i = 0; i < halves.length; i++)
            bits[i] = halves[i]! << 16;
        return out;
    }
    if (dtype === "F16") {
        if (float16Table == null) {
            float16Table = new Float32Array(65536);
            for (let i = 0; i < 65536; i++)
                float16Table[i] = float16BitsToFloat32(i);
        }
        for (let i = 0; i < halves.length; i++)
            out[i] = float16Table[halves[i]!]!;
        return out;
    }
    if (dtype.startsWith("F8_"))
        throw new Error(`${what} is FP8 (${dtype}); FP8 checkpoints are not supported (only int4 W4A16 and BF16/F16 weights)`);
    throw new Error(`${what} is ${dtype}; expected F32, F16 or BF16`);
}

/** Integer values of a tensor's bytes (I8/U8/I16/I32/I64), as numbers. */
export function decodeIntegers(bytes: Uint8Array, dtype: string, what: string): Int32Array | Uint8Array | Int16Array | Int8Array | number[] {
    switch (dtype) {
        case "U8": return bytes;
        case "I8": return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
        case "I16": return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
        case "I32": return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
        case "I64": return [...new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8)].map(Number);
        default: throw new Error(`${what} is ${dtype}; expected an integer tensor`);
    }
}
