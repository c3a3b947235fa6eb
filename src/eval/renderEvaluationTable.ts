import type {CompletionScores, EvaluationReport} from "./EvaluationReport.js";

const percent = (value: number, digits = 1) => Number.isFinite(value) ? `${(100 * value).toFixed(digits)}%` : "n/a";

/** Exact match with its standard error (binomial), so small differences between models read as what they are. */
function exactMatchCell(scores: CompletionScores): string {
    const p = scores.exactMatch;
    const error = Math.sqrt(p * (1 - p) / Math.max(1, scores.positions));
    return `${percent(p)} ± ${(100 * error).toFixed(1)}`;
}

const pair = (scores: CompletionScores | undefined) => scores == null ? "" : `${percent(scores.exactMatch)} / ${scores.editSimilarity.toFixed(3)}`;

/** The report as Markdown tables: overall scores with recovery, then exact match / edit similarity by cursor kind and language. */
export function renderEvaluationTable(report: EvaluationReport): string {
    const lines: string[] = [];
    const {data} = report;
    lines.push(`${data.positions} positions in ${data.files} files of ${data.packages.length} held-out packages (seed ${report.seed}); ` +
        `perplexity over the first ${data.perplexityWindowTokens} tokens of the same files. Greedy completions through the extension's pipeline ` +
        `(prompt ${report.settings.contextTokens} tokens, at most ${report.settings.maxTokens} new, device ${report.settings.device}).`, "");
    const baseline = report.recovery[0]?.baseline;
    lines.push(`| model | weights | exact match | edit similarity | perplexity (tokens) | EM recovery | ES recovery | ppl recovery | EM only model / only ${baseline ?? "baseline"} | ms per completion |`);
    lines.push("|---|---|---|---|---|---|---|---|---|---|");
    for (const model of report.models) {
        const recovery = report.recovery.find((r) => r.model === model.name);
        const ppl = model.perplexity;
        lines.push(`| ${model.name} | ${model.weightTypes.join("/")} | ${exactMatchCell(model.completion)} | ${model.completion.editSimilarity.toFixed(3)} | ` +
            `${ppl.perplexity.toFixed(3)} (${ppl.tokens}) | ${recovery != null ? recoveryCell(recovery.exactMatch) : "baseline"} | ` +
            `${recovery != null ? recoveryCell(recovery.editSimilarity) : ""} | ${recovery != null ? recoveryCell(recovery.perplexity) : ""} | ` +
            `${recovery != null ? `${recovery.exactMatchOnlyModel} / ${recovery.exactMatchOnlyBaseline}` : ""} | ${model.completion.meanLatencyMs.toFixed(0)} |`);
    }
    const kinds = [...new Set(report.models.flatMap((m) => Object.keys(m.completion.byKind)))].sort();
    const languages = [...new Set(report.models.flatMap((m) => Object.keys(m.completion.byLanguage)))].sort();
    const first = report.models[0];
    const count = (group: string, scores: CompletionScores | undefined) => `${group} (${scores?.positions ?? 0})`;
    lines.push("", "Exact match / edit similarity by cursor and language:", "");
    lines.push(`| model | ${[...kinds.map((k) => count(k, first?.completion.byKind[k as keyof typeof first.completion.byKind])),
        ...languages.map((l) => count(l, first?.completion.byLanguage[l]))].join(" | ")} |`);
    lines.push(`|---|${[...kinds, ...languages].map(() => "---").join("|")}|`);
    for (const model of report.models)
        lines.push(`| ${model.name} | ${[...kinds.map((k) => pair(model.completion.byKind[k as keyof typeof model.completion.byKind])),
            ...languages.map((l) => pair(model.completion.byLanguage[l]))].join(" | ")} |`);
    return lines.join("\n");
}

function recoveryCell(percent: number): string {
    return Number.isFinite(percent) ? `${percent.toFixed(1)}%` : "n/a";
}
