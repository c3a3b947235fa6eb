import {strict as assert} from "node:assert";
import {parseImportArgs} from "../../src/import/importCli.js";

describe("import CLI arguments", function () {
    it("defaults to auto linear types and F16 embeddings", function () {
        assert.deepEqual(parseImportArgs(["ckpt", "out.gguf"]),
            {checkpoint: "ckpt", output: "out.gguf", linear: "auto", denseLinear: "q8_0", embeddings: "f16", roundScales: false});
    });

    it("reads every option", function () {
        assert.deepEqual(parseImportArgs(["--linear", "f32", "ckpt", "--dense-linear=q4_0", "out.gguf", "--embeddings", "q8_0", "--round-scales", "--name", "My model"]),
            {checkpoint: "ckpt", output: "out.gguf", linear: "f32", denseLinear: "q4_0", embeddings: "q8_0", roundScales: true, name: "My model"});
    });

    it("refuses unknown options, bad values and a wrong number of paths", function () {
        assert.throws(() => parseImportArgs(["a", "b", "--sparse"]), /unknown option --sparse/);
        assert.throws(() => parseImportArgs(["a", "b", "--linear", "q5_k"]), /--linear must be one of auto, q4_s24, q4_0, q8_0, f16, f32/);
        assert.throws(() => parseImportArgs(["a", "b", "--embeddings", "q4_s24"]), /--embeddings must be one of f16, f32, q8_0, q4_0/);
        assert.throws(() => parseImportArgs(["a"]), /usage: import CHECKPOINT_DIR OUT\.gguf/);
    });
});
