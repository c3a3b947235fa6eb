import * as assert from "node:assert/strict";
import * as http from "node:http";
import type {AddressInfo} from "node:net";
import {LlamaServerBackend} from "../../src/bench/LlamaServerBackend.js";
import type {GenerationOptions} from "../../src/core/engineProtocol.js";

/**
 * The request each mode sends and how the streamed answer is read, against a local stub that speaks llama-server's
 * streaming format. The real server is exercised in replayTypingTrace.test.ts where it has been built.
 */
describe("LlamaServerBackend requests", () => {
    let server: http.Server;
    let baseUrl: string;
    const received: {url: string, body: Record<string, unknown>}[] = [];

    before(async () => {
        server = http.createServer((request, response) => {
            let body = "";
            request.on("data", (chunk) => body += chunk);
            request.on("end", () => {
                received.push({url: request.url ?? "", body: JSON.parse(body) as Record<string, unknown>});
                response.writeHead(200, {"Content-Type": "text/event-stream"});
                const events = [
                    {content: "x", tokens: [1]},
                    {content: " =", tokens: [2]},
                    {content: "", tokens: [4], timings: {cache_n: 40, prompt_n: 2, predicted_n: 3}},
                    {content: " 1", tokens: [3], stop: true, stop_type: "limit", timings: {cache_n: 40, prompt_n: 2, predicted_n: 4}}
                ];
                for (const event of events)
                    response.write(`data: ${JSON.stringify(event)}\n\n`);
                response.end();
            });
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const prompt = {prefix: "const a = 1;\nconst b = a;\nlet ", suffix: "\nexport {b};\n", cacheKey: "file:///a.ts"};
    const options: GenerationOptions = {maxTokens: 3, stop: [], singleLine: false, temperature: 0};

    it("with FIM tokens: /infill with the text before the line, the typed line and the suffix", async () => {
        const completion = await new LlamaServerBackend(baseUrl).complete(prompt, options);
        const {url, body} = received.at(-1)!;
        assert.equal(url, "/infill");
        assert.equal(body.input_prefix, "const a = 1;\nconst b = a;\n");
        assert.equal(body.prompt, "let ");
        assert.equal(body.input_suffix, prompt.suffix);
        assert.equal(body.cache_prompt, true);
        assert.equal(body.ignore_eos, false);
        assert.equal(completion.text, "x = 1");
        assert.deepEqual({...completion.stats, timeToFirstTokenMs: 0, totalMs: 0},
            {promptTokens: 42, evaluatedPromptTokens: 2, generatedTokens: 4, timeToFirstTokenMs: 0, totalMs: 0});
        assert.equal(completion.stopReason, "max-tokens");
    });

    it("without FIM tokens: /completion with the text before the cursor, past end-of-text when asked", async () => {
        await new LlamaServerBackend(baseUrl, {fim: false}).complete(prompt, {...options, ignoreEndOfText: true, maxTokens: 64});
        const {url, body} = received.at(-1)!;
        assert.equal(url, "/completion");
        assert.equal(body.prompt, prompt.prefix);
        assert.equal(body.input_suffix, undefined);
        assert.equal(body.n_predict, 64);
        assert.equal(body.ignore_eos, true);
    });
});
