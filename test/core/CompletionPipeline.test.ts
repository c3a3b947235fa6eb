import * as assert from "node:assert/strict";
import {CompletionPipeline, type CompletionBackend, type RequestRecord} from "../../src/core/CompletionPipeline.js";
import type {CompletionPrompt, EngineCompletion, GenerationOptions, PrefillResult} from "../../src/core/engineProtocol.js";
import {RequestAbortedError} from "../../src/core/errors.js";
import {defaultSettings, type CompletionSettings} from "../../src/core/settings.js";

/**
 * A scripted backend for ordering tests only (the engine itself is tested for real in test/engine): it answers after
 * `latencyMs`, between "tokens" checks its signal like the engine does, and records what it was asked.
 */
class ScriptedBackend implements CompletionBackend {
    public readonly calls: {prompt: CompletionPrompt, options: GenerationOptions, aborted: boolean}[] = [];
    public readonly prefills: {prompt: CompletionPrompt, signal?: AbortSignal, at: number}[] = [];

    public async prefill(prompt: CompletionPrompt, _options: GenerationOptions, signal?: AbortSignal): Promise<PrefillResult> {
        this.prefills.push({prompt, signal, at: performance.now()});
        return {promptTokens: 1, evaluatedTokens: 1};
    }
    public constructor(private readonly answer: string, private readonly latencyMs = 30) {}

    public async complete(prompt: CompletionPrompt, options: GenerationOptions, {signal}: {signal?: AbortSignal}): Promise<EngineCompletion> {
        const call = {prompt, options, aborted: false};
        this.calls.push(call);
        for (let elapsed = 0; elapsed < this.latencyMs; elapsed += 5) {
            await new Promise((resolve) => setTimeout(resolve, 5));
            if (signal?.aborted) {
                call.aborted = true;
                throw new RequestAbortedError();
            }
        }
        return {text: this.answer, stopReason: "eos", stats: {promptTokens: 10, evaluatedPromptTokens: 1, generatedTokens: 5, timeToFirstTokenMs: 1, totalMs: this.latencyMs}};
    }
}

const text = "function greet(name: string) {\n    return \n}\n";
const offset = text.indexOf("return ") + "return ".length;
const settings: CompletionSettings = {...defaultSettings, debounceMs: 40};

describe("CompletionPipeline", () => {
    it("debounces: a burst of keystrokes reaches the engine once, with the last text", async () => {
        const backend = new ScriptedBackend("`Hello, ${name}!`;");
        const records: RequestRecord[] = [];
        const pipeline = new CompletionPipeline(backend, () => settings, (record) => records.push(record));
        const typed = "`He";
        const results = await Promise.all([...typed].map(async (_, i) => {
            await new Promise((resolve) => setTimeout(resolve, i * 10));
            const t = text.slice(0, offset) + typed.slice(0, i + 1) + text.slice(offset);
            return pipeline.complete({key: "greet.ts", text: t, offset: offset + i + 1});
        }));
        assert.equal(backend.calls.length, 1);
        assert.ok(backend.calls[0]!.prompt.prefix.endsWith("return `He"));
        assert.deepEqual(results.map((r) => r?.text), [undefined, undefined, "`Hello, ${name}!`;"]);
        assert.deepEqual(records.map((r) => r.outcome), ["cancelled", "cancelled", "completed"]);
    });

    it("lets the newest request win: a running generation is aborted between tokens", async () => {
        const backend = new ScriptedBackend("name;", 200);
        const pipeline = new CompletionPipeline(backend, () => ({...settings, debounceMs: 0}));
        const first = pipeline.complete({key: "greet.ts", text, offset});
        await new Promise((resolve) => setTimeout(resolve, 50));
        const second = pipeline.complete({key: "greet.ts", text: text.slice(0, offset) + "n" + text.slice(offset), offset: offset + 1});
        assert.equal(await first, undefined);
        assert.equal((await second)?.text, "name;");
        assert.equal(backend.calls[0]!.aborted, true);
    });

    it("turns a cancelled caller signal into no completion, not an error", async () => {
        const backend = new ScriptedBackend("name;", 200);
        const records: RequestRecord[] = [];
        const pipeline = new CompletionPipeline(backend, () => ({...settings, debounceMs: 0}), (r) => records.push(r));
        const controller = new AbortController();
        const pending = pipeline.complete({key: "greet.ts", text, offset}, controller.signal);
        setTimeout(() => controller.abort(), 30);
        assert.equal(await pending, undefined);
        assert.equal(records[0]!.outcome, "cancelled");
        assert.equal(backend.calls[0]!.aborted, true);
    });

    it("serves a repeated request and typed-ahead text from the cache without the engine", async () => {
        const backend = new ScriptedBackend("name.toUpperCase();");
        const pipeline = new CompletionPipeline(backend, () => ({...settings, debounceMs: 0}));
        assert.equal((await pipeline.complete({key: "greet.ts", text, offset}))?.text, "name.toUpperCase();");
        const again = await pipeline.complete({key: "greet.ts", text, offset});
        assert.equal(again?.source, "cache");
        const typedText = text.slice(0, offset) + "name." + text.slice(offset);
        const typedAhead = await pipeline.complete({key: "greet.ts", text: typedText, offset: offset + 5});
        assert.deepEqual([typedAhead?.source, typedAhead?.text], ["cache", "toUpperCase();"]);
        assert.equal(backend.calls.length, 1);
    });

    it("asks for one line in the middle of a line and a block at an empty line", async () => {
        const backend = new ScriptedBackend("x");
        const pipeline = new CompletionPipeline(backend, () => ({...settings, debounceMs: 0}));
        await pipeline.complete({key: "a.ts", text: "call(a, )\n", offset: "call(a, ".length});
        await pipeline.complete({key: "b.ts", text: "if (ok) {\n    \n}\n", offset: "if (ok) {\n    ".length});
        await pipeline.complete({key: "c.ts", text: "const v = f() + g;\n", offset: "const v = f(".length});
        assert.deepEqual(backend.calls.map((c) => c.options.singleLine), [true, false, true]);
    });

    it("returns nothing while disabled", async () => {
        const backend = new ScriptedBackend("x");
        const pipeline = new CompletionPipeline(backend, () => ({...settings, enabled: false}));
        assert.equal(await pipeline.complete({key: "a.ts", text, offset}), undefined);
        assert.equal(backend.calls.length, 0);
    });

    it("prefills each prompt during its debounce pause; a newer keystroke aborts the older prefill", async () => {
        const backend = new ScriptedBackend("name;");
        const pipeline = new CompletionPipeline(backend, () => settings);
        const first = pipeline.complete({key: "greet.ts", text, offset});
        await new Promise((resolve) => setTimeout(resolve, 10));
        const typed = text.slice(0, offset) + "n" + text.slice(offset);
        const second = pipeline.complete({key: "greet.ts", text: typed, offset: offset + 1});
        await Promise.all([first, second]);
        assert.equal(backend.prefills.length, 2);
        assert.equal(backend.prefills[0]!.signal?.aborted, true);
        assert.deepEqual(backend.prefills[1]!.prompt, backend.calls[0]!.prompt, "the request runs on the prompt that was prefilled");
    });
    it("asks for exactly fixedLengthTokens tokens, past end-of-text and line ends, when a benchmark sets it", async () => {
        const backend = new ScriptedBackend("name;");
        const pipeline = new CompletionPipeline(backend, () => ({...settings, debounceMs: 0}), undefined, {fixedLengthTokens: 64});
        await pipeline.complete({key: "greet.ts", text, offset});
        const {options} = backend.calls[0]!;
        assert.equal(options.maxTokens, 64);
        assert.equal(options.singleLine, false);
        assert.equal(options.ignoreEndOfText, true);

        const normal = new ScriptedBackend("name;");
        await new CompletionPipeline(normal, () => ({...settings, debounceMs: 0})).complete({key: "greet.ts", text, offset});
        assert.equal(normal.calls[0]!.options.singleLine, true, "mid-line requests stop at the line end");
        assert.equal(normal.calls[0]!.options.ignoreEndOfText, undefined);
    });
});
