import type {EvaluationReport, PositionRecord} from "./EvaluationReport.js";
import {scoreLineCompletion} from "./scoreLineCompletion.js";
import {SeededRandom} from "./SeededRandom.js";

/** Exact-match recovery of one model against a baseline over the distinct positions of several evaluation reports. */
export interface CombinedExactMatch {
    readonly model: string;
    readonly baseline: string;
    readonly reports: number;
    /** Positions drawn by more than one report count once (their first record). */
    readonly distinctPositions: number;
    readonly exactMatchModel: number;
    readonly exactMatchBaseline: number;
    /** 100 * model / baseline exact matches. */
    readonly recoveryPercent: number;
    readonly onlyModel: number;
    readonly onlyBaseline: number;
    /** Two-sided sign test on the discordant positions (onlyModel vs onlyBaseline). */
    readonly signTestP: number;
    /** Percentile bootstrap over positions (95%), of recoveryPercent. */
    readonly bootstrap95: readonly [number, number];
}

function positionKey(p: PositionRecord): string {
    return `${p.file}\u0000${p.line}\u0000${p.column}`;
}

/** P(|X - n/2| >= |k - n/2|) for X ~ Binomial(n, 1/2), by the recurrence on binomial terms (no large factorials). */
function twoSidedSignTest(k: number, n: number): number {
    const low = Math.min(k, n - k);
    let term = Math.pow(0.5, n); // C(n, 0) / 2^n
    let tail = 0;
    for (let i = 0; i <= low; i++) {
        tail += term;
        term *= (n - i) / (i + 1);
    }
    return Math.min(1, 2 * tail);
}

export function combineExactMatch(reports: readonly EvaluationReport[], model: string, baseline: string,
    options: {readonly resamples?: number, readonly seed?: number} = {}): CombinedExactMatch {
    const byPosition = new Map<string, PositionRecord>();
    for (const report of reports)
        for (const p of report.positions) {
            if (p.predicted[model] == null || p.predicted[baseline] == null)
                throw new Error(`a report of seed ${report.seed} has no completion of ${p.predicted[model] == null ? model : baseline}`);
            if (!byPosition.has(positionKey(p)))
                byPosition.set(positionKey(p), p);
        }
    const pairs = [...byPosition.values()].map((p) => [
        scoreLineCompletion(p.predicted[model]!, p.expected).exactMatch,
        scoreLineCompletion(p.predicted[baseline]!, p.expected).exactMatch
    ] as const);
    if (pairs.length === 0)
        throw new Error("no positions to combine");
    const count = (sample: readonly (readonly [boolean, boolean])[]) => {
        let m = 0, b = 0;
        for (const [x, y] of sample) {
            m += Number(x);
            b += Number(y);
        }
        return {m, b};
    };
    const {m, b} = count(pairs);
    const onlyModel = pairs.filter(([x, y]) => x && !y).length;
    const onlyBaseline = pairs.filter(([x, y]) => y && !x).length;
    const random = new SeededRandom(options.seed ?? 1);
    const ratios: number[] = [];
    for (let r = 0; r < (options.resamples ?? 4000); r++) {
        const sample = pairs.map(() => pairs[random.integer(pairs.length)]!);
        const c = count(sample);
        if (c.b > 0)
            ratios.push(100 * c.m / c.b);
    }
    ratios.sort((x, y) => x - y);
    const at = (q: number) => ratios[Math.min(ratios.length - 1, Math.floor(q * ratios.length))] ?? Number.NaN;
    return {
        model, baseline, reports: reports.length, distinctPositions: pairs.length,
        exactMatchModel: m, exactMatchBaseline: b, recoveryPercent: b > 0 ? 100 * m / b : Number.NaN,
        onlyModel, onlyBaseline, signTestP: twoSidedSignTest(onlyModel, onlyModel + onlyBaseline),
        bootstrap95: [at(0.025), at(0.975)]
    };
}
