import {InputLookupTokenPredictor, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token} from "node-llama-cpp";
import type {CompletionPrompt, DecodeAheadCounts, EngineCompletion, GenerationOptions, LoadedModelInfo, LoadModelOptions, PrefillResult, StopReason} from "../core/engineProtocol.js";
import {EngineError, RequestAbortedError} from "../core/errors.js";
import {inspectModelFile} from "../core/inspectModelFile.js";
import {mathThreadsFor} from "../core/mathThreads.js";
import {StopRuleMatcher} from "../core/StopRuleMatcher.js";
import {loadLlamaRuntime, type LlamaRuntime} from "./loadLlamaRuntime.js";
import {SequencePool} from "./SequencePool.js";
import {buildPromptTokens, tokenizesLineStartsApart, type PromptTokenizer} from "./buildPromptTokens.js";
import {memoizeTokenize} from "./memoizeTokenize.js";
import {GgmlType, ggmlTypeName} from "../gguf/ggmlTypes.js";
import {decodeAheadStats, setDecodeAhead, setGreedyInDecode, setInlineDecode, supportsDecodeAhead} from "./inlineDecode.js";

type Logger = (level: "info" | "warn" | "error", message: string) => void;

interface LoadedModel {
    readonly runtime: LlamaRuntime;
    readonly model: LlamaModel;
    readonly context: LlamaContext;
    readonly pool: SequencePool<LlamaContextSequence>;
    readonly tokenizer: PromptTokenizer;
    readonly stopTokens: ReadonlySet<Token>;
    readonly info: LoadedModelInfo;
}

const MIN_CONTEXT_SIZE = 512;
/** Context kept free for generation in every request: the default multi-line budget (settings.maxTokens). */
const GENERATION_RESERVE = 128;

/** node-llama-cpp behind a small API: one model, one context, a pool of cached sequences, one generation at a time. */
export class CompletionEngine {
    private loaded?: LoadedModel;
    /** Serialises generations and loads: llama.cpp contexts are not re-entrant. */
    private queue: Promise<unknown> = Promise.resolve();

    /** llama.cpp's error lines during a load: they say why it failed ("missing tensor ..."); node-llama-cpp's error does not. */
    private nativeErrors: string[] = [];
    private readonly log: Logger;

    public constructor(log: Logger) {
        this.log = (level, message) => {
            if (level === "error")
                this.nativeErrors.push(message);
            log(level, message);
        };
    }

    /** The first specific reason llama.cpp gave, skipping its generic "failed to load model" lines. */
    private nativeErrorReason(): string | undefined {
        return this.nativeErrors.find((line) => !/failed to load model/i.test(line)) ?? this.nativeErrors[0];
    }

    private exclusive<T>(task: () => Promise<T>): Promise<T> {
        const result = this.queue.then(task, task);
        this.queue = result.catch(() => undefined);
        return result;
    }

    public load(options: LoadModelOptions, onProgress: (fraction: number) => void): Promise<LoadedModelInfo> {
        return this.exclusive(async () => {
            await this.unloadNow();
            const summary = await inspectModelFile(options.modelPath);
            let runtime = await loadLlamaRuntime(options.device, this.log);
            let model: LlamaModel;
            try {
                model = await this.loadModelOn(runtime, options, summary.weightTypes, onProgress);
            } catch (error) {
                if (options.device !== "auto" || runtime.llama.gpu === false)
                    throw error;
                this.log("warn", `loading on the GPU failed (${(error as Error).message}); retrying on the CPU`);
                await runtime.llama.dispose();
                runtime = await loadLlamaRuntime("cpu", this.log);
                runtime = {...runtime, fallbackReason: `loading on the GPU failed: ${(error as Error).message}`};
                model = await this.loadModelOn(runtime, options, summary.weightTypes, onProgress);
            }
            const {context, reducedFrom} = await this.createContext(model, options);
            // Each generated token is decoded and sampled on this thread, not through two libuv round trips (our addon
            // patch; a no-op on node-llama-cpp's prebuilt binary).
            if (!setInlineDecode(context) && runtime.hasSparseType)
                this.log("warn", "our llama.cpp build lacks the inline-decode addon patch (rebuild with `node native-kernels/build.mjs`); decoding through node-llama-cpp's worker round trips");
            // Default on a GPU only: on the CPU the decode queued ahead runs inside the sampling call (no overlap, and
            // each token reaches JavaScript one decode later); tests turn it on there to check it changes no output.
            // Not with prompt lookup either: a draft batch after a token throws the queued decode of that token away.
            const decodeAhead = supportsDecodeAhead(context) &&
                (options.decodeAhead ?? (runtime.llama.gpu !== false && options.promptLookup !== true));
            const sequences = Array.from({length: context.totalSequences}, () => context.getSequence({
                tokenPredictor: options.promptLookup === true ? createPromptLookupPredictor() : undefined
            }));
            const fim = model.tokens.infill;
            const tokenize = memoizeTokenize((text) => model.tokenize(text, false) as number[]);
            const tokenizer: PromptTokenizer = {
                tokenize,
                splitsAtLineStart: tokenizesLineStartsApart(tokenize),
                bos: model.tokens.shouldPrependBosToken ? model.tokens.bos : null,
                fim: fim.prefix != null && fim.suffix != null && fim.middle != null
                    ? {prefix: fim.prefix, suffix: fim.suffix, middle: fim.middle}
                    : undefined
            };
            const stopTokens = new Set<Token>([fim.prefix, fim.suffix, fim.middle, model.tokens.eos, model.tokens.eot]
                .filter((token): token is Token => token != null));
            const info: LoadedModelInfo = {
                modelPath: options.modelPath,
                name: summary.name,
                sizeBytes: summary.sizeBytes,
                backend: runtime.llama.gpu === false ? "cpu" : runtime.llama.gpu,
                fallbackReason: runtime.fallbackReason,
                supportsFim: tokenizer.fim != null,
                contextSize: context.contextSize,
                ...(reducedFrom != null ? {contextReducedFrom: reducedFrom} : {}),
                trainContextSize: model.trainContextSize,
                weightTypes: summary.weightTypes,
                decodeAhead,
                // On a GPU unless asked otherwise (LoadModelOptions.greedyInDecode says why), and never with prompt
                // lookup, whose draft batches ask one sequence for several outputs (llama.cpp samples one per sequence in
                // a decode). Attached to the first sequence here: whether the backend can run the sampler is the same for all.
                greedyInDecode: (options.greedyInDecode ?? runtime.llama.gpu !== false) && options.promptLookup !== true &&
                    setGreedyInDecode(sequences[0]!, true)
            };
            this.loaded = {runtime, model, context, pool: new SequencePool(sequences), tokenizer, stopTokens, info};
            return info;
        });
    }

    private async loadModelOn(runtime: LlamaRuntime, options: LoadModelOptions, weightTypes: readonly string[],
        onProgress: (fraction: number) => void): Promise<LlamaModel> {
        const sparse = weightTypes.includes(ggmlTypeName(GgmlType.Q4_S24));
        if (sparse && !runtime.hasSparseType)
            throw new EngineError("model-load-failed", `${options.modelPath} has 2:4 sparse (Q4_S24) weights, but the llama.cpp build ` +
                "with the sparse kernels is missing; build it with `npm run build:native`, or switch to the dense model");
        this.nativeErrors = [];
        try {
            return await runtime.llama.loadModel({
                modelPath: options.modelPath,
                gpuLayers: runtime.llama.gpu === false ? 0 : "max",
                // Sparse blocks are validated on load (NaN scales, bad positions), so a corrupt file is refused, not run.
                checkTensors: sparse,
                onLoadProgress: onProgress
            });
        } catch (error) {
            const nativeError = this.nativeErrorReason();
            const reason = nativeError != null ? ` (${nativeError.replace(/^[a-z_]+: /, "")})` : "";
            throw new EngineError("model-load-failed", `llama.cpp could not load ${options.modelPath}: ${(error as Error).message}${reason}`);
        }
    }

    /** Halves the context until it fits: a small context that works beats an error. */
    private async createContext(model: LlamaModel, options: LoadModelOptions): Promise<{context: LlamaContext, reducedFrom?: number}> {
        const wanted = Math.min(options.contextSize, model.trainContextSize || options.contextSize);
        let contextSize = wanted;
        for (;;) {
            try {
                const context = await model.createContext({
                    contextSize,
                    sequences: options.sequences,
                    batchSize: Math.min(contextSize, 1024),
                    threads: options.threads ?? mathThreadsFor(model.llama.cpuMathCores)
                });
                return contextSize < wanted ? {context, reducedFrom: wanted} : {context};
            } catch (error) {
                if (contextSize / 2 < MIN_CONTEXT_SIZE)
                    throw new EngineError("out-of-memory", `not enough memory for a ${contextSize}-token context: ${(error as Error).message}`);
                this.log("warn", `a ${contextSize}-token context did not fit (${(error as Error).message}); trying ${contextSize / 2}`);
                contextSize /= 2;
            }
        }
    }

    public unload(): Promise<void> {
        return this.exclusive(() => this.unloadNow());
    }

    private async unloadNow(): Promise<void> {
        const loaded = this.loaded;
        this.loaded = undefined;
        if (loaded == null)
            return;
        await loaded.context.dispose();
        await loaded.model.dispose();
        await loaded.runtime.llama.dispose();
    }

    public complete(prompt: CompletionPrompt, options: GenerationOptions, signal: AbortSignal, onChunk: (text: string) => void): Promise<EngineCompletion> {
        return this.exclusive(async () => {
            if (signal.aborted)
                throw new RequestAbortedError();
            const loaded = this.loaded;
            if (loaded == null)
                throw new EngineError("not-loaded", "no model is loaded");
            return this.generate(loaded, prompt, options, signal, onChunk);
        });
    }

    /**
     * Speculative prefill: evaluates a prompt, all but its last token, into the sequence that will serve it, so the
     * request that follows the debounce pause only evaluates that token and generates.
     */
    public prefill(prompt: CompletionPrompt, options: GenerationOptions, signal: AbortSignal): Promise<PrefillResult> {
        return this.exclusive(async () => {
            const loaded = this.loaded;
            if (signal.aborted || loaded == null)
                return {promptTokens: 0, evaluatedTokens: 0};
            const {sequence, tokens, keep} = await this.prepareSequence(loaded, prompt, options);
            const rest = tokens.slice(keep, tokens.length - 1);
            if (rest.length > 0)
                await sequence.evaluateWithoutGeneratingNewTokens(rest as Token[]);
            return {promptTokens: tokens.length, evaluatedTokens: rest.length};
        });
    }

    /** The sequence for a prompt with everything after the reusable cached prefix erased, and the prompt's tokens. */
    private async prepareSequence(loaded: LoadedModel, prompt: CompletionPrompt, options: GenerationOptions) {
        const maxTokens = Math.max(1, Math.min(options.maxTokens, loaded.context.contextSize - 16));
        // The prompt budget must not depend on the request (single-line requests generate fewer tokens than
        // multi-line ones): a budget that changes would cut the prompt elsewhere and lose the cached tokens.
        const reserve = Math.min(Math.max(maxTokens, GENERATION_RESERVE), loaded.context.contextSize - 16);
        const tokens = buildPromptTokens(loaded.tokenizer, prompt, loaded.context.contextSize - reserve);
        const {sequence, reusableTokens} = loaded.pool.acquire(tokens);
        // At least the last prompt token is evaluated again: its logits are what the first new token is sampled from.
        const keep = options.reuseCachedPrefix === false ? 0 : Math.min(reusableTokens, tokens.length - 1);
        if (sequence.nextTokenIndex > keep)
            await sequence.eraseContextTokenRanges([{start: keep, end: sequence.nextTokenIndex}]);
        return {sequence, tokens, keep, maxTokens};
    }

    private async generate(loaded: LoadedModel, prompt: CompletionPrompt, options: GenerationOptions, signal: AbortSignal,
        onChunk: (text: string) => void): Promise<EngineCompletion> {
        const started = performance.now();
        // Before the sequence is prepared: a decode the previous request left queued is rolled back there, and counted here.
        const aheadBefore = loaded.info.decodeAhead ? decodeAheadStats(loaded.context) : undefined;
        const {sequence, tokens, keep, maxTokens} = await this.prepareSequence(loaded, prompt, options);
        // Only greedy requests: any other sampler needs the logits, which a sequence sampling in the decode never copies.
        if (loaded.info.greedyInDecode)
            setGreedyInDecode(sequence, options.temperature === 0);

        const matcher = new StopRuleMatcher(options.stop, options.singleLine);
        const generated: Token[] = [];
        let released = "";
        let stopReason: StopReason = "max-tokens";
        let firstTokenAt: number | undefined;
        let lastTokenAt: number | undefined;
        const draftsBefore = sequence.tokenPredictions;
        // The lookup predictor drafts from the tokens it is given; the whole prompt, not only its uncached tail.
        sequence.tokenPredictor?.updateInputTokens?.(tokens as Token[]);
        // yieldEogToken: without it node-llama-cpp ends the iteration silently at end-of-text, which would report "max-tokens"
        // and make ignoreEndOfText impossible; the loop below decides what end-of-text means.
        const iterator = sequence.evaluate(tokens.slice(keep) as Token[], {temperature: options.temperature, seed: 1, yieldEogToken: true});
        let tokenWaitMs = 0;
        let workDoneAt: number | undefined;
        try {
            for await (const token of iterator) {
                const receivedAt = performance.now();
                lastTokenAt = receivedAt;
                if (workDoneAt != null)
                    tokenWaitMs += receivedAt - workDoneAt;
                if (firstTokenAt == null) {
                    firstTokenAt = receivedAt;
                    // From the second token on: queueing the first token's decode before handing it back would put that
                    // decode's CPU-side launch (a graph that is not reused after the prompt's batch) before the first
                    // token, which is what the user waits for. The last of maxTokens tokens is never decoded at all.
                    if (loaded.info.decodeAhead)
                        setDecodeAhead(loaded.context, maxTokens - 2);
                }
                if (!options.ignoreEndOfText && (loaded.stopTokens.has(token) || loaded.model.isEogToken(token))) {
                    stopReason = "eos";
                    break;
                }
                generated.push(token);
                const verdict = matcher.check(withoutSplitCharacter(loaded.model.detokenize(generated)));
                if (verdict.releasable.length > released.length && verdict.releasable.startsWith(released)) {
                    onChunk(verdict.releasable.slice(released.length));
                    released = verdict.releasable;
                }
                if (verdict.stop != null) {
                    released = verdict.releasable;
                    stopReason = verdict.stop;
                    break;
                }
                if (signal.aborted) {
                    stopReason = "aborted";
                    break;
                }
                if (generated.length >= maxTokens)
                    break;
                if (sequence.nextTokenIndex >= sequence.contextSize - 1) {
                    stopReason = "context-full";
                    break;
                }
                workDoneAt = performance.now();
            }
        } finally {
            // No budget is left to the next request, whose first token must not be decoded ahead (see above).
            setDecodeAhead(loaded.context, 0);
            await iterator.return();
        }
        if (stopReason !== "stop-string" && stopReason !== "single-line") {
            // Nothing more will come, so a tail held back as a possible stop string is final text.
            const text = withoutSplitCharacter(loaded.model.detokenize(generated));
            if (text.length > released.length && text.startsWith(released))
                onChunk(text.slice(released.length));
            released = text;
        }
        const finished = performance.now();
        const draftsAfter = sequence.tokenPredictions;
        const aheadAfter = aheadBefore != null ? decodeAheadStats(loaded.context) : undefined;
        return {
            text: released,
            stopReason,
            stats: {
                promptTokens: tokens.length,
                evaluatedPromptTokens: tokens.length - keep,
                generatedTokens: generated.length,
                timeToFirstTokenMs: (firstTokenAt ?? finished) - started,
                totalMs: finished - started,
                tokenWaitMs,
                lastTokenMs: (lastTokenAt ?? finished) - started,
                ...(sequence.tokenPredictor == null ? {} : {draftTokens: {
                    validated: draftsAfter.validated - draftsBefore.validated,
                    refuted: draftsAfter.refuted - draftsBefore.refuted
                }}),
                ...(aheadBefore != null && aheadAfter != null ? {decodedAhead: statsBetween(aheadBefore, aheadAfter)} : {})
            }
        };
    }

    public async dispose(): Promise<void> {
        await this.unload();
    }
}

/** Drafts come from the prompt after a match of at least 4 tokens, 2 at a time: a refuted draft costs a wider batch. */
function createPromptLookupPredictor(): InputLookupTokenPredictor {
    return new InputLookupTokenPredictor({patternLength: {min: 4}, predictionLength: {max: 2}});
}

function statsBetween(before: DecodeAheadCounts, after: DecodeAheadCounts): DecodeAheadCounts {
    return {queued: after.queued - before.queued, adopted: after.adopted - before.adopted, rolledBack: after.rolledBack - before.rolledBack};
}

/** Holds back a multi-byte character split across tokens until its last byte arrives. */
function withoutSplitCharacter(text: string): string {
    return text.endsWith("\uFFFD") ? text.slice(0, -1) : text;
}
