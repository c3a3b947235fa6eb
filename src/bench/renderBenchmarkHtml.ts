import {speedupOf, type BenchmarkReport} from "./BenchmarkReport.js";

function escapeHtml(text: string): string {
    return text.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"})[c]!);
}

const BAR_COLORS = ["var(--vscode-charts-green)", "var(--vscode-charts-blue)", "var(--vscode-charts-orange)", "var(--vscode-charts-purple)"];

/** An SVG bar chart: per scenario, one bar per model (median total ms), labelled with the first model's speedup. */
function renderChart(report: BenchmarkReport): string {
    const variants = report.models.map((model) => model.variant);
    const rowHeight = 18 * variants.length + 26;
    const labelWidth = 300, barWidth = 420;
    const height = rowHeight * report.scenarios.length + 30;
    const parts: string[] = [];
    report.scenarios.forEach((scenario, row) => {
        const values = variants.map((variant) => scenario.results[variant]?.totalMs.median ?? 0);
        const max = Math.max(...values, 1e-9);
        const y0 = row * rowHeight + 10;
        parts.push(`<text x="0" y="${y0 + 12}" class="label">${escapeHtml(scenario.title)}</text>`);
        variants.forEach((variant, index) => {
            const value = values[index]!;
            const y = y0 + 18 + index * 18;
            const width = Math.max(1, (value / max) * barWidth);
            parts.push(`<rect x="${labelWidth}" y="${y - 12}" width="${width.toFixed(1)}" height="14" fill="${BAR_COLORS[index % BAR_COLORS.length]}"><title>${escapeHtml(variant)}: ${value.toFixed(1)} ms</title></rect>`);
            parts.push(`<text x="${labelWidth - 8}" y="${y}" class="variant" text-anchor="end">${escapeHtml(variant)}</text>`);
            parts.push(`<text x="${labelWidth + width + 6}" y="${y}" class="value">${value.toFixed(1)} ms</text>`);
        });
        const speedup = variants.length > 1 ? speedupOf(scenario, variants[0]!, variants[1]!) : undefined;
        if (speedup != null)
            parts.push(`<text x="${labelWidth + barWidth + 90}" y="${y0 + 26}" class="speedup">${speedup.toFixed(2)}x</text>`);
    });
    return `<svg role="img" aria-label="Median total time per scenario" width="${labelWidth + barWidth + 160}" height="${height}">${parts.join("")}</svg>`;
}

function renderTable(report: BenchmarkReport, previous?: BenchmarkReport): string {
    const variants = report.models.map((model) => model.variant);
    const rows: string[] = [];
    for (const scenario of report.scenarios)
        variants.forEach((variant, index) => {
            const r = scenario.results[variant];
            if (r == null)
                return;
            const before = previous?.scenarios.find((s) => s.id === scenario.id)?.results[variant];
            const change = before != null ? ` <span class="muted">(was ${before.totalMs.median.toFixed(1)})</span>` : "";
            const speedup = index === 0 && variants.length > 1 ? speedupOf(scenario, variants[0]!, variants[1]!) : undefined;
            rows.push(`<tr><td>${index === 0 ? escapeHtml(scenario.title) : ""}</td><td>${escapeHtml(variant)}</td>` +
                `<td>${r.promptTokens} (${r.evaluatedPromptTokens.median.toFixed(0)} evaluated)${r.cacheHitRate != null ? `, ${(r.cacheHitRate * 100).toFixed(0)}% cached` : ""}</td>` +
                `<td>${r.timeToFirstTokenMs.median.toFixed(1)} / ${r.timeToFirstTokenMs.p95.toFixed(1)}</td>` +
                `<td>${r.totalMs.median.toFixed(1)} / ${r.totalMs.p95.toFixed(1)}${change}</td>` +
                `<td>${r.tokensPerSecond.median.toFixed(1)}</td><td>${speedup != null ? `${speedup.toFixed(2)}x` : ""}</td></tr>`);
        });
    return `<table><thead><tr><th>Scenario</th><th>Model</th><th>Prompt tokens</th><th>First token ms (median / p95)</th>` +
        `<th>Total ms (median / p95)</th><th>Tokens/s</th><th>Speedup</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** The benchmark panel's page: a chart and a table, styled only with VS Code's theme colours; no scripts. */
export function renderBenchmarkHtml(report: BenchmarkReport, cspSource: string, previous?: BenchmarkReport): string {
    const models = report.models.map((m) => `<li><b>${escapeHtml(m.variant)}</b>: ${escapeHtml(m.name)} · ${escapeHtml(m.weightTypes.join("/"))} · ${(m.sizeBytes / 1e6).toFixed(1)} MB · ${escapeHtml(m.backend)}</li>`).join("");
    return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline';">
<meta name="viewport" content="width=device-width, initial-scale=1.0"><title>Sparse Complete Benchmark</title>
<style>
body { color: var(--vscode-foreground); background: var(--vscode-editor-background); font-family: var(--vscode-font-family); padding: 0 20px 20px; }
h1 { font-size: 1.4em; font-weight: 600; }
.muted, .variant, .value { color: var(--vscode-descriptionForeground); fill: var(--vscode-descriptionForeground); font-size: 12px; }
.label { fill: var(--vscode-foreground); font-size: 13px; font-weight: 600; }
.speedup { fill: var(--vscode-charts-green); font-size: 15px; font-weight: 700; }
table { border-collapse: collapse; margin-top: 16px; }
th, td { border-bottom: 1px solid var(--vscode-panel-border); padding: 4px 10px; text-align: left; font-size: 12px; }
th { color: var(--vscode-descriptionForeground); font-weight: 600; }
</style></head><body>
<h1 id="benchmark-title">Sparse vs dense: code-completion latency</h1>
<p class="muted">${escapeHtml(report.startedAt)} · ${escapeHtml(report.machine.cpu)} (${report.machine.cores} cores) · device ${escapeHtml(report.device)} · ${report.repetitions} repetitions after warm-up${previous != null ? ` · compared with the run of ${escapeHtml(previous.startedAt)}` : ""}</p>
<ul>${models}</ul>
${renderChart(report)}
${renderTable(report, previous)}
</body></html>`;
}
