import {strict as assert} from "node:assert";
import {spawnSync} from "node:child_process";
import path from "node:path";
import {fileURLToPath} from "node:url";

const harnessScript = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../native-kernels/cuda-harness/run.sh");

function hasNvcc(): boolean {
    return spawnSync("nvcc", ["--version"], {encoding: "utf8"}).status === 0;
}

// The CUDA kernels cannot run without a GPU (the harness on the GPU machine checks them against the CPU reference),
// but every architecture the CUDA build targets must at least compile: a kernel change that only builds for the
// GPU it was measured on would break users of the others.
describe("Q4_S24 CUDA kernels (compile only)", function () {
    this.timeout(600_000);

    it("compile for sm_80, sm_86, sm_89 and sm_90a, and the harness that checks them on the GPU machine", function () {
        if (!hasNvcc()) {
            console.warn("      (nvcc is not on PATH: CUDA compile check skipped)");
            this.skip();
        }
        const result = spawnSync("bash", [harnessScript, "--compile-only"], {
            encoding: "utf8",
            env: {...process.env, HARNESS_OUT: path.join(process.env.TMPDIR ?? "/tmp", `q4_s24_cuda_compile_${process.pid}`)}
        });
        const output = `${result.stdout}\n${result.stderr}`;
        assert.equal(result.status, 0, `nvcc failed:\n${output}`);
        for (const arch of ["sm80", "sm86", "sm89", "sm90a"])
            assert.match(output, new RegExp(`compiled q4_s24_cuda\\.cu for ${arch.replace("sm", "sm_")}`));
        assert.match(output, /compiled the harness/);
    });
});
