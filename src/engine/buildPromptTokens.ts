import type {CompletionPrompt} from "../core/engineProtocol.js";

export interface PromptTokenizer {
    tokenize(text: string): readonly number[];
    readonly bos: number | null;
    /** Present when the model was trained for fill-in-the-middle. */
    readonly fim?: {readonly prefix: number, readonly suffix: number, readonly middle: number};
    /**
     * False when a text tokenized in two pieces split at a line start can differ from the text tokenized whole (see
     * tokenizesLineStartsApart); a prompt without FIM tokens is then tokenized whole.
     */
    readonly splitsAtLineStart?: boolean;
}

/** Texts whose line starts are where BPE pre-tokenizers and SentencePiece's added leading space could disagree. */
const LINE_START_PROBES = ["a\n    b", "x = 1;\n\tfoo(y)", "}\n\n  return", "if (a) {\n        // b\n", "a\r\n b"];

/**
 * Whether tokenizing at line starts gives the tokens of the whole text, probed once per vocabulary: true for the
 * bundled deepseek-coder and Llama 3's vocabularies (2151 positions in six files), false for SentencePiece
 * vocabularies that add a leading space to every call (Llama 2, Mistral).
 */
export function tokenizesLineStartsApart(tokenize: (text: string) => readonly number[]): boolean {
    return LINE_START_PROBES.every((text) => {
        const lineStart = text.lastIndexOf("\n") + 1;
        const apart = [...tokenize(text.slice(0, lineStart)), ...tokenize(text.slice(lineStart))];
        const whole = tokenize(text);
        return apart.length === whole.length && apart.every((token, i) => token === whole[i]);
    });
}

/** Share of the budget the suffix may take when both sides are too long. */
const SUFFIX_SHARE = 0.25;
/** Share of the budget the line being typed may take; a longer line keeps its end. */
const TYPED_LINE_SHARE = 0.25;
/**
 * Over budget, the text before the line loses its start in steps of this share of the budget, not token by token, so
 * that the prompt's start stays the same while lines are added and its cached tokens stay valid.
 */
const CUT_STEP_SHARE = 1 / 8;

/**
 * Prompt tokens for one request. With fill-in-the-middle tokens the layout is
 * `<pre>text before the cursor's line<suf>suffix<mid>cursor's line up to the cursor`: the line being typed goes last,
 * so a keystroke changes only the prompt's tail and the cached tokens of everything before it (suffix included) stay
 * valid; the model, trained on middles that start anywhere, sees the typed part of the line as the start of the
 * middle it continues. Without FIM tokens the prompt is the prefix alone, tokenized in two pieces split at the start
 * of the cursor's line when the vocabulary allows it (tokenizesLineStartsApart), so the unchanged piece can come
 * from the tokenizer's memo. Over budget, the suffix is cut at its end
 * and the text before the line at its start (in coarse steps), so the text nearest the cursor is kept; the room for
 * the text before the line does not depend on the typed line's length, so typing never moves that cut. User text is tokenized without
 * special tokens: code that spells a control token stays text.
 */
export function buildPromptTokens(tokenizer: PromptTokenizer, prompt: CompletionPrompt, budget: number): number[] {
    const head = tokenizer.bos != null ? [tokenizer.bos] : [];
    if (tokenizer.fim == null && tokenizer.splitsAtLineStart === false)
        return [...head, ...keepEnd(tokenizeIfAny(tokenizer, prompt.prefix), Math.max(1, budget - head.length))];
    const lineStart = prompt.prefix.lastIndexOf("\n") + 1;
    const beforeLine = tokenizeIfAny(tokenizer, prompt.prefix.slice(0, lineStart));
    const typedLine = tokenizeIfAny(tokenizer, prompt.prefix.slice(lineStart));
    if (tokenizer.fim == null)
        return [...head, ...keepEnd([...beforeLine, ...typedLine], Math.max(1, budget - head.length))];
    const room = Math.max(3, budget - head.length - 3);
    const typedLineRoom = Math.floor(room * TYPED_LINE_SHARE);
    let before = beforeLine;
    let suffix = tokenizeIfAny(tokenizer, prompt.suffix);
    const contextRoom = room - typedLineRoom;
    if (before.length + suffix.length > contextRoom) {
        suffix = suffix.slice(0, Math.max(contextRoom - before.length, Math.floor(contextRoom * SUFFIX_SHARE)));
        const excess = before.length - (contextRoom - suffix.length);
        if (excess > 0) {
            const step = Math.max(1, Math.floor(room * CUT_STEP_SHARE));
            before = before.slice(Math.min(before.length, Math.ceil(excess / step) * step));
        }
    }
    const {fim} = tokenizer;
    return [...head, fim.prefix, ...before, fim.suffix, ...suffix, fim.middle, ...keepEnd(typedLine, typedLineRoom)];
}

function tokenizeIfAny(tokenizer: PromptTokenizer, text: string): readonly number[] {
    return text.length > 0 ? tokenizer.tokenize(text) : [];
}

function keepEnd(tokens: readonly number[], count: number): readonly number[] {
    return tokens.length > count ? tokens.slice(tokens.length - Math.max(0, count)) : tokens;
}
