import {delay, linkedAbortController} from "./abortable.js";
import {CompletionCache} from "./CompletionCache.js";
import {cursorContextOf, wantsMultiline} from "./completionShape.js";
import type {CompletionPrompt, CompletionStats, EngineCompletion, GenerationOptions, PrefillResult, StopReason} from "./engineProtocol.js";
import {isAbortError} from "./errors.js";
import {postprocessCompletion} from "./postprocessCompletion.js";
import {PromptWindow, type DocumentSnapshot} from "./PromptWindow.js";
import type {CompletionSettings} from "./settings.js";

/** What the pipeline needs from an engine; EngineClient is the real one. */
export interface CompletionBackend {
    complete(prompt: CompletionPrompt, options: GenerationOptions,
        control: {signal?: AbortSignal, onChunk?: (text: string) => void}): Promise<EngineCompletion>;
    /** Optional: evaluate the prompt while the request waits out its debounce (speculative prefill). */
    prefill?(prompt: CompletionPrompt, options: GenerationOptions, signal?: AbortSignal): Promise<PrefillResult>;
}

export interface CompletionResult {
    readonly text: string;
    readonly source: "cache" | "model";
    readonly multiline: boolean;
    /** From the engine; absent for cache hits. */
    readonly stats?: CompletionStats;
    readonly stopReason?: StopReason;
    /** From the request to the result, debounce included. */
    readonly latencyMs: number;
}

export interface RequestRecord {
    readonly documentKey: string;
    readonly offset: number;
    readonly outcome: "completed" | "cached" | "cancelled" | "empty" | "failed";
    readonly result?: CompletionResult;
    readonly error?: unknown;
}

/** Single-line completions need far fewer tokens than the block budget. */
const SINGLE_LINE_MAX_TOKENS = 64;

export interface PipelineOptions {
    /**
     * Completion cache, speculative prefill and KV-cache prefix reuse in the engine; all on unless a benchmark turns
     * them off to measure what they save.
     */
    readonly caching?: boolean;
    /**
     * Benchmarks only: every request generates exactly this many tokens (no single-line stop, past end-of-text), so a
     * completion's time compares with another backend's fixed-length completion (docs/benchmarks.md, GPU rows).
     */
    readonly fixedLengthTokens?: number;
}

/**
 * The completion pipeline, in stages: cache (exact and typed-ahead) -> debounce -> prompt window -> engine
 * (newest request wins, the previous one is aborted) -> post-processing -> cache. IDE-free: the VS Code adapter
 * and the headless CLI both drive it.
 */
export class CompletionPipeline {
    private readonly cache = new CompletionCache();
    private window: PromptWindow;
    private windowTokens: number;
    private inFlight?: AbortController;

    public constructor(
        private readonly backend: CompletionBackend,
        private readonly settings: () => CompletionSettings,
        private readonly onRequest: (record: RequestRecord) => void = () => undefined,
        private readonly options: PipelineOptions = {}
    ) {
        this.windowTokens = settings().contextTokens;
        this.window = new PromptWindow({contextTokens: this.windowTokens});
    }

    /** Drops cached completions (after a model switch they belong to another model). */
    public clearCache(): void {
        this.cache.clear();
    }

    /** Aborts the request in flight, if any. */
    public cancel(): void {
        this.inFlight?.abort();
    }

    private promptWindow(): PromptWindow {
        const tokens = this.settings().contextTokens;
        if (tokens !== this.windowTokens) {
            this.windowTokens = tokens;
            this.window = new PromptWindow({contextTokens: tokens});
        }
        return this.window;
    }

    /**
     * The completion to show at the document's cursor, or undefined when there is none (disabled, cancelled,
     * superseded by a newer request, or nothing useful generated). Never throws; failures go to `onRequest`.
     */
    public async complete(document: DocumentSnapshot, signal?: AbortSignal, {skipDebounce = false} = {}): Promise<CompletionResult | undefined> {
        const settings = this.settings();
        if (!settings.enabled || signal?.aborted)
            return undefined;
        const started = performance.now();
        const prompt = this.promptWindow().build(document);
        const context = cursorContextOf(prompt.prefix, prompt.suffix);
        const multiline = wantsMultiline(context);
        const lookup = {documentKey: document.key, prefix: document.text.slice(0, document.offset), suffix: prompt.suffix};

        const caching = this.options.caching ?? true;
        const cached = caching ? this.cache.get(lookup) : undefined;
        if (cached != null) {
            const result: CompletionResult = {text: cached.completion, source: "cache", multiline, latencyMs: performance.now() - started};
            this.onRequest({documentKey: document.key, offset: document.offset, outcome: "cached", result});
            return result;
        }

        this.inFlight?.abort();
        const controller = linkedAbortController(signal);
        this.inFlight = controller;
        // BPE vocabularies put whitespace at the start of tokens (" x", "\n    "), so a prompt ending in a newline or
        // spaces ends mid-token and small models go astray. The model gets the prefix without the whitespace of the
        // cursor's line (and the newline before it, when the line is blank) and regenerates it.
        const typedWhitespace = /\n?[ \t]*$/.exec(prompt.prefix)![0];
        const modelPrompt = {...prompt, prefix: prompt.prefix.slice(0, prompt.prefix.length - typedWhitespace.length)};
        const fixedLength = this.options.fixedLengthTokens;
        const options: GenerationOptions = {
            maxTokens: fixedLength ?? (multiline ? settings.maxTokens : Math.min(settings.maxTokens, SINGLE_LINE_MAX_TOKENS)),
            stop: [],
            singleLine: fixedLength == null && !multiline,
            temperature: 0,
            ...(fixedLength != null ? {ignoreEndOfText: true} : {}),
            ...(caching ? {} : {reuseCachedPrefix: false})
        };
        try {
            if (!skipDebounce && settings.debounceMs > 0) {
                // The pause is spent evaluating the prompt; a newer keystroke aborts it with the request.
                if (caching)
                    void this.backend.prefill?.(modelPrompt, options, controller.signal);
                await delay(settings.debounceMs, controller.signal);
            }
            const completion = await this.backend.complete(modelPrompt, options, {signal: controller.signal});
            const text = postprocessCompletion(withoutRetypedWhitespace(completion.text, typedWhitespace), context, multiline);
            const result: CompletionResult = {
                text, source: "model", multiline, stats: completion.stats, stopReason: completion.stopReason,
                latencyMs: performance.now() - started
            };
            if (caching)
                this.cache.set(lookup, text);
            this.onRequest({documentKey: document.key, offset: document.offset, outcome: text.length > 0 ? "completed" : "empty", result});
            return text.length > 0 ? result : undefined;
        } catch (error) {
            this.onRequest({documentKey: document.key, offset: document.offset, outcome: isAbortError(error) ? "cancelled" : "failed", error});
            return undefined;
        } finally {
            if (this.inFlight === controller)
                this.inFlight = undefined;
        }
    }
}

/**
 * Drops from a completion the part of its leading whitespace the user had already typed. A completion that goes on
 * with the previous line although the user started a new one does not fit the cursor and is dropped.
 */
export function withoutRetypedWhitespace(completion: string, typedWhitespace: string): string {
    if (typedWhitespace.startsWith("\n") && !completion.startsWith("\n"))
        return "";
    let shared = 0;
    while (shared < typedWhitespace.length && shared < completion.length && completion[shared] === typedWhitespace[shared])
        shared++;
    return completion.slice(shared);
}
