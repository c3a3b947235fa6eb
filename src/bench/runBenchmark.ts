import * as os from "node:os";
import {CompletionPipeline, type RequestRecord} from "../core/CompletionPipeline.js";
import type {EngineClient} from "../core/EngineClient.js";
import type {CompletionPrompt, EngineCompletion} from "../core/engineProtocol.js";
import {RequestAbortedError} from "../core/errors.js";
import type {ModelChoice} from "../core/modelCatalog.js";
import {defaultSettings, type ComputeDevice} from "../core/settings.js";
import type {BenchmarkModel, BenchmarkReport, ScenarioReport, ScenarioResult} from "./BenchmarkReport.js";
import {distributionOf} from "./statistics.js";

/** Roughly how many characters of code make one token of the bundled tokenizer; prompts are sized with it. */
const CHARS_PER_TOKEN = 3.2;

type GenerationScenario = {
    readonly kind: "generate";
    readonly id: string;
    readonly title: string;
    readonly promptTokens: number;
    /** Share of the prompt after the cursor (0: plain completion at the end of the text). */
    readonly suffixShare: number;
    readonly maxTokens: number;
};
type TypingScenario = {readonly kind: "typing", readonly id: string, readonly title: string, readonly keystrokes: number};
export type Scenario = GenerationScenario | TypingScenario;

/** The code-completion latency scenarios, from issue #7. */
export const benchmarkScenarios: readonly Scenario[] = [
    {kind: "generate", id: "complete-256-128", title: "Completion: 256-token prompt, 128 tokens", promptTokens: 256, suffixShare: 0, maxTokens: 128},
    {kind: "generate", id: "complete-256-1024", title: "Completion: 256-token prompt, 1024 tokens", promptTokens: 256, suffixShare: 0, maxTokens: 1024},
    {kind: "generate", id: "fim-1k", title: "Fill-in-the-middle: 1k-token context, 64 tokens", promptTokens: 1024, suffixShare: 0.2, maxTokens: 64},
    {kind: "generate", id: "fim-2k", title: "Fill-in-the-middle: 2k-token context, 64 tokens", promptTokens: 2048, suffixShare: 0.2, maxTokens: 64},
    {kind: "typing", id: "typing", title: "Typing replay with prefix cache (per keystroke)", keystrokes: 40}
];

export interface BenchmarkOptions {
    readonly engine: EngineClient;
    readonly models: readonly ModelChoice[];
    readonly device: ComputeDevice;
    /** Real code the prompts are cut from (a few thousand lines). */
    readonly sourceText: string;
    readonly repetitions?: number;
    readonly warmup?: number;
    readonly scenarios?: readonly Scenario[];
    readonly signal?: AbortSignal;
    readonly onProgress?: (fraction: number, message: string) => void;
}

function lineStarts(text: string): number[] {
    const starts = [0];
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1))
        starts.push(i + 1);
    return starts;
}

/**
 * A prompt of about `tokens` tokens whose text starts `shift` lines into the source, so that every repetition
 * evaluates its whole prompt (a shared start would be served from the KV cache and hide the prefill).
 */
function promptFor(source: string, starts: readonly number[], scenario: GenerationScenario, shift: number): CompletionPrompt {
    const chars = Math.round(scenario.promptTokens * CHARS_PER_TOKEN);
    const start = starts[(shift * 7) % Math.max(1, starts.length - 1)] ?? 0;
    const text = (source.slice(start) + source).slice(0, chars);
    const cut = Math.round(chars * (1 - scenario.suffixShare));
    return {prefix: text.slice(0, cut), suffix: text.slice(cut), cacheKey: `bench-${scenario.id}-${shift}`};
}

function resultOf(runs: readonly EngineCompletion[]): ScenarioResult {
    return {
        timeToFirstTokenMs: distributionOf(runs.map((run) => run.stats.timeToFirstTokenMs)),
        totalMs: distributionOf(runs.map((run) => run.stats.totalMs)),
        tokensPerSecond: distributionOf(runs.map((run) => Math.max(0, run.stats.generatedTokens - 1) / Math.max(1e-6, (run.stats.totalMs - run.stats.timeToFirstTokenMs) / 1000))),
        promptTokens: Math.round(runs.reduce((sum, run) => sum + run.stats.promptTokens, 0) / Math.max(1, runs.length)),
        evaluatedPromptTokens: distributionOf(runs.map((run) => run.stats.evaluatedPromptTokens)),
        generatedTokens: Math.round(runs.reduce((sum, run) => sum + run.stats.generatedTokens, 0) / Math.max(1, runs.length))
    };
}

/** Types a line of the source one character at a time through the same pipeline the editor uses. */
async function replayTyping(engine: EngineClient, source: string, scenario: TypingScenario, signal?: AbortSignal): Promise<ScenarioResult> {
    const records: RequestRecord[] = [];
    const settings = {...defaultSettings, debounceMs: 0, maxTokens: 32};
    const pipeline = new CompletionPipeline(engine, () => settings, (record) => records.push(record));
    // A position well into the file, at the start of a line that has code on it.
    const anchor = source.indexOf("\n    ", Math.floor(source.length * 0.6)) + 1;
    const lineEnd = source.indexOf("\n", anchor);
    const typed = source.slice(anchor, Math.min(lineEnd, anchor + scenario.keystrokes));
    const base = source.slice(0, anchor) + source.slice(anchor + typed.length);
    for (let i = 1; i <= typed.length; i++) {
        if (signal?.aborted)
            throw new RequestAbortedError();
        await pipeline.complete({key: "bench-typing", text: base.slice(0, anchor) + typed.slice(0, i) + base.slice(anchor), offset: anchor + i}, signal, {skipDebounce: true});
    }
    const served = records.filter((record) => record.result != null);
    const fromModel = served.filter((record) => record.result!.source === "model");
    const latencies = served.map((record) => record.result!.latencyMs);
    return {
        timeToFirstTokenMs: distributionOf(served.map((record) => record.result!.stats?.timeToFirstTokenMs ?? record.result!.latencyMs)),
        totalMs: distributionOf(latencies),
        tokensPerSecond: distributionOf(fromModel.map((record) => {
            const stats = record.result!.stats!;
            return Math.max(0, stats.generatedTokens - 1) / Math.max(1e-6, (stats.totalMs - stats.timeToFirstTokenMs) / 1000);
        })),
        promptTokens: Math.round(fromModel.reduce((sum, record) => sum + record.result!.stats!.promptTokens, 0) / Math.max(1, fromModel.length)),
        evaluatedPromptTokens: distributionOf(fromModel.map((record) => record.result!.stats!.evaluatedPromptTokens)),
        generatedTokens: Math.round(fromModel.reduce((sum, record) => sum + record.result!.stats!.generatedTokens, 0) / Math.max(1, fromModel.length)),
        cacheHitRate: served.length === 0 ? 0 : (served.length - fromModel.length) / served.length
    };
}

/**
 * Runs every scenario on every model, one model loaded at a time, through the engine process the extension uses.
 * Each generation scenario gets warm-up runs, then timed repetitions summarised as median and p95.
 */
export async function runBenchmark(options: BenchmarkOptions): Promise<BenchmarkReport> {
    const {engine, signal} = options;
    const startedAt = new Date().toISOString();
    const scenarios = options.scenarios ?? benchmarkScenarios;
    const repetitions = options.repetitions ?? 5;
    const warmup = options.warmup ?? 1;
    const starts = lineStarts(options.sourceText);
    const models: BenchmarkModel[] = [];
    const results = new Map<string, Record<string, ScenarioResult>>(scenarios.map((scenario) => [scenario.id, {}]));
    const steps = options.models.length * (1 + scenarios.length);
    let step = 0;
    const progress = (message: string) => options.onProgress?.(++step / steps, message);

    for (const choice of options.models) {
        if (signal?.aborted)
            throw new RequestAbortedError();
        const info = await engine.load({modelPath: choice.path, device: options.device, contextSize: 4096, sequences: 4});
        models.push({variant: choice.variant === "custom" ? choice.label : choice.variant, name: info.name, path: choice.path,
            sizeBytes: info.sizeBytes, weightTypes: info.weightTypes, backend: info.backend});
        const variant = models.at(-1)!.variant;
        // Every timed prompt starts at a different line, so none is served from another's cached prefix.
        let promptsUsed = 0;
        progress(`${variant}: loaded`);
        for (const scenario of scenarios) {
            if (scenario.kind === "typing") {
                results.get(scenario.id)![variant] = await replayTyping(engine, options.sourceText, scenario, signal);
            } else {
                const runs: EngineCompletion[] = [];
                for (let run = 0; run < warmup + repetitions; run++) {
                    const completion = await engine.complete(promptFor(options.sourceText, starts, scenario, promptsUsed++),
                        {maxTokens: scenario.maxTokens, stop: [], singleLine: false, temperature: 0, ignoreEndOfText: true}, {signal});
                    if (run >= warmup)
                        runs.push(completion);
                }
                results.get(scenario.id)![variant] = resultOf(runs);
            }
            progress(`${variant}: ${scenario.title}`);
        }
    }
    const cpus = os.cpus();
    return {
        version: 1,
        startedAt,
        machine: {platform: `${os.platform()} ${os.arch()}`, cpu: cpus[0]?.model ?? "unknown", cores: cpus.length},
        device: models.map((model) => model.backend).filter((b, i, all) => all.indexOf(b) === i).join(", "),
        repetitions,
        models,
        scenarios: scenarios.map((scenario): ScenarioReport => ({id: scenario.id, title: scenario.title, results: results.get(scenario.id)!}))
    };
}
