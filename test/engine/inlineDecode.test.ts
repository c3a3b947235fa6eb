import * as assert from "node:assert/strict";
import type {LlamaContext, LlamaContextSequence, Token} from "node-llama-cpp";
import {openBareDecodeLoop} from "../../src/bench/bareDecodeLoop.js";
import {decodeAheadStats, INLINE_DECODE_MODE, INLINE_DECODE_MAX_TOKENS, PIPELINED_DECODE_MODE, SAMPLED_IN_DECODE_MODE, setDecodeAhead,
    setGreedyInDecode, setInlineDecode, STOCK_DECODE_MODE, supportsDecodeAhead, supportsGreedyInDecode, supportsInlineDecode} from "../../src/engine/inlineDecode.js";
import {loadSparseLlama, SparseLlamaBuildMissingError} from "../../src/native/loadSparseLlama.js";
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

    it("passes a decode-ahead budget to a patched addon context and reports an unpatched one", () => {
        const budgets: unknown[] = [];
        const patched = {_ctx: {setDecodeAhead: (tokens: unknown) => void budgets.push(tokens)}} as unknown as LlamaContext;
        assert.equal(supportsDecodeAhead(patched), true);
        assert.equal(setDecodeAhead(patched, 63), true);
        assert.equal(setDecodeAhead(patched, -2), true);
        assert.deepEqual(budgets, [63, 0]);
        assert.equal(supportsDecodeAhead({_ctx: {setInlineDecode: () => undefined}} as unknown as LlamaContext), false);
        assert.equal(setDecodeAhead({} as LlamaContext, 5), false);
    });

    it("passes a sequence's greedy-in-decode switch to a patched addon context and reports an unpatched one", () => {
        const calls: unknown[][] = [];
        const patched = {_ctx: {setBackendGreedy: (...args: unknown[]) => { calls.push(args); return args[1]; }}, disposed: false} as unknown as LlamaContext;
        const onDispose: (() => void)[] = [];
        const sequence = {context: patched, _sequenceId: 3, onDispose: {createListener: (listener: () => void) => onDispose.push(listener)}} as unknown as LlamaContextSequence;
        assert.equal(supportsGreedyInDecode(patched), true);
        assert.equal(setGreedyInDecode(sequence, true), true);
        assert.equal(setGreedyInDecode(sequence, false), false);
        assert.equal(setGreedyInDecode(sequence, true), true);
        assert.deepEqual(calls, [[3, true], [3, false], [3, true]]);
        // One listener however often it is attached, and it detaches the id when the sequence is disposed.
        assert.equal(onDispose.length, 1);
        onDispose[0]!();
        assert.deepEqual(calls.at(-1), [3, false]);
        const stock = {context: {_ctx: {decodeBatch: () => undefined}}, _sequenceId: 0} as unknown as LlamaContextSequence;
        assert.equal(supportsGreedyInDecode(stock.context), false);
        assert.equal(setGreedyInDecode(stock, true), false);
    });
});

/** Our llama.cpp build on the CPU with the tiny model and one context (the test is skipped where the build is missing). */
async function openTinyContext(test: Mocha.Context, sequences: number) {
    let llama;
    try {
        llama = await loadSparseLlama({gpu: false});
    } catch (error) {
        if (error instanceof SparseLlamaBuildMissingError)
            test.skip();
        throw error;
    }
    try {
        const model = await llama.loadModel({modelPath: await tinyModelPath(), gpuLayers: 0});
        const context = await model.createContext({contextSize: 512, sequences, batchSize: 512, threads: 1});
        return {llama, model, context};
    } catch (error) {
        await llama.dispose();
        throw error;
    }
}

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
            const greedyOnly = await loop.run(24, {...STOCK_DECODE_MODE, greedyFromLogits: true});
            const inlineOnly = await loop.run(24, {...INLINE_DECODE_MODE, greedyFromLogits: false});
            assert.equal(stock.tokens.length, 25);
            assert.deepEqual(inline.tokens, stock.tokens);
            assert.deepEqual(greedyOnly.tokens, stock.tokens);
            assert.deepEqual(inlineOnly.tokens, stock.tokens);
            assert.ok(loop.decodeAheadSupported, "our llama.cpp build lacks the decode-ahead addon patch: rebuild with `node native-kernels/build.mjs`");
            const pipelined = await loop.run(24, PIPELINED_DECODE_MODE);
            assert.deepEqual(pipelined.tokens, stock.tokens);
            assert.ok(loop.greedyInDecodeSupported, "our llama.cpp build lacks the sampling-in-decode addon patch: rebuild with `node native-kernels/build.mjs`");
            // The token picked by the decode's own argmax, through the worker, inline, and with decode ahead.
            for (const mode of [{...STOCK_DECODE_MODE, greedyInDecode: true}, {...INLINE_DECODE_MODE, greedyInDecode: true}, SAMPLED_IN_DECODE_MODE])
                assert.deepEqual((await loop.run(24, mode)).tokens, stock.tokens, JSON.stringify(mode));
            assert.deepEqual((await loop.run(24, STOCK_DECODE_MODE)).tokens, stock.tokens, "switched back to the host's logits");
        } finally {
            await loop.dispose();
        }
    });

    it("rolls a decode queued ahead back when generation stops, and adopts it when the same token follows", async function () {
        const {llama, model, context} = await openTinyContext(this, 1);
        try {
            setInlineDecode(context, INLINE_DECODE_MODE);
            const code = (text: string) => model.tokenize(text, false);
            const take = async (sequence: LlamaContextSequence, tokens: Token[], count: number) => {
                const out: Token[] = [];
                for await (const token of sequence.evaluate(tokens, {temperature: 0, seed: 1, yieldEogToken: true})) {
                    out.push(token);
                    if (out.length >= count)
                        break; // the last token's decode was queued ahead (budget left) and is now not wanted
                }
                return out;
            };
            // What a completion engine does to a sequence: generate and stop early, continue with other text (the queued
            // decode must be rolled back), continue with exactly the last sampled token (adopted), erase and continue.
            const scenario = async (budget: number) => {
                const sequence = context.getSequence();
                try {
                    setDecodeAhead(context, budget);
                    const first = await take(sequence, code("function add(a: number, b: number) {\n    return"), 6);
                    const other = await take(sequence, code(" a + b;\n}\n\nfunction sub("), 5);
                    const same = await take(sequence, [other.at(-1)!], 5);
                    await sequence.eraseContextTokenRanges([{start: sequence.nextTokenIndex - 7, end: sequence.nextTokenIndex}]);
                    const afterErase = await take(sequence, code("x: string"), 5);
                    return {first, other, same, afterErase, nextTokenIndex: sequence.nextTokenIndex};
                } finally {
                    sequence.dispose();
                }
            };
            const reference = await scenario(0);
            assert.deepEqual(decodeAheadStats(context), {queued: 0, adopted: 0, rolledBack: 0});
            const ahead = await scenario(1000);
            assert.deepEqual(ahead, reference);
            assert.equal(reference.first.length, 6);
            // Each of the 21 sampled tokens was decoded ahead (none is end-of-text); three stops rolled theirs back (other
            // input, an erase, disposing of the sequence), the rest were adopted, including the one continued by hand.
            assert.deepEqual(decodeAheadStats(context), {queued: 21, adopted: 18, rolledBack: 3});
            await context.dispose();
            await model.dispose();
        } finally {
            await llama.dispose();
        }
    });

    it("picks greedy tokens in the decode, refuses to sample them another way, and switches back", async function () {
        const {llama, model, context} = await openTinyContext(this, 2);
        try {
            setInlineDecode(context, INLINE_DECODE_MODE);
            const sequence = context.getSequence();
            const other = context.getSequence();
            const prompt = model.tokenize("function add(a: number, b: number) {\n    return", false);
            const generate = async (temperature: number) => {
                await sequence.clearHistory();
                const out: Token[] = [];
                for await (const token of sequence.evaluate(prompt, {temperature, seed: 1, yieldEogToken: true})) {
                    out.push(token);
                    if (out.length >= 12)
                        break;
                }
                return out;
            };
            const onHost = await generate(0);
            const sampled = await generate(0.8);
            assert.equal(setGreedyInDecode(sequence, true), true);
            assert.deepEqual(await generate(0), onHost);
            // Another sequence of the same context still has its logits on the host.
            await other.clearHistory();
            let otherFirst: Token | undefined;
            for await (const token of other.evaluate(prompt, {temperature: 0.8, seed: 1, yieldEogToken: true})) {
                otherFirst = token;
                break;
            }
            assert.equal(otherFirst, sampled[0]);
            // No logits on the host for this sequence: no token (node-llama-cpp leaves a sampling error waiting forever).
            await assert.rejects(generate(0.8), /Failed to sample next token/);
            assert.equal(setGreedyInDecode(sequence, false), false);
            assert.deepEqual(await generate(0.8), sampled);
            assert.deepEqual(await generate(0), onHost);
            // Disposing of a sequence detaches its sampler: the next sequence node-llama-cpp gives the id samples on the host.
            assert.equal(setGreedyInDecode(sequence, true), true);
            await sequence.dispose();
            const reused = context.getSequence();
            const idOf = (s: LlamaContextSequence) => (s as unknown as {_sequenceId: number})._sequenceId;
            assert.equal(idOf(reused), idOf(sequence));
            let reusedFirst: Token | undefined;
            for await (const token of reused.evaluate(prompt, {temperature: 0.8, seed: 1, yieldEogToken: true})) {
                reusedFirst = token;
                break;
            }
            assert.equal(reusedFirst, sampled[0]);
            await context.dispose();
            await model.dispose();
        } finally {
            await llama.dispose();
        }
    });
});
