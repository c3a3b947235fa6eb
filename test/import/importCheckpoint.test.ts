import {strict as assert} from "node:assert";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {dequantizeSparse24Rows, Q4_S24} from "../../src/convert/sparse24Quantizer.js";
import {float16BitsToFloat32} from "../../src/gguf/float16.js";
import {readGgufHeader, readGgufTensorData, type GgufHeader} from "../../src/gguf/GgufReader.js";
import {ggufValueAsNumber, ggufValueAsString} from "../../src/gguf/GgufValue.js";
import {GgmlType} from "../../src/gguf/ggmlTypes.js";
import {importCheckpoint} from "../../src/import/importCheckpoint.js";
import {runImportCli} from "../../src/import/importCli.js";
import {llamaRopeRowOrder} from "../../src/import/llamaRopeRowOrder.js";
import {
    bf16Value, int4WeightValues, linearShape, llamaBpeVocabulary, tinyCheckpointShape, writeCompressedTensorsCheckpoint,
    type CheckpointFormat, type WrittenCheckpoint
} from "../support/writeCompressedTensorsCheckpoint.js";

const shape = tinyCheckpointShape;
const headDim = shape.embedding / shape.heads;
const LINEAR = [["self_attn.q_proj", "attn_q"], ["self_attn.k_proj", "attn_k"], ["self_attn.v_proj", "attn_v"], ["self_attn.o_proj", "attn_output"],
    ["mlp.gate_proj", "ffn_gate"], ["mlp.up_proj", "ffn_up"], ["mlp.down_proj", "ffn_down"]] as const;

/** Output row i of a GGUF weight comes from checkpoint row order[i] (identity except q/k). */
function rowOrder(module: string, rows: number): (i: number) => number {
    if (module === "self_attn.q_proj" || module === "self_attn.k_proj") {
        const order = llamaRopeRowOrder(rows, rows / headDim);
        return (i) => order[i]!;
    }
    return (i) => i;
}

async function tensorValues(header: GgufHeader, name: string): Promise<{values: Float32Array, type: number, dims: readonly number[], bytes: Uint8Array}> {
    const info = header.tensors.find((t) => t.name === name);
    assert.ok(info != null, `${name} is missing`);
    const bytes = await readGgufTensorData(header, info);
    const [columns, rows = 1] = info.dims;
    let values: Float32Array;
    if (info.type === Q4_S24.ggmlType)
        values = dequantizeSparse24Rows(bytes, rows, columns!);
    else if (info.type === GgmlType.F32)
        values = new Float32Array(bytes.slice().buffer);
    else if (info.type === GgmlType.Q4_0) {
        values = new Float32Array(rows * columns!);
        for (let b = 0; b < values.length / 32; b++) {
            const d = float16BitsToFloat32(bytes[18 * b]! | (bytes[18 * b + 1]! << 8));
            for (let j = 0; j < 16; j++) {
                values[32 * b + j] = d * ((bytes[18 * b + 2 + j]! & 15) - 8);
                values[32 * b + 16 + j] = d * ((bytes[18 * b + 2 + j]! >> 4) - 8);
            }
        }
    } else
        values = new Float32Array(0);
    return {values, type: info.type, dims: info.dims, bytes};
}

/** Every group of 4 of a Q4_S24 tensor stores strictly increasing positions (what the loader validates). */
function assertPositionsIncrease(bytes: Uint8Array, name: string): void {
    for (let block = 0; block < bytes.length / Q4_S24.blockBytes; block++)
        for (let s = 0; s < 8; s++)
            for (let group = 0; group < 8; group++) {
                const position = (kept: number) => (bytes[block * 100 + 68 + 4 * s + (kept & 3)]! >> (2 * (kept >> 2))) & 3;
                assert.ok(position(2 * group) < position(2 * group + 1), `${name}: block ${block}, sub-block ${s}, group ${group}: positions not increasing`);
            }
}

/** Checks every linear weight of `output` equals `expected(module weight, checkpoint row, column)` exactly. */
async function assertLinearWeights(output: string, written: WrittenCheckpoint, type: number, expected: (values: Float32Array, index: number) => number): Promise<void> {
    const header = await readGgufHeader(output);
    for (let layer = 0; layer < shape.layers; layer++)
        for (const [module, ggufModule] of LINEAR) {
            const name = `blk.${layer}.${ggufModule}.weight`;
            const [rows, columns] = linearShape(shape, module);
            const {values, type: actualType, dims, bytes} = await tensorValues(header, name);
            assert.equal(actualType, type, `${name} type`);
            assert.deepEqual(dims, [columns, rows]);
            if (type === Q4_S24.ggmlType)
                assertPositionsIncrease(bytes, name);
            const source = int4WeightValues(written.weights.get(`model.layers.${layer}.${module}`)!);
            const order = rowOrder(module, rows);
            let mismatches = 0;
            let first = "";
            for (let i = 0; i < rows; i++)
                for (let c = 0; c < columns; c++) {
                    const want = expected(source, order(i) * columns + c);
                    if (values[i * columns + c] !== want && mismatches++ === 0)
                        first = `row ${i} column ${c}: ${values[i * columns + c]} instead of ${want}`;
                }
            assert.equal(mismatches, 0, `${name}: ${mismatches} values differ, first at ${first}`);
        }
}

describe("importCheckpoint", function () {
    this.timeout(600_000);
    let dir: string;
    const written = new Map<CheckpointFormat, WrittenCheckpoint>();
    const checkpointFor = async (format: CheckpointFormat) => {
        if (!written.has(format))
            written.set(format, await writeCompressedTensorsCheckpoint(path.join(dir, format), format));
        return written.get(format)!;
    };

    before(async function () {
        try {
            await fs.access(llamaBpeVocabulary);
        } catch {
            this.skip();
        }
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "import-checkpoint-"));
    });

    after(async function () {
        if (dir != null)
            await fs.rm(dir, {recursive: true, force: true});
    });

    it("imports marlin-24 exactly: every weight dequantizes to q * scale, positions strictly increasing", async function () {
        const checkpoint = await checkpointFor("marlin-24");
        const output = path.join(dir, "marlin.gguf");
        const lines: string[] = [];
        const report = await runImportCli([checkpoint.directory, output, "--embeddings", "q8_0"], (line) => lines.push(line));
        assert.ok(lines.some((line) => /14 marlin-24 -> Q4_S24/.test(line)), lines.join("\n"));
        assert.equal(report.scheme.quantizationFormat, "marlin-24");
        const header = await readGgufHeader(output);
        assert.equal(header.tensors.find((t) => t.name === "token_embd.weight")?.type, GgmlType.Q8_0);
        assert.equal(header.tensors.find((t) => t.name === "output.weight")?.type, GgmlType.Q8_0);
        await assertLinearWeights(output, checkpoint, Q4_S24.ggmlType, (values, i) => values[i]!);
    });

    it("reads marlin-24 scales unpermuted from compressed-tensors before 0.8.0", async function () {
        const checkpoint = await writeCompressedTensorsCheckpoint(path.join(dir, "marlin-0.7"), "marlin-24", {legacyMarlinScales: true});
        const output = path.join(dir, "marlin-0.7.gguf");
        await importCheckpoint({checkpoint: checkpoint.directory, output, embeddings: "q8_0"});
        await assertLinearWeights(output, checkpoint, Q4_S24.ggmlType, (values, i) => values[i]!);
    });

    it("imports pack-quantized 2:4 exactly as Q4_S24", async function () {
        const checkpoint = await checkpointFor("pack-quantized");
        const output = path.join(dir, "pack.gguf");
        await importCheckpoint({checkpoint: checkpoint.directory, output, embeddings: "q8_0"});
        await assertLinearWeights(output, checkpoint, Q4_S24.ggmlType, (values, i) => values[i]!);
    });

    it("imports dense (not 2:4) pack-quantized int4 exactly as Q4_0", async function () {
        const checkpoint = await checkpointFor("pack-quantized-dense");
        const output = path.join(dir, "pack-dense.gguf");
        await importCheckpoint({checkpoint: checkpoint.directory, output, embeddings: "q8_0"});
        await assertLinearWeights(output, checkpoint, GgmlType.Q4_0, (values, i) => values[i]!);
    });

    it("imports sparse-24-bitmask and dense 2:4 BF16 weights exactly as F32, and detects them as 2:4 (Q4_S24)", async function () {
        for (const format of ["sparse-24-bitmask", "dense-2of4"] as const) {
            const checkpoint = await checkpointFor(format);
            const exact = path.join(dir, `${format}-f32.gguf`);
            await importCheckpoint({checkpoint: checkpoint.directory, output: exact, linear: "f32", embeddings: "q8_0"});
            await assertLinearWeights(exact, checkpoint, GgmlType.F32, (values, i) => bf16Value(values[i]!));
            const sparse = path.join(dir, `${format}.gguf`);
            const report = await importCheckpoint({checkpoint: checkpoint.directory, output: sparse, embeddings: "q8_0"});
            assert.deepEqual(new Set(report.tensors.filter((t) => t.name.startsWith("blk.") && !t.name.includes("norm")).map((t) => `${t.format} ${t.type}`)),
                new Set([`${format === "dense-2of4" ? "dense" : format} Q4_S24`]));
            // Q4_S24 of float weights is a 4-bit quantization, but the 2:4 pattern is kept: zeros stay zeros.
            const header = await readGgufHeader(sparse);
            const {values} = await tensorValues(header, "blk.1.ffn_down.weight");
            const source = int4WeightValues(checkpoint.weights.get("model.layers.1.mlp.down_proj")!);
            for (let i = 0; i < values.length; i++)
                if (source[i] === 0)
                    assert.equal(values[i], 0, `ffn_down value ${i} should be pruned`);
        }
    });

    it("imports dense BF16 weights that are not 2:4 as the chosen dense type", async function () {
        const checkpoint = await checkpointFor("dense");
        const output = path.join(dir, "dense.gguf");
        const report = await importCheckpoint({checkpoint: checkpoint.directory, output, denseLinear: "q8_0", embeddings: "q4_0"});
        assert.deepEqual(new Set(report.tensors.filter((t) => /attn_q|ffn_down/.test(t.name)).map((t) => t.type)), new Set(["Q8_0"]));
        const header = await readGgufHeader(output);
        assert.equal(header.tensors.find((t) => t.name === "token_embd.weight")?.type, GgmlType.Q4_0);
        assert.equal(header.tensors.find((t) => t.name === "output.weight")?.type, GgmlType.Q4_0);
        assert.equal(header.tensors.find((t) => t.name === "blk.0.attn_v.weight")?.type, GgmlType.Q8_0);
        assert.equal(ggufValueAsNumber(header.metadata.get("general.file_type")), 7);
    });

    it("writes Llama 3.1 metadata, tokenizer, norms and rope factors the way llama.cpp expects", async function () {
        const checkpoint = await checkpointFor("marlin-24");
        const output = path.join(dir, "marlin-meta.gguf");
        await importCheckpoint({checkpoint: checkpoint.directory, output, embeddings: "f16", name: "tiny sparse llama"});
        const header = await readGgufHeader(output);
        const number = (key: string) => ggufValueAsNumber(header.metadata.get(key));
        assert.equal(ggufValueAsString(header.metadata.get("general.architecture")), "llama");
        assert.equal(ggufValueAsString(header.metadata.get("general.name")), "tiny sparse llama");
        assert.equal(number("general.file_type"), Q4_S24.llamaFileType);
        assert.equal(number("llama.context_length"), 131072);
        assert.equal(number("llama.embedding_length"), shape.embedding);
        assert.equal(number("llama.feed_forward_length"), shape.feedForward);
        assert.equal(number("llama.block_count"), shape.layers);
        assert.equal(number("llama.attention.head_count"), shape.heads);
        assert.equal(number("llama.attention.head_count_kv"), shape.kvHeads);
        assert.equal(number("llama.rope.freq_base"), 500000);
        assert.equal(number("llama.rope.dimension_count"), headDim);
        assert.equal(number("llama.attention.layer_norm_rms_epsilon"), Math.fround(1e-5));
        assert.equal(number("llama.vocab_size"), checkpoint.vocabularySize);
        assert.equal(ggufValueAsString(header.metadata.get("tokenizer.ggml.model")), "gpt2");
        assert.equal(ggufValueAsString(header.metadata.get("tokenizer.ggml.pre")), "llama-bpe");
        assert.equal(number("tokenizer.ggml.bos_token_id"), 128000);
        assert.equal(number("tokenizer.ggml.eos_token_id"), 128001);
        assert.equal(number("tokenizer.ggml.eot_token_id"), 128009);
        assert.equal(header.metadata.get("tokenizer.ggml.add_bos_token")?.value, true);
        assert.match(ggufValueAsString(header.metadata.get("tokenizer.chat_template")) ?? "", /start_header_id/);
        // The token list, types and merges are llama.cpp's own Llama 3 vocabulary again.
        const vocabulary = await readGgufHeader(llamaBpeVocabulary);
        for (const key of ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"])
            assert.deepEqual(header.metadata.get(key)?.value, vocabulary.metadata.get(key)?.value, key);

        assert.equal(header.tensors.find((t) => t.name === "token_embd.weight")?.type, GgmlType.F16);
        assert.equal(header.tensors.find((t) => t.name === "output.weight")?.type, GgmlType.F16);
        assert.equal(header.tensors.find((t) => t.name === "blk.1.ffn_norm.weight")?.type, GgmlType.F32);
        // Llama 3.1 rope: head_dim 64, theta 5e5, factor 8 over an 8192 original context: 1 for the fast dims, 8 for
        // the slow ones, a blend between.
        const {values: factors} = await tensorValues(header, "rope_freqs.weight");
        assert.equal(factors.length, headDim / 2);
        for (let i = 0; i < factors.length; i++) {
            const wavelength = 2 * Math.PI * 500000 ** (2 * i / headDim);
            const smooth = (8192 / wavelength - 1) / 3;
            const want = wavelength < 2048 ? 1 : wavelength > 8192 ? 8 : 1 / ((1 - smooth) / 8 + smooth);
            assert.ok(Math.abs(factors[i]! - want) <= 1e-5 * want, `rope factor ${i}: ${factors[i]} instead of ${want}`);
        }
        assert.equal(factors[0], 1);
        assert.equal(factors[factors.length - 1], 8);
        assert.ok(factors.some((f) => f > 1 && f < 8), "no blended factor");
    });

    it("refuses a scale fp16 cannot hold, unless told to round it", async function () {
        const checkpoint = await writeCompressedTensorsCheckpoint(path.join(dir, "tiny-scale"), "pack-quantized");
        // One BF16 scale of layer 0's q_proj becomes 1.5 * 2^-24: bf16 holds it, fp16's smallest step is 2^-24.
        const shard = path.join(checkpoint.directory, "model-00002-of-00002.safetensors");
        const bytes = await fs.readFile(shard);
        const headerLength = Number(bytes.readBigUInt64LE(0));
        const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()) as Record<string, {data_offsets: [number, number]}>;
        const scaleAt = 8 + headerLength + header["model.layers.0.self_attn.q_proj.weight_scale"]!.data_offsets[0];
        bytes.writeUInt16LE(new Uint32Array(new Float32Array([1.5 * 2 ** -24]).buffer)[0]! >>> 16, scaleAt);
        await fs.writeFile(shard, bytes);
        const output = path.join(dir, "tiny-scale.gguf");
        await assert.rejects(importCheckpoint({checkpoint: checkpoint.directory, output, embeddings: "q8_0"}),
            /model\.layers\.0\.self_attn\.q_proj: the scale .* of row 0, columns from 0 is not exactly representable in fp16/);
        await assert.rejects(fs.access(output), "a refused import left an output file");
        const report = await importCheckpoint({checkpoint: checkpoint.directory, output, embeddings: "q8_0", roundScales: true});
        assert.equal(report.roundedScales, 1);
    });

    describe("unsupported variants are refused with an error that names them", function () {
        const cases: {name: string, format: CheckpointFormat, edit?: (config: Record<string, unknown>) => void, tensors?: () => {name: string, dtype: string, shape: number[], data: Uint8Array}[], error: RegExp}[] = [
            {name: "asymmetric zero points (config)", format: "pack-quantized", edit: (c) => weightsOf(c).symmetric = false, error: /asymmetric quantization with zero points/},
            {name: "asymmetric zero points (tensor)", format: "pack-quantized", tensors: () => [{name: "model.layers.0.self_attn.q_proj.weight_zero_point", dtype: "I32", shape: [256, 1], data: new Uint8Array(1024)}], error: /asymmetric quantization \(weight_zero_point\)/},
            {name: "activation reordering (config)", format: "marlin-24", edit: (c) => weightsOf(c).actorder = "group", error: /activation reordering \(actorder: "group"/},
            {name: "activation reordering (g_idx tensor)", format: "pack-quantized", tensors: () => [{name: "model.layers.1.mlp.up_proj.weight_g_idx", dtype: "I32", shape: [256], data: new Uint8Array(1024)}], error: /activation reordering \(weight_g_idx/},
            {name: "FP8 weights (config)", format: "pack-quantized", edit: (c) => Object.assign(weightsOf(c), {type: "float", num_bits: 8}), error: /FP8 weights/},
            {name: "FP8 weights (tensor dtype)", format: "dense", error: /model\.layers\.0\.mlp\.gate_proj\.weight is FP8 \(F8_E4M3\)/},
            {name: "8-bit integer weights", format: "pack-quantized", edit: (c) => weightsOf(c).num_bits = 8, error: /8-bit integer weights/},
            {name: "activation quantization", format: "pack-quantized", edit: (c) => groupOf(c).input_activations = {num_bits: 8, type: "int", symmetric: true, strategy: "token", dynamic: true}, error: /activation quantization/}
        ];
        for (const testCase of cases)
            it(testCase.name, async function () {
                const directory = path.join(dir, `unsupported-${testCase.name.replace(/\W+/g, "-")}`);
                await writeCompressedTensorsCheckpoint(directory, testCase.format, {
                    ...(testCase.edit != null ? {editConfig: testCase.edit} : {}),
                    ...(testCase.tensors != null ? {extraTensors: testCase.tensors()} : {})
                });
                if (testCase.name === "FP8 weights (tensor dtype)")
                    await rewriteDtype(path.join(directory, "model-00002-of-00002.safetensors"), "model.layers.0.mlp.gate_proj.weight", "F8_E4M3");
                const output = path.join(directory, "out.gguf");
                await assert.rejects(importCheckpoint({checkpoint: directory, output}), testCase.error);
                await assert.rejects(fs.access(output));
            });
    });
});

function groupOf(config: Record<string, unknown>): Record<string, unknown> {
    return ((config.quantization_config as Record<string, unknown>).config_groups as Record<string, Record<string, unknown>>).group_0!;
}

function weightsOf(config: Record<string, unknown>): Record<string, unknown> {
    return groupOf(config).weights as Record<string, unknown>;
}

/** Declares a BF16 tensor as FP8 in a safetensors header (its byte range halves; the data bytes stay where they are). */
async function rewriteDtype(file: string, name: string, dtype: string): Promise<void> {
    const bytes = await fs.readFile(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()) as Record<string, {dtype: string, data_offsets: [number, number]}>;
    const entry = header[name]!;
    entry.dtype = dtype;
    entry.data_offsets = [entry.data_offsets[0], entry.data_offsets[0] + (entry.data_offsets[1] - entry.data_offsets[0]) / 2];
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    await fs.writeFile(file, Buffer.concat([length, json, bytes.subarray(8 + headerLength)]));
}
