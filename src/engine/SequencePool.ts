/**
 * Picks which cached context sequence serves a prompt: the one holding the longest common token prefix,
 * else the least recently used. Generic over the sequence type so it is testable without a model.
 */
export interface PooledSequence {
    readonly contextTokens: readonly number[];
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
    const length = Math.min(a.length, b.length);
    let i = 0;
    while (i < length && a[i] === b[i])
        i++;
    return i;
}

export class SequencePool<Sequence extends PooledSequence> {
    private readonly lastUsed = new Map<Sequence, number>();
    private clock = 0;

    public constructor(private readonly sequences: readonly Sequence[]) {
        if (sequences.length === 0)
            throw new Error("a sequence pool needs at least one sequence");
    }

    public get size(): number {
        return this.sequences.length;
    }

    /** The sequence to evaluate `tokens` on, and how many of its tokens can be kept. */
    public acquire(tokens: readonly number[]): {sequence: Sequence, reusableTokens: number} {
        let best: Sequence | undefined;
        let bestShared = 0;
        for (const sequence of this.sequences) {
            const shared = commonPrefixLength(sequence.contextTokens, tokens);
            if (shared > bestShared) {
                best = sequence;
                bestShared = shared;
            }
        }
        // A shared BOS or FIM marker alone is not worth overwriting another file's cache for.
        if (best == null || bestShared < Math.min(16, tokens.length)) {
            best = this.leastRecentlyUsed();
            bestShared = commonPrefixLength(best.contextTokens, tokens);
        }
        this.lastUsed.set(best, ++this.clock);
        return {sequence: best, reusableTokens: bestShared};
    }

    private leastRecentlyUsed(): Sequence {
        let oldest = this.sequences[0]!;
        for (const sequence of this.sequences)
            if ((this.lastUsed.get(sequence) ?? 0) < (this.lastUsed.get(oldest) ?? 0))
                oldest = sequence;
        return oldest;
    }
}
