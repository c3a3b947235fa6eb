import {delay} from "../core/abortable.js";
import {CompletionPipeline, type CompletionBackend, type RequestRecord} from "../core/CompletionPipeline.js";
import type {CompletionPrompt, EngineCompletion, GenerationOptions, PrefillResult} from "../core/engineProtocol.js";
import type {CompletionSettings} from "../core/settings.js";
import {applyTypingEvent, cursorAfter, type TypingTrace} from "./generateTypingTrace.js";
import {distributionOf, type Distribution} from "./statistics.js";

export interface TypingReplayOptions {
    readonly trace: TypingTrace;
    readonly backend: CompletionBackend;
    readonly settings: CompletionSettings;
    /** Completion cache, speculative prefill and KV prefix reuse (the backend's prompt cache); on by default. */
    readonly caching?: boolean;
    /**
     * "real-time" (default): keystrokes come at the trace's times (scaled by `speed`) and cancel the request before,
     * as in the editor. "one-by-one": each keystroke waits for the previous answer, so every keystroke is answered and
     * the times measure the backend alone (the way ../shared/baselines measured llama-server).
     */
    readonly pacing?: "real-time" | "one-by-one";
    /** Real time only: replays the trace this many times faster than it was typed (1: as typed). */
    readonly speed?: number;
    /** Every request generates exactly this many tokens (see PipelineOptions.fixedLengthTokens). */
    readonly fixedLengthTokens?: number;
    readonly signal?: AbortSignal;
}

export interface TypingReplayResult {
    /** Text-changing keystrokes; each asked for a completion, as the editor does. */
    readonly requests: number;
    /** Completions shown (non-empty), from the model or the completion cache. */
    readonly shown: number;
    readonly fromCache: number;
    readonly cancelled: number;
    readonly failed: number;
    /** The first failure's message, so a broken backend is not mistaken for a slow one. */
    readonly firstFailure?: string;
    /** Requests the model answered (not cancelled). */
    readonly modelAnswers: number;
    /** Prompt tokens of the answered requests. */
    readonly promptTokens: number;
    /** Of those, tokens run through the model when the request came (the rest were reused from the KV cache). */
    readonly evaluatedPromptTokens: number;
    /** Tokens evaluated ahead during debounce pauses, including pauses a newer keystroke cut short. */
    readonly prefilledTokens: number;
    /**
     * Share of prompt tokens taken from the KV cache instead of evaluated, over every prompt the model was given: an
     * answered request counts once with the tokens its speculative prefill and the request itself evaluated; a
     * prefill whose request a newer keystroke cancelled counts as a prompt of its own.
     */
    readonly reusedPromptShare: number;
    readonly evaluatedTokensPerAnswer: Distribution;
    /** Tokens the model generated per answered request. */
    readonly generatedTokensPerAnswer: Distribution;
    /** From sending the request (after the debounce) to the first generated text. */
    readonly timeToFirstTokenMs: Distribution;
    /** From sending the request (after the debounce) to the whole completion. */
    readonly completionMs: Distribution;
    /** Share of answered keystrokes served from the completion cache. */
    readonly cacheHitRate: number;
}

interface AnswerSample {
    /** Evaluated for this request's prompt during its debounce. */
    readonly prefilledTokens: number;
    readonly timeToFirstTokenMs: number;
    readonly completionMs: number;
    readonly promptTokens: number;
    readonly evaluatedPromptTokens: number;
    readonly generatedTokens: number;
}

/** Times what the pipeline asks of a backend, as seen from the pipeline (IPC or HTTP included). */
class MeasuredBackend implements CompletionBackend {
    public readonly answers: AnswerSample[] = [];
    /** Prefills by prompt (the pipeline passes the same prompt object to a request's prefill and to the request). */
    private readonly prefills = new Map<CompletionPrompt, Promise<PrefillResult>>();
    /** Prefills that an answered request accounted for. */
    private readonly consumed = new Set<CompletionPrompt>();
    public prefilledTokens = 0;
    public readonly prefill?: CompletionBackend["prefill"];

    public constructor(private readonly inner: CompletionBackend) {
        const innerPrefill = inner.prefill?.bind(inner);
        if (innerPrefill != null)
            this.prefill = (prompt, options, signal) => {
                const result = innerPrefill(prompt, options, signal).then((prefilled) => {
                    this.prefilledTokens += prefilled.evaluatedTokens;
                    return prefilled;
                });
                this.prefills.set(prompt, result);
                return result;
            };
    }

    /** Every prompt the model was given, with the tokens it evaluated for it; waits for prefills still running. */
    public async promptsRead(): Promise<{promptTokens: number, evaluatedTokens: number}[]> {
        const prompts = this.answers.map((answer) => ({promptTokens: answer.promptTokens, evaluatedTokens: answer.evaluatedPromptTokens + answer.prefilledTokens}));
        for (const [prompt, result] of this.prefills) {
            const prefilled = await result;
            if (!this.consumed.has(prompt) && prefilled.promptTokens > 0)
                prompts.push({promptTokens: prefilled.promptTokens, evaluatedTokens: prefilled.evaluatedTokens});
        }
        return prompts;
    }

    public async complete(prompt: CompletionPrompt, options: GenerationOptions,
        control: {signal?: AbortSignal, onChunk?: (text: string) => void}): Promise<EngineCompletion> {
        const started = performance.now();
        let firstChunkAt: number | undefined;
        const completion = await this.inner.complete(prompt, options, {
            signal: control.signal,
            onChunk: (text) => {
                firstChunkAt ??= performance.now();
                control.onChunk?.(text);
            }
        });
        const finished = performance.now();
        // The prefill ran before the request in the engine's queue, so it has finished by now.
        const prefilled = this.prefills.has(prompt) ? await this.prefills.get(prompt)! : undefined;
        if (prefilled != null)
            this.consumed.add(prompt);
        this.answers.push({
            prefilledTokens: prefilled?.evaluatedTokens ?? 0,
            timeToFirstTokenMs: (firstChunkAt ?? finished) - started,
            completionMs: finished - started,
            promptTokens: completion.stats.promptTokens,
            evaluatedPromptTokens: completion.stats.evaluatedPromptTokens,
            generatedTokens: completion.stats.generatedTokens
        });
        return completion;
    }
}

/**
 * Replays a typing trace in (scaled) real time through the completion pipeline the extension uses: every keystroke
 * asks for a completion and cancels the previous request, as VS Code does; a cursor move cancels too.
 */
export async function replayTypingTrace(options: TypingReplayOptions): Promise<TypingReplayResult> {
    const {trace, signal} = options;
    const speed = options.speed ?? 1;
    const caching = options.caching ?? true;
    const backend = new MeasuredBackend(options.backend);
    const records: RequestRecord[] = [];
    const pipeline = new CompletionPipeline(backend, () => options.settings, (record) => records.push(record),
        {caching, ...(options.fixedLengthTokens != null ? {fixedLengthTokens: options.fixedLengthTokens} : {})});
    let texts = new Map(trace.files.map((file) => [file.key, file.text]));
    let previous: AbortController | undefined;
    const pending: Promise<unknown>[] = [];
    const started = performance.now();
    const oneByOne = options.pacing === "one-by-one";
    for (const event of trace.events) {
        const wait = started + event.atMs / speed - performance.now();
        if (!oneByOne && wait > 0)
            await delay(wait, signal ?? new AbortController().signal);
        if (signal?.aborted)
            break;
        texts = applyTypingEvent(texts, event);
        previous?.abort();
        previous = undefined;
        if (event.kind === "move")
            continue;
        const controller = new AbortController();
        previous = controller;
        const request = pipeline.complete({key: event.key, text: texts.get(event.key)!, offset: cursorAfter(event)}, controller.signal, {skipDebounce: oneByOne});
        if (oneByOne)
            await request;
        else
            pending.push(request);
    }
    await Promise.all(pending);

    const count = (outcome: RequestRecord["outcome"]) => records.filter((record) => record.outcome === outcome).length;
    const fromCache = count("cached");
    const answers = backend.answers;
    const promptTokens = answers.reduce((sum, answer) => sum + answer.promptTokens, 0);
    const promptsRead = await backend.promptsRead();
    const evaluatedPromptTokens = answers.reduce((sum, answer) => sum + answer.evaluatedPromptTokens, 0);
    return {
        requests: records.length,
        shown: records.filter((record) => (record.outcome === "completed" || record.outcome === "cached") && (record.result?.text.length ?? 0) > 0).length,
        fromCache,
        cancelled: count("cancelled"),
        failed: count("failed"),
        ...failureOf(records),
        modelAnswers: answers.length,
        promptTokens,
        evaluatedPromptTokens,
        prefilledTokens: backend.prefilledTokens,
        reusedPromptShare: reusedShare(promptsRead.reduce((sum, read) => sum + read.promptTokens, 0),
            promptsRead.reduce((sum, read) => sum + read.evaluatedTokens, 0)),
        evaluatedTokensPerAnswer: distributionOf(answers.map((answer) => answer.evaluatedPromptTokens)),
        generatedTokensPerAnswer: distributionOf(answers.map((answer) => answer.generatedTokens)),
        timeToFirstTokenMs: distributionOf(answers.map((answer) => answer.timeToFirstTokenMs)),
        completionMs: distributionOf(answers.map((answer) => answer.completionMs)),
        cacheHitRate: fromCache + answers.length === 0 ? 0 : fromCache / (fromCache + answers.length)
    };
}

function failureOf(records: readonly RequestRecord[]): {firstFailure?: string} {
    const failed = records.find((record) => record.outcome === "failed");
    if (failed == null)
        return {};
    return {firstFailure: failed.error instanceof Error ? failed.error.message : String(failed.error)};
}

function reusedShare(promptTokens: number, evaluatedTokens: number): number {
    return promptTokens === 0 ? 0 : 1 - evaluatedTokens / promptTokens;
}
