import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {generateTypingTrace} from "../../src/bench/generateTypingTrace.js";
import {LlamaServerBackend, startLlamaServer} from "../../src/bench/LlamaServerBackend.js";
import {replayTypingTrace} from "../../src/bench/replayTypingTrace.js";
import type {EngineClient} from "../../src/core/EngineClient.js";
import {chooseModel} from "../../src/core/modelCatalog.js";
import {defaultSettings} from "../../src/core/settings.js";
import {paths, repoRoot, startEngineWithBundledModel} from "../support/fixtures.js";

const sources = ["benchmark-source.ts.txt", "typing/EngineClient.ts.txt"]
    .map((name) => ({key: `file:///${name}`, text: fs.readFileSync(path.join(paths.samplesDir, name), "utf8")}));
const trace = generateTypingTrace(sources, {seed: 5, keystrokes: 50});
const shortTrace = generateTypingTrace(sources, {seed: 5, keystrokes: 15});
const settings = {...defaultSettings, device: "cpu" as const, debounceMs: 40};

describe("typing replay (real engine, bundled sparse model)", function () {
    this.timeout(300_000);
    let engine: EngineClient;

    before(async () => { engine = await startEngineWithBundledModel("sparse", 4); });
    after(() => engine.dispose());

    it("with caching, evaluates only the new tokens of each keystroke", async () => {
        const result = await replayTypingTrace({trace, backend: engine, settings, speed: 2});
        assert.equal(result.requests, trace.events.filter((event) => event.kind !== "move").length);
        assert.equal(result.failed, 0, result.firstFailure);
        assert.ok(result.modelAnswers >= 1, "the last keystroke is answered");
        // A short trace: the first prompt of each file and a line inserted above the cursor are evaluated in full once.
        assert.ok(result.reusedPromptShare > 0.75, `reused ${(result.reusedPromptShare * 100).toFixed(1)}% of prompt tokens`);
        assert.ok(result.evaluatedTokensPerAnswer.median <= 4, `median ${result.evaluatedTokensPerAnswer.median} tokens evaluated per answer`);
        assert.ok(result.timeToFirstTokenMs.median <= result.completionMs.median);
    });

    it("without caching, evaluates every prompt in full", async () => {
        const result = await replayTypingTrace({trace, backend: engine, settings, speed: 2, caching: false});
        assert.equal(result.failed, 0, result.firstFailure);
        assert.equal(result.fromCache, 0);
        assert.equal(result.prefilledTokens, 0);
        assert.equal(result.evaluatedPromptTokens, result.promptTokens);
        assert.equal(result.reusedPromptShare, 0);
    });

    it("with fixedLengthTokens, every answer is exactly that long (the GPU rows' fixed-length completion)", async () => {
        const result = await replayTypingTrace({trace: shortTrace, backend: engine, settings, pacing: "one-by-one", fixedLengthTokens: 24});
        assert.equal(result.failed, 0, result.firstFailure);
        assert.ok(result.modelAnswers >= 1);
        assert.equal(result.generatedTokensPerAnswer.min, 24);
        assert.equal(result.generatedTokensPerAnswer.max, 24);
    });
});

// llama-server is built on demand (`npm run build:llama-server`, ~10 minutes on 2 cores), so this runs where it exists.
const llamaServerBinary = path.join(repoRoot, ".cache", "llama-server", "cpu", "bin", "llama-server");
(fs.existsSync(llamaServerBinary) ? describe : describe.skip)("typing replay against llama-server /infill (built from our tree)", function () {
    this.timeout(300_000);

    it("answers through /infill with cache_prompt, reusing the server's KV cache", async () => {
        const model = await chooseModel(repoRoot, {modelVariant: "sparse", customModelPath: ""});
        const server = await startLlamaServer({binary: llamaServerBinary, modelPath: model.path, gpu: false, threads: 1, contextSize: 8192, slots: 4});
        try {
            // One by one, so that every keystroke is answered and the cache's effect does not depend on timing.
            const result = await replayTypingTrace({trace: shortTrace, backend: new LlamaServerBackend(server.url), settings, pacing: "one-by-one"});
            assert.equal(result.failed, 0, result.firstFailure);
            assert.equal(result.modelAnswers + result.fromCache, shortTrace.events.filter((event) => event.kind !== "move").length);
            assert.ok(result.promptTokens > 0 && result.evaluatedPromptTokens < result.promptTokens, "the server reported cached prompt tokens");
        } finally {
            await server.stop();
        }
    });
});
