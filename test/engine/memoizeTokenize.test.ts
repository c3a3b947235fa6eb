import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type {Llama} from "node-llama-cpp";
import {buildPromptTokens, tokenizesLineStartsApart} from "../../src/engine/buildPromptTokens.js";
import {memoizeTokenize} from "../../src/engine/memoizeTokenize.js";
import {loadSparseLlama} from "../../src/native/loadSparseLlama.js";
import {paths, repoRoot} from "../support/fixtures.js";

describe("memoizeTokenize", () => {
    it("tokenizes a text once while it is among the recent ones, and shares frozen arrays", () => {
        const calls: string[] = [];
        const tokenize = memoizeTokenize((text) => {
            calls.push(text);
            return [...text].map((character) => character.charCodeAt(0));
        }, 2);
        const first = tokenize("abc");
        assert.deepEqual(first, [97, 98, 99]);
        assert.equal(tokenize("abc"), first);
        assert.ok(Object.isFrozen(first));
        tokenize("de");
        tokenize("f");  // evicts "abc", the least recently used
        tokenize("abc");
        assert.deepEqual(calls, ["abc", "de", "f", "abc"]);
    });
});

// buildPromptTokens tokenizes a prompt in two pieces split at the cursor's line start, so that the unchanged piece
// comes from the memo. That must give the tokens of the whole text, with the real vocabularies.
describe("tokenizing at the line start (real vocabularies)", function () {
    this.timeout(120_000);
    let llama: Llama;
    // A vocabulary-only file has no weights; llama.cpp logs that as an error before loading the vocabulary alone.
    before(async () => { llama = await loadSparseLlama({gpu: false, logger: () => undefined}); });
    after(() => llama.dispose());

    const vocabularies = {
        "deepseek-coder (the bundled models)": paths.codeVocabulary,
        "Llama 3 (imported and 8B-shaped models)": path.join(path.dirname(paths.codeVocabulary), "ggml-vocab-llama-bpe.gguf")
    };
    for (const [name, vocabulary] of Object.entries(vocabularies)) {
        it(`gives the whole prefix's tokens: ${name}`, async () => {
            const model = await llama.loadModel({modelPath: vocabulary, vocabOnly: true});
            const tokenizer = {tokenize: (text: string) => model.tokenize(text, false) as number[], bos: null};
            let positions = 0;
            for (const file of [path.join(paths.samplesDir, "benchmark-source.ts.txt"), path.join(repoRoot, "model-pipeline", "train.py")]) {
                const text = fs.readFileSync(file, "utf8").slice(0, 12_000);
                for (let at = 1; at < text.length; at += 53, positions++) {
                    const prefix = text.slice(0, at);
                    assert.deepEqual(buildPromptTokens(tokenizer, {prefix, suffix: "", cacheKey: "f"}, 1_000_000),
                        model.tokenize(prefix, false), `at ${at}: ${JSON.stringify(prefix.slice(-30))}`);
                }
            }
            assert.ok(positions > 300);
            assert.equal(tokenizesLineStartsApart(tokenizer.tokenize), true, "the engine's load-time probe agrees");
            await model.dispose();
        });
    }
});
