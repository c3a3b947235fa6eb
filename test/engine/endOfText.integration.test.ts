import * as assert from "node:assert/strict";
import type {EngineClient} from "../../src/core/EngineClient.js";
import type {CompletionPrompt, GenerationOptions} from "../../src/core/engineProtocol.js";
import {startEngineWithBundledModel} from "../support/fixtures.js";

// Ends of files and blocks, where the bundled model tends to emit end-of-text.
const prompts: readonly CompletionPrompt[] = [
    {prefix: "import os\n\n\ndef main():\n    print('hello')\n\n\nif __name__ == '__main__':\n    ", suffix: "", cacheKey: "main.py"},
    {prefix: "const items = [1, 2, 3];\nconst total = items.reduce((a, b) => a + b, 0);\nconsole.log(", suffix: ");\n", cacheKey: "total.js"},
    {prefix: "def add(a, b):\n    return ", suffix: "\n\n\ndef sub(a, b):\n    return a - b\n", cacheKey: "math.py"}
];
const options: GenerationOptions = {maxTokens: 48, stop: [], singleLine: false, temperature: 0};

describe("end of text (engine process, bundled dense model)", function () {
    this.timeout(120_000);
    let client: EngineClient;
    before(async () => { client = await startEngineWithBundledModel("dense", 2); });
    after(() => client.dispose());

    it("reports end-of-text as eos, never as max-tokens short of the limit, and generates past it when told to", async () => {
        const ended: CompletionPrompt[] = [];
        for (const prompt of prompts) {
            const completion = await client.complete(prompt, options);
            if (completion.stopReason === "max-tokens")
                assert.equal(completion.stats.generatedTokens, options.maxTokens, `${prompt.cacheKey}: max-tokens before the limit`);
            if (completion.stopReason === "eos") {
                assert.ok(completion.stats.generatedTokens < options.maxTokens);
                ended.push(prompt);
            }
        }
        assert.ok(ended.length > 0, "none of the prompts reached end-of-text");
        const past = await client.complete(ended[0]!, {...options, ignoreEndOfText: true});
        assert.equal(past.stats.generatedTokens, options.maxTokens);
        assert.equal(past.stopReason, "max-tokens");
    });
});
