import {strict as assert} from "node:assert";
import {getSparseBuildPaths} from "../../native-kernels/sparseBuildPaths.mjs";
import {llamaSupportsQ4S24, loadSparseLlama, SparseLlamaBuildMissingError} from "../../src/native/loadSparseLlama.js";

describe("loadSparseLlama", function () {
    this.timeout(120_000);

    it("loads our CPU build, which knows the Q4_S24 type", async function () {
        if (getSparseBuildPaths() == null)
            this.skip();
        const llama = await loadSparseLlama({gpu: false});
        try {
            assert.equal(llama.gpu, false);
            assert.ok(llamaSupportsQ4S24(llama));
        } finally {
            await llama.dispose();
        }
    });

    it("throws a typed error naming the build command when no CUDA build exists", async function () {
        const build = getSparseBuildPaths();
        if (build?.stamp.gpu === "cuda")
            this.skip();
        await assert.rejects(loadSparseLlama({gpu: "cuda"}), (error: unknown) =>
            error instanceof SparseLlamaBuildMissingError && error.problem === "missing" && /native-kernels\/build\.mjs/.test(error.message));
    });
});
