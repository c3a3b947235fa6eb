import {percentile} from "./statistics.js";

/** One way of decoding the same model: llama-bench, node-llama-cpp's bare loop (per mode), or the engine process. */
export interface DecodePath {
    readonly id: string;
    readonly label: string;
    /** Milliseconds per generated token of one repetition. */
    measure(): Promise<number>;
}

export interface DecodePathSamples {
    readonly id: string;
    readonly label: string;
    /** Milliseconds per token, one per timed round, in round order. */
    readonly msPerToken: readonly number[];
}

export interface DecodePathSummary {
    readonly id: string;
    readonly label: string;
    readonly medianMsPerToken: number;
    readonly minMsPerToken: number;
    readonly maxMsPerToken: number;
    /** 1000 / median ms per token. */
    readonly tokensPerSecond: number;
    /** This path's tokens/s over the reference's (llama-bench) in the same run; undefined without one. */
    readonly ratioToReference?: number;
    /** Median ms per token above the reference's: the time this path adds per token. */
    readonly extraMsPerToken?: number;
    /** Median over rounds of this path's ms/token over the reference's in the same round: robust to load drifting between rounds. */
    readonly pairedRatioToReference?: number;
}

/**
 * Runs every path once per round, so that a machine whose load changes (shared cores) affects all paths alike; each
 * round starts one path later than the one before (a, b, c; b, c, a; ...), so no path always runs right after the same
 * other one (a path that follows llama-bench finds the caches full of llama-bench's copy of the weights). The first
 * `warmup` rounds are not kept.
 */
export async function runInterleaved(paths: readonly DecodePath[], rounds: number, warmup: number,
    onRound?: (round: number, path: DecodePath, msPerToken: number) => void): Promise<DecodePathSamples[]> {
    const samples = paths.map((path) => ({id: path.id, label: path.label, msPerToken: [] as number[]}));
    for (let round = 0; round < warmup + rounds; round++) {
        for (let step = 0; step < paths.length; step++) {
            const i = (round + step) % paths.length;
            const ms = await paths[i]!.measure();
            onRound?.(round - warmup, paths[i]!, ms);
            if (round >= warmup)
                samples[i]!.msPerToken.push(ms);
        }
    }
    return samples;
}

const median = (values: readonly number[]) => percentile([...values].sort((a, b) => a - b), 0.5);

/** Medians, spreads and ratios to the reference path (the first with `referenceId`, usually llama-bench). */
export function summarizeDecodePaths(samples: readonly DecodePathSamples[], referenceId?: string): DecodePathSummary[] {
    const reference = samples.find((path) => path.id === referenceId);
    const referenceMedian = reference != null ? median(reference.msPerToken) : undefined;
    return samples.map((path): DecodePathSummary => {
        const medianMs = median(path.msPerToken);
        const paired = reference == null ? [] : path.msPerToken
            .map((ms, round) => reference.msPerToken[round] != null ? reference.msPerToken[round]! / ms : NaN)
            .filter((ratio) => Number.isFinite(ratio));
        return {
            id: path.id,
            label: path.label,
            medianMsPerToken: medianMs,
            minMsPerToken: Math.min(...path.msPerToken),
            maxMsPerToken: Math.max(...path.msPerToken),
            tokensPerSecond: 1000 / medianMs,
            ...(referenceMedian != null ? {
                ratioToReference: referenceMedian / medianMs,
                extraMsPerToken: medianMs - referenceMedian,
                ...(paired.length > 0 ? {pairedRatioToReference: median(paired)} : {})
            } : {})
        };
    });
}

/** One run's greedy tokens, or completion text, and the path that produced it. */
export interface PathOutput {
    readonly pathId: string;
    readonly output: readonly (number | string)[];
}

/**
 * Which paths produced which output, when they are not all the same: one line per distinct output, its paths (each once)
 * and the first position where it departs from the first run's output; undefined when every run agrees.
 */
export function describeOutputDifferences(runs: readonly PathOutput[]): string | undefined {
    const groups = new Map<string, {output: readonly (number | string)[], paths: Set<string>}>();
    for (const run of runs) {
        const key = JSON.stringify(run.output);
        const group = groups.get(key) ?? {output: run.output, paths: new Set<string>()};
        group.paths.add(run.pathId);
        groups.set(key, group);
    }
    if (groups.size <= 1)
        return undefined;
    const [reference, ...others] = [...groups.values()];
    const firstDifference = (output: readonly (number | string)[]) => {
        let at = 0;
        while (at < output.length && at < reference!.output.length && output[at] === reference!.output[at])
            at++;
        return at;
    };
    return [`${[...reference!.paths].join(", ")} (the first run's output)`,
        ...others.map((group) => `${[...group.paths].join(", ")}: differs from token ${firstDifference(group.output)} on`)].join("; ");
}

export interface DecodeBenchReport {
    readonly version: 1;
    readonly startedAt: string;
    readonly machine: {readonly platform: string, readonly cpu: string, readonly cores: number, readonly loadAverage: readonly number[]};
    readonly model: {readonly path: string, readonly sizeBytes: number};
    readonly device: string;
    readonly threads: number;
    /** Tokens generated and timed per repetition. */
    readonly tokens: number;
    /** KV cache depth the timed tokens start at (the prompt). */
    readonly promptTokens: number;
    readonly rounds: number;
    readonly warmup: number;
    /** Whether every bare-loop mode generated the same tokens (greedy output must not depend on the mode). */
    readonly outputsIdentical?: boolean;
    readonly notes: readonly string[];
    readonly paths: readonly DecodePathSamples[];
    readonly summary: readonly DecodePathSummary[];
}

const fixed = (value: number | undefined, digits: number) => value == null || !Number.isFinite(value) ? "-" : value.toFixed(digits);

/** The report as a Markdown table, one row per path, with its ratio to llama-bench from the same run. */
export function renderDecodeBenchMarkdown(report: DecodeBenchReport): string {
    const lines = [
        `Decode: ${report.tokens} tokens after a ${report.promptTokens}-token prompt, ${report.threads} thread(s), ` +
            `device ${report.device}, ${report.rounds} interleaved rounds (+${report.warmup} warm-up), ${report.startedAt}`,
        `Model: ${report.model.path} (${(report.model.sizeBytes / 1e6).toFixed(1)} MB); machine: ${report.machine.cpu}, ` +
            `${report.machine.cores} cores, load average ${report.machine.loadAverage.map((load) => load.toFixed(2)).join(" ")}`,
        "",
        "| path | tokens/s | ms/token median (min-max) | vs llama-bench | paired ratio | extra ms/token |",
        "|---|---|---|---|---|---|"
    ];
    for (const path of report.summary)
        lines.push(`| ${path.label} | ${fixed(path.tokensPerSecond, 1)} | ${fixed(path.medianMsPerToken, 3)} ` +
            `(${fixed(path.minMsPerToken, 3)}-${fixed(path.maxMsPerToken, 3)}) | ` +
            `${path.ratioToReference != null ? `${fixed(path.ratioToReference * 100, 1)}%` : "-"} | ` +
            `${path.pairedRatioToReference != null ? `${fixed(path.pairedRatioToReference * 100, 1)}%` : "-"} | ` +
            `${path.extraMsPerToken != null ? fixed(path.extraMsPerToken, 3) : "-"} |`);
    if (report.outputsIdentical != null)
        lines.push("", `Greedy tokens identical across node-llama-cpp modes: ${report.outputsIdentical ? "yes" : "NO"}`);
    for (const note of report.notes)
        lines.push(`- ${note}`);
    return lines.join("\n");
}
