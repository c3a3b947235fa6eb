/**
 * A symmetric integer-quantized linear weight as a checkpoint encodes it: value(r, c) = q[r * columns + c] * scale of
 * (r, c), with one scale per `groupColumns` consecutive columns of a row (groupColumns = columns for per-channel).
 */
export interface QuantizedWeight {
    readonly rows: number;
    readonly columns: number;
    /** Dense signed values, row-major (rows x columns). */
    readonly q: Int8Array;
    /** rows x (columns / groupColumns) scales, row-major. */
    readonly scales: Float32Array;
    readonly groupColumns: number;
}

/** The same weight with its rows reordered: output row i is input row order[i]. */
export function reorderQuantizedRows(weight: QuantizedWeight, order: ArrayLike<number>): QuantizedWeight {
    const groups = weight.columns / weight.groupColumns;
    const q = new Int8Array(weight.q.length);
    const scales = new Float32Array(weight.scales.length);
    for (let i = 0; i < weight.rows; i++) {
        const from = order[i]!;
        q.set(weight.q.subarray(from * weight.columns, (from + 1) * weight.columns), i * weight.columns);
        scales.set(weight.scales.subarray(from * groups, (from + 1) * groups), i * groups);
    }
    return {...weight, q, scales};
}
