import {strict as assert} from "node:assert";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {spawnSync} from "node:child_process";
import {compileCProgram, findCCompiler} from "../../native-kernels/compileCProgram.mjs";
import {nativeKernelsDir} from "../../native-kernels/sparseBuildPaths.mjs";
import {quantizeQ4_0Rows} from "../../src/convert/q4_0Quantizer.js";
import {quantizeQ8_0Rows} from "../../src/convert/q8_0Quantizer.js";
import {dequantizeSparse24Rows, fractionAlreadySparse24, quantizeSparse24Rows, Q4_S24} from "../../src/convert/sparse24Quantizer.js";
import {float16BitsToFloat32} from "../../src/gguf/float16.js";

function randomNormals(count: number, seed: number): Float32Array {
    let state = seed >>> 0 || 1;
    const uniform = () => {
        state ^= state << 13; state >>>= 0;
        state ^= state >>> 17;
        state ^= state << 5; state >>>= 0;
        return (state + 1) / 4294967297;
    };
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++)
        out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    return out;
}

/** Rows that exercise the edge cases: ties, zeros, already-2:4 groups, tiny and huge magnitudes. */
function trickyRows(rows: number, columns: number, seed: number): Float32Array {
    const x = randomNormals(rows * columns, seed);
    for (let r = 0; r < rows; r++) {
        const row = r * columns;
        const kind = r % 7;
        for (let i = 0; i < columns; i++) {
            const v = x[row + i]!;
            if (kind === 1) x[row + i] = i % 4 < 2 ? 0 : v;                      // already 2:4
            else if (kind === 2) x[row + i] = (i % 3 === 0 ? -1 : 1) * 0.5;        // ties everywhere
            else if (kind === 3) x[row + i] = v * 1e-6;                            // subnormal fp16 scales
            else if (kind === 4) x[row + i] = i < 128 ? 0 : v;                      // an all-zero scale group
            else if (kind === 5) x[row + i] = v * 3e5;                             // scale overflows fp16
            else if (kind === 6) x[row + i] = Math.fround(Math.round(v * 4) / 4);  // many equal magnitudes
        }
    }
    return x;
}

describe("Q4_S24 TypeScript quantizer", function () {
    this.timeout(120_000);

    it("writes the same bytes as the C reference quantizer", async function () {
        if (findCCompiler() == null)
            this.skip();
        const exe = compileCProgram({
            name: "q4_s24_quantize_file",
            sources: [path.join(nativeKernelsDir, "src", "q4_s24_ref.c"), path.join(nativeKernelsDir, "test", "q4_s24_quantize_file.c")],
            includeDirs: [path.join(nativeKernelsDir, "src")],
            flags: ["-march=native"] // FMA contraction must not change the result: the C code has no a*b+c
        });
        const dir = await fs.mkdtemp(path.join(os.tmpdir(), "q4s24-"));
        try {
            for (const [rows, columns, seed] of [[7, 1280, 11], [13, 768, Date.now() % 100000], [1, 4864, 5]] as const) {
                const values = trickyRows(rows, columns, seed);
                await fs.writeFile(path.join(dir, "in.f32"), values);
                const res = spawnSync(exe, [path.join(dir, "in.f32"), path.join(dir, "out.bin"), String(rows), String(columns)], {encoding: "utf8"});
                assert.equal(res.status, 0, res.stderr);
                const expected = new Uint8Array(await fs.readFile(path.join(dir, "out.bin")));
                const actual = quantizeSparse24Rows(values, rows, columns);
                assert.equal(actual.length, expected.length);
                const firstDiff = actual.findIndex((b, i) => b !== expected[i]);
                assert.equal(firstDiff, -1, `${rows}x${columns} seed ${seed}: first differing byte ${firstDiff} (block ${Math.floor(firstDiff / 100)})`);
            }
        } finally {
            await fs.rm(dir, {recursive: true, force: true});
        }
    });

    it("keeps 2:4 weights on the 4-bit grid exactly and prunes others to the two largest of each 4", function () {
        const rows = 5, columns = 512;
        const x = randomNormals(rows * columns, 3);
        const q = quantizeSparse24Rows(x, rows, columns);
        assert.equal(q.length, rows * (columns / Q4_S24.blockColumns) * Q4_S24.blockBytes);
        const y = dequantizeSparse24Rows(q, rows, columns);
        assert.equal(fractionAlreadySparse24(y), 1);
        for (let g = 0; g < x.length; g += 4) {
            const order = [0, 1, 2, 3].sort((a, b) => Math.abs(x[g + b]!) - Math.abs(x[g + a]!) || a - b);
            for (const i of order.slice(2))
                assert.equal(y[g + i], 0);
        }
        // Dequantized values are on the grid and 2:4: quantizing them again changes nothing.
        const again = dequantizeSparse24Rows(quantizeSparse24Rows(y, rows, columns), rows, columns);
        assert.deepEqual(again, y);
    });

    it("Q4_0 and Q8_0 reference quantizers stay within one step and half a step", function () {
        const x = randomNormals(3 * 64, 9);
        const check = (bytes: Uint8Array, blockBytes: number, decode: (block: Uint8Array, j: number) => number, step: (d: number) => number) => {
            for (let b = 0; b < x.length / 32; b++) {
                const block = bytes.subarray(b * blockBytes, (b + 1) * blockBytes);
                const d = float16BitsToFloat32(block[0]! | (block[1]! << 8));
                for (let j = 0; j < 32; j++)
                    assert.ok(Math.abs(decode(block, j) * d - x[b * 32 + j]!) <= step(Math.abs(d)) + 1e-6, `block ${b} value ${j}`);
            }
        };
        check(quantizeQ4_0Rows(x, 3, 64), 18, (block, j) => ((block[2 + (j % 16)]! >> (j < 16 ? 0 : 4)) & 15) - 8, (d) => d * 1.0); // +7 cap: up to one step
        check(quantizeQ8_0Rows(x, 3, 64), 34, (block, j) => (block[2 + j]! << 24) >> 24, (d) => d * 0.51);
    });
});
