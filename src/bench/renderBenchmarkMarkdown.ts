import {speedupOf, type BenchmarkReport} from "./BenchmarkReport.js";

const ms = (value: number) => (Number.isFinite(value) ? value < 10 ? value.toFixed(2) : value.toFixed(1) : "-");

/** The report as Markdown: one table per run, sparse and dense side by side, with the speedup of the first model. */
export function renderBenchmarkMarkdown(report: BenchmarkReport): string {
    const variants = report.models.map((model) => model.variant);
    const lines = [
        `## Benchmark ${report.startedAt}`,
        "",
        `${report.machine.cpu} (${report.machine.cores} cores, ${report.machine.platform}); device: ${report.device}; ` +
        `${report.repetitions} timed repetitions after warm-up; medians (p95).`,
        "",
        ...report.models.map((model) => `- **${model.variant}**: ${model.name}, ${model.weightTypes.join("/")}, ${(model.sizeBytes / 1e6).toFixed(1)} MB, ${model.backend}`),
        "",
        `| scenario | model | prompt tokens (evaluated) | first token ms | total ms | tokens/s | ${variants.length > 1 ? `${variants[0]} speedup |` : ""}`,
        `|---|---|---|---|---|---|${variants.length > 1 ? "---|" : ""}`
    ];
    for (const scenario of report.scenarios) {
        variants.forEach((variant, index) => {
            const result = scenario.results[variant];
            if (result == null)
                return;
            const speedup = index === 0 && variants.length > 1 ? speedupOf(scenario, variants[0]!, variants[1]!) : undefined;
            const cache = result.cacheHitRate != null ? `, ${(result.cacheHitRate * 100).toFixed(0)}% cache hits` : "";
            lines.push(`| ${index === 0 ? scenario.title : ""} | ${variant} | ${result.promptTokens} (${ms(result.evaluatedPromptTokens.median)}${cache}) | ` +
                `${ms(result.timeToFirstTokenMs.median)} (${ms(result.timeToFirstTokenMs.p95)}) | ${ms(result.totalMs.median)} (${ms(result.totalMs.p95)}) | ` +
                `${result.tokensPerSecond.median.toFixed(1)} | ${variants.length > 1 ? `${speedup != null ? `${speedup.toFixed(2)}x` : ""} |` : ""}`);
        });
    }
    return lines.join("\n") + "\n";
}
