import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type {Llama, LlamaModel, Token} from "node-llama-cpp";
import {loadSparseLlama} from "../../src/native/loadSparseLlama.js";
import {measurePerplexity, tokenLogProbabilities} from "../../src/eval/measurePerplexity.js";
import {readEvaluationModels} from "../../src/eval/readEvaluationModels.js";
import {paths, repoRoot, tinyModelPath} from "../support/fixtures.js";

const code = fs.readFileSync(path.join(paths.samplesDir, "fibonacci.ts"), "utf8");

describe("perplexity (real node-llama-cpp on the CPU)", function () {
    this.timeout(120_000);
    let llama: Llama;
    before(async () => { llama = await loadSparseLlama({gpu: false}); });
    after(async () => { await llama.dispose(); });

    it("matches a direct log-softmax over all logits, token by token", async () => {
        const model: LlamaModel = await llama.loadModel({modelPath: await tinyModelPath(), gpuLayers: 0});
        const context = await model.createContext({contextSize: 256, sequences: 1, threads: 1});
        try {
            const sequence = context.getSequence();
            const tokens = [model.tokens.bos!, ...model.tokenize(code, false)].slice(0, 40) as Token[];
            const fast = await tokenLogProbabilities(sequence, tokens);

            await sequence.clearHistory();
            const full = await sequence.controlledEvaluate(tokens.map((token, i) =>
                i + 1 < tokens.length ? [token, {generateNext: {logits: true}}] as [Token, {generateNext: {logits: true}}] : token));
            assert.equal(fast.logProbabilities.length, tokens.length - 1);
            let argmaxHits = 0;
            for (let i = 0; i + 1 < tokens.length; i++) {
                const logits = [...full[i]!.next.logits!.values()];
                const max = Math.max(...logits);
                const logSumExp = max + Math.log(logits.reduce((sum, logit) => sum + Math.exp(logit - max), 0));
                const direct = full[i]!.next.logits!.get(tokens[i + 1]!)! - logSumExp;
                assert.ok(Math.abs(fast.logProbabilities[i]! - direct) < 1e-4, `token ${i}: ${fast.logProbabilities[i]} vs ${direct}`);
                if (full[i]!.next.logits!.get(tokens[i + 1]!) === max)
                    argmaxHits++;
            }
            assert.equal(fast.argmaxHits, argmaxHits);
        } finally {
            await context.dispose();
            await model.dispose();
        }
    });

    it("is exp(mean NLL) of the token log-probabilities, finite for the random tiny model", async () => {
        const result = await measurePerplexity(llama, await tinyModelPath(), [code, "x"], {windowTokens: 64});
        // "x" is BOS + one token: one prediction; the code is cut to 64 tokens: 63 predictions.
        assert.equal(result.tokens, 64);
        assert.ok(Number.isFinite(result.perplexity) && result.perplexity > 1);
        assert.ok(Math.abs(Math.log(result.perplexity) - result.meanNll) < 1e-12);
    });

    it("finds real code far more predictable with the bundled dense reference than a random model does", async () => {
        const reference = readEvaluationModels(repoRoot).find((model) => model.name === "dense-8bit");
        assert.ok(reference != null, "models/manifest.json lists no dense-8bit model");
        const trained = await measurePerplexity(llama, reference.path, [code], {windowTokens: 256});
        const random = await measurePerplexity(llama, await tinyModelPath(), [code], {windowTokens: 256});
        assert.ok(trained.perplexity > 1 && trained.perplexity < 20, `dense-8bit perplexity ${trained.perplexity}`);
        assert.ok(random.perplexity > 1000, `random model perplexity ${random.perplexity}`);
        assert.ok(trained.tokenAccuracy > 0.3);
    });
});
