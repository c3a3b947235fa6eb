/** A small deterministic PRNG (mulberry32), so a seed always picks the same evaluation sample on every machine. */
export class SeededRandom {
    private state: number;

    public constructor(seed: number) {
        this.state = seed >>> 0;
    }

    /** Uniform in [0, 1). */
    public next(): number {
        this.state = (this.state + 0x6d2b79f5) >>> 0;
        let t = this.state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }

    /** Uniform integer in [0, count). */
    public integer(count: number): number {
        return Math.floor(this.next() * count);
    }

    /** A shuffled copy (Fisher-Yates). */
    public shuffled<T>(items: readonly T[]): T[] {
        const copy = [...items];
        for (let i = copy.length - 1; i > 0; i--) {
            const j = this.integer(i + 1);
            [copy[i], copy[j]] = [copy[j]!, copy[i]!];
        }
        return copy;
    }
}
