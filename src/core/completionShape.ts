/** What the text around the cursor says about the completion wanted there. */
export interface CursorContext {
    /** Text of the cursor's line before the cursor. */
    readonly linePrefix: string;
    /** Text of the cursor's line after the cursor. */
    readonly lineSuffix: string;
    /** The lines after the cursor's line (at most a few dozen are looked at). */
    readonly followingLines: readonly string[];
    /** The last non-blank line before the cursor's line. */
    readonly previousLine: string;
}

const BLOCK_OPENER = /(?:[{([:]|=>|\bdo|\bthen|\belse)\s*$/;

export function cursorContextOf(prefix: string, suffix: string, maxFollowingLines = 40): CursorContext {
    const lineStart = prefix.lastIndexOf("\n") + 1;
    const lineEnd = suffix.indexOf("\n");
    const followingLines = lineEnd < 0 ? [] : suffix.slice(lineEnd + 1).split("\n", maxFollowingLines);
    const before = prefix.slice(0, lineStart).trimEnd();
    return {
        linePrefix: prefix.slice(lineStart),
        lineSuffix: lineEnd < 0 ? suffix : suffix.slice(0, lineEnd),
        followingLines,
        previousLine: before.slice(before.lastIndexOf("\n") + 1)
    };
}

/**
 * Multi-line completions are offered where a block or statement list can start: at the end of an empty or
 * block-opening line. In the middle of a line, or after a finished statement, one line is enough.
 */
export function wantsMultiline(context: CursorContext): boolean {
    if (context.lineSuffix.trim().length > 0 && !/^[)\]}'"`;,]*\s*$/.test(context.lineSuffix))
        return false;
    const before = context.linePrefix;
    return before.trim().length === 0 || BLOCK_OPENER.test(before);
}
