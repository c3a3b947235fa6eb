import {float16BitsToFloat32} from "../gguf/float16.js";
import type {QuantizedWeight} from "./QuantizedWeight.js";

/** Marlin 2:4 tiles are 16 x 16 (of the compressed k/2 x n matrix); its permutation works on runs of 1024 values. */
const TILE = 16;
const PERMUTATION_RUN = 1024;
const SCALE_RUN = 64;
export const MARLIN24_GROUP_COLUMNS = 128;

let tilePermutation: Int32Array | undefined;

/**
 * Marlin's 4-bit 2:4 weight permutation (as in get_permutations_24(4)): stored value j of a run of 1024 is tile
 * element permutation[j]. It lays each thread's tensor-core fragment out contiguously, then interleaves nibbles
 * 0,2,4,6,1,3,5,7 so that one shift extracts two fp16 values.
 */
export function marlin24TilePermutation(): Int32Array {
    if (tilePermutation != null)
        return tilePermutation;
    const base: number[] = [];
    for (let i = 0; i < 32; i++) {
        const fragment: number[] = [];
        const column = Math.floor(i / 4);
        const columnPair = Math.floor(column / 2);
        for (const block of [0, 1])
            for (const row of [2 * (i % 4), 2 * (i % 4) + 1, 2 * (i % 4 + 4), 2 * (i % 4 + 4) + 1])
                fragment.push(16 * row + columnPair * 256 + 8 * (column % 2) + 4 * block);
        for (let j = 0; j < 4; j++)
            base.push(...fragment.map((p) => p + j));
    }
    const interleave = [0, 2, 4, 6, 1, 3, 5, 7];
    tilePermutation = new Int32Array(PERMUTATION_RUN);
    for (let i = 0; i < PERMUTATION_RUN; i++)
        tilePermutation[i] = base[Math.floor(i / 8) * 8 + interleave[i % 8]!]!;
    return tilePermutation;
}

/** Marlin's grouped-scale permutation of each run of 64 scales: stored j is scale run[j]. */
export const MARLIN24_SCALE_PERMUTATION: readonly number[] = Array.from({length: SCALE_RUN}, (_, j) => Math.floor(j / 8) * 8 + [0, 4, 1, 5, 2, 6, 3, 7][j % 8]!);

/**
 * Where CUTLASS's ColumnMajorInterleaved<2> layout puts element (row, column) of an int16 2:4 metadata matrix with
 * `rows` rows (a multiple of 64): the scatter offset of the reordering in sparse_semi_structured_from_dense_cutlass.
 */
export function cutlassMetaOffset(row: number, column: number, rows: number): number {
    let r = Math.floor(row / 64) * 64 + (row % 2) * 2 + Math.floor((row % 8) / 4) + Math.floor((row % 4) / 2) * 32 + Math.floor((row % 64) / 8) * 4;
    let c = column;
    const swap = (r % 2 === 0 && c % 2 === 1 ? 1 : 0) - (r % 2 === 1 && c % 2 === 0 ? 1 : 0);
    r += swap;
    c -= swap;
    return Math.floor(c / 2) * rows * 2 + r * 2 + (c % 2);
}

export interface Marlin24Tensors {
    /** int32 [k/32, 2n]. */
    readonly weightPacked: Int32Array;
    /** int16 [k/32, 2n] (a plain reshape of CUTLASS's reordered n x k/16 metadata). */
    readonly meta: Int16Array;
    /** fp16 bits [k/128, n]. */
    readonly scalePacked: Uint16Array;
    /** out_features (n) and in_features (k). */
    readonly rows: number;
    readonly columns: number;
    readonly name: string;
    /** compressed-tensors before 0.8.0 wrote the scales unpermuted (a bug fixed later); true reads them that way. */
    readonly unpermutedScales?: boolean;
}

/**
 * Inverts compressed-tensors' Marlin24Compressor: the dense int4 values and fp16 group-128 scales of a marlin-24
 * weight. Kept values are placed by the metadata's indices, which are not always the pruning mask (a kept weight that
 * quantized to 0 may carry the conversion's fallback code); values decoded this way are right either way.
 */
export function decodeMarlin24(tensors: Marlin24Tensors): QuantizedWeight {
    const {rows: n, columns: k, name} = tensors;
    if (n % 64 !== 0 || k % 128 !== 0)
        throw new Error(`${name}: marlin-24 needs out_features a multiple of 64 and in_features a multiple of 128, got ${n} x ${k}`);
    const half = k / 2;
    if (tensors.weightPacked.length !== (k / 32) * 2 * n || tensors.meta.length !== (k / 32) * 2 * n)
        throw new Error(`${name}: weight_packed/meta have ${tensors.weightPacked.length}/${tensors.meta.length} values, expected ${(k / 32) * 2 * n} for ${n} x ${k}`);
    const groups = k / MARLIN24_GROUP_COLUMNS;
    if (tensors.scalePacked.length !== groups * n)
        throw new Error(`${name}: scale_packed has ${tensors.scalePacked.length} values, expected ${groups * n} (group size 128)`);

    // Kept values, n x k/2, from the tiled and permuted packed nibbles.
    const kept = new Int8Array(n * half);
    const permutation = marlin24TilePermutation();
    const packedColumns = 2 * n;
    for (let packedRow = 0; packedRow < k / 32; packedRow++)
        for (let word = 0; word < packedColumns; word++) {
            const bits = tensors.weightPacked[packedRow * packedColumns + word]!;
            for (let nibble = 0; nibble < 8; nibble++) {
                const stored = 8 * word + nibble;
                const tileElement = (stored & ~(PERMUTATION_RUN - 1)) + permutation[stored & (PERMUTATION_RUN - 1)]!;
                const columnTile = tileElement >> 8;
                const rowInTile = (tileElement >> 4) & (TILE - 1);
                const columnInTile = tileElement & (TILE - 1);
                const keptIndex = packedRow * TILE + rowInTile; // along the compressed k/2
                const outRow = columnTile * TILE + columnInTile;
                kept[outRow * half + keptIndex] = ((bits >>> (4 * nibble)) & 15) - 8;
            }
        }

    // Dense values: each group of 4 takes its two kept values at the indices its metadata nibble names.
    const metaColumns = k / 16;
    const q = new Int8Array(n * k);
    for (let row = 0; row < n; row++)
        for (let metaColumn = 0; metaColumn < metaColumns; metaColumn++) {
            const word = tensors.meta[cutlassMetaOffset(row, metaColumn, n)]! & 0xffff;
            for (let g = 0; g < 4; g++) {
                const group = 4 * metaColumn + g;
                const code = (word >> (4 * g)) & 15;
                const first = code & 3, second = code >> 2;
                const v0 = kept[row * half + 2 * group]!, v1 = kept[row * half + 2 * group + 1]!;
                const at = row * k + 4 * group;
                if (first === second && v0 !== 0 && v1 !== 0)
                    throw new Error(`${name}: row ${row}, columns ${4 * group}..${4 * group + 3}: the metadata puts two nonzero values at one position`);
                q[at + first] = v0;
                if (v1 !== 0 || first !== second)
                    q[at + second] = v1;
            }
        }

    // Scales: fp16 [G, n], each run of 64 permuted only when the library saw group_size < its size_k, which is the
    // compressed k/2 (so not for in_features 256).
    const scales = new Float32Array(n * groups);
    const permuted = MARLIN24_GROUP_COLUMNS < half && tensors.unpermutedScales !== true;
    for (let stored = 0; stored < groups * n; stored++) {
        const original = permuted ? (stored - (stored % SCALE_RUN)) + MARLIN24_SCALE_PERMUTATION[stored % SCALE_RUN]! : stored;
        const group = Math.floor(original / n), row = original % n;
        scales[row * groups + group] = float16BitsToFloat32(tensors.scalePacked[stored]!);
    }
    return {rows: n, columns: k, q, scales, groupColumns: MARLIN24_GROUP_COLUMNS};
}
