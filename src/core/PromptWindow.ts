import type {CompletionPrompt} from "./engineProtocol.js";

export interface DocumentSnapshot {
    /** Identifies the document (its URI); prompts of one document share a cached sequence. */
    readonly key: string;
    readonly text: string;
    /** Cursor position as an offset into `text`. */
    readonly offset: number;
}

export interface PromptWindowOptions {
    /** Prompt tokens for prefix and suffix together. */
    readonly contextTokens: number;
    /** Rough characters per token, used to turn the token budget into a text window (the engine enforces tokens exactly). */
    readonly charsPerToken?: number;
}

/** Share of the budget spent on text after the cursor. */
const SUFFIX_SHARE = 0.2;
/** When the window start must move, it moves this share of the prefix budget ahead in one step. */
const STEP_SHARE = 0.25;
const DEFAULT_CHARS_PER_TOKEN = 3.2;
const REMEMBERED_DOCUMENTS = 64;

function lineStartAtOrAfter(text: string, offset: number): number {
    if (offset <= 0)
        return 0;
    if (text[offset - 1] === "\n")
        return offset;
    const newline = text.indexOf("\n", offset);
    return newline < 0 ? offset : newline + 1;
}

/**
 * Chooses the text window around the cursor under a token budget. The window's start is remembered per document
 * and moves only in coarse steps, so while the user types the prompt's start stays byte-identical and the engine
 * reuses its cached tokens; the end of the suffix is cut at a line end for the same reason.
 */
export class PromptWindow {
    private readonly starts = new Map<string, {lineIndex: number, lineText: string}>();

    public constructor(private readonly options: PromptWindowOptions) {}

    public build(document: DocumentSnapshot): CompletionPrompt {
        const charsPerToken = this.options.charsPerToken ?? DEFAULT_CHARS_PER_TOKEN;
        const budgetChars = Math.floor(this.options.contextTokens * charsPerToken);
        const suffixChars = Math.floor(budgetChars * SUFFIX_SHARE);
        const prefixChars = budgetChars - suffixChars;
        const {text, offset} = document;

        const start = this.windowStart(document, prefixChars);
        let end = Math.min(text.length, offset + suffixChars);
        if (end < text.length) {
            const lastNewline = text.lastIndexOf("\n", end);
            end = lastNewline > offset ? lastNewline + 1 : end;
        }
        return {prefix: text.slice(start, offset), suffix: text.slice(offset, end), cacheKey: document.key};
    }

    private windowStart(document: DocumentSnapshot, prefixChars: number): number {
        const {text, offset, key} = document;
        if (offset <= prefixChars) {
            this.starts.delete(key);
            return 0;
        }
        const remembered = this.starts.get(key);
        if (remembered != null) {
            const start = findLine(text, remembered.lineIndex, remembered.lineText);
            // Keep the remembered start while the prefix still fits and has not shrunk far below the budget.
            if (start != null && start <= offset && offset - start <= prefixChars && offset - start >= prefixChars * (1 - 2 * STEP_SHARE))
                return this.remember(key, text, start);
        }
        // Move the start so that a step's worth of typing fits before it has to move again.
        const start = lineStartAtOrAfter(text, offset - Math.floor(prefixChars * (1 - STEP_SHARE)));
        return this.remember(key, text, Math.min(start, offset));
    }

    private remember(key: string, text: string, start: number): number {
        this.starts.delete(key);
        if (this.starts.size >= REMEMBERED_DOCUMENTS)
            this.starts.delete(this.starts.keys().next().value!);
        const lineIndex = countLines(text, start);
        const lineEnd = text.indexOf("\n", start);
        this.starts.set(key, {lineIndex, lineText: text.slice(start, lineEnd < 0 ? text.length : lineEnd)});
        return start;
    }
}

function countLines(text: string, end: number): number {
    let lines = 0;
    for (let i = text.indexOf("\n"); i >= 0 && i < end; i = text.indexOf("\n", i + 1))
        lines++;
    return lines;
}

/** Offset of the line that was at `lineIndex` with `lineText`, looking a few lines around in case lines were added above. */
function findLine(text: string, lineIndex: number, lineText: string): number | undefined {
    const lineStarts: number[] = [0];
    for (let i = text.indexOf("\n"); i >= 0 && lineStarts.length <= lineIndex + 8; i = text.indexOf("\n", i + 1))
        lineStarts.push(i + 1);
    for (const delta of [0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8]) {
        const start = lineStarts[lineIndex + delta];
        if (start == null)
            continue;
        const end = text.indexOf("\n", start);
        if (text.slice(start, end < 0 ? text.length : end) === lineText)
            return start;
    }
    return undefined;
}
