import type {Distribution} from "./statistics.js";

export interface BenchmarkModel {
    readonly variant: string;
    readonly name: string;
    readonly path: string;
    readonly sizeBytes: number;
    readonly weightTypes: readonly string[];
    readonly backend: string;
}

export interface ScenarioResult {
    readonly timeToFirstTokenMs: Distribution;
    readonly totalMs: Distribution;
    /** Generated tokens per second after the first token (decode speed). */
    readonly tokensPerSecond: Distribution;
    readonly promptTokens: number;
    readonly evaluatedPromptTokens: Distribution;
    readonly generatedTokens: number;
    /** Typing replay only: share of keystrokes answered from the completion cache. */
    readonly cacheHitRate?: number;
}

export interface ScenarioReport {
    readonly id: string;
    readonly title: string;
    /** Keyed by model variant. */
    readonly results: Readonly<Record<string, ScenarioResult>>;
}

export interface BenchmarkReport {
    readonly version: 1;
    readonly startedAt: string;
    readonly machine: {readonly platform: string, readonly cpu: string, readonly cores: number};
    readonly device: string;
    readonly repetitions: number;
    readonly models: readonly BenchmarkModel[];
    readonly scenarios: readonly ScenarioReport[];
}

/** Speedup of `variant` over `baseline` for one scenario: total-time ratio (higher is faster). */
export function speedupOf(scenario: ScenarioReport, variant: string, baseline: string): number | undefined {
    const fast = scenario.results[variant], slow = scenario.results[baseline];
    if (fast == null || slow == null)
        return undefined;
    return slow.totalMs.median / fast.totalMs.median;
}
