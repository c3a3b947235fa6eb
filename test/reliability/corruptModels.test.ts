import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {EngineClient} from "../../src/core/EngineClient.js";
import {EngineError} from "../../src/core/errors.js";
import {readGgufHeader, readGgufTensorData} from "../../src/gguf/GgufReader.js";
import {gguf, type GgufValue} from "../../src/gguf/GgufValue.js";
import {writeGguf} from "../../src/gguf/GgufWriter.js";
import {generatedDir, requireBuiltEngine, tinyModelPath} from "../support/fixtures.js";

/** Deterministic pseudo-random numbers, so a failing case can be reproduced from its index. */
function random(seed: number): () => number {
    let state = seed >>> 0 || 1;
    return () => {
        state ^= state << 13; state >>>= 0;
        state ^= state >>> 17;
        state ^= state << 5; state >>>= 0;
        return state / 4294967296;
    };
}

describe("bad model files (fuzzed from a valid one)", function () {
    this.timeout(600_000);

    it("every damaged file is refused with a clear error or loads; the client survives and a valid load works after", async () => {
        const valid = await tinyModelPath();
        const bytes = fs.readFileSync(valid);
        const header = await readGgufHeader(valid);
        const dir = path.join(generatedDir, "fuzz");
        fs.mkdirSync(dir, {recursive: true});
        const next = random(20261128);
        const cases: [string, Buffer][] = [
            ["empty", Buffer.alloc(0)],
            ["wrong magic", Buffer.concat([Buffer.from("GGML"), bytes.subarray(4)])],
            ["version 99", (() => { const b = Buffer.from(bytes); b.writeUInt32LE(99, 4); return b; })()],
            ["absurd tensor count", (() => { const b = Buffer.from(bytes); b.writeBigUInt64LE(2n ** 62n, 8); return b; })()],
            ["absurd metadata count", (() => { const b = Buffer.from(bytes); b.writeBigUInt64LE(2n ** 40n, 16); return b; })()],
            ["data cut off", bytes.subarray(0, header.dataOffset + 1000)],
            ["header cut off", bytes.subarray(0, Math.floor(header.dataOffset / 2))]
        ];
        // Random byte flips in the header (metadata, tensor table), and in the weights.
        for (let i = 0; i < 12; i++) {
            const b = Buffer.from(bytes);
            const inHeader = i < 8;
            for (let flips = 0; flips < 4; flips++) {
                const at = inHeader ? 24 + Math.floor(next() * (header.dataOffset - 24)) : header.dataOffset + Math.floor(next() * (b.length - header.dataOffset));
                b[at] = Math.floor(next() * 256);
            }
            cases.push([`${inHeader ? "header" : "weights"} bytes flipped #${i}`, b]);
        }

        // Structurally valid files whose metadata contradicts the weights: only llama.cpp can tell, and it must refuse.
        const rewritten = async (name: string, change: [string, GgufValue]) => {
            const file = path.join(dir, `${name}.gguf`);
            const metadata = new Map(header.metadata);
            metadata.set(change[0], change[1]);
            await writeGguf(file, metadata, header.tensors.map((tensor) => ({name: tensor.name, dims: tensor.dims, type: tensor.type,
                data: () => readGgufTensorData(header, tensor)})));
            return fs.readFileSync(file);
        };
        const semantic: [string, Buffer][] = [
            ["more layers than tensors", await rewritten("layers", ["llama.block_count", gguf.u32(3)])],
            ["wrong embedding width", await rewritten("width", ["llama.embedding_length", gguf.u32(96)])],
            ["head count not dividing the width", await rewritten("heads", ["llama.attention.head_count", gguf.u32(5)])]
        ];
        cases.push(...semantic);

        const logs: string[] = [];
        const engine = new EngineClient({enginePath: requireBuiltEngine(), log: (level, message) => logs.push(`${level} ${message}`), restartDelaysMs: [50]});
        const outcomes = new Map<string, string>();
        try {
            for (const [name, content] of cases) {
                const file = path.join(dir, `${name.replace(/\W+/g, "-")}.gguf`);
                fs.writeFileSync(file, content);
                try {
                    await engine.load({modelPath: file, device: "cpu", contextSize: 512, sequences: 1});
                    outcomes.set(name, "loaded");
                } catch (error) {
                    assert.ok(error instanceof EngineError, `${name}: ${String(error)}`);
                    assert.ok(error.message.length > 10, `${name}: the message says what is wrong`);
                    outcomes.set(name, error.code);
                    if (process.env.FUZZ_VERBOSE) console.log(name, error.message.slice(0, 200));
                }
            }
            // Header damage must never be silently accepted when it breaks the structure.
            for (const name of ["empty", "wrong magic", "version 99", "absurd tensor count", "absurd metadata count", "data cut off", "header cut off"])
                assert.equal(outcomes.get(name), "model-invalid", name);
            for (const [name] of semantic)
                assert.ok(["model-load-failed", "engine-crashed", "model-invalid"].includes(outcomes.get(name)!), `${name}: ${outcomes.get(name)}`);
            const info = await engine.load({modelPath: valid, device: "cpu", contextSize: 512, sequences: 1});
            assert.equal(info.supportsFim, true);
            const completion = await engine.complete({prefix: "let x = ", suffix: ";\n", cacheKey: "x"}, {maxTokens: 4, stop: [], singleLine: true, temperature: 0});
            assert.ok(completion.stats.generatedTokens > 0);
        } finally {
            await engine.dispose();
            fs.rmSync(dir, {recursive: true, force: true});
        }
        console.log(`      outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    });
});
