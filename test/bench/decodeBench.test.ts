import * as assert from "node:assert/strict";
import {describeOutputDifferences, renderDecodeBenchMarkdown, runInterleaved, summarizeDecodePaths, type DecodeBenchReport,
    type DecodePath} from "../../src/bench/decodeBench.js";
import {decodeResultOf, llamaBenchDecodeArgs, parseLlamaBenchJson} from "../../src/bench/llamaBench.js";

// What llama-bench -o json printed for `-p 0 -n 16 -d 32 -t 1 -r 2 -b 1024 -ub 1024` (this tree, 2026-11-28).
const llamaBenchJson = `[
  {
    "build_commit": "de3ff81",
    "build_number": 1,
    "cpu_info": "AMD EPYC",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "models/sparse-complete-coder-34m-dense-q4_0.gguf",
    "model_type": "llama ?B Q4_0",
    "model_size": 27609088,
    "model_n_params": 34349568,
    "n_batch": 1024,
    "n_ubatch": 1024,
    "n_threads": 1,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": -1,
    "split_mode": "layer",
    "flash_attn": -1,
    "n_prompt": 0,
    "n_gen": 16,
    "n_depth": 32,
    "test_time": "2026-11-28T20:02:47Z",
    "avg_ns": 34167869,
    "stddev_ns": 1630562,
    "avg_ts": 468.810038,
    "stddev_ts": 22.372604,
    "samples_ns": [ 35320851, 33014887 ],
    "samples_ts": [ 452.99, 484.63 ]
  }
]
`;

describe("decode benchmark: llama-bench output and arguments", () => {
    it("reads a token-generation result from llama-bench's JSON, skipping log lines around it", () => {
        const [result, ...rest] = parseLlamaBenchJson(`load_backend: loaded CPU backend\n${llamaBenchJson}\nbye\n`);
        assert.equal(rest.length, 0);
        assert.deepEqual(result, {
            modelFilename: "models/sparse-complete-coder-34m-dense-q4_0.gguf",
            modelType: "llama ?B Q4_0",
            backends: "CPU",
            threads: 1,
            gpuLayers: -1,
            flashAttention: -1,
            batchSize: 1024,
            ubatchSize: 1024,
            promptTokens: 0,
            generatedTokens: 16,
            depth: 32,
            samplesTokensPerSecond: [452.99, 484.63],
            averageTokensPerSecond: 468.810038
        });
    });

    it("picks the one decode test, and refuses output without one or that is not JSON", () => {
        const prompt = llamaBenchJson.replace('"n_prompt": 0', '"n_prompt": 512').replace('"n_gen": 16', '"n_gen": 0');
        const both = `[${JSON.stringify(JSON.parse(prompt)[0])}, ${JSON.stringify(JSON.parse(llamaBenchJson)[0])}]`;
        assert.equal(decodeResultOf(parseLlamaBenchJson(both)).generatedTokens, 16);
        assert.throws(() => decodeResultOf(parseLlamaBenchJson(prompt)), /one token-generation test/);
        assert.throws(() => parseLlamaBenchJson("| model | size |\n| --- | --- |"), /no JSON array/);
        assert.throws(() => parseLlamaBenchJson("[{\"n_threads\": 1}]"), /model_filename/);
        assert.throws(() => parseLlamaBenchJson("[1, 2"), /no JSON array|does not parse/);
    });

    it("accepts older builds' boolean flash_attn and a missing samples list", () => {
        const old = JSON.parse(llamaBenchJson)[0];
        old.flash_attn = true;
        delete old.samples_ts;
        const [result] = parseLlamaBenchJson(JSON.stringify([old]));
        assert.equal(result!.flashAttention, 1);
        assert.deepEqual(result!.samplesTokensPerSecond, [468.810038]);
    });

    it("asks for a decode-only run at the prompt's depth with node-llama-cpp's batch shape", () => {
        assert.deepEqual(llamaBenchDecodeArgs({modelPath: "m.gguf", tokens: 128, depth: 257, threads: 1, gpuLayers: 0, repetitions: 1, batchSize: 1024}),
            ["-m", "m.gguf", "-p", "0", "-n", "128", "-d", "257", "-t", "1", "-b", "1024", "-ub", "1024", "-r", "1", "-ngl", "0", "-o", "json"]);
        assert.ok(!llamaBenchDecodeArgs({modelPath: "m.gguf", tokens: 8, depth: 0, threads: 4, repetitions: 3, batchSize: 512}).includes("-ngl"),
            "the GPU default (all layers) is left to llama-bench");
    });
});

describe("decode benchmark: outputs compared across paths", () => {
    it("says nothing when every run agrees, and otherwise which paths produced what and where they depart", () => {
        assert.equal(describeOutputDifferences([]), undefined);
        assert.equal(describeOutputDifferences([{pathId: "a", output: [1, 2]}, {pathId: "b", output: [1, 2]}]), undefined);
        assert.equal(describeOutputDifferences([
            {pathId: "stock", output: [5, 6, 7, 8]}, {pathId: "inline", output: [5, 6, 7, 8]}, {pathId: "stock", output: [5, 6, 7, 8]},
            {pathId: "gpu", output: [5, 6, 9, 9]}, {pathId: "gpu", output: [5, 6, 9, 9]}, {pathId: "short", output: [5]}
        ]), "stock, inline (the first run's output); gpu: differs from token 2 on; short: differs from token 1 on");
    });
});

describe("decode benchmark: rounds and summary", () => {
    it("runs every path once per round, starting each round one path later, and drops the warm-up rounds", async () => {
        const calls: string[] = [];
        const fake = (id: string, values: number[]): DecodePath => ({id, label: id.toUpperCase(), measure: async () => {
            calls.push(id);
            return values[calls.filter((call) => call === id).length - 1]!;
        }});
        const samples = await runInterleaved([fake("a", [9, 1, 2, 3]), fake("b", [9, 4, 5, 6]), fake("c", [9, 7, 8, 9])], 3, 1);
        assert.deepEqual(calls, ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]);
        assert.deepEqual(samples, [{id: "a", label: "A", msPerToken: [1, 2, 3]}, {id: "b", label: "B", msPerToken: [4, 5, 6]},
            {id: "c", label: "C", msPerToken: [7, 8, 9]}]);
    });

    it("summarises medians, ratios to llama-bench and the time added per token", () => {
        const summary = summarizeDecodePaths([
            {id: "llama-bench", label: "llama-bench", msPerToken: [2, 2.2, 1.8]},
            {id: "node", label: "node", msPerToken: [2.5, 2.4, 2.6]},
            {id: "engine", label: "engine", msPerToken: [4, 4.4, 3.6]}
        ], "llama-bench");
        const [bench, node, engine] = summary;
        assert.equal(bench!.medianMsPerToken, 2);
        assert.equal(bench!.tokensPerSecond, 500);
        assert.equal(bench!.ratioToReference, 1);
        assert.equal(node!.medianMsPerToken, 2.5);
        assert.equal(node!.minMsPerToken, 2.4);
        assert.equal(node!.maxMsPerToken, 2.6);
        assert.equal(node!.ratioToReference, 0.8);
        assert.ok(Math.abs(node!.extraMsPerToken! - 0.5) < 1e-12);
        // paired by round: 2/2.5, 2.2/2.4, 1.8/2.6 -> median 0.8
        assert.ok(Math.abs(node!.pairedRatioToReference! - 0.8) < 1e-12);
        assert.equal(engine!.pairedRatioToReference, 0.5);
        assert.equal(summarizeDecodePaths([{id: "x", label: "x", msPerToken: [1]}]).at(0)!.ratioToReference, undefined);
    });

    it("renders one table row per path with its ratio to llama-bench", () => {
        const paths = [{id: "llama-bench", label: "llama-bench tg", msPerToken: [2]}, {id: "node", label: "node loop", msPerToken: [2.5]}];
        const report: DecodeBenchReport = {
            version: 1, startedAt: "2026-11-28T20:00:00.000Z",
            machine: {platform: "linux x64", cpu: "AMD EPYC", cores: 2, loadAverage: [0.1, 0.2, 0.3]},
            model: {path: "m.gguf", sizeBytes: 28_769_952}, device: "cpu", threads: 1, tokens: 128, promptTokens: 257,
            rounds: 1, warmup: 1, outputsIdentical: true, notes: ["a note"], paths, summary: summarizeDecodePaths(paths, "llama-bench")
        };
        const markdown = renderDecodeBenchMarkdown(report);
        assert.match(markdown, /128 tokens after a 257-token prompt, 1 thread\(s\), device cpu/);
        assert.match(markdown, /\| llama-bench tg \| 500\.0 \| 2\.000 \(2\.000-2\.000\) \| 100\.0% \| 100\.0% \| 0\.000 \|/);
        assert.match(markdown, /\| node loop \| 400\.0 \| 2\.500 \(2\.500-2\.500\) \| 80\.0% \| 80\.0% \| 0\.500 \|/);
        assert.match(markdown, /identical across node-llama-cpp modes: yes/);
        assert.match(markdown, /- a note/);
    });
});
