import * as assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import {EngineClient} from "../../src/core/EngineClient.js";
import type {CompletionPrompt, GenerationOptions} from "../../src/core/engineProtocol.js";
import {EngineError, RequestAbortedError} from "../../src/core/errors.js";
import {generatedDir, requireBuiltEngine, tinyModelPath} from "../support/fixtures.js";

// Real code around the cursor: the prompt a user editing a TypeScript file would send.
const prompt: CompletionPrompt = {
    prefix: "export function binarySearch(items: readonly number[], target: number): number {\n    let low = 0;\n    let high = items.length - 1;\n    while (low <= high) {\n        const mid = ",
    suffix: "\n    }\n    return -1;\n}\n",
    cacheKey: "binarySearch.ts"
};
const greedy: GenerationOptions = {maxTokens: 24, stop: [], singleLine: false, temperature: 0};

describe("engine process (real node-llama-cpp on the CPU, tiny model)", function () {
    this.timeout(120_000);
    let modelPath: string;
    let client: EngineClient;
    const logs: string[] = [];

    before(async () => {
        modelPath = await tinyModelPath();
        client = new EngineClient({enginePath: requireBuiltEngine(), log: (level, message) => logs.push(`${level}: ${message}`), restartDelaysMs: [100]});
    });
    after(async () => { await client.dispose(); });

    const load = () => client.load({modelPath, device: "cpu", contextSize: 2048, sequences: 2});

    it("loads a GGUF in the child process and reports what it loaded", async () => {
        const progress: number[] = [];
        const info = await client.load({modelPath, device: "cpu", contextSize: 2048, sequences: 2}, (fraction) => progress.push(fraction));
        assert.equal(info.backend, "cpu");
        assert.equal(info.supportsFim, true);
        assert.equal(info.contextSize, 2048);
        assert.deepEqual(info.weightTypes, ["F16"]);
        assert.equal(client.state, "ready");
        assert.notEqual(client.pid, process.pid);
        assert.ok(progress.length > 0 && progress.at(-1) === 1);
    });

    it("generates with fill-in-the-middle, streams the same text it returns, and honours max tokens", async () => {
        const chunks: string[] = [];
        const completion = await client.complete(prompt, greedy, {onChunk: (text) => chunks.push(text)});
        assert.equal(chunks.join(""), completion.text);
        assert.ok(completion.stats.generatedTokens <= 24);
        assert.ok(["max-tokens", "eos"].includes(completion.stopReason));
        assert.ok(completion.stats.promptTokens > 40);
        // The last token arrives after the first and before the request has ended the evaluation and built its final
        // text (what decode benchmarks time per token runs from the first token to the last).
        const {timeToFirstTokenMs, lastTokenMs, totalMs, generatedTokens} = completion.stats;
        assert.ok(generatedTokens > 1 && lastTokenMs != null && timeToFirstTokenMs < lastTokenMs && lastTokenMs < totalMs,
            `${generatedTokens} tokens: first ${timeToFirstTokenMs}, last ${lastTokenMs}, total ${totalMs} ms`);
        // Greedy decoding of the same prompt is deterministic.
        const again = await client.complete(prompt, greedy);
        assert.equal(again.text, completion.text);
    });

    it("evaluates only the new tokens when the prompt grows by a keystroke", async () => {
        await client.complete(prompt, greedy);
        const typed = await client.complete({...prompt, prefix: prompt.prefix + "("}, greedy);
        assert.ok(typed.stats.evaluatedPromptTokens <= typed.stats.promptTokens - prompt.prefix.length / 8,
            `evaluated ${typed.stats.evaluatedPromptTokens} of ${typed.stats.promptTokens}`);
    });

    it("prefills a prompt speculatively, so the request that follows evaluates only its last token", async () => {
        const typed = {...prompt, prefix: prompt.prefix + "Math.floor((low + high) / 2);\n        if (items[mid] === target)"};
        const prefilled = await client.prefill(typed, greedy);
        assert.ok(prefilled.evaluatedTokens > 0 && prefilled.evaluatedTokens < prefilled.promptTokens, "the prefill evaluated the new tokens");
        const completion = await client.complete(typed, greedy);
        assert.equal(completion.stats.evaluatedPromptTokens, 1);
        const aborted = new AbortController();
        aborted.abort();
        assert.deepEqual(await client.prefill({...typed, prefix: typed.prefix + " {"}, greedy, aborted.signal), {promptTokens: 0, evaluatedTokens: 0});
    });

    it("keeps one cached sequence per file", async () => {
        const other: CompletionPrompt = {prefix: "def median(values):\n    ordered = sorted(values)\n    middle = len(ordered) // 2\n    return ", suffix: "\n", cacheKey: "median.py"};
        await client.complete(prompt, greedy);
        await client.complete(other, greedy);
        const back = await client.complete(prompt, greedy);
        assert.ok(back.stats.evaluatedPromptTokens <= 2, `switching back evaluated ${back.stats.evaluatedPromptTokens} tokens`);
    });

    it("stops between tokens when aborted, and serves the next request", async () => {
        const controller = new AbortController();
        const long = {...greedy, maxTokens: 2000};
        const started = performance.now();
        const pending = client.complete(prompt, long, {signal: controller.signal, onChunk: () => controller.abort()});
        await assert.rejects(pending, RequestAbortedError);
        assert.ok(performance.now() - started < 10_000);
        const next = await client.complete(prompt, greedy);
        assert.ok(next.stats.generatedTokens > 0);
    });

    it("decodes ahead (forced on, here on the CPU) without changing a completion: stops, edits, prefills, files, aborts", async () => {
        const ahead = new EngineClient({enginePath: requireBuiltEngine(), log: (level, message) => logs.push(`${level}: ${message}`)});
        try {
            assert.equal((await load()).decodeAhead, false, "off by default");
            assert.equal((await ahead.load({modelPath, device: "cpu", contextSize: 2048, sequences: 2, decodeAhead: true})).decodeAhead, true);
            const plain = await client.complete(prompt, greedy);
            await ahead.complete(prompt, greedy); // the same cache state in both
            const stop = plain.text.length > 8 ? [plain.text.slice(4, 7)] : [];
            const other: CompletionPrompt = {prefix: "def median(values):\n    ordered = sorted(values)\n    return ", suffix: "\n", cacheKey: "median.py"};
            const typed = {...prompt, prefix: prompt.prefix + "Math.floor((low + high) / 2);\n        if (items[mid]"};
            // Each request ends with the queued decode of a token nobody asked for (stop string, single line, max tokens,
            // abort) or continues the sequence the next one reuses, so both the roll-back and the adoption paths run.
            const script: {prompt: CompletionPrompt, options: GenerationOptions, prefill?: boolean, abortAfterChunks?: number}[] = [
                {prompt, options: greedy},
                {prompt: {...prompt, prefix: prompt.prefix + "("}, options: greedy},
                {prompt, options: {...greedy, stop}},
                {prompt, options: {...greedy, singleLine: true}},
                {prompt: other, options: {...greedy, maxTokens: 7}},
                {prompt: typed, options: greedy, prefill: true},
                {prompt: {...typed, prefix: "// sorted input\n" + typed.prefix}, options: greedy},
                {prompt, options: {...greedy, maxTokens: 200}, abortAfterChunks: 3},
                {prompt: other, options: {...greedy, maxTokens: 1}},
                {prompt, options: greedy}
            ];
            let adopted = 0;
            let rolledBack = 0;
            for (const [index, step] of script.entries()) {
                const run = async (engine: EngineClient) => {
                    if (step.prefill === true)
                        await engine.prefill(step.prompt, step.options);
                    if (step.abortAfterChunks == null)
                        return engine.complete(step.prompt, step.options);
                    // The same abort point for both: after a fixed number of streamed pieces.
                    const controller = new AbortController();
                    let chunks = 0;
                    await assert.rejects(engine.complete(step.prompt, step.options,
                        {signal: controller.signal, onChunk: () => { if (++chunks === step.abortAfterChunks) controller.abort(); }}), RequestAbortedError);
                    return undefined;
                };
                const [expected, actual] = [await run(client), await run(ahead)];
                assert.equal(expected?.stats.decodedAhead, undefined);
                adopted += actual?.stats.decodedAhead?.adopted ?? 0;
                rolledBack += actual?.stats.decodedAhead?.rolledBack ?? 0;
                assert.equal(actual?.text, expected?.text, `step ${index}`);
                assert.equal(actual?.stopReason, expected?.stopReason, `step ${index}`);
                assert.equal(actual?.stats.evaluatedPromptTokens, expected?.stats.evaluatedPromptTokens, `step ${index}`);
            }
            // Both paths of the patch ran: decodes taken over by the next step, and the decode left queued by the abort
            // (and by the stop string, unless it ends the first token) undone, counted by the request after it;
            // max-tokens stops leave none.
            assert.ok(adopted > 50, `adopted ${adopted}`);
            assert.ok(rolledBack >= 1, `rolled back ${rolledBack}`);
        } finally {
            await ahead.dispose();
        }
    });

    it("picks greedy tokens in the decode (forced on, here on the CPU) without changing a completion, and samples others on the host", async () => {
        const inDecode = new EngineClient({enginePath: requireBuiltEngine(), log: (level, message) => logs.push(`${level}: ${message}`)});
        try {
            assert.equal((await load()).greedyInDecode, false, "off by default on the CPU");
            assert.equal((await inDecode.load({modelPath, device: "cpu", contextSize: 2048, sequences: 2, greedyInDecode: true})).greedyInDecode, true);
            const other: CompletionPrompt = {prefix: "def median(values):\n    ordered = sorted(values)\n    return ", suffix: "\n", cacheKey: "median.py"};
            const sampled: GenerationOptions = {...greedy, temperature: 0.8};
            // Greedy, then sampled (the sequence's logits must come back to the host), then greedy again on the same file.
            for (const [index, step] of [{prompt, options: greedy}, {prompt: other, options: greedy}, {prompt, options: sampled},
                {prompt: {...prompt, prefix: prompt.prefix + "("}, options: greedy}, {prompt: other, options: sampled},
                {prompt: other, options: greedy}].entries()) {
                const [expected, actual] = [await client.complete(step.prompt, step.options), await inDecode.complete(step.prompt, step.options)];
                assert.equal(actual.text, expected.text, `step ${index}`);
                assert.equal(actual.stopReason, expected.stopReason, `step ${index}`);
                assert.ok(actual.stats.generatedTokens > 0, `step ${index}`);
            }
        } finally {
            await inDecode.dispose();
        }
    });

    it("refuses a missing or corrupt model with a clear error and stays usable", async () => {
        await assert.rejects(client.load({modelPath: path.join(generatedDir, "missing.gguf"), device: "cpu", contextSize: 1024, sequences: 1}),
            (error: unknown) => error instanceof EngineError && error.code === "model-not-found");
        const corrupt = path.join(generatedDir, "truncated.gguf");
        const bytes = await fs.readFile(modelPath);
        await fs.writeFile(corrupt, bytes.subarray(0, bytes.length >> 1));
        await assert.rejects(client.load({modelPath: corrupt, device: "cpu", contextSize: 1024, sequences: 1}),
            (error: unknown) => error instanceof EngineError && error.code === "model-invalid" && /truncated|past the end/.test(error.message));
        await load();
        assert.ok((await client.complete(prompt, greedy)).text.length >= 0);
    });

    it("restarts a killed engine process, reloads the model, and completes again", async () => {
        await load();
        const pid = client.pid!;
        const reloaded = new Promise<void>((resolve) => client.onReloaded(() => resolve()));
        const pending = client.complete(prompt, {...greedy, maxTokens: 2000});
        process.kill(pid, "SIGKILL");
        await assert.rejects(pending, (error: unknown) => error instanceof EngineError && error.code === "engine-crashed");
        await reloaded;
        assert.notEqual(client.pid, pid);
        assert.equal(client.state, "ready");
        const after = await client.complete(prompt, greedy);
        assert.ok(after.stats.generatedTokens > 0);
        assert.ok(logs.some((line) => line.includes("restarting the engine")));
    });
});
