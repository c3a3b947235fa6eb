import {strict as assert} from "node:assert";
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

const harnessScript = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../native-kernels/cuda-harness/run.sh");

function hasNvcc(): boolean {
    return spawnSync("nvcc", ["--version"], {encoding: "utf8"}).status === 0;
}

// The CUDA kernels cannot run without a GPU (the harness on the GPU machine checks them against the CPU reference),
// but the architectures ggml's CUDA build targets by default must at least compile: a kernel change that only builds
// for the GPU it was measured on would break users of the others. The ggml glue (q4_s24_ggml_cuda.cu), ggml-cuda.cu and
// test-backend-ops.cpp as our patches leave them compile against node-llama-cpp's patched llama.cpp tree, with a
// stand-in for cuBLAS's header (this machine has none).
describe("Q4_S24 CUDA kernels (compile only)", function () {
    this.timeout(900_000); // ~7 min on CI's 2 cores; more when the machine is shared

    it("compile for sm_75 to sm_120a (the decode kernels and the sparse tensor-core prefill), without dp4a for older GPUs, with the wgmma prefill's pipeline unserialized on sm_90a, and the harness that checks them on the GPU machine; the prefill operands replayed on the CPU; the ggml glue and the patched ggml-cuda.cu; ggml's decode attention without non-coherent loads", function () {
        if (!hasNvcc()) {
            console.warn("      (nvcc is not on PATH: CUDA compile check skipped)");
            this.skip();
        }
        const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "q4_s24_cuda_compile_"));
        try {
            const result = spawnSync("bash", [harnessScript, "--compile-only"], {encoding: "utf8", env: {...process.env, HARNESS_OUT: outDir}});
            const output = `${result.stdout}\n${result.stderr}`;
            assert.equal(result.status, 0, `nvcc failed:\n${output}`);
            for (const arch of ["sm_75", "sm_80", "sm_86", "sm_89", "sm_90a", "sm_120a"]) {
                assert.match(output, new RegExp(`compiled q4_s24_cuda\\.cu for ${arch}\n`));
                assert.match(output, new RegExp(`compiled q4_s24_cuda_sparse_mma\\.cu for ${arch}\n`));
            }
            assert.match(output, /compiled q4_s24_cuda\.cu without dp4a/);
            // ptxas reports it (and the script fails) if a change makes it serialize the wgmma kernel's pipeline.
            assert.match(output, /wgmma pipeline not serialized \(sm_90a\)/);
            assert.match(output, /compiled the harness/);
            // The prefill kernels' own operand builders (mma.sp's registers, the wgmma kernel's swizzled staging read
            // through its descriptor) replayed on the CPU, three seeds.
            assert.equal(output.match(/^OK: 0 mismatch\(es\)/gm)?.length, 3, output);
            // npm install builds node-llama-cpp from the patched tree, so it is there.
            assert.match(output, /compiled q4_s24_ggml_cuda\.cu \(patched tree/);
            assert.match(output, /compiled ggml-cuda\.cu \(patched tree/);
            assert.match(output, /compiled test-backend-ops\.cpp/);
            // ggml's decode attention reads q coherently (our q/k/v launch writes it while attention may already run).
            assert.match(output, /flash_attn_ext_vec \(f16 K\/V, sm_90a\): no non-coherent loads/);
        } finally {
            fs.rmSync(outDir, {recursive: true, force: true});
        }
    });
});
