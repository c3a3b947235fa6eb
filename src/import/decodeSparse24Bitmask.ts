export interface Sparse24BitmaskTensors {
    /** The kept values of each row, in column order (already decoded from the model dtype). */
    readonly compressed: Float32Array;
    /** uint8 [n, ceil(k/8)]: bit j of byte b (little bit order) marks column 8b + j as kept. */
    readonly bitmask: Uint8Array;
    readonly rows: number;
    readonly columns: number;
    readonly name: string;
}

/** The dense rows of a compressed-tensors `sparse-24-bitmask` weight (zeros where the mask is clear). */
export function decodeSparse24Bitmask(tensors: Sparse24BitmaskTensors): Float32Array {
    const {rows, columns, name} = tensors;
    const maskBytes = Math.ceil(columns / 8);
    if (tensors.bitmask.length !== rows * maskBytes)
        throw new Error(`${name}: bitmask has ${tensors.bitmask.length} bytes, expected ${rows * maskBytes} for ${rows} x ${columns}`);
    const keptPerRow = tensors.compressed.length / rows;
    if (!Number.isInteger(keptPerRow))
        throw new Error(`${name}: compressed has ${tensors.compressed.length} values, not a whole number per row for ${rows} rows`);
    const dense = new Float32Array(rows * columns);
    for (let row = 0; row < rows; row++) {
        let next = row * keptPerRow;
        const end = next + keptPerRow;
        for (let column = 0; column < columns; column++)
            if ((tensors.bitmask[row * maskBytes + (column >> 3)]! >> (column & 7)) & 1) {
                if (next >= end)
                    throw new Error(`${name}: row ${row} marks more columns than the ${keptPerRow} values it keeps`);
                dense[row * columns + column] = tensors.compressed[next++]!;
            }
        if (next !== end)
            throw new Error(`${name}: row ${row} marks ${next - row * keptPerRow} columns but keeps ${keptPerRow} values`);
    }
    return dense;
}
