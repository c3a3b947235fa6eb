import {strict as assert} from "node:assert";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {spawnSync} from "node:child_process";
import type {Llama, Token} from "node-llama-cpp";
import {getSparseBuildPaths} from "../../native-kernels/sparseBuildPaths.mjs";
import {runConvertCli} from "../../src/convert/convertCli.js";
import {Q4_S24} from "../../src/convert/sparse24Quantizer.js";
import {readGgufHeader, type GgufHeader} from "../../src/gguf/GgufReader.js";
import {ggufValueAsNumber} from "../../src/gguf/GgufValue.js";
import {GgmlType} from "../../src/gguf/ggmlTypes.js";
import {loadSparseLlama} from "../../src/native/loadSparseLlama.js";
import {writeTinyLlamaGguf} from "../support/writeTinyLlamaGguf.js";

const vocabulary = path.join("node_modules", "node-llama-cpp", "llama", "llama.cpp", "models", "ggml-vocab-deepseek-coder.gguf");
// Rows must be a multiple of 256 columns for Q4_S24: embedding 256, feed-forward 512.
const shape = {embedding: 256, layers: 2, heads: 4, kvHeads: 2, feedForward: 512, contextLength: 512};

function typeOf(header: GgufHeader, name: string): number | undefined {
    return header.tensors.find((t) => t.name === name)?.type;
}

async function lastLogits(llama: Llama, modelPath: string, tokens: readonly Token[]): Promise<Float64Array> {
    const model = await llama.loadModel({modelPath});
    try {
        const context = await model.createContext({contextSize: 256, batchSize: 64});
        const sequence = context.getSequence();
        const input = tokens.map((token, i) => i === tokens.length - 1 ? [token, {generateNext: {logits: true}}] as const : token);
        const results = await sequence.controlledEvaluate(input as Parameters<typeof sequence.controlledEvaluate>[0]);
        const logits = results[tokens.length - 1]?.next.logits;
        assert.ok(logits != null && logits.size > 0, "no logits");
        let size = 0;
        for (const token of logits.keys())
            size = Math.max(size, token + 1);
        const out = new Float64Array(size);
        for (const [token, value] of logits)
            out[token] = value;
        await context.dispose();
        return out;
    } finally {
        await model.dispose();
    }
}

describe("convert --sparse24 (end to end)", function () {
    this.timeout(600_000);
    let dir: string;
    let input: string, sparse: string, dense: string, reference: string;

    before(async function () {
        try {
            await fs.access(vocabulary);
        } catch {
            this.skip();
        }
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "convert-sparse24-"));
        input = path.join(dir, "tiny-f16.gguf");
        sparse = path.join(dir, "tiny-q4_s24.gguf");
        dense = path.join(dir, "tiny-q4_s24-dense-q8_0.gguf");
        reference = path.join(dir, "tiny-q4_s24-reference-f32.gguf");
        await writeTinyLlamaGguf(input, vocabulary, shape, {name: "tiny sparse24 test"});
        const lines: string[] = [];
        await runConvertCli([input, sparse, "--sparse24", "--dense", "q8_0", "--reference", reference], (line) => lines.push(line));
        assert.ok(lines.some((line) => /14 linear weights as Q4_S24/.test(line)), lines.join("\n"));
    });

    after(async function () {
        if (dir != null)
            await fs.rm(dir, {recursive: true, force: true});
    });

    it("writes Q4_S24 linear weights, the dense Q8_0 counterpart and the F32 reference", async function () {
        const [s, d, r, i] = await Promise.all([sparse, dense, reference, input].map((file) => readGgufHeader(file)));
        assert.equal(typeOf(s!, "blk.0.attn_q.weight"), Q4_S24.ggmlType);
        assert.equal(typeOf(s!, "blk.1.ffn_down.weight"), Q4_S24.ggmlType);
        assert.equal(typeOf(s!, "token_embd.weight"), typeOf(i!, "token_embd.weight"));
        assert.equal(typeOf(s!, "blk.0.attn_norm.weight"), GgmlType.F32);
        assert.equal(ggufValueAsNumber(s!.metadata.get("general.file_type")), Q4_S24.llamaFileType);
        assert.equal(typeOf(d!, "blk.0.ffn_up.weight"), GgmlType.Q8_0);
        assert.equal(typeOf(r!, "blk.0.ffn_up.weight"), GgmlType.F32);
        const q = s!.tensors.find((t) => t.name === "blk.0.ffn_gate.weight")!;
        assert.equal(q.byteLength, (q.dims[0]! / 256) * 100 * q.dims[1]!);
    });

    it("gives the same logits through node-llama-cpp as the dequantized dense model", async function () {
        if (getSparseBuildPaths() == null)
            this.skip();
        const llama = await loadSparseLlama({gpu: false});
        try {
            const tokens = [1, 500, 2000, 31, 7000, 42, 1234, 99, 3000, 17] as Token[];
            const [sparseLogits, referenceLogits] = [await lastLogits(llama, sparse, tokens), await lastLogits(llama, reference, tokens)];
            assert.equal(sparseLogits.length, referenceLogits.length);
            let maxDiff = 0, spread = 0, diff2 = 0, ref2 = 0, argmaxS = 0, argmaxR = 0;
            for (let t = 0; t < sparseLogits.length; t++) {
                const d = sparseLogits[t]! - referenceLogits[t]!;
                maxDiff = Math.max(maxDiff, Math.abs(d));
                spread = Math.max(spread, Math.abs(referenceLogits[t]!));
                diff2 += d * d;
                ref2 += referenceLogits[t]! ** 2;
                if (sparseLogits[t]! > sparseLogits[argmaxS]!) argmaxS = t;
                if (referenceLogits[t]! > referenceLogits[argmaxR]!) argmaxR = t;
            }
            const relative = Math.sqrt(diff2 / ref2);
            console.log(`      logits: relative L2 difference ${relative.toExponential(2)}, max |difference| ${maxDiff.toExponential(2)} ` +
                `of largest |logit| ${spread.toFixed(3)}; top token ${argmaxS} vs ${argmaxR}`);
            // Same weights; only the activations differ (rounded to Q8_0 in the sparse matmul, F32 in the reference).
            // This random model amplifies rounding: a dense Q8_0 copy of its original weights is 2.1% (L2) from F32.
            assert.ok(relative < 0.03, `relative L2 logit difference ${relative}`);
            assert.ok(maxDiff <= 0.05 * spread, `max logit difference ${maxDiff} (largest |logit| ${spread})`);
        } finally {
            await llama.dispose();
        }
    });

    /** Loads a model in a child process with checkTensors; returns whether it was refused and llama.cpp's log. */
    function loadInChild(modelPath: string): {refused: boolean, message: string, logs: string[]} {
        const child = spawnSync(process.execPath, ["--import=tsx", path.join("test", "convert", "loadCheckedModel.child.ts"), modelPath],
            {encoding: "utf8", timeout: 120_000});
        assert.equal(child.status, 0, child.stderr);
        return JSON.parse(child.stdout) as {refused: boolean, message: string, logs: string[]};
    }

    it("refuses at load a Q4_S24 tensor whose rows are not whole blocks, naming the tensor", async function () {
        if (getSparseBuildPaths() == null)
            this.skip();
        // Rewrite blk.0.ffn_down.weight's dims in the header from [512, 256] to [128, 1024] (same byte count).
        const bytes = await fs.readFile(sparse);
        const name = Buffer.from("blk.0.ffn_down.weight");
        const at = bytes.indexOf(name) + name.length;
        assert.equal(bytes.readUInt32LE(at), 2);
        assert.equal(bytes.readBigUInt64LE(at + 4), 512n);
        bytes.writeBigUInt64LE(128n, at + 4);
        bytes.writeBigUInt64LE(1024n, at + 12);
        const broken = path.join(dir, "tiny-q4_s24-rows.gguf");
        await fs.writeFile(broken, bytes);
        const result = loadInChild(broken);
        assert.ok(result.refused, "the model loaded");
        assert.ok(result.logs.some((line) => line.includes("blk.0.ffn_down.weight") && line.includes("q4_s24")),
            `no log line names the tensor:\n${result.logs.join("")}`);
    });

    it("refuses at load a Q4_S24 tensor with a NaN scale, naming the tensor", async function () {
        if (getSparseBuildPaths() == null)
            this.skip();
        const header = await readGgufHeader(sparse);
        const target = header.tensors.find((t) => t.name === "blk.1.attn_v.weight")!;
        const corrupt = path.join(dir, "tiny-q4_s24-nan.gguf");
        const bytes = await fs.readFile(sparse);
        bytes.writeUInt16LE(0x7e00, target.fileOffset + 3 * Q4_S24.blockBytes + 2); // block 3, scale d[1]
        await fs.writeFile(corrupt, bytes);

        const result = loadInChild(corrupt);
        assert.ok(result.refused, "the corrupt model loaded");
        assert.ok(result.logs.some((line) => line.includes("tensor 'blk.1.attn_v.weight' has invalid data")),
            `no log line names the tensor:\n${result.logs.join("")}`);
    });
});
