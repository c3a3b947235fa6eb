import * as assert from "node:assert/strict";
import {SequencePool} from "../../src/engine/SequencePool.js";

describe("SequencePool", () => {
    const range = (from: number, to: number) => Array.from({length: to - from}, (_, i) => from + i);

    it("picks the sequence sharing the longest prefix, else the least recently used", () => {
        const a = {contextTokens: range(0, 100)};
        const b = {contextTokens: range(1000, 1100)};
        const c = {contextTokens: [] as number[]};
        const pool = new SequencePool([a, b, c]);
        assert.deepEqual(pool.acquire([...range(1000, 1050), 7]), {sequence: b, reusableTokens: 50});
        assert.deepEqual(pool.acquire(range(0, 120)), {sequence: a, reusableTokens: 100});
        assert.equal(pool.acquire(range(5000, 5100)).sequence, c);
        assert.equal(pool.acquire(range(6000, 6100)).sequence, b, "b is now the least recently used");
    });
});
