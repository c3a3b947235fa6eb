/** Summary of repeated measurements: the median for the typical case, p95 for the slow tail. */
export interface Distribution {
    readonly median: number;
    readonly p95: number;
    readonly min: number;
    readonly max: number;
    readonly samples: number;
}

export function percentile(sorted: readonly number[], fraction: number): number {
    if (sorted.length === 0)
        return NaN;
    const rank = fraction * (sorted.length - 1);
    const low = Math.floor(rank), high = Math.ceil(rank);
    return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}

export function distributionOf(values: readonly number[]): Distribution {
    const sorted = [...values].sort((a, b) => a - b);
    return {median: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN,
        samples: sorted.length};
}
