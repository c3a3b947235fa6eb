import * as assert from "node:assert/strict";
import {CompletionPipeline} from "../../src/core/CompletionPipeline.js";
import {EngineClient} from "../../src/core/EngineClient.js";
import {ModelSession} from "../../src/core/ModelSession.js";
import {defaultSettings, type CompletionSettings} from "../../src/core/settings.js";
import {repoRoot, requireBuiltEngine, secondTinyModelPath, tinyModelPath} from "../support/fixtures.js";

describe("switching models while a request runs (real engine)", function () {
    this.timeout(120_000);

    it("cancels the running request cleanly, and the next request uses the new model", async () => {
        const first = await tinyModelPath();
        const second = await secondTinyModelPath();
        const engine = new EngineClient({enginePath: requireBuiltEngine(), log: () => undefined});
        const session = new ModelSession(engine, repoRoot);
        let settings: CompletionSettings = {...defaultSettings, modelVariant: "custom", customModelPath: first, device: "cpu", debounceMs: 0, maxTokens: 2000};
        const outcomes: string[] = [];
        const pipeline = new CompletionPipeline(engine, () => settings, (record) => outcomes.push(record.outcome));
        try {
            assert.equal((await session.apply(settings)).kind, "ready");
            const text = "function main() {\n    \n}\n";
            const running = pipeline.complete({key: "main.ts", text, offset: text.indexOf("    ") + 4});
            await new Promise((resolve) => setTimeout(resolve, 100));
            // What the extension does on a model setting change: cancel, drop cached completions, load the new one.
            settings = {...settings, customModelPath: second, maxTokens: 16};
            pipeline.cancel();
            pipeline.clearCache();
            const status = await session.apply(settings);
            assert.equal(await running, undefined);
            assert.equal(outcomes[0], "cancelled");
            assert.equal(status.kind, "ready");
            assert.equal(status.kind === "ready" ? status.info.name : "", "tiny-random-llama B (test fixture)");
            const next = await pipeline.complete({key: "main.ts", text, offset: text.indexOf("    ") + 4});
            assert.equal(outcomes.at(-1), next == null ? "empty" : "completed");
            assert.equal(engine.model?.modelPath, second);
        } finally {
            session.dispose();
            await engine.dispose();
        }
    });
});
