import {Q4_0} from "../convert/q4_0Quantizer.js";
import {Q4_S24} from "../convert/sparse24Quantizer.js";
import {float16BitsToFloat32, float32ToFloat16Bits} from "../gguf/float16.js";
import type {QuantizedWeight} from "./QuantizedWeight.js";

/** Whether every group of 4 columns has at most two nonzero values. */
export function isQuantizedTwoFour(weight: QuantizedWeight): boolean {
    const q = weight.q;
    for (let at = 0; at < q.length; at += 4)
        if ((q[at] !== 0 ? 1 : 0) + (q[at + 1] !== 0 ? 1 : 0) + (q[at + 2] !== 0 ? 1 : 0) + (q[at + 3] !== 0 ? 1 : 0) > 2)
            return false;
    return true;
}

export interface ScaleRounding {
    /** Round scales that fp16 cannot hold exactly instead of refusing them. */
    readonly allowRounding: boolean;
    /** Counts the scales that were rounded. */
    rounded: number;
}

/**
 * The fp16 bits of a scale that multiplies `columns` values from `at`. Exact, or the import stops: Q4_S24 and Q4_0 hold
 * fp16 scales, and checkpoints made in bf16 could in principle hold one fp16 cannot (below 2^-14 with too many bits).
 * A scale whose values are all 0 never matters, so it is stored as 0.
 */
function exactHalfScale(weight: QuantizedWeight, name: string, row: number, column: number, rounding: ScaleRounding): number {
    const groups = weight.columns / weight.groupColumns;
    const scale = weight.scales[row * groups + Math.floor(column / weight.groupColumns)]!;
    const bits = float32ToFloat16Bits(scale);
    if (float16BitsToFloat32(bits) === scale)
        return bits;
    const start = row * weight.columns + column;
    let used = false;
    for (let c = 0; c < Math.min(weight.groupColumns, weight.columns - column) && !used; c++)
        used = weight.q[start + c] !== 0;
    if (!used)
        return 0;
    if (!rounding.allowRounding || !Number.isFinite(float16BitsToFloat32(bits)))
        throw new Error(`${name}: the scale ${scale} of row ${row}, columns from ${column} is not exactly representable in fp16 ` +
            "(the sparse and Q4_0 types store fp16 scales); pass --round-scales to accept the nearest fp16 value");
    rounding.rounded++;
    return bits;
}

/**
 * The two kept positions (increasing) of a group of 4 by its nonzero mask: the nonzeros, then the lowest free
 * positions; undefined for more than two nonzeros.
 */
const POSITIONS_OF_MASK: readonly (readonly [number, number] | undefined)[] = Array.from({length: 16}, (_, mask) => {
    const positions = [0, 1, 2, 3].filter((p) => (mask >> p) & 1);
    for (let p = 0; positions.length < 2; p++)
        if (!positions.includes(p))
            positions.push(p);
    return positions.length === 2 ? [Math.min(...positions), Math.max(...positions)] as const : undefined;
});

/**
 * Q4_S24 bytes holding a 2:4 int4 weight exactly (native-kernels/FORMAT.md): each group's nonzeros keep their
 * positions; a group with fewer than two nonzeros fills up with the lowest free positions, value 0, so positions stay
 * strictly increasing. The scale group must be 128 columns or a multiple (per-channel included).
 */
export function encodeQuantizedAsQ4S24(weight: QuantizedWeight, name: string, rounding: ScaleRounding): Uint8Array {
    const {rows, columns, q} = weight;
    if (columns % Q4_S24.blockColumns !== 0)
        throw new Error(`${name}: Q4_S24 needs rows of a multiple of ${Q4_S24.blockColumns} columns, got ${columns}`);
    if (weight.groupColumns % Q4_S24.groupColumns !== 0)
        throw new Error(`${name}: scale groups of ${weight.groupColumns} columns cannot be held by Q4_S24 (one scale per ${Q4_S24.groupColumns})`);
    const blocksPerRow = columns / Q4_S24.blockColumns;
    const out = new Uint8Array(rows * blocksPerRow * Q4_S24.blockBytes);
    for (let row = 0; row < rows; row++)
        for (let block = 0; block < blocksPerRow; block++) {
            const at = (row * blocksPerRow + block) * Q4_S24.blockBytes;
            const firstColumn = block * Q4_S24.blockColumns;
            for (let half = 0; half < 2; half++) {
                const bits = exactHalfScale(weight, name, row, firstColumn + half * Q4_S24.groupColumns, rounding);
                out[at + 2 * half] = bits & 0xff;
                out[at + 2 * half + 1] = bits >> 8;
            }
            for (let group = 0; group < 64; group++) {
                const start = row * columns + firstColumn + 4 * group;
                const mask = (q[start] !== 0 ? 1 : 0) | (q[start + 1] !== 0 ? 2 : 0) | (q[start + 2] !== 0 ? 4 : 0) | (q[start + 3] !== 0 ? 8 : 0);
                const positions = POSITIONS_OF_MASK[mask];
                if (positions == null)
                    throw new Error(`${name}: row ${row}, columns ${firstColumn + 4 * group}..${firstColumn + 4 * group + 3} have more than two nonzero values; the weight is not 2:4 sparse`);
                const subBlock = group >> 3;
                for (let slot = 0; slot < 2; slot++) {
                    const kept = 2 * (group & 7) + slot; // kept value index within the sub-block
                    out[at + 4 + 8 * subBlock + (kept & 7)]! |= (q[start + positions[slot]!]! + 8) << (4 * (kept >> 3));
                    out[at + 68 + 4 * subBlock + (kept & 3)]! |= positions[slot]! << (2 * (kept >> 2));
                }
            }
        }
    return out;
}

/**
 * Q4_0 bytes holding a (dense) int4 weight exactly: a Q4_0 block is 32 values q + 8 with one fp16 scale, so each block
 * takes the scale of the group it lies in.
 */
export function encodeQuantizedAsQ4_0(weight: QuantizedWeight, name: string, rounding: ScaleRounding): Uint8Array {
    const {rows, columns, q} = weight;
    if (columns % Q4_0.blockColumns !== 0 || weight.groupColumns % Q4_0.blockColumns !== 0)
        throw new Error(`${name}: Q4_0 needs rows and scale groups of a multiple of ${Q4_0.blockColumns} columns`);
    const out = new Uint8Array((rows * columns / Q4_0.blockColumns) * Q4_0.blockBytes);
    for (let row = 0; row < rows; row++)
        for (let column = 0; column < columns; column += Q4_0.blockColumns) {
            const at = ((row * columns + column) / Q4_0.blockColumns) * Q4_0.blockBytes;
            const bits = exactHalfScale(weight, name, row, column - (column % weight.groupColumns), rounding);
            out[at] = bits & 0xff;
            out[at + 1] = bits >> 8;
            const start = row * columns + column;
            for (let j = 0; j < 16; j++)
                out[at + 2 + j] = (q[start + j]! + 8) | ((q[start + 16 + j]! + 8) << 4);
        }
    return out;
}

/** Exact float32 values of a quantized weight (q * scale is exact in float32 for int4 and fp16/bf16 scales). */
export function dequantizeQuantizedWeight(weight: QuantizedWeight): Float32Array {
    const groups = weight.columns / weight.groupColumns;
    const out = new Float32Array(weight.rows * weight.columns);
    for (let row = 0; row < weight.rows; row++)
        for (let column = 0; column < weight.columns; column++)
            out[row * weight.columns + column] = weight.q[row * weight.columns + column]! * weight.scales[row * groups + Math.floor(column / weight.groupColumns)]!;
    return out;
}
