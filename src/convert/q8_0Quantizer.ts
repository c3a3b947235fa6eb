import {float32ToFloat16Bits} from "../gguf/float16.js";

const fround = Math.fround;

/** Q8_0 (ggml type 8): blocks of 32 values, fp16 scale + 32 signed bytes, 34 bytes. */
export const Q8_0 = {ggmlType: 8, llamaFileType: 7, blockColumns: 32, blockBytes: 34} as const;

/** C's roundf: half away from zero. */
function roundHalfAway(v: number): number {
    return v < 0 ? -Math.round(-v) : Math.round(v);
}

/** Quantizes rows x columns floats to Q8_0 with ggml's reference rule (quantize_row_q8_0_ref): d = max|x| / 127. */
export function quantizeQ8_0Rows(values: Float32Array, rows: number, columns: number): Uint8Array {
    if (columns % Q8_0.blockColumns !== 0)
        throw new Error(`Q8_0 needs rows of a multiple of ${Q8_0.blockColumns} columns, got ${columns}`);
    const blocks = (rows * columns) / Q8_0.blockColumns;
    const out = new Uint8Array(blocks * Q8_0.blockBytes);
    const signed = new Int8Array(out.buffer);
    for (let b = 0; b < blocks; b++) {
        const x = b * 32;
        let amax = 0;
        for (let j = 0; j < 32; j++)
            amax = Math.max(amax, Math.abs(values[x + j]!));
        const d = fround(amax / 127);
        const id = d !== 0 ? fround(1 / d) : 0;
        const half = float32ToFloat16Bits(d);
        const at = b * Q8_0.blockBytes;
        out[at] = half & 0xff;
        out[at + 1] = half >> 8;
        for (let j = 0; j < 32; j++)
            signed[at + 2 + j] = roundHalfAway(fround(values[x + j]! * id));
    }
    return out;
}
