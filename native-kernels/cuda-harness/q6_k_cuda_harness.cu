// Checks the batch-1 Q6_K mat-vec (src/q6_k_cuda.cu) against a CPU reference on fresh random blocks, then times it on
// Llama-3-8B's output matrix beside a plain read of the same bytes (measured in the same run). Built and run by
// run.sh (needs a GPU):  q6_k_cuda_harness SEED [quick]   (quick: the checks alone, small shapes, for memcheck)
#include "cuda_check.cuh"
#include "../src/q4_s24_cuda.cuh"
#include "../src/q4_s24_cuda_launch.cuh"
#include "../src/q6_k_cuda.cuh"

#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace {

constexpr int kBlockBytes = 210;

// ggml's dequantize_row_q6_K, written from the format (ggml-common.h's block_q6_K).
float weight_at(const uint8_t * row, int64_t i) {
    const uint8_t * block = row + (i / 256) * kBlockBytes;
    const int       e     = (int) (i % 256);
    const int       h = e / 128, s = (e % 128) / 32, l = e % 32;
    const uint8_t   ql    = block[64 * h + l + 32 * (s & 1)];
    const uint8_t   qh    = block[128 + 32 * h + l];
    const int       q     = (((ql >> (4 * (s >> 1))) & 15) | (((qh >> (2 * s)) & 3) << 4)) - 32;
    const int8_t    sc    = (int8_t) block[192 + 8 * h + 2 * s + l / 16];
    uint16_t        d_bits;
    memcpy(&d_bits, block + 208, 2);
    __half_raw raw;
    raw.x = d_bits;
    return __half2float(__half(raw)) * (float) sc * (float) q;
}

void random_rows(std::mt19937 & rng, std::vector<uint8_t> & w, int64_t nrows, int64_t k, size_t row_stride) {
    w.assign((size_t) nrows * row_stride, 0xAB); // padding between rows keeps a recognizable value
    std::uniform_int_distribution<int>     byte(0, 255);
    std::uniform_real_distribution<float> scale(1e-3f, 1e-2f);
    for (int64_t r = 0; r < nrows; ++r) {
        for (int64_t b = 0; b < k / 256; ++b) {
            uint8_t * block = w.data() + r * row_stride + b * kBlockBytes;
            for (int i = 0; i < 208; ++i) {
                block[i] = (uint8_t) byte(rng);
            }
            const __half_raw d = __half_raw(__float2half(scale(rng)));
            memcpy(block + 208, &d.x, 2);
        }
    }
}

struct Case {
    int64_t nrows, k;
    size_t  extra_stride; // bytes between rows beyond the blocks (a view's row stride)
};

// Runs one case through q6_k_cuda_mul_mat_vec (stages/warps 0: the default shape) and compares every row with the
// reference on the same quantized activations. Returns the number of rows out of tolerance.
int check(std::mt19937 & rng, const Case & c, int stages, int warps) {
    const size_t row_bytes = (size_t) (c.k / 256) * kBlockBytes + c.extra_stride;
    std::vector<uint8_t> w;
    random_rows(rng, w, c.nrows, c.k, row_bytes);
    std::vector<float> x(c.k);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float & v : x) {
        v = normal(rng);
    }
    void * dw = nullptr, * dscratch = nullptr;
    float * dx = nullptr, * dy = nullptr;
    CUDA_CHECK(cudaMalloc(&dw, w.size()));
    CUDA_CHECK(cudaMalloc(&dx, c.k * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dy, c.nrows * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dscratch, q4_s24_cuda_act_bytes(c.k, 1)));
    CUDA_CHECK(cudaMemcpy(dw, w.data(), w.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dx, x.data(), c.k * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(dy, 0xFF, c.nrows * sizeof(float))); // NaN: a row never written fails
    const q4_s24_cuda_act act = q4_s24_cuda_act_view(dscratch, c.k, 1);
    q4_s24_cuda_quantize_act(dx, c.k, c.k, 1, act, nullptr);
    const bool taken = stages == 0 ? q6_k_cuda_mul_mat_vec(dw, c.nrows, c.k, row_bytes, act, dy, nullptr)
                                   : q6_k_cuda_mul_mat_vec_shape(stages, warps, dw, c.nrows, c.k, row_bytes, act, dy,
                                                                 nullptr);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    int failures = 0;
    if (!taken) {
        printf("  %6lld x %5lld stride+%zu stages %d warps %d: not taken (FAIL)\n", (long long) c.nrows,
               (long long) c.k, c.extra_stride, stages, warps);
        failures = 1;
    } else {
        std::vector<int8_t> aq(c.k);
        std::vector<float>  ad(c.k / 32), y(c.nrows);
        CUDA_CHECK(cudaMemcpy(aq.data(), act.q, c.k, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(ad.data(), act.d, ad.size() * sizeof(float), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(y.data(), dy, c.nrows * sizeof(float), cudaMemcpyDeviceToHost));
        double worst = 0.0;
        for (int64_t r = 0; r < c.nrows; ++r) {
            double ref = 0.0, magnitude = 0.0;
            for (int64_t i = 0; i < c.k; ++i) {
                const double term = (double) weight_at(w.data() + r * row_bytes, i) * aq[i] * ad[i / 32];
                ref += term;
                magnitude += fabs(term);
            }
            const double err = fabs((double) y[r] - ref) / (magnitude + 1e-30);
            worst = std::max(worst, std::isnan(err) ? 1e30 : err);
            if (!(err <= 2e-5)) {
                if (failures < 3) {
                    printf("    row %lld: got %.6g, reference %.6g\n", (long long) r, y[r], ref);
                }
                ++failures;
            }
        }
        printf("  %6lld x %5lld stride+%zu stages %d warps %d: worst error %.2e of the terms' magnitude, %d rows "
               "failed%s\n", (long long) c.nrows, (long long) c.k, c.extra_stride, stages, warps, worst, failures,
               failures ? " (FAIL)" : "");
    }
    CUDA_CHECK(cudaFree(dw));
    CUDA_CHECK(cudaFree(dx));
    CUDA_CHECK(cudaFree(dy));
    CUDA_CHECK(cudaFree(dscratch));
    return failures;
}

// Shapes the kernel must refuse (the caller then keeps ggml's kernel).
int check_refusals() {
    void * dw = nullptr;
    CUDA_CHECK(cudaMalloc(&dw, 1 << 20));
    const q4_s24_cuda_act act = {};
    int failures = 0;
    struct Refusal { const char * what; const void * w; int64_t nrows, k; size_t stride; };
    const Refusal refusals[] = {
        { "k = 1024", dw, 16, 1024, 1024 / 256 * kBlockBytes + 8 },
        { "row stride not 16-byte aligned", dw, 16, 4096, 16 * kBlockBytes + 4 },
        { "weights not 16-byte aligned", static_cast<const char *>(dw) + 4, 16, 4096, 16 * kBlockBytes },
        { "k = 14336 (more than one half-block per lane)", dw, 4, 14336, 56 * kBlockBytes },
        { "k = 6144", dw, 4, 6144, 24 * kBlockBytes },
    };
    for (const Refusal & r : refusals) {
        const bool taken = q6_k_cuda_mul_mat_vec_takes(r.w, r.nrows, r.k, r.stride) ||
                           q6_k_cuda_mul_mat_vec(r.w, r.nrows, r.k, r.stride, act, nullptr, nullptr);
        printf("  refuses %s: %s\n", r.what, taken ? "no (FAIL)" : "yes");
        failures += taken;
    }
    // The glue asks q6_k_cuda_mul_mat_vec_takes first: on compute capability 9.0 and newer it must take the output
    // matrix (else the kernel would never run in a model), on older devices leave it to ggml.
    int device = 0, major = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    const bool takes_output = q6_k_cuda_mul_mat_vec_takes(dw, 128256, 4096, 16 * kBlockBytes);
    const bool takes_small  = q6_k_cuda_mul_mat_vec_takes(dw, 1024, 4096, 16 * kBlockBytes);
    printf("  leaves a 1024 x 4096 matrix to ggml's kernel: %s\n", takes_small ? "no (FAIL)" : "yes");
    failures += takes_small;
    printf("  takes the 128256 x 4096 output matrix on compute capability %d.x: %s\n", major,
           takes_output == (major >= 9) ? (takes_output ? "yes" : "no, as expected") : "FAIL");
    failures += takes_output != (major >= 9);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaFree(dw));
    return failures;
}

// The baseline: every byte read once, 16 bytes per load. Launched like the kernel (programmatic launch where it is on,
// triggering the next launch at once), so that back-to-back launches overlap alike in both timings.
__global__ void read_all_kernel(const uint4 * p, int64_t n, uint32_t * out) {
    allow_next_kernel();
    wait_for_previous_kernel();
    uint32_t acc = 0;
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x) {
        const uint4 v = __ldg(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x12345678u) {
        out[0] = acc; // keeps the loads
    }
}

template <typename F> double time_us(F launch, int iterations) {
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    for (int i = 0; i < 10; ++i) {
        launch();
    }
    CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < iterations; ++i) {
        launch();
    }
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    CUDA_CHECK(cudaGetLastError());
    return 1000.0 * ms / iterations;
}

// Times every launch shape on one matrix (random blocks; the speed does not depend on the values), with a plain read
// of the same bytes as the baseline.
void time_shapes(std::mt19937 & rng, int64_t nrows, int64_t k) {
    const size_t row_bytes = (size_t) (k / 256) * kBlockBytes;
    const size_t bytes     = (size_t) nrows * row_bytes;
    std::vector<uint8_t> w;
    random_rows(rng, w, nrows, k, row_bytes);
    void * dw = nullptr, * dscratch = nullptr;
    float * dx = nullptr, * dy = nullptr;
    uint32_t * dout = nullptr;
    CUDA_CHECK(cudaMalloc(&dw, bytes));
    CUDA_CHECK(cudaMalloc(&dx, k * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dy, nrows * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dout, sizeof(uint32_t)));
    CUDA_CHECK(cudaMalloc(&dscratch, q4_s24_cuda_act_bytes(k, 1)));
    CUDA_CHECK(cudaMemcpy(dw, w.data(), bytes, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(dx, 0, k * sizeof(float)));
    const q4_s24_cuda_act act = q4_s24_cuda_act_view(dscratch, k, 1);
    q4_s24_cuda_quantize_act(dx, k, k, 1, act, nullptr);
    int sm_count = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));
    const int    iterations = bytes > (64u << 20) ? 50 : 500;
    const double read_us    = time_us([&] {
        launch_kernel(read_all_kernel, dim3(sm_count * 8), dim3(256), 0, nullptr, static_cast<const uint4 *>(dw),
                      (int64_t) (bytes / 16), dout);
    }, iterations);
    printf("  %lld x %lld (%.1f MB): plain read %.2f us (%.0f GB/s)\n", (long long) nrows, (long long) k, bytes / 1e6,
           read_us, bytes / read_us / 1e3);
    const double default_us = time_us([&] { q6_k_cuda_mul_mat_vec(dw, nrows, k, row_bytes, act, dy, nullptr); },
                                      iterations);
    printf("    default shape: %.2f us (%.0f GB/s, %.2fx the plain read's time)\n", default_us,
           bytes / default_us / 1e3, default_us / read_us);
    for (int stages = 2; stages <= 4; ++stages) {
        for (int warps = 1; warps <= 8; warps *= 2) {
            if (!q6_k_cuda_mul_mat_vec_shape(stages, warps, dw, nrows, k, row_bytes, act, dy, nullptr)) {
                continue;
            }
            const double us = time_us([&] {
                q6_k_cuda_mul_mat_vec_shape(stages, warps, dw, nrows, k, row_bytes, act, dy, nullptr);
            }, iterations);
            printf("    %d stages, %d warps: %.2f us (%.0f GB/s)\n", stages, warps, us, bytes / us / 1e3);
        }
    }
    CUDA_CHECK(cudaFree(dw));
    CUDA_CHECK(cudaFree(dx));
    CUDA_CHECK(cudaFree(dy));
    CUDA_CHECK(cudaFree(dout));
    CUDA_CHECK(cudaFree(dscratch));
}

} // namespace

int main(int argc, char ** argv) {
    const unsigned seed  = argc > 1 ? (unsigned) atoi(argv[1]) : 1u;
    const bool     quick = argc > 2 && strcmp(argv[2], "quick") == 0;
    std::mt19937   rng(seed);
    printf("Q6_K mat-vec harness, seed %u\n", seed);
    int failures = check_refusals();
    // The output matrix, Q4_K_M's Q6_K v projection (1024 x 4096), row counts that leave warps without rows, k = 2048
    // (half the lanes idle), a view's row stride; every launch shape on one matrix (k = 2048, so 4 stages x 4 warps fit).
    // 20000 rows: several rows per warp, so the stage buffers are reused (in the quick mode too, for memcheck).
    std::vector<Case> cases = { { 1024, 4096, 0 }, { 7, 4096, 0 }, { 1000, 2048, 0 }, { 301, 4096, 16 },
                                { 20000, 4096, 0 } };
    if (!quick) {
        cases.push_back({ 128256, 4096, 0 });
    }
    for (const Case & c : cases) {
        failures += check(rng, c, 0, 0);
    }
    for (int stages = 2; stages <= 4; ++stages) {
        for (int warps = 1; warps <= 8; warps *= 2) {
            const Case c = { 12000, 2048, 16 }; // more rows than warps for every shape: its buffers are reused
            if ((size_t) warps * stages * (c.k / 256) * kBlockBytes <= 48 * 1024) {
                failures += check(rng, c, stages, warps);
            }
        }
    }
    if (!quick) {
        printf("timings (the plain read launched as the kernel is: programmatic launch where it is on)\n");
        time_shapes(rng, 128256, 4096);
        time_shapes(rng, 1024, 4096);
    }
    printf("%s: %d failures\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
