import type {LlamaContext} from "node-llama-cpp";

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
}

/** node-llama-cpp's own behaviour: every decode and every sample is a round trip through a libuv worker thread. */
export const STOCK_DECODE_MODE: InlineDecodeMode = {maxTokens: 0, greedyFromLogits: false};
export const INLINE_DECODE_MODE: InlineDecodeMode = {maxTokens: INLINE_DECODE_MAX_TOKENS, greedyFromLogits: true};

interface AddonContextWithInlineDecode {
    setInlineDecode?(maxTokens: number, greedyFromLogits?: boolean): void;
}

/** The native context behind a LlamaContext (node-llama-cpp's internal `_ctx`), if it has our patch's method. */
function inlineDecodeAddon(context: LlamaContext): Required<AddonContextWithInlineDecode> | undefined {
    const addon = (context as unknown as {_ctx?: AddonContextWithInlineDecode})._ctx;
    return typeof addon?.setInlineDecode === "function" ? addon as Required<AddonContextWithInlineDecode> : undefined;
}

/** Whether the loaded addon has our inline-decode patch (native-kernels/patches/node-llama-cpp-addon-inline-decode.diff). */
export function supportsInlineDecode(context: LlamaContext): boolean {
    return inlineDecodeAddon(context) != null;
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
    const addon = inlineDecodeAddon(context);
    if (addon == null)
        return false;
    addon.setInlineDecode(mode.maxTokens, mode.greedyFromLogits);
    return true;
}
