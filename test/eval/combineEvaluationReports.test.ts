import * as assert from "node:assert/strict";
import type {EvaluationReport, PositionRecord} from "../../src/eval/EvaluationReport.js";
import {combineExactMatch} from "../../src/eval/combineEvaluationReports.js";

function position(file: string, line: number, expected: string, sparse: string, dense: string): PositionRecord {
    return {file, line, column: 0, kind: "line-start", language: "javascript", expected,
        predicted: {"sparse-4bit": sparse, "dense-8bit": dense}};
}

function report(seed: number, positions: PositionRecord[]): EvaluationReport {
    return {createdAt: "", seed, data: {packages: [], positions: positions.length, files: 1, perplexityWindowTokens: 0},
        settings: {device: "cpu", contextTokens: 0, maxTokens: 0, temperature: 0}, models: [], recovery: [], positions,
        elapsedSeconds: 0};
}

describe("combining evaluation reports", () => {
    it("counts each distinct position once, with the line scorer's exact-match rule", () => {
        const a = report(1, [
            position("f.js", 1, "return x;", "return x;   ", "return x;"), // both (trailing whitespace ignored)
            position("f.js", 2, "x++;", "  x++;", "x++;"),               // dense only (leading whitespace counts)
            position("f.js", 3, "}", "}", "{")                           // sparse only
        ]);
        const b = report(2, [
            position("f.js", 2, "x++;", "  x++;", "x++;"),               // drawn again: counted once
            position("g.js", 1, "a();", "b();", "c();")                  // neither
        ]);
        const c = combineExactMatch([a, b], "sparse-4bit", "dense-8bit", {resamples: 200});
        assert.equal(c.reports, 2);
        assert.equal(c.distinctPositions, 4);
        assert.equal(c.exactMatchModel, 2);
        assert.equal(c.exactMatchBaseline, 2);
        assert.equal(c.recoveryPercent, 100);
        assert.equal(c.onlyModel, 1);
        assert.equal(c.onlyBaseline, 1);
        assert.equal(c.signTestP, 1);
        assert.ok(c.bootstrap95[0] <= 100 && c.bootstrap95[1] >= 100, `${c.bootstrap95}`);
    });

    it("gives the exact two-sided sign test and a bootstrap interval around the ratio", () => {
        // 10 positions only dense got right, 2 only sparse, 20 both: ratio 22 / 30
        const positions = [
            ...Array.from({length: 10}, (_, i) => position("d.js", i, "y", "n", "y")),
            ...Array.from({length: 2}, (_, i) => position("s.js", i, "y", "y", "n")),
            ...Array.from({length: 20}, (_, i) => position("b.js", i, "y", "y", "y"))
        ];
        const c = combineExactMatch([report(1, positions)], "sparse-4bit", "dense-8bit", {resamples: 2000, seed: 7});
        assert.equal(c.recoveryPercent, 100 * 22 / 30);
        // P(X <= 2 or X >= 10), X ~ Binomial(12, 1/2) = 2 (1 + 12 + 66) / 4096
        assert.ok(Math.abs(c.signTestP - 2 * 79 / 4096) < 1e-12, `${c.signTestP}`);
        assert.ok(c.bootstrap95[0] < c.recoveryPercent && c.recoveryPercent < c.bootstrap95[1], `${c.bootstrap95}`);
        assert.ok(c.bootstrap95[1] < 100, "an 8-position deficit out of 30 is clear of 100%");
    });

    it("refuses reports without the named models", () => {
        assert.throws(() => combineExactMatch([report(1, [position("f.js", 1, "x", "x", "x")])], "sparse-4bit", "dense-4bit"),
            /no completion of dense-4bit/);
    });
});
