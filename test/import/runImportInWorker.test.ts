import {strict as assert} from "node:assert";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {readGgufHeader} from "../../src/gguf/GgufReader.js";
import {runImportInWorker} from "../../src/import/runImportInWorker.js";
import {llamaBpeVocabulary, writeCompressedTensorsCheckpoint} from "../support/writeCompressedTensorsCheckpoint.js";

// The bundle the VS Code command starts (npm test builds it first).
const worker = {workerPath: path.join("dist", "importWorker.mjs"), execArgv: []};

describe("runImportInWorker (the import process the VS Code command starts)", function () {
    this.timeout(600_000);
    let dir: string;
    let checkpoint: string;

    before(async function () {
        try {
            await fs.access(llamaBpeVocabulary);
        } catch {
            this.skip();
        }
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "import-worker-"));
        checkpoint = (await writeCompressedTensorsCheckpoint(path.join(dir, "marlin"), "marlin-24")).directory;
    });

    after(async function () {
        if (dir != null)
            await fs.rm(dir, {recursive: true, force: true});
    });

    it("imports in a child process, reporting progress up to 1", async function () {
        const output = path.join(dir, "worker.gguf");
        const fractions: number[] = [];
        const logs: string[] = [];
        const report = await runImportInWorker({...worker, options: {checkpoint, output, embeddings: "q8_0"},
            onProgress: (fraction) => fractions.push(fraction), log: (line) => logs.push(line)});
        assert.equal(report.tensors.filter((t) => t.type === "Q4_S24").length, 14);
        assert.ok(fractions.length > 10);
        assert.ok(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]!), "progress went backwards");
        assert.equal(fractions.at(-1), 1);
        assert.ok(logs.some((line) => line.startsWith(`wrote ${output}`)), logs.join("\n"));
        assert.equal((await readGgufHeader(output)).tensors.length, report.tensors.length);
    });

    it("cancels: rejects with an AbortError and leaves no file behind", async function () {
        const output = path.join(dir, "cancelled.gguf");
        const controller = new AbortController();
        const run = runImportInWorker({...worker, options: {checkpoint, output, embeddings: "f16"}, signal: controller.signal,
            onProgress: (fraction) => {
                if (fraction > 0.2)
                    controller.abort();
            }});
        await assert.rejects(run, (error: Error) => error.name === "AbortError" && /cancelled/.test(error.message));
        const left = (await fs.readdir(dir)).filter((name) => name.startsWith("cancelled"));
        assert.deepEqual(left, []);
    });

    it("passes on the importer's error", async function () {
        await assert.rejects(runImportInWorker({...worker, options: {checkpoint: path.join(dir, "missing"), output: path.join(dir, "x.gguf")}}),
            /cannot read .*missing.*config\.json/);
    });
});
