import type {QuantizedWeight} from "./QuantizedWeight.js";

export interface PackQuantizedTensors {
    /** int32 [n, k/8]: 8 unsigned 4-bit values (q + 8) per word, value j at bits [4j, 4j + 4). */
    readonly weightPacked: Int32Array;
    /** [n, k / groupColumns] scales (already decoded from the model dtype). */
    readonly scales: Float32Array;
    readonly rows: number;
    readonly columns: number;
    readonly name: string;
}

/** The int4 values and scales of a compressed-tensors `pack-quantized` (symmetric) weight. */
export function decodePackQuantized(tensors: PackQuantizedTensors): QuantizedWeight {
    const {rows, columns, name} = tensors;
    if (columns % 8 !== 0 || tensors.weightPacked.length !== rows * (columns / 8))
        throw new Error(`${name}: weight_packed has ${tensors.weightPacked.length} words, expected ${rows * columns / 8} for ${rows} x ${columns} 4-bit values`);
    if (tensors.scales.length === 0 || tensors.scales.length % rows !== 0 || columns % (tensors.scales.length / rows) !== 0)
        throw new Error(`${name}: weight_scale has ${tensors.scales.length} values, which is not a whole number of groups per row for ${rows} x ${columns}`);
    const groupColumns = columns / (tensors.scales.length / rows);
    const q = new Int8Array(rows * columns);
    for (let word = 0; word < tensors.weightPacked.length; word++) {
        const bits = tensors.weightPacked[word]!;
        for (let j = 0; j < 8; j++)
            q[8 * word + j] = ((bits >>> (4 * j)) & 15) - 8;
    }
    return {rows, columns, q, scales: tensors.scales, groupColumns};
}
