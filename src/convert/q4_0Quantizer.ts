import {float32ToFloat16Bits} from "../gguf/float16.js";

const fround = Math.fround;

/** Q4_0 (ggml type 2): blocks of 32 values, fp16 scale + 16 bytes of nibbles, 18 bytes. */
export const Q4_0 = {ggmlType: 2, llamaFileType: 2, blockColumns: 32, blockBytes: 18} as const;

/**
 * Quantizes rows x columns floats to Q4_0 with ggml's reference rule (quantize_row_q4_0_ref): the value of largest
 * magnitude maps to -8, the others to trunc(x / d + 8.5) capped at 15; value j sits in byte j % 16, high nibble if j >= 16.
 */
export function quantizeQ4_0Rows(values: Float32Array, rows: number, columns: number): Uint8Array {
    if (columns % Q4_0.blockColumns !== 0)
        throw new Error(`Q4_0 needs rows of a multiple of ${Q4_0.blockColumns} columns, got ${columns}`);
    const blocks = (rows * columns) / Q4_0.blockColumns;
    const out = new Uint8Array(blocks * Q4_0.blockBytes);
    for (let b = 0; b < blocks; b++) {
        const x = b * 32;
        let amax = 0;
        let max = 0;
        for (let j = 0; j < 32; j++) {
            const v = values[x + j]!;
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        const d = fround(max / -8);
        const id = d !== 0 ? fround(1 / d) : 0;
        const half = float32ToFloat16Bits(d);
        const at = b * Q4_0.blockBytes;
        out[at] = half & 0xff;
        out[at + 1] = half >> 8;
        for (let j = 0; j < 16; j++) {
            const lo = Math.min(15, Math.trunc(fround(fround(values[x + j]! * id) + 8.5)));
            const hi = Math.min(15, Math.trunc(fround(fround(values[x + 16 + j]! * id) + 8.5)));
            out[at + 2 + j] = lo | (hi << 4);
        }
    }
    return out;
}
