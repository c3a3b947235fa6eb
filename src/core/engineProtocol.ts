import type {ComputeDevice} from "./settings.js";
import type {EngineErrorCode} from "./errors.js";

/** Bumped whenever a message changes shape; the client refuses an engine that speaks another version. */
export const ENGINE_PROTOCOL_VERSION = 3;

/** The text around the cursor. The engine turns it into tokens (fill-in-the-middle when the model supports it). */
export interface CompletionPrompt {
    readonly prefix: string;
    readonly suffix: string;
    /** Groups requests that share a prompt start (usually the file), so they land on the same cached sequence. */
    readonly cacheKey: string;
}

export interface GenerationOptions {
    readonly maxTokens: number;
    /** Generation stops before any of these strings; it is not part of the result. */
    readonly stop: readonly string[];
    /** Stop at the end of the first line the completion produces (after it has produced some text). */
    readonly singleLine: boolean;
    /** 0 is greedy. */
    readonly temperature: number;
    /** Benchmarks only: keep generating past end-of-text, so every run produces exactly maxTokens tokens. */
    readonly ignoreEndOfText?: boolean;
    /** Benchmarks only: false evaluates the whole prompt, ignoring the tokens a cached sequence already holds. */
    readonly reuseCachedPrefix?: boolean;
}

export interface LoadModelOptions {
    readonly modelPath: string;
    readonly device: ComputeDevice;
    readonly contextSize: number;
    readonly sequences: number;
    /**
     * Prompt-lookup speculative decoding: draft tokens by matching the latest tokens against the prompt (code repeats
     * its own identifiers and lines) and validate the drafts in one batch. Greedy output is unchanged. Off by default:
     * with the bundled models on the CPU only 13-16% of drafts were accepted and decoding got 1.4-2.4x slower
     * (docs/benchmarks.md).
     */
    readonly promptLookup?: boolean;
    /**
     * Decode ahead (GPU only): each sampled token's decode is queued on the GPU before the token is handed back, so the
     * per-token JavaScript (node-llama-cpp's loop, stop rules, streaming) overlaps the next token's compute instead of
     * adding to it. Greedy output is unchanged. Default: on when the model runs on a GPU and prompt lookup is off (true
     * also turns it on for the CPU, where it gains nothing); needs our addon patch. Never on recurrent or hybrid models
     * (their memory cannot drop the token of a decode that was not wanted).
     */
    readonly decodeAhead?: boolean;
    /**
     * Greedy requests (temperature 0) pick each token inside the decode (llama.cpp's backend sampling: an argmax in the
     * decode's graph, on the GPU where the output layer is), so only the token, not the vocabulary's logits, comes back
     * to the host. Default: on where the model runs on a GPU (on the H200 the engine's decode went from 91.1-91.3% to
     * 96.1% of llama-bench with the sparse 8B model, 93.7-94.9% to 96.2-96.3% with Q4_0: docs/benchmarks.md, sessions
     * 18-19, before session 20's decode correctness fix), off on the CPU, where no copy is saved. Needs our addon patch; never with promptLookup (its draft batches
     * ask one sequence for several outputs, and llama.cpp samples one per sequence in a decode).
     */
    readonly greedyInDecode?: boolean;
    /** CPU threads of the context (default: mathThreadsFor the machine's math cores). */
    readonly threads?: number;
}

export interface LoadedModelInfo {
    readonly modelPath: string;
    readonly name: string;
    readonly sizeBytes: number;
    /** "cuda", "vulkan", "metal", or "cpu". */
    readonly backend: string;
    /** A GPU was asked for (or auto found none) and the model runs on the CPU instead; says why. */
    readonly fallbackReason?: string;
    readonly supportsFim: boolean;
    readonly contextSize: number;
    /** Set when the context asked for did not fit in memory and a smaller one (contextSize) is used instead. */
    readonly contextReducedFrom?: number;
    readonly trainContextSize: number;
    readonly weightTypes: readonly string[];
    /** Whether generations decode ahead (LoadModelOptions.decodeAhead). */
    readonly decodeAhead: boolean;
    /** Whether greedy generations pick their tokens inside the decode (LoadModelOptions.greedyInDecode, and the backend
     *  runs llama.cpp's greedy sampler). */
    readonly greedyInDecode: boolean;
}

export type StopReason = "eos" | "max-tokens" | "stop-string" | "single-line" | "aborted" | "context-full";

/** What decoding ahead did (LoadModelOptions.decodeAhead): decodes queued right after a token was sampled, those the
 * next step took over (the generation went on), and those removed again (it stopped, or other input came next). */
export interface DecodeAheadCounts {
    readonly queued: number;
    readonly adopted: number;
    readonly rolledBack: number;
}

export interface CompletionStats {
    readonly promptTokens: number;
    /** Prompt tokens actually run through the model (the rest came from the KV cache). */
    readonly evaluatedPromptTokens: number;
    readonly generatedTokens: number;
    readonly timeToFirstTokenMs: number;
    readonly totalMs: number;
    /** Of the time after the first token, what the loop spent waiting for the next token (decode and sampling); the rest
     *  is the engine's own work between tokens (detokenizing, stop rules, sending text). Engine completions only. */
    readonly tokenWaitMs?: number;
    /** From the start to the last generated token's arrival; totalMs minus this is what the request spent after it (the
     *  final text, ending the evaluation). Engine completions only. */
    readonly lastTokenMs?: number;
    /** Prompt-lookup drafts during this generation: validated (accepted by the model) and refuted. */
    readonly draftTokens?: {readonly validated: number, readonly refuted: number};
    /** Decode ahead during this request (when on). */
    readonly decodedAhead?: DecodeAheadCounts;
}

export interface PrefillResult {
    /** Tokens of the prompt (all but its last are in the KV cache afterwards). */
    readonly promptTokens: number;
    /** Tokens evaluated now; the rest were already cached. */
    readonly evaluatedTokens: number;
}

export interface EngineCompletion {
    readonly text: string;
    readonly stopReason: StopReason;
    readonly stats: CompletionStats;
}

export type ClientMessage =
    | {readonly type: "load", readonly id: number, readonly options: LoadModelOptions}
    | {readonly type: "unload", readonly id: number}
    | {readonly type: "complete", readonly id: number, readonly prompt: CompletionPrompt, readonly options: GenerationOptions}
    | {readonly type: "prefill", readonly id: number, readonly prompt: CompletionPrompt, readonly options: GenerationOptions}
    | {readonly type: "abort", readonly id: number}
    | {readonly type: "shutdown"};

export type EngineMessage =
    | {readonly type: "hello", readonly protocolVersion: number, readonly pid: number}
    | {readonly type: "progress", readonly id: number, readonly fraction: number}
    | {readonly type: "loaded", readonly id: number, readonly info: LoadedModelInfo}
    | {readonly type: "unloaded", readonly id: number}
    | {readonly type: "chunk", readonly id: number, readonly text: string}
    | {readonly type: "completed", readonly id: number, readonly completion: EngineCompletion}
    | {readonly type: "prefilled", readonly id: number, readonly result: PrefillResult}
    | {readonly type: "failed", readonly id: number, readonly code: EngineErrorCode, readonly message: string}
    | {readonly type: "log", readonly level: "info" | "warn" | "error", readonly message: string};
