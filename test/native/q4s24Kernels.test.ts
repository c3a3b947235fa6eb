import {strict as assert} from "node:assert";
import {findCCompiler} from "../../native-kernels/compileCProgram.mjs";
import {runGgmlChecks, runStandaloneChecks} from "../../native-kernels/test/runNativeChecks.mjs";
import {getSparseBuildPaths} from "../../native-kernels/sparseBuildPaths.mjs";

// Fresh random data each run; the seed is printed in the output of a failure so it can be replayed with
// `node native-kernels/test/runNativeChecks.mjs all SEED`.
describe("Q4_S24 CPU kernels (C checks)", function () {
    this.timeout(300_000);

    it("standalone: fp16, round trip, dequantization vs the format's definition, validation and dot product vs float64 (SIMD and portable builds)", function () {
        if (findCCompiler() == null)
            this.skip();
        for (const result of runStandaloneChecks())
            assert.equal(result.status, 0, `standalone check (${result.variant}) failed:\n${result.output}`);
    });

    it("through ggml, every CPU variant this machine runs: MUL_MAT vs dequantized F32 and float64, GET_ROWS, CPY, supports_op, validation", function () {
        if (findCCompiler() == null || getSparseBuildPaths() == null) {
            console.warn("      (no Q4_S24 build: run `node native-kernels/build.mjs` to enable this test)");
            this.skip();
        }
        const results = runGgmlChecks();
        assert.ok(results != null);
        // A portable build has one CPU library per feature level; this machine runs at least the baseline ones.
        const run = results.filter((result) => result.supported);
        assert.ok(run.length > 0, `no CPU variant runs here: ${results.map((result) => result.variant).join(", ")}`);
        for (const result of run)
            assert.equal(result.status, 0, `ggml check (CPU variant ${result.variant}) failed:\n${result.output}`);
    });
});
