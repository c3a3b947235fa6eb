import * as assert from "node:assert/strict";
import {StopRuleMatcher} from "../../src/core/StopRuleMatcher.js";

describe("StopRuleMatcher", () => {
    it("cuts before a stop string and holds back a possible start of one", () => {
        const matcher = new StopRuleMatcher(["\n\n\n", "</script>"], false);
        assert.deepEqual(matcher.check("let a = 1;\n\n"), {releasable: "let a = 1;"});
        assert.deepEqual(matcher.check("let a = 1;\n\n\nlet b"), {releasable: "let a = 1;", stop: "stop-string"});
        assert.deepEqual(matcher.check("x</scr"), {releasable: "x"});
        assert.deepEqual(matcher.check("x</script>y"), {releasable: "x", stop: "stop-string"});
    });

    it("stops a single-line completion at the end of its first non-empty line", () => {
        const matcher = new StopRuleMatcher([], true);
        assert.deepEqual(matcher.check("\n  return x;"), {releasable: "\n  return x;"});
        assert.deepEqual(matcher.check("\n  return x;\n}"), {releasable: "\n  return x;", stop: "single-line"});
    });
});
