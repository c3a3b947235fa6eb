import * as assert from "node:assert/strict";
import type {LlamaContext} from "node-llama-cpp";
import {openBareDecodeLoop} from "../../src/bench/bareDecodeLoop.js";
import {INLINE_DECODE_MODE, INLINE_DECODE_MAX_TOKENS, setInlineDecode, STOCK_DECODE_MODE, supportsInlineDecode} from "../../src/engine/inlineDecode.js";
import {tinyModelPath} from "../support/fixtures.js";

describe("inline decode switch", () => {
    it("passes the mode to a patched addon context and reports an unpatched one", () => {
        const calls: unknown[][] = [];
        const patched = {_ctx: {setInlineDecode: (...args: unknown[]) => void calls.push(args)}} as unknown as LlamaContext;
        assert.equal(supportsInlineDecode(patched), true);
        assert.equal(setInlineDecode(patched), true);
        assert.equal(setInlineDecode(patched, STOCK_DECODE_MODE), true);
        assert.deepEqual(calls, [[INLINE_DECODE_MAX_TOKENS, true], [0, false]]);

        const stock = {_ctx: {decodeBatch: () => undefined}} as unknown as LlamaContext;
        assert.equal(supportsInlineDecode(stock), false);
        assert.equal(setInlineDecode(stock), false);
        assert.equal(setInlineDecode({} as LlamaContext), false);
    });
});

describe("inline decode (real node-llama-cpp on the CPU, tiny model)", function () {
    this.timeout(120_000);

    it("generates the same greedy tokens as node-llama-cpp's worker round trips", async function () {
        const loop = await openBareDecodeLoop({modelPath: await tinyModelPath(), device: "cpu", threads: 1,
            promptText: "export function add(a: number, b: number): number {\n    return a + b;\n}\n".repeat(4), promptTokens: 48,
            contextSize: 512, sequences: 2, batchSize: 512, log: () => undefined});
        try {
            // Our build must carry the patch (build.mjs applies it); only node-llama-cpp's prebuilt fallback lacks it.
            if (!loop.hasSparseType)
                this.skip();
            assert.ok(loop.inlineDecodeSupported, "our llama.cpp build lacks the inline-decode addon patch: rebuild with `node native-kernels/build.mjs`");
            const stock = await loop.run(24, STOCK_DECODE_MODE);
            const inline = await loop.run(24, INLINE_DECODE_MODE);
            const greedyOnly = await loop.run(24, {maxTokens: 0, greedyFromLogits: true});
            const inlineOnly = await loop.run(24, {maxTokens: INLINE_DECODE_MAX_TOKENS, greedyFromLogits: false});
            assert.equal(stock.tokens.length, 25);
            assert.deepEqual(inline.tokens, stock.tokens);
            assert.deepEqual(greedyOnly.tokens, stock.tokens);
            assert.deepEqual(inlineOnly.tokens, stock.tokens);
        } finally {
            await loop.dispose();
        }
    });
});
