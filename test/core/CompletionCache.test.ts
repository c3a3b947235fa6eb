import * as assert from "node:assert/strict";
import {CompletionCache} from "../../src/core/CompletionCache.js";

describe("CompletionCache", () => {
    const prefix = "export function clamp(value: number, min: number, max: number): number {\n    return ";
    const suffix = "\n}\n";

    it("returns an exact hit", () => {
        const cache = new CompletionCache();
        cache.set({documentKey: "a", prefix, suffix}, "Math.min(Math.max(value, min), max);");
        assert.deepEqual(cache.get({documentKey: "a", prefix, suffix}), {completion: "Math.min(Math.max(value, min), max);", typedAhead: 0});
        assert.equal(cache.get({documentKey: "b", prefix, suffix}), undefined);
        assert.equal(cache.get({documentKey: "a", prefix, suffix: "\n}\nexport {};\n"}), undefined);
    });

    it("serves the rest of a suggestion the user is typing through", () => {
        const cache = new CompletionCache();
        cache.set({documentKey: "a", prefix, suffix}, "Math.min(Math.max(value, min), max);");
        assert.deepEqual(cache.get({documentKey: "a", prefix: prefix + "Math.m", suffix}), {completion: "in(Math.max(value, min), max);", typedAhead: 6});
        assert.deepEqual(cache.get({documentKey: "a", prefix: prefix + "Math.mi", suffix}), {completion: "n(Math.max(value, min), max);", typedAhead: 1});
    });

    it("misses when the typed text departs from the suggestion", () => {
        const cache = new CompletionCache();
        cache.set({documentKey: "a", prefix, suffix}, "Math.min(Math.max(value, min), max);");
        assert.equal(cache.get({documentKey: "a", prefix: prefix + "value <", suffix}), undefined);
        // Typing the whole suggestion leaves nothing to offer.
        assert.equal(cache.get({documentKey: "a", prefix: prefix + "Math.min(Math.max(value, min), max);", suffix}), undefined);
    });
});
