import type {CompletionPrompt} from "../core/engineProtocol.js";

export interface PromptTokenizer {
    tokenize(text: string): number[];
    readonly bos: number | null;
    /** Present when the model was trained for fill-in-the-middle. */
    readonly fim?: {readonly prefix: number, readonly suffix: number, readonly middle: number};
}

/** Share of the budget the suffix may take when both sides are too long. */
const SUFFIX_SHARE = 0.25;

/**
 * Prompt tokens for one request: PSM fill-in-the-middle (`<pre>prefix<suf>suffix<mid>`) when the model has FIM
 * tokens, else the prefix alone. Over budget, the suffix is cut at its end and the prefix at its start, so the text
 * nearest the cursor is kept. User text is tokenized without special tokens: code that spells a control token
 * stays text.
 */
export function buildPromptTokens(tokenizer: PromptTokenizer, prompt: CompletionPrompt, budget: number): number[] {
    const head = tokenizer.bos != null ? [tokenizer.bos] : [];
    let prefix = tokenizer.tokenize(prompt.prefix);
    if (tokenizer.fim == null) {
        const room = Math.max(1, budget - head.length);
        if (prefix.length > room)
            prefix = prefix.slice(prefix.length - room);
        return [...head, ...prefix];
    }
    let suffix = prompt.suffix.length > 0 ? tokenizer.tokenize(prompt.suffix) : [];
    const room = Math.max(2, budget - head.length - 3);
    if (prefix.length + suffix.length > room) {
        const suffixRoom = Math.max(room - prefix.length, Math.floor(room * SUFFIX_SHARE));
        if (suffix.length > suffixRoom)
            suffix = suffix.slice(0, suffixRoom);
        const prefixRoom = room - suffix.length;
        if (prefix.length > prefixRoom)
            prefix = prefix.slice(prefix.length - prefixRoom);
    }
    const {fim} = tokenizer;
    return [...head, fim.prefix, ...prefix, fim.suffix, ...suffix, fim.middle];
}
