import * as assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {float16BitsToFloat32, float32ToFloat16Bits} from "../../src/gguf/float16.js";
import {readGgufHeader, readGgufTensorData} from "../../src/gguf/GgufReader.js";
import {gguf, GgufValueType} from "../../src/gguf/GgufValue.js";
import {writeGguf} from "../../src/gguf/GgufWriter.js";
import {GgmlType} from "../../src/gguf/ggmlTypes.js";

describe("GGUF reader and writer", () => {
    let dir: string;
    before(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), "gguf-")); });
    after(async () => { await fs.rm(dir, {recursive: true, force: true}); });

    it("round-trips metadata of every type and tensor data at aligned offsets", async () => {
        const file = path.join(dir, "a.gguf");
        const weights = new Float32Array(33 * 3).map((_, i) => i / 7);
        await writeGguf(file, [
            ["general.architecture", gguf.str("llama")],
            ["a.u32", gguf.u32(7)], ["a.i32", gguf.i32(-7)], ["a.f32", gguf.f32(0.5)], ["a.bool", gguf.bool(true)],
            ["a.u64", gguf.u64(2n ** 40n)], ["a.tokens", gguf.array(GgufValueType.STRING, ["<s>", "ü", "fn"])],
            ["a.ids", gguf.array(GgufValueType.INT32, [1, -2, 3])]
        ], [
            {name: "w", dims: [33, 3], type: GgmlType.F32, data: new Uint8Array(weights.buffer)},
            {name: "b", dims: [5], type: GgmlType.F32, data: () => new Uint8Array(new Float32Array([1, 2, 3, 4, 5]).buffer)}
        ]);
        const header = await readGgufHeader(file);
        assert.equal(header.version, 3);
        assert.deepEqual(header.metadata.get("a.tokens"), {type: GgufValueType.ARRAY, elementType: GgufValueType.STRING, value: ["<s>", "ü", "fn"]});
        assert.equal(header.metadata.get("a.u64")?.value, 2n ** 40n);
        assert.equal(header.metadata.get("a.i32")?.value, -7);
        assert.equal(header.metadata.get("a.bool")?.value, true);
        assert.deepEqual(header.tensors.map((t) => [t.name, t.dims, t.fileOffset % 32]), [["w", [33, 3], 0], ["b", [5], 0]]);
        const data = await readGgufTensorData(header, header.tensors[0]!);
        assert.deepEqual(new Float32Array(data.buffer, data.byteOffset, 99), weights);
    });

    it("refuses truncated files, wrong magic and absurd counts with a message naming the problem", async () => {
        const good = path.join(dir, "good.gguf");
        await writeGguf(good, [["general.architecture", gguf.str("llama")]], [{name: "w", dims: [64], type: GgmlType.F32, data: new Uint8Array(256)}]);
        const bytes = await fs.readFile(good);
        const cases: [string, Buffer, RegExp][] = [
            ["truncated", bytes.subarray(0, bytes.length - 10), /runs past the end/],
            ["magic", Buffer.concat([Buffer.from("GGML"), bytes.subarray(4)]), /wrong magic/],
            ["count", (() => { const b = Buffer.from(bytes); b.writeBigUInt64LE(2n ** 50n, 8); return b; })(), /tensor count/],
            ["tiny", bytes.subarray(0, 10), /only 10 bytes/]
        ];
        for (const [name, content, message] of cases) {
            const file = path.join(dir, `${name}.gguf`);
            await fs.writeFile(file, content);
            await assert.rejects(readGgufHeader(file), message, name);
        }
    });

    it("converts float16 exactly for representable values and rounds to nearest even", () => {
        for (const value of [0, 1, -2, 0.5, 65504, 2 ** -24])
            assert.equal(float16BitsToFloat32(float32ToFloat16Bits(value)), value, `${value} is exact in float16`);
        assert.equal(float16BitsToFloat32(float32ToFloat16Bits(1 / 3)), 0.333251953125, "1/3 rounds to the nearest float16");
        assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00); // halfway rounds to even
        assert.equal(float32ToFloat16Bits(70000), 0x7c00);
    });
});
