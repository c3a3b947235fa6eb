import {float16BitsToFloat32, float32ToFloat16Bits} from "../gguf/float16.js";
import {registerGgmlType} from "../gguf/ggmlTypes.js";

/**
 * Q4_S24: 2:4 sparse weights, symmetric 4-bit values, an fp16 scale per 128 dense columns.
 * Byte layout: native-kernels/FORMAT.md. This is the TypeScript twin of native-kernels/src/q4_s24_ref.c and
 * writes the same bytes: every float step is one IEEE single-precision operation (Math.fround after each).
 */
export const Q4_S24 = {
    /** ggml type id (GGML_TYPE_Q4_S24 in our llama.cpp build). */
    ggmlType: 100,
    /** llama file type (general.file_type) for a model whose linear weights are Q4_S24. */
    llamaFileType: 100,
    name: "Q4_S24",
    /** Dense columns per block (a row length must be a multiple). */
    blockColumns: 256,
    blockBytes: 100,
    /** Dense columns sharing one fp16 scale. */
    groupColumns: 128
} as const;

registerGgmlType(Q4_S24.ggmlType, {name: Q4_S24.name, blockSize: Q4_S24.blockColumns, typeSize: Q4_S24.blockBytes});

const fround = Math.fround;

/** Round half to even, as C's nearbyintf in the default rounding mode (exact for the small values used here). */
function roundHalfEven(t: number): number {
    const floor = Math.floor(t);
    const diff = t - floor;
    if (diff > 0.5)
        return floor + 1;
    if (diff < 0.5)
        return floor;
    return floor % 2 === 0 ? floor : floor + 1;
}

// Scratch for one scale group, reused across calls.
const kept = new Float32Array(64);
const keptPos = new Uint8Array(64);

/** The two kept positions of one group of 4 (largest magnitudes, ties to the lower position), increasing. */
function pickPair(a0: number, a1: number, a2: number, a3: number): number {
    const s = [a0, a1, a2, a3];
    let best = 0;
    for (let i = 1; i < 4; i++)
        if (s[i]! > s[best]!)
            best = i;
    let second = best === 0 ? 1 : 0;
    for (let i = 0; i < 4; i++)
        if (i !== best && s[i]! > s[second]!)
            second = i;
    return best < second ? best | (second << 2) : second | (best << 2);
}

function quantizeGroup(src: Float32Array, offset: number, out: Uint8Array, blockOffset: number, half: number): void {
    for (let g = 0; g < 32; g++) {
        const at = offset + 4 * g;
        const pair = pickPair(Math.abs(src[at]!), Math.abs(src[at + 1]!), Math.abs(src[at + 2]!), Math.abs(src[at + 3]!));
        const p0 = pair & 3, p1 = pair >> 2;
        kept[2 * g] = src[at + p0]!;
        kept[2 * g + 1] = src[at + p1]!;
        keptPos[2 * g] = p0;
        keptPos[2 * g + 1] = p1;
    }

    let amax = 0;
    let vmax = 0;
    for (let k = 0; k < 64; k++) {
        const a = Math.abs(kept[k]!);
        if (a > amax) {
            amax = a;
            vmax = kept[k]!;
        }
    }
    const d = fround(vmax / -8);
    const d16 = float32ToFloat16Bits(d);
    const dr = float16BitsToFloat32(d16);
    const id = dr !== 0 ? fround(1 / dr) : 0;
    out[blockOffset + 2 * half] = d16 & 0xff;
    out[blockOffset + 2 * half + 1] = d16 >> 8;

    for (let k = 0; k < 64; k++) {
        let t = fround(kept[k]! * id);
        if (Number.isNaN(t))
            t = 0;
        if (t < -8)
            t = -8;
        if (t > 7)
            t = 7;
        const q = roundHalfEven(t);
        const s = 4 * half + (k >> 4);
        const kk = k & 15;
        out[blockOffset + 4 + 8 * s + (kk & 7)]! |= (q + 8) << (4 * (kk >> 3));
        out[blockOffset + 68 + 4 * s + (kk & 3)]! |= keptPos[k]! << (2 * (kk >> 2));
    }
}

/**
 * Quantizes rows x columns floats (row-major, columns a multiple of 256) to Q4_S24 bytes: each group of 4 keeps its
 * two largest magnitudes (a group that is already 2:4 keeps its nonzeros), then 4-bit with an fp16 scale per 128.
 */
export function quantizeSparse24Rows(values: Float32Array, rows: number, columns: number): Uint8Array {
    if (columns % Q4_S24.blockColumns !== 0)
        throw new Error(`Q4_S24 needs rows of a multiple of ${Q4_S24.blockColumns} columns, got ${columns}`);
    if (values.length < rows * columns)
        throw new Error(`expected ${rows * columns} values, got ${values.length}`);
    const blocksPerRow = columns / Q4_S24.blockColumns;
    const out = new Uint8Array(rows * blocksPerRow * Q4_S24.blockBytes);
    for (let r = 0; r < rows; r++)
        for (let b = 0; b < blocksPerRow; b++) {
            const blockOffset = (r * blocksPerRow + b) * Q4_S24.blockBytes;
            for (let half = 0; half < 2; half++)
                quantizeGroup(values, r * columns + b * Q4_S24.blockColumns + half * Q4_S24.groupColumns, out, blockOffset, half);
        }
    return out;
}

/** Dense floats back from Q4_S24 bytes (pruned positions are 0). */
export function dequantizeSparse24Rows(bytes: Uint8Array, rows: number, columns: number): Float32Array {
    const blocksPerRow = columns / Q4_S24.blockColumns;
    const out = new Float32Array(rows * columns);
    for (let blk = 0; blk < rows * blocksPerRow; blk++) {
        const at = blk * Q4_S24.blockBytes;
        const base = blk * Q4_S24.blockColumns;
        for (let s = 0; s < 8; s++) {
            const half = s >> 2;
            const d = float16BitsToFloat32(bytes[at + 2 * half]! | (bytes[at + 2 * half + 1]! << 8));
            for (let kk = 0; kk < 16; kk++) {
                const u = (bytes[at + 4 + 8 * s + (kk & 7)]! >> (4 * (kk >> 3))) & 15;
                const p = (bytes[at + 68 + 4 * s + (kk & 3)]! >> (2 * (kk >> 2))) & 3;
                const i = base + 32 * s + 4 * (kk >> 1) + p;
                out[i] = fround(out[i]! + fround(d * (u - 8)));
            }
        }
    }
    return out;
}

/** Share of groups of 4 (along rows) that already have at most two nonzeros. */
export function fractionAlreadySparse24(values: Float32Array): number {
    let sparse = 0;
    const groups = Math.floor(values.length / 4);
    for (let g = 0; g < groups; g++) {
        let nonzero = 0;
        for (let i = 0; i < 4; i++)
            if (values[4 * g + i] !== 0)
                nonzero++;
        if (nonzero <= 2)
            sparse++;
    }
    return groups === 0 ? 1 : sparse / groups;
}
