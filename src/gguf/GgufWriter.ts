import * as fs from "node:fs/promises";
import {GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC} from "./GgufReader.js";
import {GgufScalar, GgufValue, GgufValueType} from "./GgufValue.js";
import {ggmlTensorByteLength, ggmlTypeName} from "./ggmlTypes.js";

export interface GgufTensorToWrite {
    readonly name: string;
    /** ggml order: dims[0] is the row length (innermost). */
    readonly dims: readonly number[];
    readonly type: number;
    /** The tensor's bytes, or a function producing them when it is written (so a converter streams one tensor at a time). */
    readonly data: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
}

/** Grows a byte buffer while encoding GGUF primitives. */
class ByteSink {
    private bytes = Buffer.alloc(1 << 16);
    public length = 0;

    private reserve(count: number): number {
        if (this.length + count > this.bytes.length) {
            const grown = Buffer.alloc(Math.max(this.bytes.length * 2, this.length + count));
            this.bytes.copy(grown, 0, 0, this.length);
            this.bytes = grown;
        }
        const at = this.length;
        this.length += count;
        return at;
    }

    public u8(v: number) { const at = this.reserve(1); this.bytes.writeUInt8(v, at); }
    public i8(v: number) { const at = this.reserve(1); this.bytes.writeInt8(v, at); }
    public u16(v: number) { const at = this.reserve(2); this.bytes.writeUInt16LE(v, at); }
    public i16(v: number) { const at = this.reserve(2); this.bytes.writeInt16LE(v, at); }
    public u32(v: number) { const at = this.reserve(4); this.bytes.writeUInt32LE(v, at); }
    public i32(v: number) { const at = this.reserve(4); this.bytes.writeInt32LE(v, at); }
    public f32(v: number) { const at = this.reserve(4); this.bytes.writeFloatLE(v, at); }
    public f64(v: number) { const at = this.reserve(8); this.bytes.writeDoubleLE(v, at); }
    public u64(v: number | bigint) { const at = this.reserve(8); this.bytes.writeBigUInt64LE(BigInt(v), at); }
    public i64(v: number | bigint) { const at = this.reserve(8); this.bytes.writeBigInt64LE(BigInt(v), at); }
    public string(v: string) {
        const encoded = Buffer.from(v, "utf8");
        this.u64(encoded.length);
        const at = this.reserve(encoded.length); // reserve first: it may replace the buffer
        encoded.copy(this.bytes, at);
    }
    public padTo(alignment: number) {
        const padded = Math.ceil(this.length / alignment) * alignment;
        this.reserve(padded - this.length);
    }
    public toBuffer(): Buffer { return this.bytes.subarray(0, this.length); }
}

function writeScalar(sink: ByteSink, type: GgufValueType, value: GgufScalar): void {
    switch (type) {
        case GgufValueType.UINT8: return sink.u8(Number(value));
        case GgufValueType.INT8: return sink.i8(Number(value));
        case GgufValueType.UINT16: return sink.u16(Number(value));
        case GgufValueType.INT16: return sink.i16(Number(value));
        case GgufValueType.UINT32: return sink.u32(Number(value));
        case GgufValueType.INT32: return sink.i32(Number(value));
        case GgufValueType.FLOAT32: return sink.f32(Number(value));
        case GgufValueType.FLOAT64: return sink.f64(Number(value));
        case GgufValueType.UINT64: return sink.u64(value as number | bigint);
        case GgufValueType.INT64: return sink.i64(value as number | bigint);
        case GgufValueType.BOOL: return sink.u8(value ? 1 : 0);
        case GgufValueType.STRING: return sink.string(String(value));
        default: throw new Error(`cannot write metadata value type ${type}`);
    }
}

function writeValue(sink: ByteSink, value: GgufValue): void {
    sink.u32(value.type);
    if (value.type !== GgufValueType.ARRAY)
        return writeScalar(sink, value.type, value.value);
    sink.u32(value.elementType);
    sink.u64(value.value.length);
    for (const element of value.value)
        writeScalar(sink, value.elementType, element);
}

/**
 * Writes a GGUF v3 file. Tensor data is produced one tensor at a time, and the file is written under a temporary
 * name and renamed at the end, so a failed conversion never leaves a half-written model where a good one is expected.
 */
export async function writeGguf(
    filePath: string,
    metadata: Iterable<readonly [string, GgufValue]>,
    tensors: readonly GgufTensorToWrite[],
    {alignment = GGUF_DEFAULT_ALIGNMENT}: {alignment?: number} = {}
): Promise<void> {
    const entries = [...metadata].filter(([key]) => key !== "general.alignment");
    if (alignment !== GGUF_DEFAULT_ALIGNMENT)
        entries.push(["general.alignment", {type: GgufValueType.UINT32, value: alignment}]);

    const sink = new ByteSink();
    sink.u32(GGUF_MAGIC);
    sink.u32(3);
    sink.u64(tensors.length);
    sink.u64(entries.length);
    for (const [key, value] of entries) {
        sink.string(key);
        writeValue(sink, value);
    }
    const byteLengths = tensors.map((tensor) => ggmlTensorByteLength(tensor.type, tensor.dims));
    let relativeOffset = 0;
    tensors.forEach((tensor, i) => {
        sink.string(tensor.name);
        sink.u32(tensor.dims.length);
        for (const dim of tensor.dims)
            sink.u64(dim);
        sink.u32(tensor.type);
        sink.u64(relativeOffset);
        relativeOffset += Math.ceil(byteLengths[i]! / alignment) * alignment;
    });
    sink.padTo(alignment);

    const temporaryPath = `${filePath}.partial-${process.pid}`;
    const handle = await fs.open(temporaryPath, "w");
    try {
        await handle.write(sink.toBuffer());
        const padding = Buffer.alloc(alignment);
        for (let i = 0; i < tensors.length; i++) {
            const tensor = tensors[i]!;
            const data = typeof tensor.data === "function" ? await tensor.data() : tensor.data;
            if (data.byteLength !== byteLengths[i])
                throw new Error(`tensor ${tensor.name} (${ggmlTypeName(tensor.type)} ${tensor.dims.join("x")}) has ${data.byteLength} bytes, expected ${byteLengths[i]}`);
            await handle.write(data);
            const pad = (alignment - (data.byteLength % alignment)) % alignment;
            if (pad > 0)
                await handle.write(padding.subarray(0, pad));
        }
        await handle.close();
        await fs.rename(temporaryPath, filePath);
    } catch (err) {
        await handle.close().catch(() => undefined);
        await fs.rm(temporaryPath, {force: true});
        throw err;
    }
}
