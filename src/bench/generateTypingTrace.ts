import {SeededRandom} from "../eval/SeededRandom.js";

/**
 * Typing traces for the replay benchmark: a person retyping parts of real files, keystroke by keystroke, with
 * realistic pauses, typos fixed with backspace, an edit a few dozen lines above the cursor and back, and switches
 * between files. Deterministic for a seed, so runs (and engines) replay the same keystrokes.
 */

export interface TraceFile {
    /** Identifies the document (like its URI). */
    readonly key: string;
    /** Its text before the trace starts (the parts to be retyped are missing). */
    readonly text: string;
}

/** One editor event; `atMs` counts from the start of the trace. */
export type TypingEvent =
    /** Inserts `text` at `offset` of file `key`, cursor after it (a keystroke, or Enter with the editor's indentation). */
    | {readonly kind: "type", readonly atMs: number, readonly key: string, readonly offset: number, readonly text: string}
    /** Backspace: deletes the character before `offset`. */
    | {readonly kind: "delete", readonly atMs: number, readonly key: string, readonly offset: number}
    /** Puts the cursor at `offset` of file `key` (a click, or a switch to another file); no text changes. */
    | {readonly kind: "move", readonly atMs: number, readonly key: string, readonly offset: number};

export interface TypingTrace {
    readonly seed: number;
    readonly files: readonly TraceFile[];
    readonly events: readonly TypingEvent[];
}

/** The documents after `event`, and the cursor's file and offset. */
export function applyTypingEvent(texts: ReadonlyMap<string, string>, event: TypingEvent): Map<string, string> {
    const next = new Map(texts);
    const text = texts.get(event.key);
    if (text == null)
        throw new Error(`the trace edits ${event.key}, which it does not list`);
    if (event.offset < 0 || event.offset > text.length || (event.kind === "delete" && event.offset === 0))
        throw new Error(`a ${event.kind} event at offset ${event.offset} is outside ${event.key} (${text.length} characters)`);
    if (event.kind === "type")
        next.set(event.key, text.slice(0, event.offset) + event.text + text.slice(event.offset));
    else if (event.kind === "delete")
        next.set(event.key, text.slice(0, event.offset - 1) + text.slice(event.offset));
    return next;
}

/** Where the cursor is after `event`. */
export function cursorAfter(event: TypingEvent): number {
    return event.kind === "type" ? event.offset + event.text.length : event.kind === "delete" ? event.offset - 1 : event.offset;
}

export interface TypingTraceOptions {
    readonly seed?: number;
    /** Stop after about this many text-changing keystrokes. */
    readonly keystrokes?: number;
}

interface Region {
    /** Line index of the first retyped line. */
    readonly startLine: number;
    readonly lines: readonly string[];
}

/** A session retypes a block of lines and, sometimes, one line above it (an import, a declaration) midway. */
interface Session {
    readonly fileIndex: number;
    readonly block: Region;
    readonly above?: Region;
}

const NEIGHBOUR_KEYS = "qwertyuiopasdfghjklzxcvbnm";

export function generateTypingTrace(sources: readonly TraceFile[], options: TypingTraceOptions = {}): TypingTrace {
    if (sources.length === 0)
        throw new Error("a typing trace needs at least one source file");
    const seed = options.seed ?? 1;
    const targetKeystrokes = options.keystrokes ?? 300;
    // Seeded, never Math.random: the same seed must give the same keystrokes on every machine.
    const prng = new SeededRandom(seed);
    const random = () => prng.next();
    const between = (low: number, high: number) => low + (high - low) * random();
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;

    const lines = sources.map((file) => file.text.split("\n"));
    const sessions = planSessions(lines, targetKeystrokes, random);
    // Remove every retyped line from the starting text; the trace types them back.
    const removed = sources.map(() => new Set<number>());
    for (const session of sessions)
        for (const region of [session.block, session.above])
            region?.lines.forEach((_, i) => removed[session.fileIndex]!.add(region.startLine + i));
    const documents = lines.map((fileLines, f) => fileLines.filter((_, i) => !removed[f]!.has(i)));
    const files = sources.map((file, f) => ({key: file.key, text: documents[f]!.join("\n")}));
    // Line i of the original file sits at this line of the current document (removed lines count once retyped).
    const present = removed.map((set) => new Set<number>([...set]));

    const events: TypingEvent[] = [];
    const text = files.map((file) => file.text);
    let clock = 0;
    let keystrokes = 0;
    const currentLineOf = (f: number, originalLine: number) => {
        let line = originalLine;
        for (const missing of present[f]!)
            if (missing < originalLine)
                line--;
        return line;
    };
    const offsetOfLine = (f: number, line: number) => {
        let offset = 0;
        for (let i = 0; i < line; i++) {
            const newline = text[f]!.indexOf("\n", offset);
            offset = newline < 0 ? text[f]!.length : newline + 1;
        }
        return offset;
    };
    const emit = (event: TypingEvent) => {
        events.push(event);
        if (event.kind === "type") {
            const f = files.findIndex((file) => file.key === event.key);
            text[f] = text[f]!.slice(0, event.offset) + event.text + text[f]!.slice(event.offset);
            keystrokes++;
        } else if (event.kind === "delete") {
            const f = files.findIndex((file) => file.key === event.key);
            text[f] = text[f]!.slice(0, event.offset - 1) + text[f]!.slice(event.offset);
            keystrokes++;
        }
    };
    const keyDelay = () => Math.min(600, Math.max(35, Math.exp(between(Math.log(70), Math.log(260)))));

    /** Types a region's lines back in at its place; returns the cursor offset after it. */
    const typeRegion = (f: number, region: Region, fromLine = 0, toLine = region.lines.length) => {
        const key = files[f]!.key;
        for (let i = fromLine; i < toLine && keystrokes < targetKeystrokes; i++) {
            const originalLine = region.startLine + i;
            const line = region.lines[i]!;
            const indent = /^[ \t]*/.exec(line)![0];
            // The line is missing: open it (Enter at the end of the line above, with the editor's indentation).
            const lineIndex = currentLineOf(f, originalLine);
            let offset: number;
            if (lineIndex === 0) {
                offset = 0;
                emit({kind: "type", atMs: clock += between(150, 900), key, offset, text: `${indent}\n`});
                offset = indent.length;
            } else {
                offset = offsetOfLine(f, lineIndex) - 1;
                emit({kind: "type", atMs: clock += between(150, 900), key, offset, text: `\n${indent}`});
                offset += 1 + indent.length;
            }
            present[f]!.delete(originalLine);
            for (const character of line.slice(indent.length)) {
                if (keystrokes >= targetKeystrokes)
                    break;
                if (/[a-z]/.test(character) && random() < 0.03) {
                    // A typo noticed one or two keys later and fixed with backspace.
                    const wrong = [pick([...NEIGHBOUR_KEYS]), ...(random() < 0.5 ? [character] : [])];
                    for (const typo of wrong) {
                        emit({kind: "type", atMs: clock += keyDelay(), key, offset, text: typo});
                        offset++;
                    }
                    for (let k = 0; k < wrong.length; k++) {
                        emit({kind: "delete", atMs: clock += between(90, 180), key, offset});
                        offset--;
                    }
                }
                emit({kind: "type", atMs: clock += keyDelay(), key, offset, text: character});
                offset++;
                // Now and then a pause to think or to read a suggestion.
                if (random() < 0.02)
                    clock += between(800, 2500);
            }
        }
    };

    let lastFile = -1;
    for (const session of sessions) {
        if (keystrokes >= targetKeystrokes)
            break;
        const f = session.fileIndex;
        const key = files[f]!.key;
        if (f !== lastFile) {
            // Switching files: the cursor lands where the next block goes.
            const line = currentLineOf(f, session.block.startLine);
            emit({kind: "move", atMs: clock += between(1000, 3000), key, offset: Math.max(0, offsetOfLine(f, line) - 1)});
            lastFile = f;
        }
        const half = session.above != null ? Math.max(1, Math.floor(session.block.lines.length / 2)) : session.block.lines.length;
        typeRegion(f, session.block, 0, half);
        if (session.above != null) {
            emit({kind: "move", atMs: clock += between(600, 1500), key,
                offset: Math.max(0, offsetOfLine(f, currentLineOf(f, session.above.startLine)) - 1)});
            typeRegion(f, session.above);
            const back = currentLineOf(f, session.block.startLine + half);
            emit({kind: "move", atMs: clock += between(600, 1500), key, offset: Math.max(0, offsetOfLine(f, back) - 1)});
            typeRegion(f, session.block, half);
        }
    }
    return {seed, files, events};
}

/** Blocks of 2-6 code lines in the lower part of files, in a shuffled file order, enough for the keystroke target. */
function planSessions(lines: readonly (readonly string[])[], targetKeystrokes: number, random: () => number): Session[] {
    const sessions: Session[] = [];
    const taken = lines.map(() => new Set<number>());
    let characters = 0;
    let attempts = 0;
    const isCode = (line: string | undefined) => line != null && line.trim().length > 2 && line.length < 120;
    let fileIndex = Math.floor(random() * lines.length);
    while (characters < targetKeystrokes * 1.2 && attempts++ < 1000) {
        // People work in one file for a while: a switch before about one block in three.
        if (random() < 0.3)
            fileIndex = Math.floor(random() * lines.length);
        const fileLines = lines[fileIndex]!;
        if (fileLines.length < 40) {
            fileIndex = Math.floor(random() * lines.length);
            continue;
        }
        const count = 2 + Math.floor(random() * 5);
        const startLine = Math.floor(fileLines.length * (0.35 + 0.6 * random()));
        const blockLines = fileLines.slice(startLine, startLine + count);
        if (blockLines.length < count || !blockLines.every(isCode) || blockLines.some((_, i) => taken[fileIndex]!.has(startLine + i)))
            continue;
        let above: Region | undefined;
        if (random() < 0.35) {
            const aboveLine = startLine - 10 - Math.floor(random() * 40);
            if (aboveLine > 0 && isCode(fileLines[aboveLine]) && !taken[fileIndex]!.has(aboveLine))
                above = {startLine: aboveLine, lines: [fileLines[aboveLine]!]};
        }
        // Neighbouring lines stay in place so that each session's lines are retyped between unchanged text.
        for (let i = startLine - 1; i <= startLine + count; i++)
            taken[fileIndex]!.add(i);
        if (above != null)
            for (let i = above.startLine - 1; i <= above.startLine + 1; i++)
                taken[fileIndex]!.add(i);
        sessions.push({fileIndex, block: {startLine, lines: blockLines}, above});
        characters += [...blockLines, ...(above?.lines ?? [])].reduce((sum, line) => sum + line.trim().length + 1, 0);
    }
    return sessions;
}
