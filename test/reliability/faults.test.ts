import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {EngineClient} from "../../src/core/EngineClient.js";
import {ModelSession, type ModelStatus} from "../../src/core/ModelSession.js";
import {noticeFor} from "../../src/core/modelNotice.js";
import {defaultSettings} from "../../src/core/settings.js";
import {generatedDir, paths, repoRoot, requireBuiltEngine, tinyModelPath} from "../support/fixtures.js";
import {tinyLlamaShape, writeTinyLlamaGguf} from "../support/writeTinyLlamaGguf.js";

const prompt = {prefix: "function add(a, b) {\n    return ", suffix: "\n}\n", cacheKey: "add.js"};
const greedy = {maxTokens: 4, stop: [], singleLine: true, temperature: 0};

describe("faults: memory and model files (real engine)", function () {
    this.timeout(180_000);

    it("falls back to a smaller context when the one asked for cannot be allocated, and says so", async () => {
        // A model with a wide KV cache and a long trained context: 65,536 tokens need a 1 GiB KV buffer.
        const model = path.join(generatedDir, "tiny-llama-wide-kv.gguf");
        if (!fs.existsSync(model))
            await writeTinyLlamaGguf(model, paths.codeVocabulary, {...tinyLlamaShape, embedding: 512, heads: 8, kvHeads: 8, feedForward: 512, contextLength: 65536});
        process.env.ENGINE_DATA_LIMIT_KB = "1000000";
        process.env.ENGINE_NODE = process.execPath;
        const engine = new EngineClient({enginePath: requireBuiltEngine(), execPath: path.join(repoRoot, "test", "support", "memoryLimitedNode.sh"), log: () => undefined});
        try {
            const info = await engine.load({modelPath: model, device: "cpu", contextSize: 65536, sequences: 4});
            assert.equal(info.contextReducedFrom, 65536);
            assert.ok(info.contextSize < 65536 && info.contextSize >= 512, `context ${info.contextSize}`);
            const completion = await engine.complete(prompt, greedy);
            assert.ok(completion.stats.generatedTokens > 0);
            const notice = noticeFor({kind: "ready", choice: {variant: "custom", path: model, label: "wide"}, info});
            assert.equal(notice?.severity, "info");
            assert.match(notice!.message, /A 65536-token context did not fit in memory; using \d+ tokens/);
        } finally {
            delete process.env.ENGINE_DATA_LIMIT_KB;
            delete process.env.ENGINE_NODE;
            await engine.dispose();
        }
    });

    it("reports a model file deleted while in use and clears the warning when it is back; a reload without it says the file is gone", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sparse-complete-deleted-"));
        const model = path.join(dir, "model.gguf");
        fs.copyFileSync(await tinyModelPath(), model);
        const engine = new EngineClient({enginePath: requireBuiltEngine(), log: () => undefined});
        const session = new ModelSession(engine, repoRoot);
        const settings = {...defaultSettings, modelVariant: "custom" as const, customModelPath: model, device: "cpu" as const};
        try {
            assert.equal((await session.apply(settings)).kind, "ready");
            const warned = new Promise<ModelStatus>((resolve) => session.onStatus((status) => {
                if (status.kind === "ready" && status.warning != null)
                    resolve(status);
            }));
            fs.rmSync(model);
            const status = await warned;
            assert.equal(noticeFor(status)?.severity, "warning");
            assert.match(noticeFor(status)!.message, /model\.gguf was deleted or moved; completions continue from memory/);
            assert.ok((await engine.complete(prompt, greedy)).stats.promptTokens > 0, "the mapped model still completes");
            const cleared = new Promise<ModelStatus>((resolve) => session.onStatus((next) => {
                if (next.kind === "ready" && next.warning == null)
                    resolve(next);
            }));
            fs.copyFileSync(await tinyModelPath(), model);
            assert.equal(noticeFor(await cleared), undefined, "the file is back: nothing to report");
            fs.rmSync(model);
            await warned.then(() => new Promise<void>((resolve) => session.onStatus((next) => {
                if (next.kind === "ready" && next.warning != null)
                    resolve();
            })));
            const reloaded = await session.apply(settings, {force: true});
            assert.equal(reloaded.kind, "error");
            assert.match(noticeFor(reloaded)!.message, /model\.gguf/);
        } finally {
            session.dispose();
            await engine.dispose();
            fs.rmSync(dir, {recursive: true, force: true});
        }
    });

    it("after the engine process is killed, the session reloads the model by itself and is ready again", async () => {
        const engine = new EngineClient({enginePath: requireBuiltEngine(), log: () => undefined, restartDelaysMs: [50]});
        const session = new ModelSession(engine, repoRoot);
        const settings = {...defaultSettings, modelVariant: "custom" as const, customModelPath: await tinyModelPath(), device: "cpu" as const};
        try {
            assert.equal((await session.apply(settings)).kind, "ready");
            const kinds: string[] = [];
            const readyAgain = new Promise<void>((resolve) => session.onStatus((status) => {
                kinds.push(status.kind);
                if (status.kind === "ready")
                    resolve();
            }));
            process.kill(engine.pid!, "SIGKILL");
            await readyAgain;
            assert.deepEqual(kinds, ["loading", "ready"]);
            assert.ok((await engine.complete(prompt, greedy)).stats.promptTokens > 0);
        } finally {
            session.dispose();
            await engine.dispose();
        }
    });
});
