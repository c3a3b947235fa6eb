import type {LlamaContext, LlamaContextSequence} from "node-llama-cpp";
import type {DecodeAheadCounts} from "../core/engineProtocol.js";

/**
 * Batches of at most this many tokens are decoded on the engine's JavaScript thread: generation (1 token a step),
 * prompt-lookup drafts (up to 3) and the typed-line tail of a cached prompt. Larger batches (a prompt's prefill) still
 * run on a libuv worker, so the engine keeps answering while they run.
 */
export const INLINE_DECODE_MAX_TOKENS = 8;

/** How node-llama-cpp's native context decodes and samples a small batch. */
export interface InlineDecodeMode {
    /** Batches of at most this many tokens are decoded, and every token sampled, on the calling thread (0: never). */
    readonly maxTokens: number;
    /** Plain greedy sampling takes the highest logit directly instead of building a vocabulary-sized candidate list. */
    readonly greedyFromLogits: boolean;
    /** Each sampled token's decode is queued before the token is returned (see setDecodeAhead); needs maxTokens > 0. */
    readonly decodeAhead: boolean;
    /** Greedy tokens are picked inside the decode, on the GPU where the output layer runs (see setGreedyInDecode). */
    readonly greedyInDecode: boolean;
}

/** node-llama-cpp's own behaviour: every decode and every sample is a round trip through a libuv worker thread. */
export const STOCK_DECODE_MODE: InlineDecodeMode = {maxTokens: 0, greedyFromLogits: false, decodeAhead: false, greedyInDecode: false};
export const INLINE_DECODE_MODE: InlineDecodeMode = {maxTokens: INLINE_DECODE_MAX_TOKENS, greedyFromLogits: true, decodeAhead: false, greedyInDecode: false};
/** Inline decode, and each token's decode queued on the GPU while JavaScript handles the token (the engine's GPU mode). */
export const PIPELINED_DECODE_MODE: InlineDecodeMode = {...INLINE_DECODE_MODE, decodeAhead: true};
/** Pipelined, and each greedy token picked on the GPU, so no logits are copied to the host (the engine's greedyInDecode). */
export const SAMPLED_IN_DECODE_MODE: InlineDecodeMode = {...PIPELINED_DECODE_MODE, greedyInDecode: true};

interface PatchedAddonContext {
    setInlineDecode?(maxTokens: number, greedyFromLogits?: boolean): void;
    setDecodeAhead?(tokens: number): void;
    getDecodeAheadStats?(): Uint32Array;
    setBackendGreedy?(sequenceId: number, enabled: boolean): boolean;
}

/** The native context behind a LlamaContext (node-llama-cpp's internal `_ctx`), with our patches' methods if built in. */
function nativeContext(context: LlamaContext): PatchedAddonContext | undefined {
    return (context as unknown as {_ctx?: PatchedAddonContext})._ctx;
}

/** Whether the loaded addon has our inline-decode patch (native-kernels/patches/node-llama-cpp-addon-inline-decode.diff). */
export function supportsInlineDecode(context: LlamaContext): boolean {
    return typeof nativeContext(context)?.setInlineDecode === "function";
}

/**
 * Sets how a context decodes small batches. Without the patch (node-llama-cpp's prebuilt binary) nothing changes and
 * false is returned. Greedy outputs are identical in every mode; only the thread the work runs on differs.
 *
 * Why (docs/benchmarks.md, "Decode through node-llama-cpp"): node-llama-cpp runs each token's llama_decode and its
 * sampling as two asynchronous native calls, each queued to a libuv worker thread and resolved back on the JavaScript
 * thread, and fills a vocabulary-sized candidate array before a greedy pick: about half of the per-token time the
 * loop added to llama_decode. Small decodes on one thread also share one OpenMP team instead of one per libuv worker.
 */
export function setInlineDecode(context: LlamaContext, mode: InlineDecodeMode = INLINE_DECODE_MODE): boolean {
    const addon = nativeContext(context);
    if (typeof addon?.setInlineDecode !== "function")
        return false;
    addon.setInlineDecode(mode.maxTokens, mode.greedyFromLogits);
    return true;
}

/** Whether the loaded addon has our decode-ahead patch (native-kernels/patches/node-llama-cpp-addon-pipelined-decode.diff). */
export function supportsDecodeAhead(context: LlamaContext): boolean {
    return typeof nativeContext(context)?.setDecodeAhead === "function";
}

/**
 * Lets the next `tokens` tokens sampled in inline mode be decoded ahead: right after a token is sampled, its one-token
 * decode is queued (on a GPU it runs while the call returns), and node-llama-cpp's following decode of exactly that
 * token only waits for it; any other call on the context first rolls the queued decode back (synchronize, then remove
 * its KV cell), so a generation that stops early leaves the sequence as it would have been. Give the number of tokens
 * the caller may still ask for after the next one, so the last is not decoded for nothing; 0 turns it off. On the CPU
 * the queued decode runs inside the sampling call and gains nothing. Returns false without the patch.
 */
export function setDecodeAhead(context: LlamaContext, tokens: number): boolean {
    const addon = nativeContext(context);
    if (typeof addon?.setDecodeAhead !== "function")
        return false;
    addon.setDecodeAhead(Math.max(0, Math.floor(tokens)));
    return true;
}

/** What decoding ahead did in a context so far (undefined without the patch). */
export function decodeAheadStats(context: LlamaContext): DecodeAheadCounts | undefined {
    const counts = nativeContext(context)?.getDecodeAheadStats?.();
    return counts == null ? undefined : {queued: counts[0]!, adopted: counts[1]!, rolledBack: counts[2]!};
}

/** Whether the loaded addon has our sampling-in-decode patch (native-kernels/patches/node-llama-cpp-addon-sampling-in-decode.diff). */
export function supportsGreedyInDecode(context: LlamaContext): boolean {
    return typeof nativeContext(context)?.setBackendGreedy === "function";
}

/**
 * Makes plain greedy sampling of one sequence (temperature 0, no penalties, bias or grammar) happen inside its decode:
 * llama.cpp's backend sampling appends an argmax to the decode's graph, so on a GPU the token is picked there and only
 * the token is copied back, instead of the vocabulary-sized logits (513 KB per token for Llama 3's 128k vocabulary)
 * followed by an argmax on the CPU. The sequence then has no logits on the host: turn this off before sampling it any
 * other way (the addon refuses with an error rather than sample from nothing). Changing it makes llama.cpp re-reserve
 * its graph on the next decode, so set it when the sampling settings change, not per token. Returns whether the
 * sequence now samples in the decode (false without the patch, or where the backend cannot run the argmax). A decode
 * may then ask such a sequence for one output only (llama.cpp's default n_outputs_max_per_seq), so not with drafts
 * validated in one batch (prompt lookup). Disposing of the sequence detaches it (node-llama-cpp gives its id to the
 * next sequence; one collected without dispose() keeps it attached). Ties: on the GPU the first of equal logits wins,
 * as on the host; ggml's CPU argmax keeps the last.
 */
export function setGreedyInDecode(sequence: LlamaContextSequence, enabled: boolean): boolean {
    const addon = nativeContext(sequence.context);
    // node-llama-cpp's internal id of the sequence in its context (what llama.cpp calls seq_id)
    const sequenceId = (sequence as unknown as {_sequenceId?: number})._sequenceId;
    if (typeof addon?.setBackendGreedy !== "function" || typeof sequenceId !== "number")
        return false;
    const attached = addon.setBackendGreedy(sequenceId, enabled);
    if (attached && !detachesOnDispose.has(sequence)) {
        detachesOnDispose.add(sequence);
        // onDispose runs before node-llama-cpp hands the id back; a disposed context has nothing left to detach
        sequence.onDispose.createListener(() => {
            if (!sequence.context.disposed)
                addon.setBackendGreedy?.(sequenceId, false);
        });
    }
    return attached;
}
const detachesOnDispose = new WeakSet<LlamaContextSequence>();
