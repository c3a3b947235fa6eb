import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {CompletionPipeline, type RequestRecord} from "../../src/core/CompletionPipeline.js";
import {EngineClient} from "../../src/core/EngineClient.js";
import {defaultSettings, type CompletionSettings} from "../../src/core/settings.js";
import {paths, repoRoot, requireBuiltEngine, tinyModelPath} from "../support/fixtures.js";

const REQUESTS = Number(process.env.SOAK_REQUESTS ?? 10_000);

function rssMegabytes(pid: number): number {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

describe(`soak: ${REQUESTS} completion requests with edits, file switches and cancellations`, function () {
    this.timeout(1_800_000);

    it("serves them all without a crash or an unhandled rejection, in bounded memory", async function () {
        if (!fs.existsSync("/proc/self/status"))
            this.skip();
        // Real files to edit: this project's own sources and samples.
        const files = [path.join(repoRoot, "src", "core", "CompletionPipeline.ts"), path.join(paths.samplesDir, "inventory.py"), path.join(paths.samplesDir, "fibonacci.ts")]
            .map((file) => ({key: file, text: fs.readFileSync(file, "utf8"), offset: 0}));
        for (const file of files)
            file.offset = Math.floor(file.text.length / 2);
        let seed = 7;
        const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
        const unhandled: unknown[] = [];
        const onUnhandled = (reason: unknown) => unhandled.push(reason);
        process.on("unhandledRejection", onUnhandled);

        const engine = new EngineClient({enginePath: requireBuiltEngine(), log: () => undefined});
        const settings: CompletionSettings = {...defaultSettings, device: "cpu", debounceMs: 0, maxTokens: 6, contextTokens: 512};
        const outcomes = new Map<RequestRecord["outcome"], number>();
        const pipeline = new CompletionPipeline(engine, () => settings, (record) => outcomes.set(record.outcome, (outcomes.get(record.outcome) ?? 0) + 1));
        try {
            await engine.load({modelPath: await tinyModelPath(), device: "cpu", contextSize: 1024, sequences: 4});
            let startRss: {test: number, engine: number} | undefined;
            const inFlight = new Set<Promise<unknown>>();
            for (let i = 0; i < REQUESTS; i++) {
                let file = files[i % 97 === 0 ? Math.floor(next() * files.length) : 0]!;
                const action = next();
                if (action < 0.6) {
                    const typed = "abcdefghij ();\n"[Math.floor(next() * 15)]!;
                    file.text = file.text.slice(0, file.offset) + typed + file.text.slice(file.offset);
                    file.offset++;
                } else if (action < 0.75 && file.offset > 0) {
                    file.text = file.text.slice(0, file.offset - 1) + file.text.slice(file.offset);
                    file.offset--;
                } else if (action < 0.8) {
                    file.offset = Math.floor(next() * file.text.length);
                } else if (action < 0.85) {
                    file = files[Math.floor(next() * files.length)]!;
                }
                const controller = new AbortController();
                if (next() < 0.3)
                    setTimeout(() => controller.abort(), Math.floor(next() * 4));
                const request = pipeline.complete({key: file.key, text: file.text, offset: file.offset}, controller.signal);
                inFlight.add(request);
                void request.finally(() => inFlight.delete(request));
                // Bursts of keystrokes supersede each other (newest wins); pauses let a request finish.
                if (next() < 0.35)
                    await request;
                else if (inFlight.size >= 2)
                    await Promise.race(inFlight);
                if (i === 200)
                    startRss = {test: rssMegabytes(process.pid), engine: rssMegabytes(engine.pid!)};
            }
            await Promise.all(inFlight);
            const endRss = {test: rssMegabytes(process.pid), engine: rssMegabytes(engine.pid!)};
            console.log(`      outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; RSS MB at request 200 ${JSON.stringify(startRss)}, at the end ${JSON.stringify(endRss)}`);
            assert.deepEqual(unhandled, []);
            const served = [...outcomes.values()].reduce((a, b) => a + b, 0);
            assert.equal(served, REQUESTS, "every request reached an outcome");
            assert.equal(outcomes.get("failed") ?? 0, 0);
            assert.ok((outcomes.get("completed") ?? 0) + (outcomes.get("empty") ?? 0) + (outcomes.get("cached") ?? 0) > REQUESTS / 10);
            assert.ok(endRss.engine < startRss!.engine + 100, "engine memory stays bounded");
            assert.ok(endRss.test < startRss!.test + 150, "extension-side memory stays bounded");
            const after = await engine.complete({prefix: "let x = ", suffix: ";\n", cacheKey: "after"}, {maxTokens: 2, stop: [], singleLine: true, temperature: 0});
            assert.ok(after.stats.generatedTokens > 0, "the engine still answers");
        } finally {
            process.off("unhandledRejection", onUnhandled);
            await engine.dispose();
        }
    });
});
