import {strict as assert} from "node:assert";
import {spawnSync} from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type {Llama, LlamaModel, Token} from "node-llama-cpp";
import {getSparseBuildPaths} from "../../native-kernels/sparseBuildPaths.mjs";
import {importCheckpoint} from "../../src/import/importCheckpoint.js";
import {loadSparseLlama} from "../../src/native/loadSparseLlama.js";
import {decodeFloats, SafetensorsCheckpoint} from "../../src/import/SafetensorsCheckpoint.js";
import {referenceLlamaLogits} from "../support/llamaReferenceForward.js";
import {int4WeightValues, llamaBpeVocabulary, tinyCheckpointShape, writeCompressedTensorsCheckpoint, type WrittenCheckpoint} from "../support/writeCompressedTensorsCheckpoint.js";

const VOCABULARY_SIZE = 128256;

async function lastLogits(model: LlamaModel, tokens: readonly Token[]): Promise<Float64Array> {
    const context = await model.createContext({contextSize: 256, batchSize: 64});
    try {
        const sequence = context.getSequence();
        const input = tokens.map((token, i) => i === tokens.length - 1 ? [token, {generateNext: {logits: true}}] as const : token);
        const results = await sequence.controlledEvaluate(input as Parameters<typeof sequence.controlledEvaluate>[0]);
        const logits = results[tokens.length - 1]?.next.logits;
        assert.ok(logits != null && logits.size > 0, "no logits");
        const out = new Float64Array(VOCABULARY_SIZE);
        for (const [token, value] of logits)
            out[token] = value;
        return out;
    } finally {
        await context.dispose();
    }
}

/** llama.cpp's own tokenizer test cases for the Llama 3 vocabulary (models/ggml-vocab-llama-bpe.gguf.inp/.out). */
async function tokenizerCases(): Promise<{text: string, tokens: number[]}[]> {
    const separator = "\n__ggml_vocab_test__\n";
    const inputs = (await fs.readFile(`${llamaBpeVocabulary}.inp`, "utf8")).split(separator);
    const outputs = (await fs.readFile(`${llamaBpeVocabulary}.out`, "utf8")).split("\n");
    inputs[inputs.length - 1] = inputs.at(-1)!.replace(/\n__ggml_vocab_test__\n?$/, "");
    return inputs.slice(0, outputs.length).map((text, i) => ({text, tokens: outputs[i]!.trim() === "" ? [] : outputs[i]!.trim().split(/\s+/).map(Number)}));
}

describe("imported checkpoints run in node-llama-cpp (our Q4_S24 build)", function () {
    this.timeout(600_000);
    let dir: string;
    let sparse: string, reference: string;
    let checkpoint: WrittenCheckpoint;
    let llama: Llama;

    before(async function () {
        if (getSparseBuildPaths() == null)
            this.skip();
        try {
            await fs.access(llamaBpeVocabulary);
        } catch {
            this.skip();
        }
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "import-runs-"));
        checkpoint = await writeCompressedTensorsCheckpoint(path.join(dir, "marlin"), "marlin-24", {attentionScaleMultiplier: 8});
        sparse = path.join(dir, "tiny-marlin-q4_s24.gguf");
        reference = path.join(dir, "tiny-marlin-f32.gguf");
        await importCheckpoint({checkpoint: checkpoint.directory, output: sparse, embeddings: "q8_0"});
        // The same weights dequantized (exact in F32): the dense equivalent of the sparse file.
        await importCheckpoint({checkpoint: checkpoint.directory, output: reference, linear: "f32", embeddings: "f32"});
        llama = await loadSparseLlama({gpu: false});
    });

    after(async function () {
        await llama?.dispose();
        if (dir != null)
            await fs.rm(dir, {recursive: true, force: true});
    });

    it("loads with tensor validation (positions, scales) through a fresh process", function () {
        const child = spawnSync(process.execPath, ["--import=tsx", path.join("test", "convert", "loadCheckedModel.child.ts"), sparse], {encoding: "utf8", timeout: 120_000});
        assert.equal(child.status, 0, child.stderr);
        const result = JSON.parse(child.stdout) as {refused: boolean, message: string, logs: string[]};
        assert.equal(result.refused, false, `${result.message}\n${result.logs.join("")}`);
    });

    it("tokenizes like llama.cpp's Llama 3 vocabulary (llama-bpe) and generates", async function () {
        const model = await llama.loadModel({modelPath: sparse});
        try {
            const cases = await tokenizerCases();
            assert.ok(cases.length > 20);
            for (const {text, tokens} of cases)
                assert.deepEqual(model.tokenize(text, false).map(Number), tokens, `tokens of ${JSON.stringify(text)}`);
            assert.equal(Number(model.tokens.bos), 128000);
            const context = await model.createContext({contextSize: 256});
            try {
                const sequence = context.getSequence();
                const generated: Token[] = [];
                for await (const token of sequence.evaluate(model.tokenize("def fibonacci(n):", false), {temperature: 0})) {
                    generated.push(token);
                    if (generated.length === 8)
                        break;
                }
                assert.equal(generated.length, 8);
                assert.ok(generated.every((token) => token >= 0 && token < VOCABULARY_SIZE));
            } finally {
                await context.dispose();
            }
        } finally {
            await model.dispose();
        }
    });

    it("gives the logits of its exact dense (F32) equivalent", async function () {
        const tokens = [128000, 755, 76798, 1471, 997, 262, 471, 308, 422, 308] as Token[];
        const models = [await llama.loadModel({modelPath: sparse}), await llama.loadModel({modelPath: reference})];
        try {
            const [sparseLogits, referenceLogits] = [await lastLogits(models[0]!, tokens), await lastLogits(models[1]!, tokens)];
            assert.equal(sparseLogits.length, VOCABULARY_SIZE);
            let diff2 = 0, ref2 = 0;
            for (let t = 0; t < sparseLogits.length; t++) {
                diff2 += (sparseLogits[t]! - referenceLogits[t]!) ** 2;
                ref2 += referenceLogits[t]! ** 2;
            }
            const relative = Math.sqrt(diff2 / ref2);
            console.log(`      logits: relative L2 difference sparse vs F32 ${relative.toExponential(2)}`);
            // Same weights; only the activations differ (Q8_0 in the sparse matmul, F32 in the reference).
            assert.ok(relative < 0.03, `relative L2 logit difference ${relative}`);
        } finally {
            for (const model of models)
                await model.dispose();
        }
    });

    it("computes what the Hugging Face model computes (q/k row order, rope, GQA, tensor mapping)", async function () {
        const tokens = [128000, 755, 76798, 1471, 997, 262, 471, 308, 422, 308, 198, 262, 471, 76798];
        const safetensors = await SafetensorsCheckpoint.open(checkpoint.directory);
        const dense = new Map<string, Float32Array>();
        for (const name of safetensors.tensors.keys())
            if (!name.includes("_proj."))
                dense.set(name, decodeFloats(await safetensors.read(name), safetensors.get(name).dtype, name));
        await safetensors.close();
        const expected = referenceLlamaLogits({
            ...tinyCheckpointShape, vocabularySize: VOCABULARY_SIZE, ropeTheta: 500000, rmsEpsilon: 1e-5,
            rope: {factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192},
            weight: (name) => dense.get(name) ?? int4WeightValues(checkpoint.weights.get(name.replace(/\.weight$/, ""))!)
        }, tokens);
        const model = await llama.loadModel({modelPath: reference});
        try {
            const actual = await lastLogits(model, tokens as Token[]);
            let diff2 = 0, ref2 = 0, argmaxActual = 0, argmaxExpected = 0;
            for (let t = 0; t < VOCABULARY_SIZE; t++) {
                diff2 += (actual[t]! - expected[t]!) ** 2;
                ref2 += expected[t]! ** 2;
                if (actual[t]! > actual[argmaxActual]!) argmaxActual = t;
                if (expected[t]! > expected[argmaxExpected]!) argmaxExpected = t;
            }
            const relative = Math.sqrt(diff2 / ref2);
            console.log(`      logits: relative L2 difference llama.cpp (F32 import) vs Hugging Face reference ${relative.toExponential(2)}; top token ${argmaxActual} vs ${argmaxExpected}`);
            // llama.cpp keeps the KV cache in F16 and computes in F32; the reference in float64.
            assert.ok(relative < 1e-2, `relative L2 logit difference ${relative}`);
            assert.equal(argmaxActual, argmaxExpected);
        } finally {
            await model.dispose();
        }
    });
});
