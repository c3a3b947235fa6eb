import {strict as assert} from "node:assert";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {decodeFloats, decodeIntegers, SafetensorsCheckpoint} from "../../src/import/SafetensorsCheckpoint.js";
import {bf16Bytes, writeSafetensors} from "../support/writeCompressedTensorsCheckpoint.js";

describe("SafetensorsCheckpoint", function () {
    let dir: string;

    beforeEach(async function () {
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "safetensors-"));
    });

    afterEach(async function () {
        await fs.rm(dir, {recursive: true, force: true});
    });

    it("reads a single-file checkpoint: whole tensors, row ranges, dtypes", async function () {
        const matrix = Float32Array.from({length: 12}, (_, i) => i - 5.5);
        await writeSafetensors(path.join(dir, "model.safetensors"), [
            {name: "a", dtype: "BF16", shape: [3, 4], data: bf16Bytes(matrix)},
            {name: "b", dtype: "I64", shape: [2], data: new Uint8Array(new BigInt64Array([7n, -3n]).buffer)},
            {name: "c", dtype: "F16", shape: [2], data: new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer)},
            {name: "d", dtype: "I16", shape: [3], data: new Uint8Array(new Int16Array([-1, 2, -32768]).buffer)}
        ]);
        const checkpoint = await SafetensorsCheckpoint.open(dir);
        try {
            assert.deepEqual([...checkpoint.tensors.keys()], ["a", "b", "c", "d"]);
            assert.deepEqual(checkpoint.get("a").shape, [3, 4]);
            assert.deepEqual([...decodeFloats(await checkpoint.read("a"), "BF16", "a")], [...matrix]);
            assert.deepEqual([...decodeFloats(await checkpoint.read("a", 1, 2), "BF16", "a")], [...matrix.subarray(4, 12)]);
            assert.deepEqual(decodeIntegers(await checkpoint.read("b"), "I64", "b"), [7, -3]);
            assert.deepEqual([...decodeFloats(await checkpoint.read("c"), "F16", "c")], [1, -2]);
            assert.deepEqual([...decodeIntegers(await checkpoint.read("d"), "I16", "d")], [-1, 2, -32768]);
            await assert.rejects(checkpoint.read("a", 2, 2), /rows \[2, 4\) are outside tensor a \(3 rows\)/);
            assert.throws(() => checkpoint.get("missing"), /no tensor missing/);
            assert.throws(() => decodeFloats(new Uint8Array(2), "F8_E4M3", "x"), /x is FP8/);
        } finally {
            await checkpoint.close();
        }
    });

    it("reads shards through model.safetensors.index.json", async function () {
        await writeSafetensors(path.join(dir, "s1.safetensors"), [{name: "x", dtype: "F32", shape: [1], data: new Uint8Array(new Float32Array([1.5]).buffer)}]);
        await writeSafetensors(path.join(dir, "s2.safetensors"), [{name: "y", dtype: "F32", shape: [2], data: new Uint8Array(new Float32Array([2, 3]).buffer)}]);
        await fs.writeFile(path.join(dir, "model.safetensors.index.json"), JSON.stringify({weight_map: {x: "s1.safetensors", y: "s2.safetensors"}}));
        const checkpoint = await SafetensorsCheckpoint.open(dir);
        try {
            assert.equal(path.basename(checkpoint.get("y").file), "s2.safetensors");
            assert.deepEqual([...decodeFloats(await checkpoint.read("y"), "F32", "y")], [2, 3]);
            assert.deepEqual([...decodeFloats(await checkpoint.read("x"), "F32", "x")], [1.5]);
        } finally {
            await checkpoint.close();
        }
    });

    it("refuses a header whose offsets do not fit, and a folder without safetensors", async function () {
        await assert.rejects(SafetensorsCheckpoint.open(dir), /has no \.safetensors files/);
        await writeSafetensors(path.join(dir, "model.safetensors"), [{name: "x", dtype: "F32", shape: [4], data: new Uint8Array(8)}]);
        await assert.rejects(SafetensorsCheckpoint.open(dir), /tensor x \(F32 \[4\]\) has data offsets \[0, 8\] that do not fit/);
    });
});
