import type {PerplexityResult} from "./measurePerplexity.js";
import type {CursorKind} from "./sampleCompletionPositions.js";

/** Exact match and edit similarity over a set of positions. */
export interface CompletionScores {
    readonly positions: number;
    /** Share of positions whose completed line equals the masked rest of the line. */
    readonly exactMatch: number;
    /** Mean of 1 - Levenshtein / longer length. */
    readonly editSimilarity: number;
    /** Share of positions where the pipeline showed nothing. */
    readonly empty: number;
}

export interface ModelEvaluation {
    readonly name: string;
    readonly path: string;
    readonly weightTypes: readonly string[];
    readonly backend: string;
    readonly completion: CompletionScores & {
        readonly byKind: Readonly<Partial<Record<CursorKind, CompletionScores>>>;
        readonly byLanguage: Readonly<Record<string, CompletionScores>>;
        /** Mean time per completion, prompt evaluation included (cached prefixes reused as in the editor). */
        readonly meanLatencyMs: number;
        /** Prompt tokens evaluated per completion (the rest came from the engine's prefix cache). */
        readonly meanEvaluatedPromptTokens: number;
        readonly meanGeneratedTokens: number;
    };
    readonly perplexity: PerplexityResult;
}

/** A model's scores relative to the baseline, in percent (100 = as good as the baseline). */
export interface Recovery {
    readonly model: string;
    readonly baseline: string;
    readonly exactMatch: number;
    readonly editSimilarity: number;
    /** baseline perplexity / model perplexity. */
    readonly perplexity: number;
    /** Positions only this model / only the baseline got exactly right (a paired view of the exact-match difference). */
    readonly exactMatchOnlyModel: number;
    readonly exactMatchOnlyBaseline: number;
}

export interface PositionRecord {
    readonly file: string;
    readonly line: number;
    readonly column: number;
    readonly kind: CursorKind;
    readonly language: string;
    readonly expected: string;
    /** Completed line per model name. */
    readonly predicted: Readonly<Record<string, string>>;
}

export interface EvaluationReport {
    readonly createdAt: string;
    readonly seed: number;
    readonly data: {
        readonly packages: readonly {readonly source: string, readonly name: string, readonly version: string, readonly files: number}[];
        readonly positions: number;
        readonly files: number;
        readonly perplexityWindowTokens: number;
    };
    readonly settings: {readonly device: string, readonly contextTokens: number, readonly maxTokens: number, readonly temperature: 0};
    readonly models: readonly ModelEvaluation[];
    readonly recovery: readonly Recovery[];
    readonly positions: readonly PositionRecord[];
    readonly elapsedSeconds: number;
}
