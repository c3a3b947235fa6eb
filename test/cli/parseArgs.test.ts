import * as assert from "node:assert/strict";
import {offsetOfLineColumn, parseArgs} from "../../src/cli/parseArgs.js";

describe("CLI argument parsing", () => {
    it("separates positionals, valued flags, switches and repeated flags", () => {
        const {positional, flags, lists} = parseArgs(["a.ts:1:2", "--model", "sparse", "--json", "--model=dense", "--device", "cpu"], ["json"]);
        assert.deepEqual(positional, ["a.ts:1:2"]);
        assert.equal(flags.get("json"), true);
        assert.equal(flags.get("device"), "cpu");
        assert.deepEqual(lists.get("model"), ["sparse", "dense"]);
    });

    it("turns a 1-based line and column into an offset, refusing positions outside the text", () => {
        const text = "ab\ncde\n";
        assert.equal(offsetOfLineColumn(text, 2, 3), 5);
        assert.throws(() => offsetOfLineColumn(text, 2, 5), /column 5 is outside line 2/);
        assert.throws(() => offsetOfLineColumn(text, 9, 1), /line 9 is past the end/);
    });
});
