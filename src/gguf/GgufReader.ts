import * as fs from "node:fs/promises";
import {GgufFormatError} from "./GgufFormatError.js";
import {GgufScalar, GgufValue, GgufValueType} from "./GgufValue.js";
import {getGgmlTypeGeometry, ggmlTensorByteLength, ggmlTypeName} from "./ggmlTypes.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

export interface GgufTensorInfo {
    readonly name: string;
    /** ggml order: dims[0] is the row length (innermost). */
    readonly dims: readonly number[];
    readonly type: number;
    /** Absolute byte offset of the tensor's data in the file. */
    readonly fileOffset: number;
    readonly byteLength: number;
}

export interface GgufHeader {
    readonly filePath: string;
    readonly version: number;
    readonly metadata: ReadonlyMap<string, GgufValue>;
    readonly tensors: readonly GgufTensorInfo[];
    readonly alignment: number;
    readonly dataOffset: number;
    readonly fileSize: number;
}

const MAX_TENSORS = 1 << 20;
const MAX_KV = 1 << 20;
const MAX_DIMS = 4;

class NeedMoreBytes extends Error {}

/** Reads little-endian GGUF primitives from a buffer holding the start of the file. */
class HeaderCursor {
    public offset = 0;
    private readonly view: DataView;

    public constructor(private readonly bytes: Buffer, private readonly isWholeFile: boolean, private readonly fail: (detail: string) => never) {
        this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }

    private need(count: number): number {
        const at = this.offset;
        if (at + count > this.bytes.length) {
            if (this.isWholeFile)
                this.fail(`truncated header (needs ${at + count} bytes, file has ${this.bytes.length})`);
            throw new NeedMoreBytes();
        }
        this.offset += count;
        return at;
    }

    public u8() { return this.view.getUint8(this.need(1)); }
    public i8() { return this.view.getInt8(this.need(1)); }
    public u16() { return this.view.getUint16(this.need(2), true); }
    public i16() { return this.view.getInt16(this.need(2), true); }
    public u32() { return this.view.getUint32(this.need(4), true); }
    public i32() { return this.view.getInt32(this.need(4), true); }
    public f32() { return this.view.getFloat32(this.need(4), true); }
    public f64() { return this.view.getFloat64(this.need(8), true); }
    public u64() { return this.view.getBigUint64(this.need(8), true); }
    public i64() { return this.view.getBigInt64(this.need(8), true); }

    /** A u64 that must fit a safe JS number and stay below `limit`. */
    public count(what: string, limit: number): number {
        const value = this.u64();
        if (value > BigInt(limit))
            this.fail(`${what} is ${value}, more than ${limit}`);
        return Number(value);
    }

    public string(): string {
        const length = this.count("string length", this.isWholeFile ? this.bytes.length : Number.MAX_SAFE_INTEGER);
        const at = this.need(length);
        return this.bytes.toString("utf8", at, at + length);
    }
}

function readScalar(cursor: HeaderCursor, type: GgufValueType, fail: (detail: string) => never): GgufScalar {
    switch (type) {
        case GgufValueType.UINT8: return cursor.u8();
        case GgufValueType.INT8: return cursor.i8();
        case GgufValueType.UINT16: return cursor.u16();
        case GgufValueType.INT16: return cursor.i16();
        case GgufValueType.UINT32: return cursor.u32();
        case GgufValueType.INT32: return cursor.i32();
        case GgufValueType.FLOAT32: return cursor.f32();
        case GgufValueType.FLOAT64: return cursor.f64();
        case GgufValueType.UINT64: return cursor.u64();
        case GgufValueType.INT64: return cursor.i64();
        case GgufValueType.BOOL: return cursor.u8() !== 0;
        case GgufValueType.STRING: return cursor.string();
        default: return fail(`unknown metadata value type ${type}`);
    }
}

function readValue(cursor: HeaderCursor, fail: (detail: string) => never): GgufValue {
    const type = cursor.u32() as GgufValueType;
    if (type !== GgufValueType.ARRAY)
        return {type, value: readScalar(cursor, type, fail)} as GgufValue;
    const elementType = cursor.u32() as GgufValueType;
    if (elementType === GgufValueType.ARRAY)
        fail("nested metadata arrays are not supported");
    const length = cursor.count("array length", 1 << 28);
    const value: GgufScalar[] = new Array(length);
    for (let i = 0; i < length; i++)
        value[i] = readScalar(cursor, elementType, fail);
    return {type, elementType, value};
}

function parseHeader(filePath: string, bytes: Buffer, fileSize: number): GgufHeader {
    const fail = (detail: string): never => { throw new GgufFormatError(filePath, detail); };
    const cursor = new HeaderCursor(bytes, bytes.length >= fileSize, fail);
    if (fileSize < 24)
        fail(`file is only ${fileSize} bytes`);
    if (cursor.u32() !== GGUF_MAGIC)
        fail("wrong magic (expected \"GGUF\")");
    const version = cursor.u32();
    if (version !== 2 && version !== 3)
        fail(`unsupported GGUF version ${version}`);
    const tensorCount = cursor.count("tensor count", MAX_TENSORS);
    const kvCount = cursor.count("metadata count", MAX_KV);

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
        const key = cursor.string();
        metadata.set(key, readValue(cursor, fail));
    }
    const alignmentValue = metadata.get("general.alignment");
    const alignment = alignmentValue != null && alignmentValue.type !== GgufValueType.ARRAY ? Number(alignmentValue.value) : GGUF_DEFAULT_ALIGNMENT;
    if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0)
        fail(`general.alignment ${alignment} is not a power of two`);

    const raw: {name: string, dims: number[], type: number, relativeOffset: number}[] = [];
    for (let i = 0; i < tensorCount; i++) {
        const name = cursor.string();
        const nDims = cursor.u32();
        if (nDims < 1 || nDims > MAX_DIMS)
            fail(`tensor ${name} has ${nDims} dimensions`);
        const dims: number[] = [];
        for (let d = 0; d < nDims; d++) {
            const dim = cursor.count(`dimension ${d} of tensor ${name}`, 2 ** 40);
            if (dim === 0)
                fail(`tensor ${name} has a zero dimension`);
            dims.push(dim);
        }
        const type = cursor.u32();
        const relativeOffset = cursor.count(`offset of tensor ${name}`, Number.MAX_SAFE_INTEGER);
        raw.push({name, dims, type, relativeOffset});
    }
    const dataOffset = Math.ceil(cursor.offset / alignment) * alignment;
    const tensors = raw.map(({name, dims, type, relativeOffset}): GgufTensorInfo => {
        if (getGgmlTypeGeometry(type) == null)
            fail(`tensor ${name} has unknown ggml type ${type}`);
        let byteLength = 0;
        try {
            byteLength = ggmlTensorByteLength(type, dims);
        } catch (err) {
            fail(`tensor ${name} (${ggmlTypeName(type)}): ${(err as Error).message}`);
        }
        if (relativeOffset % alignment !== 0)
            fail(`tensor ${name} data offset ${relativeOffset} is not aligned to ${alignment}`);
        const fileOffset = dataOffset + relativeOffset;
        if (fileOffset + byteLength > fileSize)
            fail(`tensor ${name} data (${byteLength} bytes at ${fileOffset}) runs past the end of the file (${fileSize} bytes)`);
        return {name, dims, type, fileOffset, byteLength};
    });
    return {filePath, version, metadata, tensors, alignment, dataOffset, fileSize};
}

/** Reads a GGUF file's header (metadata and tensor table) without reading tensor data. */
export async function readGgufHeader(filePath: string): Promise<GgufHeader> {
    const handle = await fs.open(filePath, "r");
    try {
        const {size} = await handle.stat();
        for (let chunk = Math.min(size, 1 << 20); ; chunk = Math.min(size, chunk * 4)) {
            const bytes = Buffer.alloc(chunk);
            await handle.read(bytes, 0, chunk, 0);
            try {
                return parseHeader(filePath, bytes, size);
            } catch (err) {
                if (!(err instanceof NeedMoreBytes) || chunk >= size)
                    throw err;
            }
        }
    } finally {
        await handle.close();
    }
}

/** Reads one tensor's raw bytes. */
export async function readGgufTensorData(header: GgufHeader, tensor: GgufTensorInfo): Promise<Buffer> {
    const handle = await fs.open(header.filePath, "r");
    try {
        const bytes = Buffer.alloc(tensor.byteLength);
        const {bytesRead} = await handle.read(bytes, 0, tensor.byteLength, tensor.fileOffset);
        if (bytesRead !== tensor.byteLength)
            throw new GgufFormatError(header.filePath, `tensor ${tensor.name} is truncated`);
        return bytes;
    } finally {
        await handle.close();
    }
}
