/** Levenshtein distance (insertions, deletions, substitutions of UTF-16 code units, each costing 1). */
export function levenshteinDistance(a: string, b: string): number {
    if (a.length < b.length)
        [a, b] = [b, a];
    // One row of the dynamic-programming table, over the shorter string.
    let previous = Array.from({length: b.length + 1}, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const current = [i];
        for (let j = 1; j <= b.length; j++)
            current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
        previous = current;
    }
    return previous[b.length]!;
}

/** 1 - distance / length of the longer string: 1 for equal strings (also two empty ones), 0 for nothing in common. */
export function editSimilarity(a: string, b: string): number {
    const longer = Math.max(a.length, b.length);
    return longer === 0 ? 1 : 1 - levenshteinDistance(a, b) / longer;
}

export interface LineCompletionScore {
    /** The completion's first line, as compared. */
    readonly predictedLine: string;
    readonly exactMatch: boolean;
    readonly editSimilarity: number;
}

/**
 * Scores a completion against the rest of the line it should produce. Only the completion's first line counts (a
 * multi-line completion is right when its first line is), and trailing whitespace is ignored on both sides; leading
 * whitespace counts, since it would be inserted at the cursor.
 */
export function scoreLineCompletion(completion: string, expected: string): LineCompletionScore {
    const newline = completion.indexOf("\n");
    const predictedLine = (newline < 0 ? completion : completion.slice(0, newline)).trimEnd();
    const expectedLine = expected.trimEnd();
    return {predictedLine, exactMatch: predictedLine === expectedLine, editSimilarity: editSimilarity(predictedLine, expectedLine)};
}
