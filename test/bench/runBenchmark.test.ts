import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {renderBenchmarkHtml} from "../../src/bench/renderBenchmarkHtml.js";
import {renderBenchmarkMarkdown} from "../../src/bench/renderBenchmarkMarkdown.js";
import {benchmarkScenarios, runBenchmark} from "../../src/bench/runBenchmark.js";
import {loadPreviousBenchmarkReport, saveBenchmarkReport} from "../../src/bench/saveBenchmarkReport.js";
import {EngineClient} from "../../src/core/EngineClient.js";
import {paths, requireBuiltEngine, secondTinyModelPath, tinyModelPath} from "../support/fixtures.js";

describe("benchmark runner (real engine, two tiny models)", function () {
    this.timeout(300_000);

    it("produces a well-formed side-by-side report, saved as JSON and Markdown, and a themed HTML page", async () => {
        const first = await tinyModelPath();
        const second = await secondTinyModelPath();
        const engine = new EngineClient({enginePath: requireBuiltEngine(), log: () => undefined});
        const progress: number[] = [];
        try {
            const report = await runBenchmark({
                engine,
                models: [{variant: "sparse", path: first, label: "sparse"}, {variant: "dense", path: second, label: "dense"}],
                device: "cpu",
                sourceText: fs.readFileSync(path.join(paths.samplesDir, "benchmark-source.ts.txt"), "utf8"),
                repetitions: 2,
                warmup: 1,
                scenarios: benchmarkScenarios.filter((s) => s.id !== "complete-256-1024"),
                onProgress: (fraction) => progress.push(fraction)
            });
            assert.deepEqual(report.models.map((m) => m.variant), ["sparse", "dense"]);
            assert.deepEqual(report.scenarios.map((s) => s.id), ["complete-256-128", "fim-1k", "fim-2k", "typing"]);
            for (const scenario of report.scenarios)
                for (const variant of ["sparse", "dense"]) {
                    const result = scenario.results[variant]!;
                    assert.ok(result.totalMs.median > 0 && result.totalMs.p95 >= result.totalMs.median, `${scenario.id} ${variant} total`);
                    assert.ok(result.timeToFirstTokenMs.median <= result.totalMs.median);
                    assert.ok(result.promptTokens > 0);
                }
            const complete = report.scenarios[0]!.results.sparse!;
            assert.equal(complete.generatedTokens, 128, "benchmarks generate exactly the asked tokens");
            assert.equal(complete.totalMs.samples, 2);
            assert.ok(complete.evaluatedPromptTokens.median > 200, "timed prompts are not served from each other's cache");
            assert.ok(report.scenarios[2]!.results.sparse!.promptTokens > report.scenarios[1]!.results.sparse!.promptTokens);
            assert.ok(report.scenarios[3]!.results.sparse!.cacheHitRate != null);
            assert.equal(progress.at(-1), 1);

            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-"));
            const saved = await saveBenchmarkReport(dir, report);
            assert.deepEqual(JSON.parse(fs.readFileSync(saved.json, "utf8")), JSON.parse(JSON.stringify(report)));
            assert.match(fs.readFileSync(saved.markdown, "utf8"), /\| Fill-in-the-middle: 2k-token context, 64 tokens \| sparse \|/);
            assert.equal((await loadPreviousBenchmarkReport(dir))?.startedAt, report.startedAt);
            assert.equal(await loadPreviousBenchmarkReport(dir, report.startedAt), undefined);
            const html = renderBenchmarkHtml(report, "vscode-resource:", report);
            assert.match(html, /<svg[^>]*role="img"/);
            assert.match(html, /var\(--vscode-charts-green\)/);
            assert.doesNotMatch(html, /<script/);
            assert.match(renderBenchmarkMarkdown(report), /sparse speedup/);
            fs.rmSync(dir, {recursive: true, force: true});
        } finally {
            await engine.dispose();
        }
    });
});
