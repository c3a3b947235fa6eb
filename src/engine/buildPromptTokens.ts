import type {CompletionPrompt} from "../core/engineProtocol.js";

export interface PromptTokenizer {
    tokenize(text: string): number[];
    readonly bos: number | null;
    /** Present when the model was trained for fill-in-the-middle. */
    readonly fim?: {readonly prefix: number, readonly suffix: number, readonly middle: number};
}

/** Share of the budget the suffix may take when both sides are too long. */
const SUFFIX_SHARE = 0.25;
/** Share of the budget the line being typed may take; a longer line keeps its end. */
const TYPED_LINE_SHARE = 0.25;

/**
 * Prompt tokens for one request. With fill-in-the-middle tokens the layout is
 * `<pre>text before the cursor's line<suf>suffix<mid>cursor's line up to the cursor`: the line being typed goes last,
 * so a keystroke changes only the prompt's tail and the cached tokens of everything before it (suffix included) stay
 * valid; the model, trained on middles that start anywhere, sees the typed part of the line as the start of the
 * middle it continues. Without FIM tokens the prompt is the prefix alone. Over budget, the suffix is cut at its end
 * and the text before the line at its start, so the text nearest the cursor is kept. User text is tokenized without
 * special tokens: code that spells a control token stays text.
 */
export function buildPromptTokens(tokenizer: PromptTokenizer, prompt: CompletionPrompt, budget: number): number[] {
    const head = tokenizer.bos != null ? [tokenizer.bos] : [];
    if (tokenizer.fim == null) {
        const prefix = tokenizer.tokenize(prompt.prefix);
        return [...head, ...keepEnd(prefix, Math.max(1, budget - head.length))];
    }
    const lineStart = prompt.prefix.lastIndexOf("\n") + 1;
    const room = Math.max(3, budget - head.length - 3);
    const typedLine = keepEnd(tokenizeIfAny(tokenizer, prompt.prefix.slice(lineStart)), Math.floor(room * TYPED_LINE_SHARE));
    let before = tokenizeIfAny(tokenizer, prompt.prefix.slice(0, lineStart));
    let suffix = tokenizeIfAny(tokenizer, prompt.suffix);
    const contextRoom = room - typedLine.length;
    if (before.length + suffix.length > contextRoom) {
        const suffixRoom = Math.max(contextRoom - before.length, Math.floor(contextRoom * SUFFIX_SHARE));
        suffix = suffix.slice(0, suffixRoom);
        before = keepEnd(before, contextRoom - suffix.length);
    }
    const {fim} = tokenizer;
    return [...head, fim.prefix, ...before, fim.suffix, ...suffix, fim.middle, ...typedLine];
}

function tokenizeIfAny(tokenizer: PromptTokenizer, text: string): number[] {
    return text.length > 0 ? tokenizer.tokenize(text) : [];
}

function keepEnd(tokens: number[], count: number): number[] {
    return tokens.length > count ? tokens.slice(tokens.length - Math.max(0, count)) : tokens;
}
