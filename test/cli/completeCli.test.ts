import * as assert from "node:assert/strict";
import {spawnSync} from "node:child_process";
import * as path from "node:path";
import {repoRoot, tinyModelPath} from "../support/fixtures.js";

function runCli(args: string[]) {
    const result = spawnSync(process.execPath, [path.join(repoRoot, "dist", "completeCli.mjs"), ...args], {cwd: repoRoot, encoding: "utf8", timeout: 120_000});
    return {status: result.status, stdout: result.stdout, stderr: result.stderr};
}

describe("npm run complete (headless main job)", function () {
    this.timeout(120_000);

    it("prints the completion at a file position as JSON, through the engine process", async () => {
        const model = await tinyModelPath();
        const {status, stdout, stderr} = runCli(["samples/fibonacci.ts:6:9", "--model", model, "--device", "cpu", "--max-tokens", "16", "--json"]);
        assert.equal(status, 0, stderr);
        const report = JSON.parse(stdout);
        assert.equal(report.line, 6);
        assert.equal(report.model.backend, "cpu");
        assert.equal(typeof report.completion, "string");
        assert.ok(report.stats.generatedTokens <= 16);
        assert.ok(report.stats.promptTokens > 50, "the prompt holds the file around the cursor");
        assert.ok(report.latencyMs > 0);
    });

    it("explains a bad position or a missing model instead of crashing", async () => {
        const model = await tinyModelPath();
        const badLine = runCli(["samples/fibonacci.ts:999:1", "--model", model]);
        assert.equal(badLine.status, 1);
        assert.match(badLine.stderr, /line 999 is past the end/);
        const missing = runCli(["samples/fibonacci.ts:6:9", "--model", "no/such/model.gguf"]);
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /does not exist/);
        const usage = runCli(["samples/fibonacci.ts"]);
        assert.equal(usage.status, 2);
        assert.match(usage.stderr, /usage:/);
    });
});
