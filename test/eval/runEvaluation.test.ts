import * as assert from "node:assert/strict";
import {runEvaluation} from "../../src/eval/runEvaluation.js";
import {renderEvaluationTable} from "../../src/eval/renderEvaluationTable.js";
import {sampleCompletionPositions} from "../../src/eval/sampleCompletionPositions.js";
import {editSimilarity} from "../../src/eval/scoreLineCompletion.js";
import {requireBuiltEngine, secondTinyModelPath, tinyModelPath} from "../support/fixtures.js";
import {samplePackages} from "./samplePackages.js";

describe("evaluation harness (engine process + perplexity, tiny models, local fixture)", function () {
    this.timeout(120_000);

    it("completes every position through the pipeline and aggregates what it recorded", async () => {
        const packages = samplePackages();
        const positions = sampleCompletionPositions(packages, {count: 8, seed: 2});
        // Two files that differ only in their name: the same weights must give the same completions and perplexity.
        const report = await runEvaluation({
            engineEntry: requireBuiltEngine(), packages, positions, seed: 2, device: "cpu", perplexityWindowTokens: 128, maxTokens: 16,
            models: [{name: "tiny-a", path: await tinyModelPath()}, {name: "tiny-b", path: await secondTinyModelPath()}]
        });
        assert.deepEqual(report.models.map((m) => m.name), ["tiny-a", "tiny-b"]);
        assert.equal(report.positions.length, 8);
        assert.equal(report.data.positions, 8);
        for (const model of report.models) {
            const predicted = report.positions.map((p) => p.predicted[model.name]!);
            const expected = report.positions.map((p) => p.expected);
            const exact = predicted.filter((line, i) => line === expected[i]).length / 8;
            const similarity = predicted.reduce((sum, line, i) => sum + editSimilarity(line, expected[i]!), 0) / 8;
            assert.equal(model.completion.positions, 8);
            assert.equal(model.completion.exactMatch, exact);
            assert.ok(Math.abs(model.completion.editSimilarity - similarity) < 1e-12);
            assert.equal(Object.values(model.completion.byKind).reduce((n, s) => n + s!.positions, 0), 8);
            assert.ok(Number.isFinite(model.perplexity.perplexity) && model.perplexity.tokens > 0);
            assert.ok(model.completion.meanGeneratedTokens <= 16);
            assert.equal(model.backend, "cpu");
        }
        const [a, b] = report.models;
        assert.deepEqual(report.positions.map((p) => p.predicted["tiny-a"]), report.positions.map((p) => p.predicted["tiny-b"]));
        assert.equal(a!.perplexity.perplexity, b!.perplexity.perplexity);
        assert.equal(report.recovery.length, 1);
        assert.equal(report.recovery[0]!.baseline, "tiny-a");
        assert.equal(report.recovery[0]!.perplexity, 100);
        assert.equal(report.recovery[0]!.exactMatchOnlyModel, 0);
        assert.equal(report.recovery[0]!.exactMatchOnlyBaseline, 0);
        const table = renderEvaluationTable(report);
        assert.match(table, /\| tiny-a \| F16 \|/);
        assert.match(table, /\| tiny-b \| F16 \| .* \| 100\.0% \|/);
    });
});
