import {CompletionPipeline, type RequestRecord} from "../core/CompletionPipeline.js";
import {EngineClient} from "../core/EngineClient.js";
import {contextSizeFor} from "../core/ModelSession.js";
import {parseSettings} from "../core/settings.js";
import {loadSparseLlama} from "../native/loadSparseLlama.js";
import type {CompletionScores, EvaluationReport, ModelEvaluation, PositionRecord, Recovery} from "./EvaluationReport.js";
import type {HeldOutPackage} from "./fetchHeldOutCode.js";
import {measurePerplexity} from "./measurePerplexity.js";
import type {EvaluationModel} from "./readEvaluationModels.js";
import type {CompletionPosition, CursorKind} from "./sampleCompletionPositions.js";
import {scoreLineCompletion, type LineCompletionScore} from "./scoreLineCompletion.js";

export interface EvaluationOptions {
    /** dist/engineHost.mjs: completions run in the extension's engine process, through its pipeline. */
    readonly engineEntry: string;
    readonly models: readonly EvaluationModel[];
    readonly packages: readonly HeldOutPackage[];
    readonly positions: readonly CompletionPosition[];
    readonly seed: number;
    readonly device: "auto" | "gpu" | "cpu";
    /** Perplexity: each sampled file's first this many tokens. */
    readonly perplexityWindowTokens: number;
    /** The maxTokens setting (default the extension's): only the first line is scored, so less suffices and is faster. */
    readonly maxTokens?: number;
    /** The model recovery is measured against; default the first model. */
    readonly baseline?: string;
    readonly onProgress?: (message: string) => void;
}

function scoresOf(scores: readonly LineCompletionScore[]): CompletionScores {
    const n = scores.length;
    const mean = (value: (score: LineCompletionScore) => number) => n === 0 ? Number.NaN : scores.reduce((sum, s) => sum + value(s), 0) / n;
    return {
        positions: n,
        exactMatch: mean((s) => s.exactMatch ? 1 : 0),
        editSimilarity: mean((s) => s.editSimilarity),
        empty: mean((s) => s.predictedLine.length === 0 ? 1 : 0)
    };
}

function groupScores<K extends string>(positions: readonly CompletionPosition[], scores: readonly LineCompletionScore[], key: (p: CompletionPosition) => K): Record<K, CompletionScores> {
    const groups = new Map<K, LineCompletionScore[]>();
    positions.forEach((position, i) => groups.set(key(position), [...groups.get(key(position)) ?? [], scores[i]!]));
    return Object.fromEntries([...groups].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, scoresOf(v)])) as Record<K, CompletionScores>;
}

/** Completes every position with one model through the extension's pipeline (greedy), as the editor would. */
async function completePositions(engine: EngineClient, model: EvaluationModel, options: EvaluationOptions) {
    const {settings: parsed, problems} = parseSettings({device: options.device, maxTokens: options.maxTokens});
    if (problems.length > 0)
        throw new Error(problems.join("; "));
    const settings = {...parsed, debounceMs: 0};
    const info = await engine.load({modelPath: model.path, device: settings.device, contextSize: contextSizeFor(settings), sequences: 1});
    let record: RequestRecord | undefined;
    // One pipeline for all positions, so its prompt window moves through each file as it does in the editor.
    const pipeline = new CompletionPipeline(engine, () => settings, (r) => { record = r; });
    const completions: string[] = [];
    let latencyMs = 0, evaluatedPromptTokens = 0, generatedTokens = 0;
    for (const [i, position] of options.positions.entries()) {
        // Each position stands alone: no completion cached from a neighbouring one may answer it.
        pipeline.clearCache();
        record = undefined;
        const started = performance.now();
        await pipeline.complete({key: position.file.path, text: position.documentText, offset: position.offset}, undefined, {skipDebounce: true});
        latencyMs += performance.now() - started;
        const outcome = record as RequestRecord | undefined;
        if (outcome == null || outcome.outcome === "failed" || outcome.outcome === "cancelled")
            throw new Error(`${model.name} ${outcome?.outcome ?? "gave no answer"} at ${position.file.path}:${position.line}:${position.column}` +
                (outcome?.error != null ? `: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}` : ""));
        completions.push(outcome.result?.text ?? "");
        evaluatedPromptTokens += outcome.result?.stats?.evaluatedPromptTokens ?? 0;
        generatedTokens += outcome.result?.stats?.generatedTokens ?? 0;
        if ((i + 1) % 25 === 0)
            options.onProgress?.(`${model.name}: ${i + 1}/${options.positions.length} completions`);
    }
    const perPosition = (total: number) => options.positions.length > 0 ? total / options.positions.length : Number.NaN;
    return {info, completions, settings, meanLatencyMs: perPosition(latencyMs), meanEvaluatedPromptTokens: perPosition(evaluatedPromptTokens),
        meanGeneratedTokens: perPosition(generatedTokens)};
}

function recoveryOf(model: ModelEvaluation, baseline: ModelEvaluation, modelScores: readonly LineCompletionScore[],
    baselineScores: readonly LineCompletionScore[]): Recovery {
    let onlyModel = 0, onlyBaseline = 0;
    modelScores.forEach((score, i) => {
        if (score.exactMatch && !baselineScores[i]!.exactMatch)
            onlyModel++;
        else if (!score.exactMatch && baselineScores[i]!.exactMatch)
            onlyBaseline++;
    });
    return {
        model: model.name,
        baseline: baseline.name,
        exactMatch: percentOf(model.completion.exactMatch, baseline.completion.exactMatch),
        editSimilarity: percentOf(model.completion.editSimilarity, baseline.completion.editSimilarity),
        perplexity: percentOf(baseline.perplexity.perplexity, model.perplexity.perplexity),
        exactMatchOnlyModel: onlyModel,
        exactMatchOnlyBaseline: onlyBaseline
    };
}

/**
 * Evaluates each model on the sampled positions (next-line exact match and edit similarity of what the extension
 * would show, greedy) and on the sampled files (left-to-right perplexity), and each model's recovery relative to
 * the baseline. Models run one after another: first completions in the engine process, then perplexity here.
 */
export async function runEvaluation(options: EvaluationOptions): Promise<EvaluationReport> {
    const started = performance.now();
    const progress = options.onProgress ?? (() => undefined);
    const files = [...new Map(options.positions.map((p) => [p.file.path, p.file])).values()];
    const engine = new EngineClient({enginePath: options.engineEntry, log: (level, message) => {
        if (level === "error")
            progress(message);
    }});
    const llama = await loadSparseLlama({gpu: options.device === "cpu" ? false : options.device === "gpu" ? "cuda" : "auto"});
    const models: ModelEvaluation[] = [];
    const scoresByModel = new Map<string, LineCompletionScore[]>();
    let settings: {contextTokens: number, maxTokens: number} | undefined;
    try {
        for (const model of options.models) {
            progress(`${model.name}: ${options.positions.length} completions (${model.path})`);
            const completed = await completePositions(engine, model, options);
            settings = completed.settings;
            const scores = options.positions.map((position, i) => scoreLineCompletion(completed.completions[i]!, position.expected));
            scoresByModel.set(model.name, scores);
            await engine.unload();
            progress(`${model.name}: perplexity over ${files.length} files`);
            const perplexity = await measurePerplexity(llama, model.path, files.map((file) => file.text), {windowTokens: options.perplexityWindowTokens});
            models.push({
                name: model.name, path: model.path, weightTypes: completed.info.weightTypes, backend: completed.info.backend,
                completion: {
                    ...scoresOf(scores),
                    byKind: groupScores<CursorKind>(options.positions, scores, (p) => p.kind),
                    byLanguage: groupScores(options.positions, scores, (p) => p.file.language),
                    meanLatencyMs: completed.meanLatencyMs,
                    meanEvaluatedPromptTokens: completed.meanEvaluatedPromptTokens,
                    meanGeneratedTokens: completed.meanGeneratedTokens
                },
                perplexity
            });
        }
    } finally {
        await engine.dispose();
        await llama.dispose();
    }
    const baseline = models.find((m) => m.name === (options.baseline ?? models[0]?.name));
    const recovery = baseline == null ? [] : models.filter((m) => m !== baseline)
        .map((m) => recoveryOf(m, baseline, scoresByModel.get(m.name)!, scoresByModel.get(baseline.name)!));
    const positions: PositionRecord[] = options.positions.map((p, i) => ({
        file: p.file.path, line: p.line, column: p.column, kind: p.kind, language: p.file.language, expected: p.expected,
        predicted: Object.fromEntries(models.map((m) => [m.name, scoresByModel.get(m.name)![i]!.predictedLine]))
    }));
    return {
        createdAt: new Date().toISOString(),
        seed: options.seed,
        data: {
            packages: options.packages.map((p) => ({source: p.source, name: p.name, version: p.version, files: p.files.length})),
            positions: options.positions.length,
            files: files.length,
            perplexityWindowTokens: options.perplexityWindowTokens
        },
        settings: {device: options.device, contextTokens: settings?.contextTokens ?? 0, maxTokens: settings?.maxTokens ?? 0, temperature: 0},
        models, recovery, positions,
        elapsedSeconds: (performance.now() - started) / 1000
    };
}

/** 100 * part / whole; NaN (shown as "n/a") when the whole is 0, e.g. a baseline that matched nothing. */
function percentOf(part: number, whole: number): number {
    return whole > 0 ? 100 * part / whole : NaN;
}
