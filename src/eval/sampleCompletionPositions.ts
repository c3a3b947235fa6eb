import type {HeldOutFile, HeldOutPackage} from "./fetchHeldOutCode.js";
import {SeededRandom} from "./SeededRandom.js";

/** Where the cursor is put: after the indentation (the whole line is to be completed), or inside the line after a non-word character. */
export type CursorKind = "line-start" | "mid-line";

export interface CompletionPosition {
    readonly file: HeldOutFile;
    readonly packageName: string;
    /** 1-based, like an editor shows it. */
    readonly line: number;
    readonly column: number;
    readonly kind: CursorKind;
    /** The rest of the line after the cursor (trailing whitespace dropped): what the completion should produce. */
    readonly expected: string;
    /** The file with `expected` removed, as the editor holds it when the user is about to type it; the cursor is at `offset`. */
    readonly documentText: string;
    readonly offset: number;
}

export interface SampleOptions {
    readonly count: number;
    readonly seed: number;
    /** Positions taken from each sampled file (several per file, in file order, as a user moves through it). */
    readonly positionsPerFile?: number;
}

const WORD_CHARACTER = /[A-Za-z0-9_$]/;
const HAS_ALPHANUMERIC = /[A-Za-z0-9]/;

interface LineSpan {
    readonly index: number;
    readonly start: number;
    readonly end: number;
}

function linesOf(text: string): LineSpan[] {
    const lines: LineSpan[] = [];
    let start = 0;
    for (let index = 0; start <= text.length; index++) {
        const newline = text.indexOf("\n", start);
        const end = newline < 0 ? text.length : newline;
        lines.push({index, start, end});
        start = end + 1;
    }
    return lines;
}

/** Cursor offsets inside a line where a user plausibly pauses: after a non-word character, with a word or symbol still to come. */
function midLineCursors(text: string, line: LineSpan, contentStart: number, contentEnd: number): number[] {
    const cursors: number[] = [];
    for (let at = contentStart + 1; at < contentEnd; at++)
        if (!WORD_CHARACTER.test(text[at - 1]!) && !/\s/.test(text[at]!) && HAS_ALPHANUMERIC.test(text.slice(at, line.end)))
            cursors.push(at);
    return cursors;
}

function positionAt(file: HeldOutFile, packageName: string, line: LineSpan, cursor: number, kind: CursorKind): CompletionPosition {
    const {text} = file;
    return {
        file, packageName, kind,
        line: line.index + 1,
        column: cursor - line.start + 1,
        expected: text.slice(cursor, line.end).trimEnd(),
        documentText: text.slice(0, cursor) + text.slice(line.end),
        offset: cursor
    };
}

/**
 * A deterministic sample of completion positions: packages take turns (so no one package dominates), files are
 * drawn at random within a package, and in each file `positionsPerFile` lines with some alphanumeric content are
 * drawn; half of the cursors go after the indentation, half inside the line. The rest of the line is masked.
 */
export function sampleCompletionPositions(packages: readonly HeldOutPackage[], options: SampleOptions): CompletionPosition[] {
    const random = new SeededRandom(options.seed);
    const perFile = Math.max(1, options.positionsPerFile ?? 4);
    const queues = random.shuffled(packages.filter((p) => p.files.length > 0))
        .map((p) => ({name: p.name, files: random.shuffled(p.files)}));
    const positions: CompletionPosition[] = [];
    while (positions.length < options.count && queues.some((queue) => queue.files.length > 0)) {
        for (const queue of queues) {
            const file = queue.files.shift();
            if (file == null || positions.length >= options.count)
                continue;
            const candidates = linesOf(file.text).filter((line) => HAS_ALPHANUMERIC.test(file.text.slice(line.start, line.end)));
            const chosen = random.shuffled(candidates).slice(0, Math.min(perFile, options.count - positions.length))
                .sort((a, b) => a.index - b.index);
            for (const line of chosen) {
                const content = file.text.slice(line.start, line.end);
                const contentStart = line.start + (content.length - content.trimStart().length);
                const contentEnd = line.start + content.trimEnd().length;
                const mid = random.next() < 0.5 ? midLineCursors(file.text, line, contentStart, contentEnd) : [];
                positions.push(mid.length > 0
                    ? positionAt(file, queue.name, line, mid[random.integer(mid.length)]!, "mid-line")
                    : positionAt(file, queue.name, line, contentStart, "line-start"));
            }
        }
    }
    return positions;
}
