import * as assert from "node:assert/strict";
import {editSimilarity, levenshteinDistance, scoreLineCompletion} from "../../src/eval/scoreLineCompletion.js";
import {SeededRandom} from "../../src/eval/SeededRandom.js";

describe("line completion metrics", () => {
    it("computes Levenshtein distances of hand-made pairs", () => {
        assert.equal(levenshteinDistance("kitten", "sitting"), 3);
        assert.equal(levenshteinDistance("sitting", "kitten"), 3);
        assert.equal(levenshteinDistance("", "abc"), 3);
        assert.equal(levenshteinDistance("abc", ""), 3);
        assert.equal(levenshteinDistance("flaw", "lawn"), 2);
        assert.equal(levenshteinDistance("return x;", "return x;"), 0);
        assert.equal(levenshteinDistance("ab", "ba"), 2);
    });

    it("normalizes edit similarity by the longer string", () => {
        assert.equal(editSimilarity("", ""), 1);
        assert.equal(editSimilarity("abc", "abc"), 1);
        assert.equal(editSimilarity("abc", "xyz"), 0);
        assert.equal(editSimilarity("abcd", "abce"), 0.75);
        assert.equal(editSimilarity("kitten", "sitting"), 1 - 3 / 7);
        assert.equal(editSimilarity("", "foo()"), 0);
    });

    it("scores the first line only, ignoring trailing but not leading whitespace", () => {
        assert.deepEqual(scoreLineCompletion("items.length; i++) {\n    total += 1;", "items.length; i++) {"),
            {predictedLine: "items.length; i++) {", exactMatch: true, editSimilarity: 1});
        assert.equal(scoreLineCompletion("return x;   ", "return x;").exactMatch, true);
        assert.equal(scoreLineCompletion("return x;", "return x;\t").exactMatch, true);
        const indented = scoreLineCompletion("  return x;", "return x;");
        assert.equal(indented.exactMatch, false);
        assert.equal(indented.editSimilarity, 1 - 2 / 11);
        const empty = scoreLineCompletion("", "name);");
        assert.deepEqual(empty, {predictedLine: "", exactMatch: false, editSimilarity: 0});
        assert.equal(scoreLineCompletion("\nfoo()", "foo()").predictedLine, "");
    });
});

describe("SeededRandom", () => {
    it("repeats its sequence for a seed and differs between seeds", () => {
        const draw = (seed: number) => { const random = new SeededRandom(seed); return Array.from({length: 8}, () => random.next()); };
        assert.deepEqual(draw(7), draw(7));
        assert.notDeepEqual(draw(7), draw(8));
        assert.ok(draw(7).every((x) => x >= 0 && x < 1));
    });

    it("shuffles to a permutation", () => {
        const items = Array.from({length: 50}, (_, i) => i);
        const shuffled = new SeededRandom(3).shuffled(items);
        assert.notDeepEqual(shuffled, items);
        assert.deepEqual([...shuffled].sort((a, b) => a - b), items);
    });
});
