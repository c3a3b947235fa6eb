import type {CursorContext} from "./completionShape.js";

function indentationOf(line: string): number {
    return line.length - line.trimStart().length;
}

/**
 * Cleans up a raw completion before it is shown:
 * - stops where the text after the cursor begins (no duplicated closing brackets or lines),
 * - drops lines that repeat the lines that follow the cursor, and leading lines that repeat the line above it,
 * - ends a multi-line completion where its block ends (a line indented less than where it started),
 * - removes trailing whitespace; returns "" when nothing useful is left.
 */
export function postprocessCompletion(raw: string, context: CursorContext, multiline: boolean): string {
    let text = raw.replace(/\r\n/g, "\n");
    // In the middle of a statement, a completion that jumps to a new line abandons what the user is typing.
    if (!multiline && context.linePrefix.trim().length > 0 && /^[ \t]*\n/.test(text))
        return "";
    if (!multiline) {
        const newline = text.search(/\S/) < 0 ? -1 : text.indexOf("\n", text.search(/\S/));
        if (newline >= 0)
            text = text.slice(0, newline);
    }

    // The rest of the cursor's line is already there: cut where the completion starts to repeat it.
    const restOfLine = context.lineSuffix.trim();
    if (restOfLine.length > 0) {
        const firstLineEnd = text.indexOf("\n") < 0 ? text.length : text.indexOf("\n");
        const at = text.slice(0, firstLineEnd).lastIndexOf(restOfLine);
        if (at >= 0 && text.slice(0, firstLineEnd).slice(at).trim() === restOfLine)
            text = text.slice(0, at);
    }

    let lines = text.split("\n");
    // Small models often start by restating the line above (a signature, a loop header) before the real body.
    const previous = context.previousLine.trim();
    if (context.linePrefix.trim().length === 0 && previous.length > 0 && lines.length > 1 && lines[0]!.trim() === previous) {
        while (lines.length > 1 && lines[0]!.trim() === previous)
            lines = lines.slice(1);
        // The new first line goes at the cursor, after the indentation already typed there.
        const typedIndent = context.linePrefix;
        lines[0] = lines[0]!.startsWith(typedIndent) ? lines[0]!.slice(typedIndent.length) : lines[0]!.trimStart();
    }
    const nextLine = context.followingLines.find((line) => line.trim().length > 0)?.trim();
    const baseIndent = context.linePrefix.trim().length === 0 ? context.linePrefix.length : indentationOf(context.linePrefix);
    const kept: string[] = [lines[0]!];
    for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const trimmed = line.trim();
        // The completion reached the code that already follows the cursor.
        if (nextLine != null && trimmed === nextLine)
            break;
        // A line indented less than the cursor's block closes an outer scope the user did not ask for.
        if (trimmed.length > 0 && indentationOf(line) < baseIndent && !/^[)\]}]/.test(trimmed))
            break;
        kept.push(line);
        if (trimmed.length > 0 && indentationOf(line) < baseIndent)
            break;
    }
    // Whitespace at a line's end is dropped; before text that follows on the cursor's line it is meaningful.
    const lastLineContinues = context.lineSuffix.trim().length > 0;
    lines = kept.map((line, i) => (lastLineContinues && i === kept.length - 1 ? line : line.trimEnd()));
    while (lines.length > 1 && lines[lines.length - 1]!.length === 0)
        lines.pop();
    // A completion that only retypes the next line adds nothing.
    if (lines.length === 1 && nextLine != null && context.lineSuffix.trim().length === 0 && (context.linePrefix + lines[0]).trim() === nextLine)
        return "";
    const result = lines.join("\n");
    return result.trim().length === 0 ? "" : result;
}
