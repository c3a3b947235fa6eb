// Standalone check + benchmark of the Q4_S24 CUDA kernels (native-kernels/src/q4_s24_cuda.cu) against the CPU
// reference (q4_s24_ref.c), on fresh random data every run. Build and run: native-kernels/cuda-harness/run.sh.
//
// Checks, for every shape and batch that is timed: the mat-vec kernel (every launch variant) and the fused
// gate/up + SWIGLU kernel (every launch shape), and once the kernels chained after a producer kernel as llama.cpp
// launches them (programmatic dependent launch), against a CPU
// emulation of the same int8 activation quantization (tight) and against the float reference (loose: int8
// activations cost ~1e-2); dequantize to f16/f32 and get_rows bit for bit; dequantize + cuBLAS prefill on
// sampled outputs. Times with CUDA events over weight copies rotated past the L2, median of repeats.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#ifdef Q4_S24_HARNESS_CUBLAS
#    include <cublas_v2.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "cuda_check.cuh"
#include "graph_timing.cuh"
#include "../src/q4_s24.h"
#include "../src/q4_s24_cuda.cuh"
#include "../src/q4_s24_cuda_sparse_mma.cuh"

#define LAUNCH_OK() CUDA_CHECK(cudaGetLastError())

static int g_failures = 0;

// Memory-side probes (not product code): how fast the weight bytes alone can be read, with the mat-vec kernel's
// access pattern (2 rows per 128-thread block, 32-bit field loads) and with plain coalesced 16-byte loads.
__global__ void probe_read_fields(const uint8_t * w, int64_t nrows, int nsub, size_t row_bytes, unsigned * out) {
    const int64_t row0 = (int64_t) blockIdx.x * 2;
    unsigned      x    = 0;
    for (int s = threadIdx.x; s < nsub; s += 128) {
        for (int r = 0; r < 2; ++r) {
            const uint8_t * b = w + (row0 + r) * row_bytes + (s / 8) * 100;
            x ^= __ldg((const unsigned *) (b + 4 + 8 * (s % 8))) ^ __ldg((const unsigned *) (b + 8 + 8 * (s % 8))) ^
                 __ldg((const unsigned *) (b + 68 + 4 * (s % 8))) ^ __ldg((const unsigned *) b);
        }
    }
    if (x == 0x12345678u) {
        out[0] = x; // practically never: keeps the loads alive
    }
}

__global__ void probe_read_coalesced(const uint4 * w, int64_t n16, unsigned * out) {
    unsigned x = 0;
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < n16; i += (int64_t) gridDim.x * blockDim.x) {
        const uint4 v = __ldg(w + i);
        x ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (x == 0x12345678u) {
        out[0] = x;
    }
}

static void expect(bool ok, const char * what) {
    if (!ok) {
        ++g_failures;
        printf("FAIL: %s\n", what);
    }
}

// Device copies for the checks: of a host vector; n elements all bytes 0xff (NaN floats, a pattern a kernel never
// writes by chance); back to the host.
template <typename T> static T * device_copy(const std::vector<T> & v) {
    T * d;
    CUDA_CHECK(cudaMalloc(&d, v.size() * sizeof(T)));
    CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
template <typename T> static T * device_filled(size_t n) {
    T * d;
    CUDA_CHECK(cudaMalloc(&d, n * sizeof(T)));
    CUDA_CHECK(cudaMemset(d, 0xff, n * sizeof(T)));
    return d;
}
template <typename T> static std::vector<T> host_copy(const T * d, size_t n) {
    std::vector<T> v(n);
    CUDA_CHECK(cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
}

struct Shape {
    int64_t rows;           // output features
    int64_t k;              // input features
    bool    prefill = true; // also timed as a prefill matmul
};

// Host copy of one quantized weight matrix and its dense float values.
struct HostWeights {
    std::vector<uint8_t> blocks;
    std::vector<float>   dense;
};

static HostWeights make_weights(const Shape & sh, std::mt19937 & rng) {
    HostWeights hw;
    const size_t row_bytes = (size_t) (sh.k / QK_Q4_S24) * sizeof(block_q4_s24);
    hw.blocks.resize(row_bytes * sh.rows);
    hw.dense.resize((size_t) sh.rows * sh.k);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float>              row(sh.k);
    for (int64_t r = 0; r < sh.rows; ++r) {
        for (auto & v : row) {
            v = nd(rng);
        }
        quantize_row_q4_s24_ref(row.data(), hw.blocks.data() + r * row_bytes, sh.k);
        dequantize_row_q4_s24(hw.blocks.data() + r * row_bytes, hw.dense.data() + r * sh.k, sh.k);
    }
    return hw;
}

// ncols columns of k standard-normal activations: x gets the host copy (for the references), the device copy is returned.
static float * upload_activations(std::mt19937 & rng, int64_t k, int ncols, std::vector<float> & x) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    x.resize((size_t) ncols * k);
    for (auto & v : x) {
        v = nd(rng);
    }
    float * d_x;
    CUDA_CHECK(cudaMalloc(&d_x, x.size() * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(d_x, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
    return d_x;
}

// Same steps as the quantize kernel, in the same float operations.
static void emulate_act_quant(const float * x, int64_t k, std::vector<int8_t> & q, std::vector<float> & d) {
    q.resize(k);
    d.resize(k / 32);
    for (int64_t b = 0; b < k / 32; ++b) {
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) {
            amax = std::max(amax, std::fabs(x[b * 32 + i]));
        }
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        d[b]            = amax / 127.0f;
        for (int i = 0; i < 32; ++i) {
            q[b * 32 + i] = (int8_t) std::nearbyint(x[b * 32 + i] * inv);
        }
    }
}

// dot(weight row r, x column c) in double, with x quantized as the kernels quantize it (emulate_act_quant):
// ref[c*rows + r], for the first rows rows of w and ncols columns of k values.
static std::vector<double> int8_reference(const HostWeights & w, int64_t rows, int64_t k, const std::vector<float> & x,
                                          int ncols) {
    std::vector<double> ref((size_t) ncols * rows);
    for (int c = 0; c < ncols; ++c) {
        std::vector<int8_t> q;
        std::vector<float>  d;
        emulate_act_quant(x.data() + c * k, k, q, d);
        for (int64_t r = 0; r < rows; ++r) {
            double a = 0;
            for (int64_t i = 0; i < k; ++i) {
                a += (double) w.dense[r * k + i] * ((double) q[i] * d[i / 32]);
            }
            ref[c * rows + r] = a;
        }
    }
    return ref;
}

static double rel_err(const std::vector<float> & got, const std::vector<double> & ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double e = (double) got[i] - ref[i];
        if (!std::isfinite(got[i])) {
            return INFINITY;
        }
        num += e * e;
        den += ref[i] * ref[i];
    }
    return std::sqrt(num / (den > 0 ? den : 1));
}

template <typename F>
static float time_us(F && run_once, int iters, int reps = 7) {
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; ++i) {
        run_once(i);
    }
    LAUNCH_OK();
    std::vector<float> t;
    for (int r = 0; r < reps; ++r) {
        CUDA_CHECK(cudaEventRecord(a));
        for (int i = 0; i < iters; ++i) {
            run_once(i);
        }
        CUDA_CHECK(cudaEventRecord(b));
        CUDA_CHECK(cudaEventSynchronize(b));
        LAUNCH_OK();
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms * 1000.0f / iters);
    }
    std::sort(t.begin(), t.end());
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
    return t[t.size() / 2];
}

static const char * variant_name(int v) {
    return q4_s24_cuda_mmv_variant_name((q4_s24_cuda_mmv_variant) v);
}

static const char * swiglu_shape_name(int v) {
    return q4_s24_cuda_swiglu_shape_name((q4_s24_cuda_swiglu_shape) v);
}

// Feed-forward gate/up + SWIGLU in one launch (q4_s24_cuda_mul_mat_vec_swiglu), every launch shape and batch, on the
// Llama-3-8B projection shape: checked against silu(gate . x) * (up . x) computed from the same int8 activations,
// timed against what the unfused path launches (one quantization, then the default mat-vec twice; the separate
// SWIGLU kernel the unfused path also needs is not counted).
static void run_swiglu(std::mt19937 & rng, bool quick, std::vector<std::string> & summary) {
    const Shape   sh{14336, 4096};
    const int     max_cols  = Q4_S24_CUDA_MMV_MAX_COLS;
    HostWeights   up        = make_weights(sh, rng);
    HostWeights   gate      = make_weights(sh, rng);
    const size_t  row_bytes = (size_t) (sh.k / QK_Q4_S24) * sizeof(block_q4_s24);
    const size_t  w_bytes   = up.blocks.size();
    const int     copies    = quick ? 1 : (int) std::max<size_t>(2, (size_t) (512u << 20) / (2 * w_bytes));
    uint8_t *     d_up;
    uint8_t *     d_gate;
    CUDA_CHECK(cudaMalloc(&d_up, w_bytes * copies));
    CUDA_CHECK(cudaMalloc(&d_gate, w_bytes * copies));
    for (int i = 0; i < copies; ++i) {
        CUDA_CHECK(cudaMemcpy(d_up + i * w_bytes, up.blocks.data(), w_bytes, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(d_gate + i * w_bytes, gate.blocks.data(), w_bytes, cudaMemcpyHostToDevice));
    }
    std::vector<float> x;
    float *            d_x = upload_activations(rng, sh.k, max_cols, x);
    float *            d_y;
    void *             d_scratch;
    CUDA_CHECK(cudaMalloc(&d_y, (size_t) 2 * max_cols * sh.rows * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&d_scratch, q4_s24_cuda_act_bytes(sh.k, max_cols)));
    const q4_s24_cuda_act act = q4_s24_cuda_act_view(d_scratch, sh.k, max_cols);

    std::vector<std::vector<double>> ref(max_cols);
    for (int c = 0; c < max_cols; ++c) {
        std::vector<int8_t> q;
        std::vector<float>  d;
        emulate_act_quant(x.data() + c * sh.k, sh.k, q, d);
        ref[c].resize(sh.rows);
        for (int64_t r = 0; r < sh.rows; ++r) {
            double u = 0, g = 0;
            for (int64_t i = 0; i < sh.k; ++i) {
                const double a = (double) q[i] * d[i / 32];
                u += (double) up.dense[r * sh.k + i] * a;
                g += (double) gate.dense[r * sh.k + i] * a;
            }
            ref[c][r] = g / (1.0 + std::exp(-g)) * u;
        }
    }

    printf("\nswiglu %lldx%lld (gate + up, one launch)\n%5s %-8s %9s %9s %9s\n", (long long) sh.rows, (long long) sh.k,
           "batch", "shape", "kernel us", "+quant us", "unfused");
    for (int ncols = 1; ncols <= max_cols; ++ncols) {
        q4_s24_cuda_quantize_act(d_x, sh.k, sh.k, ncols, act, 0);
        LAUNCH_OK();
        const int   iters    = quick ? 1 : 200;
        const auto  mmv      = q4_s24_cuda_mmv_default_variant(sh.rows, sh.k, ncols);
        const float unfused  = time_us(
            [&](int i) {
                const size_t o = (size_t) (i % copies) * w_bytes;
                q4_s24_cuda_quantize_act(d_x, sh.k, sh.k, ncols, act, 0);
                q4_s24_cuda_mul_mat_vec_q(d_up + o, sh.rows, sh.k, row_bytes, act, ncols, d_y, sh.rows, 0);
                q4_s24_cuda_mul_mat_vec_q(d_gate + o, sh.rows, sh.k, row_bytes, act, ncols, d_y + max_cols * sh.rows,
                                          sh.rows, 0);
            },
            iters);
        // What the q/k/v grouping does with gate and up under Q4_S24_CUDA_GROUP_GLU=1: one launch for both matmuls;
        // the whole model then runs ggml's SWIGLU kernel after it (not timed here).
        const float grouped = time_us(
            [&](int i) {
                const size_t           o       = (size_t) (i % copies) * w_bytes;
                q4_s24_cuda_mmv_matrix pair[2] = {{d_up + o, sh.rows, d_y, sh.rows},
                                                  {d_gate + o, sh.rows, d_y + max_cols * sh.rows, sh.rows}};
                q4_s24_cuda_quantize_act(d_x, sh.k, sh.k, ncols, act, 0);
                q4_s24_cuda_mul_mat_vec_group(pair, 2, sh.k, row_bytes, act, ncols, 0);
            },
            iters);
        (void) mmv;
        float best = 0;
        int   best_v = -1;
        for (int v = 0; v < Q4_S24_SWIGLU_SHAPE_COUNT; ++v) {
            const auto shape = (q4_s24_cuda_swiglu_shape) v;
            CUDA_CHECK(cudaMemset(d_y, 0xff, (size_t) max_cols * sh.rows * sizeof(float)));
            q4_s24_cuda_quantize_act(d_x, sh.k, sh.k, ncols, act, 0);
            q4_s24_cuda_swiglu_variant(shape, d_up, d_gate, sh.rows, sh.k, row_bytes, act, ncols, d_y, sh.rows, 0);
            LAUNCH_OK();
            CUDA_CHECK(cudaDeviceSynchronize());
            std::vector<float> y((size_t) ncols * sh.rows);
            CUDA_CHECK(cudaMemcpy(y.data(), d_y, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
            double e = 0;
            for (int c = 0; c < ncols; ++c) {
                std::vector<float> yc(y.begin() + c * sh.rows, y.begin() + (c + 1) * sh.rows);
                e = std::max(e, rel_err(yc, ref[c]));
            }
            char what[160];
            snprintf(what, sizeof what, "swiglu %lldx%lld batch %d %s: err %.2e", (long long) sh.rows, (long long) sh.k,
                     ncols, swiglu_shape_name(v), e);
            expect(e < 1e-5, what);
            const float us = time_us(
                [&](int i) {
                    const size_t o = (size_t) (i % copies) * w_bytes;
                    q4_s24_cuda_swiglu_variant(shape, d_up + o, d_gate + o, sh.rows, sh.k, row_bytes, act, ncols, d_y,
                                               sh.rows, 0);
                },
                iters);
            const float total = time_us(
                [&](int i) {
                    const size_t o = (size_t) (i % copies) * w_bytes;
                    q4_s24_cuda_quantize_act(d_x, sh.k, sh.k, ncols, act, 0);
                    q4_s24_cuda_swiglu_variant(shape, d_up + o, d_gate + o, sh.rows, sh.k, row_bytes, act, ncols, d_y,
                                               sh.rows, 0);
                },
                iters);
            printf("%5d %-8s %9.2f %9.2f %9.2f  err %.1e\n", ncols, swiglu_shape_name(v), us, total, unfused, e);
            if (best_v < 0 || total < best) {
                best   = total;
                best_v = v;
            }
        }
        char line[240];
        snprintf(line, sizeof line,
                 "swiglu %lldx%lld batch %d: best %-7s %7.2f us (%5.0f GB/s) vs unfused %7.2f us, grouped %7.2f us + SWIGLU; default %s",
                 (long long) sh.rows, (long long) sh.k, ncols, swiglu_shape_name(best_v), best, 2 * w_bytes / (best * 1e3),
                 unfused, grouped, swiglu_shape_name(q4_s24_cuda_swiglu_default_shape(sh.rows, sh.k, ncols)));
        summary.push_back(line);
    }
    CUDA_CHECK(cudaFree(d_up));
    CUDA_CHECK(cudaFree(d_gate));
    CUDA_CHECK(cudaFree(d_x));
    CUDA_CHECK(cudaFree(d_y));
    CUDA_CHECK(cudaFree(d_scratch));
}

// A producer kernel like ggml's norm or quantize kernels under programmatic dependent launch: it lets the next kernel
// launch at once, then spends ~spin_ns before it writes dst. A consumer that read dst before waiting for this grid
// would see the old contents.
__global__ void slow_producer(const float * src, float * dst, int64_t n, long long spin_ns) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
    const long long start = clock64();
    while (clock64() - start < spin_ns * 2) { // ~2 cycles per ns on the GPUs this runs on
    }
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x) {
        dst[i] = src[i];
    }
}

// The sparse tensor-core kernels the harness checks and times (the public entry point takes any of them).
struct SparseKernel {
    q4_s24_sparse_kernel kernel;
    const char *         name;
};
static const SparseKernel kSparseKernels[] = {
    { Q4_S24_SPARSE_MMA_SP, "mma.sp" },
    { Q4_S24_SPARSE_WGMMA, "wgmma.sp" },
    { Q4_S24_SPARSE_WGMMA_SPLIT_K, "wgmma.sp split-k" },
    { Q4_S24_SPARSE_WGMMA_WS, "wgmma.sp warp-specialized" },
    { Q4_S24_SPARSE_WGMMA_WS_SPLIT_K, "wgmma.sp warp-specialized split-k" },
    { Q4_S24_SPARSE_WGMMA_WS_STREAM_K, "wgmma.sp warp-specialized stream-k" },
};

// The workspace a sparse prefill launch needs (q4_s24_cuda_sparse_workspace_bytes), from one buffer that grows as
// needed; filled with 0xff bytes each time it grows, so that the flags start as garbage rather than zeros.
static void * g_workspace      = nullptr;
static size_t g_workspace_size = 0;
static void * sparse_workspace(q4_s24_sparse_kernel kernel, int64_t rows, int64_t k, int64_t ntok, bool glu = false) {
    const size_t need = q4_s24_cuda_sparse_workspace_bytes(kernel, rows, k, ntok, glu);
    if (need > g_workspace_size) {
        CUDA_CHECK(cudaDeviceSynchronize()); // earlier launches may still use the old buffer
        CUDA_CHECK(cudaFree(g_workspace));
        CUDA_CHECK(cudaMalloc(&g_workspace, need));
        CUDA_CHECK(cudaMemset(g_workspace, 0xff, need));
        g_workspace_size = need;
    }
    return g_workspace;
}

// The gate / up + SWIGLU kernel's forms (q4_s24_cuda_mul_mat_sparse_swiglu's kernel argument; names as printed
// after "prefill swiglu").
static const SparseKernel kSwigluForms[] = {
    { Q4_S24_SPARSE_WGMMA, "" },
    { Q4_S24_SPARSE_WGMMA_WS, " warp-specialized" },
    { Q4_S24_SPARSE_WGMMA_WS_STREAM_K, " warp-specialized stream-k" },
};

// ntok columns of k standard-normal activations in f16, as the prefill kernels read them.
static std::vector<half> random_half_activations(std::mt19937 & rng, int64_t k, int64_t ntok) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<half>               xh((size_t) (k * ntok));
    for (auto & v : xh) {
        v = __float2half(nd(rng));
    }
    return xh;
}

// Row r of hw times token t of xh in double precision, the weights rounded to f16 as the tensor cores take them.
static double prefill_dot(const HostWeights & hw, int64_t r, const std::vector<half> & xh, int64_t t, int64_t k) {
    double sum = 0;
    for (int64_t i = 0; i < k; ++i) {
        sum += (double) q4_s24_fp16_to_fp32(q4_s24_fp32_to_fp16(hw.dense[r * k + i])) *
               (double) __half2float(xh[t * k + i]);
    }
    return sum;
}

// A prefill output (ntok columns of y_stride values, rows past `rows` padding that started as the NaN sentinel)
// against want(row, token): the relative error over the rows, and how many padding values were written.
template <typename F>
static double prefill_output_error(const std::vector<float> & y, int64_t rows, int64_t ntok, int64_t y_stride,
                                   F && want, int64_t & padding_written) {
    std::vector<float>  got;
    std::vector<double> ref;
    padding_written = 0;
    for (int64_t t = 0; t < ntok; ++t) {
        for (int64_t r = 0; r < y_stride; ++r) {
            const float v = y[t * y_stride + r];
            if (r >= rows) {
                padding_written += v == v; // anything but the NaN sentinel
                continue;
            }
            got.push_back(v);
            ref.push_back(want(r, t));
        }
    }
    return rel_err(got, ref);
}

// The sparse tensor-core prefill on partial tiles (rows and tokens not multiples of 64, output columns wider than the
// rows): every output against a double-precision reference, and the padding rows of each output column untouched.
static void run_sparse_mma_partial_tiles(std::mt19937 & rng) {
    struct Case {
        int64_t rows, k, ntok, y_stride;
    };
    for (const auto & kern : kSparseKernels)
    // The last case splits each tile over up to 16 blocks in the warp-specialized split-K and stream-K forms.
    for (const Case c : {Case{100, 512, 70, 104}, Case{13, 768, 129, 20}, Case{64, 256, 1, 64}, Case{300, 1024, 200, 300},
                         Case{200, 512, 300, 208}, Case{300, 2048, 300, 300}}) {
        const HostWeights       hw        = make_weights(Shape{c.rows, c.k}, rng);
        const size_t            row_bytes = (size_t) (c.k / QK_Q4_S24) * sizeof(block_q4_s24);
        const std::vector<half> xh        = random_half_activations(rng, c.k, c.ntok);
        const size_t            ny        = (size_t) c.ntok * c.y_stride;
        uint8_t *               d_w       = device_copy(hw.blocks);
        half *                  d_x       = device_copy(xh);
        float *                 d_y       = device_filled<float>(ny); // NaN sentinel
        if (!q4_s24_cuda_mul_mat_sparse_mma(d_w, c.rows, c.k, row_bytes, d_x, c.ntok, d_y, c.y_stride, 0, kern.kernel,
                                            sparse_workspace(kern.kernel, c.rows, c.k, c.ntok))) {
            printf("prefill %s partial tiles: not available on this device\n", kern.name);
        } else {
            LAUNCH_OK();
            int64_t      padding_written;
            const double e = prefill_output_error(
                host_copy(d_y, ny), c.rows, c.ntok, c.y_stride,
                [&](int64_t r, int64_t t) { return prefill_dot(hw, r, xh, t, c.k); }, padding_written);
            char what[160];
            snprintf(what, sizeof what, "prefill %s %lldx%lld x %lld tokens (output stride %lld): err %.2e, %lld padding values written",
                     kern.name, (long long) c.rows, (long long) c.k, (long long) c.ntok, (long long) c.y_stride, e,
                     (long long) padding_written);
            expect(e < 1e-3 && padding_written == 0, what);
        }
        CUDA_CHECK(cudaFree(d_w));
        CUDA_CHECK(cudaFree(d_x));
        CUDA_CHECK(cudaFree(d_y));
    }
}

// The prefill gate / up + SWIGLU kernel (one launch, q4_s24_cuda_mul_mat_sparse_swiglu): on partial tiles against a
// double-precision reference (and the padding rows of each output column untouched); on the 8B feed-forward shape
// against the plain wgmma kernel's gate and up results put through SWIGLU here (the same sums in the same order, so
// equal up to expf's rounding), then timed against those two launches. quick (the sanitizer run): the small cases.
static void run_sparse_swiglu(std::mt19937 & rng, bool quick) {
    struct Case {
        int64_t rows, k, ntok, y_stride;
        bool    reference; // against the double-precision sums (else against the plain kernel's, and timed)
    };
    for (const Case c : {Case{100, 512, 70, 104, true}, Case{13, 768, 129, 20, true}, Case{300, 1024, 200, 300, true},
                         Case{100, 512, 300, 104, true}, Case{300, 2048, 300, 304, true},
                         Case{14336, 4096, 512, 14336, false}}) {
        if (quick && !c.reference) {
            continue;
        }
        const HostWeights       gate      = make_weights(Shape{c.rows, c.k}, rng);
        const HostWeights       up        = make_weights(Shape{c.rows, c.k}, rng);
        const size_t            row_bytes = (size_t) (c.k / QK_Q4_S24) * sizeof(block_q4_s24);
        const std::vector<half> xh        = random_half_activations(rng, c.k, c.ntok);
        const size_t ny     = (size_t) c.ntok * c.y_stride;
        uint8_t *    d_gate = device_copy(gate.blocks);
        uint8_t *    d_up   = device_copy(up.blocks);
        half *       d_x    = device_copy(xh);
        float *      d_y    = device_filled<float>(ny); // NaN sentinel
        // Every form of the kernel (kSwigluForms).
        const auto fused = [&](const SparseKernel & f) {
            return q4_s24_cuda_mul_mat_sparse_swiglu(d_gate, d_up, c.rows, c.k, row_bytes, d_x, c.ntok, d_y,
                                                     c.y_stride, 0, f.kernel,
                                                     sparse_workspace(f.kernel, c.rows, c.k, c.ntok, true));
        };
        char what[200];
        if (!fused(kSwigluForms[0])) {
            printf("prefill swiglu %lldx%lld: not available on this device\n", (long long) c.rows, (long long) c.k);
        } else if (c.reference) {
            for (const SparseKernel & f : kSwigluForms) {
                CUDA_CHECK(cudaMemset(d_y, 0xff, ny * sizeof(float))); // NaN sentinel again
                expect(fused(f), "prefill swiglu: every form runs");
                LAUNCH_OK();
                int64_t      padding_written;
                const double e = prefill_output_error(
                    host_copy(d_y, ny), c.rows, c.ntok, c.y_stride,
                    [&](int64_t r, int64_t t) {
                        const double g = prefill_dot(gate, r, xh, t, c.k);
                        return g / (1.0 + std::exp(-g)) * prefill_dot(up, r, xh, t, c.k);
                    },
                    padding_written);
                snprintf(what, sizeof what,
                         "prefill swiglu%s %lldx%lld x %lld tokens (output stride %lld): err %.2e, %lld padding values "
                         "written",
                         f.name, (long long) c.rows, (long long) c.k, (long long) c.ntok, (long long) c.y_stride, e,
                         (long long) padding_written);
                expect(e < 1e-3 && padding_written == 0, what);
            }
        } else {
            LAUNCH_OK();
            float * d_g = device_filled<float>(ny);
            float * d_u = device_filled<float>(ny);
            const auto apart = [&] {
                return q4_s24_cuda_mul_mat_sparse_mma(d_gate, c.rows, c.k, row_bytes, d_x, c.ntok, d_g, c.y_stride, 0,
                                                      Q4_S24_SPARSE_WGMMA) &&
                       q4_s24_cuda_mul_mat_sparse_mma(d_up, c.rows, c.k, row_bytes, d_x, c.ntok, d_u, c.y_stride, 0,
                                                      Q4_S24_SPARSE_WGMMA);
            };
            expect(apart(), "prefill swiglu: the plain wgmma kernel runs where the fused one does");
            LAUNCH_OK();
            const std::vector<float> g = host_copy(d_g, ny), u = host_copy(d_u, ny);
            std::vector<double> want(ny);
            for (size_t i = 0; i < ny; ++i) {
                want[i] = (double) g[i] / (1.0 + std::exp(-(double) g[i])) * (double) u[i];
            }
            const float t_apart = time_us([&](int) { apart(); }, 20);
            for (const SparseKernel & f : kSwigluForms) {
                CUDA_CHECK(cudaMemset(d_y, 0xff, ny * sizeof(float))); // NaN sentinel again
                expect(fused(f), "prefill swiglu: every form runs");
                LAUNCH_OK();
                const double e = rel_err(host_copy(d_y, ny), want);
                snprintf(what, sizeof what,
                         "prefill swiglu%s %lldx%lld x %lld tokens: err %.2e against the plain kernel's sums", f.name,
                         (long long) c.rows, (long long) c.k, (long long) c.ntok, e);
                expect(e < 1e-5, what);
                const float t_fused = time_us([&](int) { fused(f); }, 20);
                printf("prefill swiglu%s %lldx%lld x %lld tok: one launch %8.1f us vs gate and up apart %8.1f us "
                       "(ggml's SWIGLU launch after them not counted)\n",
                       f.name, (long long) c.rows, (long long) c.k, (long long) c.ntok, t_fused, t_apart);
            }
            CUDA_CHECK(cudaFree(d_g));
            CUDA_CHECK(cudaFree(d_u));
        }
        CUDA_CHECK(cudaFree(d_gate));
        CUDA_CHECK(cudaFree(d_up));
        CUDA_CHECK(cudaFree(d_x));
        CUDA_CHECK(cudaFree(d_y));
    }
}

// The decode kernels as llama.cpp chains them, checked: a producer writes the activations (and lets our kernels
// launch early), then quantization + mat-vec, then a second mat-vec on the same quantized activations (k/v after
// q), then a new producer and quantization into the same buffer; and the 1024-row kernel that reads the float
// activations itself. Every output against the CPU emulation, with the activations the producer wrote, not the
// zeros it replaced. With programmatic launch off (Q4_S24_CUDA_PDL=0, or a GPU before compute 9.0) this is a plain
// stream-order check.
static void run_launch_chain_checks(std::mt19937 & rng) {
    const Shape   big{4096, 4096}, small{1024, 4096};
    const int64_t k = big.k;
    HostWeights   wa = make_weights(big, rng), wb = make_weights(big, rng), wc = make_weights(small, rng);
    const size_t  row_bytes = (size_t) (k / QK_Q4_S24) * sizeof(block_q4_s24);
    uint8_t *     d_wa;
    uint8_t *     d_wb;
    uint8_t *     d_wc;
    CUDA_CHECK(cudaMalloc(&d_wa, wa.blocks.size()));
    CUDA_CHECK(cudaMalloc(&d_wb, wb.blocks.size()));
    CUDA_CHECK(cudaMalloc(&d_wc, wc.blocks.size()));
    CUDA_CHECK(cudaMemcpy(d_wa, wa.blocks.data(), wa.blocks.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_wb, wb.blocks.data(), wb.blocks.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_wc, wc.blocks.data(), wc.blocks.size(), cudaMemcpyHostToDevice));
    const auto reference = [&](const HostWeights & w, int64_t rows, const std::vector<float> & x, int ncols) {
        return int8_reference(w, rows, k, x, ncols);
    };
    const auto fetch = [](const float * d_y, size_t n) {
        std::vector<float> y(n);
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemcpy(y.data(), d_y, n * sizeof(float), cudaMemcpyDeviceToHost));
        return y;
    };
    for (int ncols : {1, 2, 5}) {
        std::vector<float> x1, x2;
        float *            d_src1 = upload_activations(rng, k, ncols, x1);
        float *            d_src2 = upload_activations(rng, k, ncols, x2);
        float *            d_x;
        float *            d_y;
        void *             d_scratch;
        const size_t       n = (size_t) ncols * k;
        CUDA_CHECK(cudaMalloc(&d_x, n * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&d_y, (size_t) 4 * ncols * big.rows * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&d_scratch, q4_s24_cuda_act_bytes(k, ncols)));
        const q4_s24_cuda_act act = q4_s24_cuda_act_view(d_scratch, k, ncols);
        float * y_a = d_y;
        float * y_b = d_y + ncols * big.rows;
        float * y_c = d_y + 2 * ncols * big.rows;
        float * y_d = d_y + 3 * ncols * big.rows;
        CUDA_CHECK(cudaMemset(d_x, 0, n * sizeof(float)));
        CUDA_CHECK(cudaMemset(d_y, 0xff, (size_t) 4 * ncols * big.rows * sizeof(float)));
        CUDA_CHECK(cudaDeviceSynchronize());

        slow_producer<<<64, 256>>>(d_src1, d_x, (int64_t) n, 50000);
        q4_s24_cuda_quantize_act(d_x, k, k, ncols, act, 0);
        q4_s24_cuda_mul_mat_vec_q(d_wa, big.rows, k, row_bytes, act, ncols, y_a, big.rows, 0);
        q4_s24_cuda_mul_mat_vec_q(d_wb, big.rows, k, row_bytes, act, ncols, y_b, big.rows, 0);
        slow_producer<<<64, 256>>>(d_src2, d_x, (int64_t) n, 50000);
        q4_s24_cuda_quantize_act(d_x, k, k, ncols, act, 0);
        q4_s24_cuda_mul_mat_vec_q(d_wa, big.rows, k, row_bytes, act, ncols, y_c, big.rows, 0);
        slow_producer<<<64, 256>>>(d_src1, d_x, (int64_t) n, 50000);
        q4_s24_cuda_mul_mat_vec(d_wc, small.rows, k, row_bytes, d_x, k, ncols, y_d, small.rows, d_scratch, 0);
        LAUNCH_OK();

        const struct {
            const char *        what;
            const float *       y;
            std::vector<double> ref;
        } outputs[] = {
            {"quantize + mat-vec after a producer", y_a, reference(wa, big.rows, x1, ncols)},
            {"second mat-vec on the same activations", y_b, reference(wb, big.rows, x1, ncols)},
            {"producer + quantization into the same buffer, then mat-vec", y_c, reference(wa, big.rows, x2, ncols)},
            {"1024-row default launch (quantizes itself at batch 1-2) after a producer", y_d,
             reference(wc, small.rows, x1, ncols)},
        };
        for (const auto & o : outputs) {
            const double e = rel_err(fetch(o.y, o.ref.size()), o.ref);
            char         what[200];
            snprintf(what, sizeof what, "launch chain, batch %d: %s: err %.2e", ncols, o.what, e);
            expect(e < 1e-5, what);
        }
        printf("launch chain checks, batch %d: done\n", ncols);
        CUDA_CHECK(cudaFree(d_src1));
        CUDA_CHECK(cudaFree(d_src2));
        CUDA_CHECK(cudaFree(d_x));
        CUDA_CHECK(cudaFree(d_y));
        CUDA_CHECK(cudaFree(d_scratch));
    }
    CUDA_CHECK(cudaFree(d_wa));
    CUDA_CHECK(cudaFree(d_wb));
    CUDA_CHECK(cudaFree(d_wc));
}

// ggml's ROPE of one pair (normal mode), on the host: the float operations of rope_rotate_pair in q4_s24_cuda.cu.
static void host_rope_pair(const q4_s24_cuda_rope & r, int pair, int32_t pos, float & x0, float & x1) {
    const float freq_factor = r.freq_factors != nullptr ? r.freq_factors[pair] : 1.0f;
    const float extrap      = pos * powf(r.theta_scale, (float) pair) / freq_factor;
    const float interp      = r.freq_scale * extrap;
    float       theta       = interp;
    float       mscale      = r.attn_factor;
    if (r.ext_factor != 0.0f) {
        const float ramp =
            (1.0f - fminf(1.0f, fmaxf(0.0f, (pair - r.corr_low) / fmaxf(0.001f, r.corr_high - r.corr_low)))) *
            r.ext_factor;
        theta  = interp * (1 - ramp) + extrap * ramp;
        mscale *= 1.0f + 0.1f * logf(1.0f / r.freq_scale);
    }
    const float c = cosf(theta) * mscale, sn = sinf(theta) * mscale;
    const float r0 = x0 * c - x1 * sn, r1 = x0 * sn + x1 * c;
    x0 = r0;
    x1 = r1;
}

// The group's rope / KV-cache epilogue (attention's q, k and v, as the ggml glue launches it): q rotated and stored
// (its plain result not), k stored plain, rotated and written to a cache, v written to a cache only; cache rows at
// scattered slots with a padded row stride. Against the plain group's own results (`plain`, column-major per matrix
// with the matrix's rows as column stride) rotated on the host: the rotation's float operations match but cosf, sinf
// and powf may differ from the device's by an ulp, so within 1e-4 of the largest value; the cache exactly the f16 of
// what the launch stored; every byte the launch must not write still the fill pattern. Two ropes: Llama 3's (all 128
// dimensions, no YaRN) and a partial one (64 dimensions from 32 on, YaRN ramp, frequency factors).
static void check_group_epilogue(const q4_s24_cuda_mmv_matrix (&plain_mats)[3], const std::vector<float> & plain,
                                 const size_t (&plain_off)[3], int64_t k, size_t row_bytes, q4_s24_cuda_act act,
                                 int ncols) {
    const int64_t  rows[3]   = {plain_mats[0].nrows, plain_mats[1].nrows, plain_mats[2].nrows};
    const int      head_dim  = 128;
    const int      slots     = 3 * Q4_S24_CUDA_MMV_MAX_COLS + 1;
    const int64_t  pad       = 64; // halves past each cache row
    std::vector<float> freq_factors(head_dim / 2);
    for (int i = 0; i < head_dim / 2; ++i) {
        freq_factors[i] = 1.0f + 0.25f * (float) (i % 7);
    }
    std::vector<int32_t> pos(ncols);
    std::vector<int64_t> cache_rows(ncols);
    for (int c = 0; c < ncols; ++c) {
        pos[c]        = 5 + 37 * c;
        cache_rows[c] = (int64_t) ((3 * c + 2) % slots); // distinct slots, not in column order
    }
    float *   d_freq = device_copy(freq_factors);
    int32_t * d_pos  = device_copy(pos);
    int64_t * d_rows = device_copy(cache_rows);
    for (int variant = 0; variant < 2; ++variant) {
        q4_s24_cuda_rope rope = {};
        rope.pos          = d_pos;
        rope.freq_factors = variant == 0 ? nullptr : d_freq;
        rope.theta_scale  = powf(500000.0f, -2.0f / (variant == 0 ? 128.0f : 64.0f));
        rope.freq_scale   = variant == 0 ? 1.0f : 0.25f;
        rope.ext_factor   = variant == 0 ? 0.0f : 0.5f;
        rope.attn_factor  = variant == 0 ? 1.0f : 1.1f;
        rope.corr_low     = 10.0f;
        rope.corr_high    = 40.0f;
        rope.head_dim     = head_dim;
        rope.n_dims       = variant == 0 ? 128 : 64;
        rope.n_offs       = variant == 0 ? 0 : 32;
        // Outputs: q rotated, k plain + rotated, k and v caches; all filled with a pattern first.
        const size_t q_elems = (size_t) ncols * rows[0], k_elems = (size_t) ncols * rows[1];
        const size_t kc_elems = (size_t) slots * (rows[1] + pad), vc_elems = (size_t) slots * (rows[2] + pad);
        float *      d_q_roped = device_filled<float>(q_elems);
        float *      d_k_plain = device_filled<float>(k_elems);
        float *      d_k_roped = device_filled<float>(k_elems);
        half *       d_k_cache = device_filled<half>(kc_elems);
        half *       d_v_cache = device_filled<half>(vc_elems);
        q4_s24_cuda_mmv_matrix mats[3] = {plain_mats[0], plain_mats[1], plain_mats[2]};
        mats[0].y = nullptr; // q: only the rotation stored
        mats[0].rotate = true;
        mats[0].roped = d_q_roped;
        mats[0].roped_col_stride = rows[0];
        mats[1].y = d_k_plain; // k: plain, rotated and cached
        mats[1].y_col_stride = rows[1];
        mats[1].rotate = true;
        mats[1].roped = d_k_roped;
        mats[1].roped_col_stride = rows[1];
        mats[1].cache = d_k_cache;
        mats[1].cache_rows = d_rows;
        mats[1].cache_row_stride = rows[1] + pad;
        mats[2].y = nullptr; // v: cached only
        mats[2].cache = d_v_cache;
        mats[2].cache_rows = d_rows;
        mats[2].cache_row_stride = rows[2] + pad;
        q4_s24_cuda_mul_mat_vec_group(mats, 3, k, row_bytes, act, ncols, 0, &rope);
        LAUNCH_OK();
        CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<float> q_roped = host_copy(d_q_roped, q_elems), k_plain = host_copy(d_k_plain, k_elems),
                                 k_roped = host_copy(d_k_roped, k_elems);
        const std::vector<half>  k_cache = host_copy(d_k_cache, kc_elems), v_cache = host_copy(d_v_cache, vc_elems);
        q4_s24_cuda_rope host_rope = rope;
        host_rope.freq_factors     = variant == 0 ? nullptr : freq_factors.data();
        // Expected rotation of matrix m's column c from the plain group's results.
        const auto expected = [&](int m, int c) {
            std::vector<float> v(plain.begin() + plain_off[m] + (size_t) c * rows[m],
                                 plain.begin() + plain_off[m] + (size_t) (c + 1) * rows[m]);
            for (int64_t r = 0; r < rows[m]; r += 2) {
                const int d = (int) (r % head_dim) - rope.n_offs;
                if (d >= 0 && d < rope.n_dims) {
                    host_rope_pair(host_rope, d / 2, pos[c], v[r], v[r + 1]);
                }
            }
            return v;
        };
        const auto near = [](const float * got, const std::vector<float> & want) -> double {
            double worst = 0, scale = 0;
            for (size_t i = 0; i < want.size(); ++i) {
                if (!std::isfinite(got[i])) {
                    return (double) INFINITY;
                }
                worst = std::max(worst, (double) std::fabs(got[i] - want[i]));
                scale = std::max(scale, (double) std::fabs(want[i]));
            }
            return worst / (scale > 0 ? scale : 1);
        };
        bool   cache_exact = true, untouched = true, plain_exact = true;
        double worst_q = 0, worst_k = 0;
        std::vector<bool> slot_written(slots, false);
        for (int c = 0; c < ncols; ++c) {
            worst_q = std::max(worst_q, near(q_roped.data() + (size_t) c * rows[0], expected(0, c)));
            worst_k = std::max(worst_k, near(k_roped.data() + (size_t) c * rows[1], expected(1, c)));
            plain_exact &= memcmp(k_plain.data() + (size_t) c * rows[1],
                                  plain.data() + plain_off[1] + (size_t) c * rows[1], rows[1] * sizeof(float)) == 0;
            slot_written[cache_rows[c]] = true;
            for (int64_t r = 0; r < rows[1]; ++r) {
                const half want = __float2half(k_roped[(size_t) c * rows[1] + r]);
                cache_exact &= memcmp(&k_cache[(size_t) cache_rows[c] * (rows[1] + pad) + r], &want, sizeof(half)) == 0;
            }
            for (int64_t r = 0; r < rows[2]; ++r) {
                const half want = __float2half(plain[plain_off[2] + (size_t) c * rows[2] + r]);
                cache_exact &= memcmp(&v_cache[(size_t) cache_rows[c] * (rows[2] + pad) + r], &want, sizeof(half)) == 0;
            }
        }
        // The caches' padding and the slots no column names keep the fill pattern (0xffff).
        for (int slot = 0; slot < slots; ++slot) {
            for (int m = 1; m < 3; ++m) {
                const std::vector<half> & cache = m == 1 ? k_cache : v_cache;
                for (int64_t r = slot_written[slot] ? rows[m] : 0; r < rows[m] + pad; ++r) {
                    uint16_t bits;
                    memcpy(&bits, &cache[(size_t) slot * (rows[m] + pad) + r], sizeof bits);
                    untouched &= bits == 0xffff;
                }
            }
        }
        char what[200];
        snprintf(what, sizeof what, "group epilogue (rope %d) batch %d: q rotated, worst %.2e of the largest value",
                 variant, ncols, worst_q);
        expect(worst_q < 1e-4, what);
        snprintf(what, sizeof what, "group epilogue (rope %d) batch %d: k rotated, worst %.2e of the largest value",
                 variant, ncols, worst_k);
        expect(worst_k < 1e-4, what);
        snprintf(what, sizeof what, "group epilogue (rope %d) batch %d: k stored plain equal to the plain launch's",
                 variant, ncols);
        expect(plain_exact, what);
        snprintf(what, sizeof what, "group epilogue (rope %d) batch %d: cache rows the f16 of the stored values",
                 variant, ncols);
        expect(cache_exact, what);
        snprintf(what, sizeof what, "group epilogue (rope %d) batch %d: nothing written outside the cache rows",
                 variant, ncols);
        expect(untouched, what);
        CUDA_CHECK(cudaFree(d_q_roped));
        CUDA_CHECK(cudaFree(d_k_plain));
        CUDA_CHECK(cudaFree(d_k_roped));
        CUDA_CHECK(cudaFree(d_k_cache));
        CUDA_CHECK(cudaFree(d_v_cache));
    }
    CUDA_CHECK(cudaFree(d_freq));
    CUDA_CHECK(cudaFree(d_pos));
    CUDA_CHECK(cudaFree(d_rows));
}

// q, k and v in one launch (q4_s24_cuda_mul_mat_vec_group) against the reference and against three launches of the
// same activations; its time against those three. Llama-3-8B's projections, then uneven row counts whose thread
// blocks end inside a matrix (k = 2816: partial launch steps too).
static void run_mul_mat_vec_group(std::mt19937 & rng, bool quick, std::vector<std::string> & summary) {
    struct Group {
        int64_t k;
        int64_t rows[3];
    };
    const Group groups[] = {{4096, {4096, 1024, 1024}}, {2816, {1001, 998, 35}}};
    for (const Group & g : groups) {
        const int64_t k         = g.k;
        const size_t  row_bytes = (size_t) (k / QK_Q4_S24) * sizeof(block_q4_s24);
        HostWeights   hw[3];
        uint8_t *     d_w[3];
        int64_t       total_rows = 0;
        for (int m = 0; m < 3; ++m) {
            hw[m] = make_weights(Shape{g.rows[m], k}, rng);
            CUDA_CHECK(cudaMalloc(&d_w[m], hw[m].blocks.size()));
            CUDA_CHECK(cudaMemcpy(d_w[m], hw[m].blocks.data(), hw[m].blocks.size(), cudaMemcpyHostToDevice));
            total_rows += g.rows[m];
        }
        for (int ncols = 1; ncols <= Q4_S24_CUDA_MMV_MAX_COLS; ++ncols) {
            std::vector<float> x;
            float *            d_x = upload_activations(rng, k, ncols, x);
            float *            d_y; // group outputs, then the separate launches' outputs
            void *             d_scratch;
            CUDA_CHECK(cudaMalloc(&d_y, (size_t) 2 * ncols * total_rows * sizeof(float)));
            CUDA_CHECK(cudaMalloc(&d_scratch, q4_s24_cuda_act_bytes(k, ncols)));
            CUDA_CHECK(cudaMemset(d_y, 0xff, (size_t) 2 * ncols * total_rows * sizeof(float)));
            const q4_s24_cuda_act  act = q4_s24_cuda_act_view(d_scratch, k, ncols);
            q4_s24_cuda_mmv_matrix mats[3];
            int64_t                at = 0;
            for (int m = 0; m < 3; ++m) {
                mats[m] = {d_w[m], g.rows[m], d_y + at, g.rows[m]};
                at += ncols * g.rows[m];
            }
            const auto grouped = [&](int count) {
                q4_s24_cuda_mul_mat_vec_group(mats, count, k, row_bytes, act, ncols, 0);
            };
            const auto separate = [&](int count) {
                for (int m = 0; m < count; ++m) {
                    q4_s24_cuda_mul_mat_vec_q(d_w[m], g.rows[m], k, row_bytes, act, ncols,
                                              mats[m].y + ncols * total_rows, g.rows[m], 0);
                }
            };
            q4_s24_cuda_quantize_act(d_x, k, k, ncols, act, 0);
            grouped(3);
            separate(3);
            LAUNCH_OK();
            CUDA_CHECK(cudaDeviceSynchronize());
            std::vector<float> y((size_t) 2 * ncols * total_rows);
            CUDA_CHECK(cudaMemcpy(y.data(), d_y, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
            for (int m = 0; m < 3; ++m) {
                const int64_t       rows = g.rows[m];
                const size_t        off  = (size_t) (mats[m].y - d_y);
                const std::vector<double> ref = int8_reference(hw[m], rows, k, x, ncols);
                std::vector<float>        got(y.begin() + off, y.begin() + off + ref.size());
                std::vector<float>        sep(y.begin() + off + ncols * total_rows,
                                              y.begin() + off + ncols * total_rows + ref.size());
                const double e = rel_err(got, ref);
                char         what[200];
                snprintf(what, sizeof what, "group k=%lld batch %d, matrix %d (%lld rows): err %.2e", (long long) k,
                         ncols, m, (long long) rows, e);
                expect(e < 1e-5, what);
                // At batch 1 the group's launch shape and the separate launches' have the same threads and
                // sub-blocks in flight per row: the same sums in the same order.
                if (ncols == 1 && k == 4096) {
                    snprintf(what, sizeof what, "group k=%lld batch 1, matrix %d: equal to its own launch",
                             (long long) k, m);
                    expect(memcmp(got.data(), sep.data(), got.size() * sizeof(float)) == 0, what);
                }
            }
            if (k == 4096) { // the epilogue takes even row counts of whole 128-row heads (Llama-3-8B's q, k, v)
                const size_t plain_off[3] = {(size_t) (mats[0].y - d_y), (size_t) (mats[1].y - d_y),
                                             (size_t) (mats[2].y - d_y)};
                check_group_epilogue(mats, y, plain_off, k, row_bytes, act, ncols);
            }
            const int   iters = quick ? 1 : 200;
            const float t_sep = time_us([&](int) { separate(3); }, iters);
            const float t_grp = time_us([&](int) { grouped(3); }, iters);
            char        line[200];
            snprintf(line, sizeof line, "group %lldx(%lld+%lld+%lld) batch %d: one launch %7.2f us vs three %7.2f us",
                     (long long) k, (long long) g.rows[0], (long long) g.rows[1], (long long) g.rows[2], ncols, t_grp,
                     t_sep);
            printf("%s\n", line);
            summary.push_back(line);
            CUDA_CHECK(cudaFree(d_x));
            CUDA_CHECK(cudaFree(d_y));
            CUDA_CHECK(cudaFree(d_scratch));
        }
        for (int m = 0; m < 3; ++m) {
            CUDA_CHECK(cudaFree(d_w[m]));
        }
    }
}

// The mat-vec plus a same-shaped addend (ggml's MUL_MAT + ADD), against the reference plus the addend: the default
// launches for 4096 and 1024 rows (the latter quantizes in-kernel at batch 1-2), the addend a separate buffer or the
// output itself (ggml's in-place ADD).
static void run_mul_mat_vec_add(std::mt19937 & rng) {
    for (const Shape & sh : {Shape{4096, 4096}, Shape{1024, 4096}}) {
        const int64_t k         = sh.k;
        const size_t  row_bytes = (size_t) (k / QK_Q4_S24) * sizeof(block_q4_s24);
        HostWeights   hw        = make_weights(sh, rng);
        uint8_t *     d_w;
        CUDA_CHECK(cudaMalloc(&d_w, hw.blocks.size()));
        CUDA_CHECK(cudaMemcpy(d_w, hw.blocks.data(), hw.blocks.size(), cudaMemcpyHostToDevice));
        for (int ncols : {1, 2, 5, 8}) {
            for (bool in_place : {false, true}) {
                std::vector<float> x, r;
                float *            d_x = upload_activations(rng, k, ncols, x);
                float *            d_r = upload_activations(rng, sh.rows, ncols, r);
                float *            d_y;
                void *             d_scratch;
                CUDA_CHECK(cudaMalloc(&d_y, (size_t) ncols * sh.rows * sizeof(float)));
                CUDA_CHECK(cudaMalloc(&d_scratch, q4_s24_cuda_act_bytes(k, ncols)));
                if (in_place) {
                    CUDA_CHECK(cudaMemcpy(d_y, d_r, (size_t) ncols * sh.rows * sizeof(float), cudaMemcpyDeviceToDevice));
                }
                const float * add = in_place ? d_y : d_r;
                q4_s24_cuda_mul_mat_vec(d_w, sh.rows, k, row_bytes, d_x, k, ncols, d_y, sh.rows, d_scratch, 0, add,
                                        sh.rows);
                LAUNCH_OK();
                CUDA_CHECK(cudaDeviceSynchronize());
                std::vector<float> y((size_t) ncols * sh.rows);
                CUDA_CHECK(cudaMemcpy(y.data(), d_y, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
                std::vector<double> ref = int8_reference(hw, sh.rows, k, x, ncols);
                for (size_t i = 0; i < ref.size(); ++i) {
                    ref[i] += r[i];
                }
                const double e = rel_err(y, ref);
                char         what[200];
                snprintf(what, sizeof what, "mat-vec + add %lldx%lld batch %d%s: err %.2e", (long long) sh.rows,
                         (long long) k, ncols, in_place ? " (in place)" : "", e);
                expect(e < 1e-5, what);
                CUDA_CHECK(cudaFree(d_x));
                CUDA_CHECK(cudaFree(d_r));
                CUDA_CHECK(cudaFree(d_y));
                CUDA_CHECK(cudaFree(d_scratch));
            }
        }
        CUDA_CHECK(cudaFree(d_w));
    }
    printf("mat-vec + add checks: done\n");
}

// RMS norm times a weight row, quantized in the same launch (ggml's RMS_NORM + MUL ahead of a Q4_S24 mat-vec): the
// floats against a double reference, the quantized copy exactly against the quantize steps applied to those floats,
// input and output columns strided as ggml's views may be; then its time against the plain quantization of the same activations.
static void run_rms_norm_quantize(std::mt19937 & rng, bool quick) {
    const float eps = 1e-5f;
    for (int64_t k : {4096, 14336, 2816}) {
        for (int ncols : {1, 3, 8}) {
            const int64_t      stride = k + 32, y_stride = k + 64;
            std::vector<float> x, w;
            float *            d_x = upload_activations(rng, stride, ncols, x);
            float *            d_w = upload_activations(rng, k, 1, w);
            float *            d_y;
            void *             d_scratch;
            CUDA_CHECK(cudaMalloc(&d_y, (size_t) ncols * y_stride * sizeof(float)));
            CUDA_CHECK(cudaMalloc(&d_scratch, q4_s24_cuda_act_bytes(k, ncols)));
            CUDA_CHECK(cudaMemset(d_y, 0xff, (size_t) ncols * y_stride * sizeof(float)));
            CUDA_CHECK(cudaMemset(d_scratch, 0x55, q4_s24_cuda_act_bytes(k, ncols)));
            const q4_s24_cuda_act act = q4_s24_cuda_act_view(d_scratch, k, ncols);
            // The weight read before the wait (a model weight) and, at 3 columns, after it (one some kernel computes).
            expect(q4_s24_cuda_rms_norm_quantize_act(d_x, k, stride, ncols, d_w, ncols != 3, eps, d_y, y_stride, act, 0),
                   "rms norm + quantize: accepts aligned columns");
            LAUNCH_OK();
            CUDA_CHECK(cudaDeviceSynchronize());
            std::vector<float>  y((size_t) ncols * k), d((size_t) ncols * k / 32);
            std::vector<int8_t> q((size_t) ncols * k);
            CUDA_CHECK(cudaMemcpy2D(y.data(), k * sizeof(float), d_y, y_stride * sizeof(float), k * sizeof(float), ncols,
                                 cudaMemcpyDeviceToHost));
            CUDA_CHECK(cudaMemcpy(q.data(), act.q, q.size(), cudaMemcpyDeviceToHost));
            CUDA_CHECK(cudaMemcpy(d.data(), act.d, d.size() * sizeof(float), cudaMemcpyDeviceToHost));
            std::vector<double> ref((size_t) ncols * k);
            size_t              quant_mismatches = 0;
            for (int c = 0; c < ncols; ++c) {
                double sum = 0;
                for (int64_t e = 0; e < k; ++e) {
                    sum += (double) x[c * stride + e] * x[c * stride + e];
                }
                const double scale = 1.0 / std::sqrt(sum / k + eps);
                for (int64_t e = 0; e < k; ++e) {
                    ref[c * k + e] = scale * x[c * stride + e] * w[e];
                }
                std::vector<int8_t> eq;
                std::vector<float>  ed;
                emulate_act_quant(y.data() + c * k, k, eq, ed);
                for (int64_t e = 0; e < k; ++e) {
                    quant_mismatches += eq[e] != q[c * k + e] || ed[e / 32] != d[c * k / 32 + e / 32];
                }
            }
            const double e = rel_err(y, ref);
            char         what[200];
            snprintf(what, sizeof what, "rms norm + quantize k %lld batch %d: err %.2e, %zu quantized values differ",
                     (long long) k, ncols, e, quant_mismatches);
            expect(e < 1e-6 && quant_mismatches == 0, what);
            if (k == 4096 && (ncols == 1 || ncols == 8)) {
                const int   iters = quick ? 1 : 200;
                const float fused = time_us([&](int) {
                    q4_s24_cuda_rms_norm_quantize_act(d_x, k, stride, ncols, d_w, true, eps, d_y, y_stride, act, 0);
                }, iters);
                const float plain = time_us([&](int) { q4_s24_cuda_quantize_act(d_x, k, stride, ncols, act, 0); }, iters);
                printf("rms norm + quantize k %lld batch %d: %.2f us per launch (the quantization alone: %.2f us)\n",
                       (long long) k, ncols, fused, plain);
            }
            CUDA_CHECK(cudaFree(d_x));
            CUDA_CHECK(cudaFree(d_w));
            CUDA_CHECK(cudaFree(d_y));
            CUDA_CHECK(cudaFree(d_scratch));
        }
    }
    // ggml's views can start anywhere: a column start that is not 16-byte aligned is refused (ggml then runs its own
    // two kernels), not read misaligned.
    float * d_x;
    CUDA_CHECK(cudaMalloc(&d_x, 4096 * sizeof(float) + 16));
    const q4_s24_cuda_act none = q4_s24_cuda_act_view(nullptr, 4096, 1);
    expect(!q4_s24_cuda_rms_norm_quantize_act(d_x + 1, 4096, 4096, 1, d_x, true, 1e-5f, d_x, 4096, none, 0),
           "rms norm + quantize: refuses a misaligned column");
    CUDA_CHECK(cudaFree(d_x));
    printf("rms norm + quantize checks: done\n");
}

// The feed-forward half of a decode layer as the model chains it (batch 1), captured into a CUDA graph as ggml does,
// with programmatic launch between the kernels where it is on: RMS norm + quantization, gate / up + SWIGLU, the SWIGLU
// output's quantization, down projection + residual, for kChainLayers layers, each with its own copy of the weights (far
// more than the L2 holds). Timed per layer for every down-projection launch shape (pre-quantized activations) with the default gate / up
// shape, for every gate / up shape with the default down projection, and without the down projection: the difference
// is what the down projection adds to a layer in the chain, where the kernel timeline measures ~10 us exposed against
// ~8 us for the launch alone. Timings only (the shapes' results are checked by the decode mode's other sections); the
// weights are random bytes, drawn from a generator of their own so that the sections after this one get the data they
// got before it existed.
static void run_feed_forward_chain_timing(std::mt19937 & seed_rng, bool quick) {
    std::mt19937  rng(seed_rng());
    constexpr int kChainLayers = 8;
    const int64_t d_model = 4096, d_ff = 14336;
    const size_t  rb_model  = (size_t) (d_model / QK_Q4_S24) * sizeof(block_q4_s24); // gate / up rows
    const size_t  rb_ff     = (size_t) (d_ff / QK_Q4_S24) * sizeof(block_q4_s24);    // down rows
    const size_t  ffn_bytes = rb_model * d_ff;                                         // gate or up
    const size_t  down_bytes = rb_ff * d_model;
    const size_t  layer_bytes = 2 * ffn_bytes + down_bytes;
    uint8_t *     d_w;
    CUDA_CHECK(cudaMalloc(&d_w, layer_bytes * kChainLayers));
    {
        std::vector<uint8_t> bytes(layer_bytes);
        for (size_t i = 0; i + 4 <= layer_bytes; i += 4) {
            const uint32_t v = (uint32_t) rng() & 0x3bff3bffu; // finite f16 scales wherever they fall
            memcpy(bytes.data() + i, &v, 4);
        }
        for (int l = 0; l < kChainLayers; ++l) {
            CUDA_CHECK(cudaMemcpy(d_w + l * layer_bytes, bytes.data(), layer_bytes, cudaMemcpyHostToDevice));
        }
    }
    std::vector<float> x_host;
    float *            d_x = upload_activations(rng, d_model, 1, x_host);
    float *            d_norm_w;
    float *            d_h;
    float *            d_glu;
    float *            d_out;
    void *             d_act_model;
    void *             d_act_ff;
    CUDA_CHECK(cudaMalloc(&d_norm_w, d_model * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(d_norm_w, x_host.data(), d_model * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&d_h, d_model * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&d_glu, d_ff * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&d_out, d_model * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&d_act_model, q4_s24_cuda_act_bytes(d_model, 1)));
    CUDA_CHECK(cudaMalloc(&d_act_ff, q4_s24_cuda_act_bytes(d_ff, 1)));
    const q4_s24_cuda_act act_model = q4_s24_cuda_act_view(d_act_model, d_model, 1);
    const q4_s24_cuda_act act_ff    = q4_s24_cuda_act_view(d_act_ff, d_ff, 1);
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    // Per-layer microseconds of the chain with these shapes (down_variant < 0: no down projection); the residual
    // goes to d_out so that every launch reads the same input.
    const auto per_layer_us = [&](int swiglu_shape, int down_variant) {
        CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        for (int l = 0; l < kChainLayers; ++l) {
            const uint8_t * up   = d_w + l * layer_bytes;
            const uint8_t * gate = up + ffn_bytes;
            const uint8_t * down = gate + ffn_bytes;
            if (!q4_s24_cuda_rms_norm_quantize_act(d_x, d_model, d_model, 1, d_norm_w, true, 1e-5f, d_h, d_model,
                                                   act_model, stream)) {
                fprintf(stderr, "feed-forward chain: the norm launch refused its input\n");
                exit(1);
            }
            q4_s24_cuda_swiglu_variant((q4_s24_cuda_swiglu_shape) swiglu_shape, up, gate, d_ff, d_model, rb_model,
                                       act_model, 1, d_glu, d_ff, stream);
            q4_s24_cuda_quantize_act(d_glu, d_ff, d_ff, 1, act_ff, stream);
            if (down_variant >= 0) {
                q4_s24_cuda_mul_mat_vec_variant((q4_s24_cuda_mmv_variant) down_variant, down, d_model, d_ff, rb_ff,
                                                act_ff, 1, d_out, d_model, stream, d_x, d_model);
            }
        }
        cudaGraph_t graph;
        CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
        return median_graph_launch_us(graph, stream, quick ? 1 : 20, quick ? 1 : 7, kChainLayers);
    };

    const int   swiglu_default = q4_s24_cuda_swiglu_default_shape(d_ff, d_model, 1);
    const int   down_default   = q4_s24_cuda_mmv_default_variant(d_model, d_ff, 1);
    const float without_down   = per_layer_us(swiglu_default, -1);
    printf("\nfeed-forward chain (norm, gate/up + SWIGLU, quantization, down + residual; CUDA graph, %d layers), us per "
           "layer\n", kChainLayers);
    printf("  without the down projection (gate/up %s): %.2f\n", swiglu_shape_name(swiglu_default), without_down);
    for (int v = 0; v < Q4_S24_MMV_VARIANT_COUNT; ++v) {
        if (q4_s24_cuda_mmv_variant_is_fused((q4_s24_cuda_mmv_variant) v)) {
            continue; // they read float activations; the chain quantizes once
        }
        const float us = per_layer_us(swiglu_default, v);
        printf("  down %-11s%s %.2f (the down projection adds %.2f)\n", variant_name(v),
               v == down_default ? " (default)" : "          ", us, us - without_down);
    }
    for (int shape = 0; shape < Q4_S24_SWIGLU_SHAPE_COUNT; ++shape) {
        const float us = per_layer_us(shape, down_default);
        printf("  gate/up %-11s%s %.2f (down %s)\n", swiglu_shape_name(shape),
               shape == swiglu_default ? " (default)" : "          ", us, variant_name(down_default));
    }
    CUDA_CHECK(cudaStreamDestroy(stream));
    for (void * p : {(void *) d_w, (void *) d_x, (void *) d_norm_w, (void *) d_h, (void *) d_glu, (void *) d_out,
                     d_act_model, d_act_ff}) {
        CUDA_CHECK(cudaFree(p));
    }
}

// For a profiler (ncu): one launch each of the decode kernels on the Llama-3-8B shapes, batch 1, default launch
// shapes; no checks, no timing loops.
static void run_profile_launches(std::mt19937 & rng) {
    for (const Shape & sh : {Shape{4096, 14336}, Shape{14336, 4096}}) {
        HostWeights   hw        = make_weights(sh, rng);
        const size_t  row_bytes = (size_t) (sh.k / QK_Q4_S24) * sizeof(block_q4_s24);
        uint8_t *     d_w;
        float *       d_y;
        void *        d_scratch;
        CUDA_CHECK(cudaMalloc(&d_w, hw.blocks.size()));
        CUDA_CHECK(cudaMemcpy(d_w, hw.blocks.data(), hw.blocks.size(), cudaMemcpyHostToDevice));
        std::vector<float> x;
        float *            d_x = upload_activations(rng, sh.k, 1, x);
        CUDA_CHECK(cudaMalloc(&d_y, sh.rows * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&d_scratch, q4_s24_cuda_act_bytes(sh.k, 1)));
        const q4_s24_cuda_act act = q4_s24_cuda_act_view(d_scratch, sh.k, 1);
        q4_s24_cuda_quantize_act(d_x, sh.k, sh.k, 1, act, 0);
        q4_s24_cuda_mul_mat_vec_q(d_w, sh.rows, sh.k, row_bytes, act, 1, d_y, sh.rows, 0);
        if (sh.rows == 14336) { // gate/up: the same matrix twice is enough for a profile
            q4_s24_cuda_mul_mat_vec_swiglu(d_w, d_w, sh.rows, sh.k, row_bytes, act, 1, d_y, sh.rows, 0);
        }
        LAUNCH_OK();
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaFree(d_w));
        CUDA_CHECK(cudaFree(d_x));
        CUDA_CHECK(cudaFree(d_y));
        CUDA_CHECK(cudaFree(d_scratch));
    }
}

// The launches Nsight Compute profiles in run.sh's profile-prefill mode: the sparse prefill kernels on the 8B
// feed-forward shapes at PROFILE_TOKENS tokens (default 512), one launch each (ncu picks them by name), and the
// gate / up + SWIGLU kernel in each of its forms (kSwigluForms). Values are random; nothing is checked here.
static void run_profile_prefill_launches(std::mt19937 & rng) {
    const char *  env_tokens = getenv("PROFILE_TOKENS");
    const int64_t ntok       = env_tokens != nullptr ? atoll(env_tokens) : 512;
    for (const Shape & sh : {Shape{14336, 4096}, Shape{4096, 14336}}) {
        const HostWeights hw        = make_weights(sh, rng);
        const size_t      row_bytes = (size_t) (sh.k / QK_Q4_S24) * sizeof(block_q4_s24);
        uint8_t *         d_w       = device_copy(hw.blocks);
        half *            d_x       = device_copy(random_half_activations(rng, sh.k, ntok));
        float *           d_y       = device_filled<float>((size_t) ntok * sh.rows);
        for (const auto & kern : kSparseKernels) {
            if (q4_s24_cuda_mul_mat_sparse_mma(d_w, sh.rows, sh.k, row_bytes, d_x, ntok, d_y, sh.rows, 0, kern.kernel,
                                               sparse_workspace(kern.kernel, sh.rows, sh.k, ntok))) {
                LAUNCH_OK();
            }
        }
        if (sh.rows == 14336) { // gate and up: the same matrix twice is enough for a profile
            for (const SparseKernel & f : kSwigluForms) {
                q4_s24_cuda_mul_mat_sparse_swiglu(d_w, d_w, sh.rows, sh.k, row_bytes, d_x, ntok, d_y, sh.rows, 0,
                                                  f.kernel, sparse_workspace(f.kernel, sh.rows, sh.k, ntok, true));
                LAUNCH_OK();
            }
        }
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaFree(d_w));
        CUDA_CHECK(cudaFree(d_x));
        CUDA_CHECK(cudaFree(d_y));
    }
}

int main(int argc, char ** argv) {
    const unsigned seed  = argc > 1 ? (unsigned) strtoul(argv[1], nullptr, 10) : (unsigned) std::random_device{}();
    const char *   mode  = argc > 2 ? argv[2] : "";
    // quick: the sanitizer run (checks, one timing iteration); prefill / prefill-quick: the prefill checks and timings
    // alone (dequantize + cuBLAS, sparse tensor cores); swiglu: the gate/up kernel alone; decode / decode-quick:
    // everything but the prefill.
    const bool     quick        = strcmp(mode, "quick") == 0 || strcmp(mode, "prefill-quick") == 0 ||
                                  strcmp(mode, "decode-quick") == 0;
    const bool     prefill_only = strncmp(mode, "prefill", 7) == 0;
    const bool     swiglu_only  = strcmp(mode, "swiglu") == 0;
    const bool     decode_only  = strncmp(mode, "decode", 6) == 0;
    if (argc > 2 && strcmp(argv[2], "profile") == 0) {
        std::mt19937 prng(seed);
        run_profile_launches(prng);
        return 0;
    }
    if (argc > 2 && strcmp(argv[2], "profile-prefill") == 0) {
        std::mt19937 prng(seed);
        run_profile_prefill_launches(prng);
        CUDA_CHECK(cudaFree(g_workspace));
        return 0;
    }
    printf("seed %u%s\n", seed, quick ? " (quick: checks, one timing iteration)" : "");
    std::mt19937 rng(seed);

    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("device %s, cc %d.%d, %d SMs, L2 %d MB\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
           prop.l2CacheSize >> 20);
    if (strcmp(mode, "ffchain") == 0) { // the feed-forward chain's timings alone
        run_feed_forward_chain_timing(rng, false);
        return 0;
    }

    // Copy bandwidth: read + write bytes of a 1 GiB device-to-device copy.
    double copy_gbs = 0;
    {
        const size_t n = quick ? (64u << 20) : (1u << 30);
        void *       p, *q;
        CUDA_CHECK(cudaMalloc(&p, n));
        CUDA_CHECK(cudaMalloc(&q, n));
        CUDA_CHECK(cudaMemset(p, 1, n));
        const float us = time_us([&](int) { CUDA_CHECK(cudaMemcpyAsync(q, p, n, cudaMemcpyDeviceToDevice)); }, quick ? 1 : 10);
        copy_gbs       = 2.0 * n / (us * 1e3);
        printf("copy bandwidth (read+write, 1 GiB D2D): %.0f GB/s\n", copy_gbs);
        CUDA_CHECK(cudaFree(p));
        CUDA_CHECK(cudaFree(q));
    }

#ifdef Q4_S24_HARNESS_CUBLAS
    cublasHandle_t blas;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cublasCreate failed\n");
        return 1;
    }
#endif

    // 1024x2816 (88 sub-blocks per row) leaves partial last steps for every launch shape (threads past the row's
    // end, and two-sub-block steps whose second half is out of range), which the Llama-8B shapes never do.
    // 4100x10240 (decode only) does the same for the staged kernel: 320 sub-blocks per row are 2.5 steps of 128 threads
    // (5 of 64, the last two in one copy group), and 4100 rows end inside a block of 8.
    const Shape shapes[] = {{4096, 4096}, {4096, 14336}, {14336, 4096}, {1024, 4096}, {1024, 2816},
                            {4100, 10240, false}};
    const int   max_cols = Q4_S24_CUDA_MMV_MAX_COLS;

    printf("\n%-12s %5s %-11s %9s %9s %8s %10s %10s\n", "rows x k", "batch", "variant", "kernel us", "matmul us", "GB/s",
           "err(int8)", "err(f32)");
    std::vector<std::string> summary;

    for (const Shape & sh : shapes) {
        if (swiglu_only) {
            break;
        }
        HostWeights   hw        = make_weights(sh, rng);
        const size_t  row_bytes = (size_t) (sh.k / QK_Q4_S24) * sizeof(block_q4_s24);
        const size_t  w_bytes   = hw.blocks.size();
        // Enough copies to push the working set well past the L2.
        const int     copies    = quick ? 1 : (int) std::max<size_t>(2, (size_t) (512u << 20) / w_bytes);
        uint8_t *     d_w;
        CUDA_CHECK(cudaMalloc(&d_w, w_bytes * copies));
        for (int i = 0; i < copies; ++i) {
            CUDA_CHECK(cudaMemcpy(d_w + i * w_bytes, hw.blocks.data(), w_bytes, cudaMemcpyHostToDevice));
        }

        std::normal_distribution<float> nd(0.0f, 1.0f); // prefill activations below
        std::vector<float>              x;
        float *                         d_x = upload_activations(rng, sh.k, max_cols, x);
        float *                         d_y;
        void *                          d_scratch;
        CUDA_CHECK(cudaMalloc(&d_y, (size_t) max_cols * sh.rows * sizeof(float)));
        CUDA_CHECK(cudaMalloc(&d_scratch, q4_s24_cuda_act_bytes(sh.k, max_cols)));
        const q4_s24_cuda_act act_q = q4_s24_cuda_act_view(d_scratch, sh.k, max_cols);
        q4_s24_cuda_act       act_f = act_q; // fused variants read the float columns
        act_f.x            = d_x;
        act_f.x_col_stride = sh.k;

        // References per column: with the kernel's int8 activations (tight) and with float activations (loose).
        std::vector<std::vector<double>> ref_int8(max_cols), ref_f32(max_cols);
        for (int c = 0; c < max_cols && !prefill_only; ++c) {
            std::vector<int8_t> q;
            std::vector<float>  d;
            emulate_act_quant(x.data() + c * sh.k, sh.k, q, d);
            ref_int8[c].resize(sh.rows);
            ref_f32[c].resize(sh.rows);
            for (int64_t r = 0; r < sh.rows; ++r) {
                const float * wr = hw.dense.data() + r * sh.k;
                double        a = 0, b = 0;
                for (int64_t i = 0; i < sh.k; ++i) {
                    a += (double) wr[i] * ((double) q[i] * d[i / 32]);
                    b += (double) wr[i] * x[c * sh.k + i];
                }
                ref_int8[c][r] = a;
                ref_f32[c][r]  = b;
            }
        }

        for (int ncols = 1; ncols <= max_cols && !prefill_only; ++ncols) {
            float best_us = 0, best_total = 0;
            int   best_v  = -1;
            for (int v = 0; v < Q4_S24_MMV_VARIANT_COUNT; ++v) {
                const auto variant = (q4_s24_cuda_mmv_variant) v;
                const bool fused   = q4_s24_cuda_mmv_variant_is_fused(variant);
                const q4_s24_cuda_act act = fused ? act_f : act_q;
                // Poison the output so unwritten elements fail.
                CUDA_CHECK(cudaMemset(d_y, 0xff, (size_t) max_cols * sh.rows * sizeof(float)));
                if (!fused) {
                    CUDA_CHECK(cudaMemset(d_scratch, 0x55, q4_s24_cuda_act_bytes(sh.k, max_cols))); // stale copy must not be used
                    q4_s24_cuda_quantize_act(d_x, sh.k, sh.k, ncols, act, 0);
                    LAUNCH_OK();
                }
                q4_s24_cuda_mul_mat_vec_variant(variant, d_w, sh.rows, sh.k, row_bytes, act, ncols, d_y, sh.rows, 0);
                LAUNCH_OK();
                CUDA_CHECK(cudaDeviceSynchronize());
                std::vector<float> y((size_t) ncols * sh.rows);
                CUDA_CHECK(cudaMemcpy(y.data(), d_y, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
                double e_int8 = 0, e_f32 = 0;
                for (int c = 0; c < ncols; ++c) {
                    std::vector<float> yc(y.begin() + c * sh.rows, y.begin() + (c + 1) * sh.rows);
                    e_int8 = std::max(e_int8, rel_err(yc, ref_int8[c]));
                    e_f32  = std::max(e_f32, rel_err(yc, ref_f32[c]));
                }
                char what[160];
                snprintf(what, sizeof what, "mmv %lldx%lld batch %d %s: err(int8) %.2e err(f32) %.2e",
                         (long long) sh.rows, (long long) sh.k, ncols, variant_name(v), e_int8, e_f32);
                expect(e_int8 < 1e-5 && e_f32 < 3e-2, what);

                const int iters = quick ? 1 : 200;
                const float us  = time_us(
                    [&](int i) {
                        q4_s24_cuda_mul_mat_vec_variant(variant, d_w + (size_t) (i % copies) * w_bytes, sh.rows, sh.k,
                                                        row_bytes, act, ncols, d_y, sh.rows, 0);
                    },
                    iters);
                const float total = time_us(
                    [&](int i) {
                        if (!fused) {
                            q4_s24_cuda_quantize_act(d_x, sh.k, sh.k, ncols, act, 0);
                        }
                        q4_s24_cuda_mul_mat_vec_variant(variant, d_w + (size_t) (i % copies) * w_bytes, sh.rows, sh.k,
                                                        row_bytes, act, ncols, d_y, sh.rows, 0);
                    },
                    iters);
                printf("%5lldx%-6lld %5d %-11s %9.2f %9.2f %8.0f %10.1e %10.1e\n", (long long) sh.rows,
                       (long long) sh.k, ncols, variant_name(v), us, total, w_bytes / (total * 1e3), e_int8, e_f32);
                if (total < best_total || best_v < 0) { // ranked by the whole matmul, quantization included
                    best_us    = us;
                    best_total = total;
                    best_v     = v;
                }
            }
            const auto def = q4_s24_cuda_mmv_default_variant(sh.rows, sh.k, ncols);
            char       line[200];
            snprintf(line, sizeof line, "%5lldx%-6lld batch %d: best %-11s matmul %7.2f us (%5.0f GB/s; mat-vec kernel alone %6.2f us); default %s",
                     (long long) sh.rows, (long long) sh.k, ncols, variant_name(best_v), best_total,
                     w_bytes / (best_total * 1e3), best_us, variant_name(def));
            summary.push_back(line);
        }

        if (!quick && !prefill_only) {
            unsigned * d_sink;
            CUDA_CHECK(cudaMalloc(&d_sink, sizeof(unsigned)));
            const float us_fields = time_us([&](int i) {
                probe_read_fields<<<(unsigned) (sh.rows / 2), 128>>>(d_w + (size_t) (i % copies) * w_bytes, sh.rows,
                                                                   (int) (sh.k / 32), row_bytes, d_sink);
            }, 200);
            const float us_flat = time_us([&](int i) {
                probe_read_coalesced<<<prop.multiProcessorCount * 8, 256>>>(
                    (const uint4 *) (d_w + (size_t) (i % copies) * w_bytes), (int64_t) (w_bytes / 16), d_sink);
            }, 200);
            char line[200];
            snprintf(line, sizeof line, "%5lldx%-6lld read-only probes: field pattern %.2f us, coalesced 16-byte %.2f us (%.0f GB/s)",
                     (long long) sh.rows, (long long) sh.k, us_fields, us_flat, w_bytes / (us_flat * 1e3));
            summary.push_back(line);
            CUDA_CHECK(cudaFree(d_sink));
        }

        // Dequantize (f32 and f16) and get_rows, bit for bit.
        {
            const int64_t n = sh.rows * sh.k;
            float *       d_f32;
            half *        d_f16;
            CUDA_CHECK(cudaMalloc(&d_f32, n * sizeof(float)));
            CUDA_CHECK(cudaMalloc(&d_f16, n * sizeof(half)));
            CUDA_CHECK(cudaMemset(d_f32, 0xff, n * sizeof(float)));
            CUDA_CHECK(cudaMemset(d_f16, 0xff, n * sizeof(half)));
            q4_s24_cuda_dequantize_f32(d_w, d_f32, n, 0);
            LAUNCH_OK();
            q4_s24_cuda_dequantize_f16(d_w, d_f16, n, 0);
            LAUNCH_OK();
            std::vector<float>    f32(n);
            std::vector<uint16_t> f16(n);
            CUDA_CHECK(cudaMemcpy(f32.data(), d_f32, n * sizeof(float), cudaMemcpyDeviceToHost));
            CUDA_CHECK(cudaMemcpy(f16.data(), d_f16, n * sizeof(half), cudaMemcpyDeviceToHost));
            int64_t bad32 = 0, bad16 = 0;
            for (int64_t i = 0; i < n; ++i) {
                bad32 += memcmp(&f32[i], &hw.dense[i], 4) != 0;
                bad16 += f16[i] != q4_s24_fp32_to_fp16(hw.dense[i]);
            }
            char what[120];
            snprintf(what, sizeof what, "dequantize %lldx%lld: %lld f32 and %lld f16 values differ", (long long) sh.rows,
                     (long long) sh.k, (long long) bad32, (long long) bad16);
            expect(bad32 == 0 && bad16 == 0, what);
            const float us16 = time_us([&](int i) { q4_s24_cuda_dequantize_f16(d_w + (size_t) (i % copies) * w_bytes, d_f16, n, 0); },
                                       quick ? 1 : 50);
            printf("dequantize f16 %lldx%lld: %.2f us (%.0f GB/s read+write)\n", (long long) sh.rows, (long long) sh.k,
                   us16, (w_bytes + n * 2.0) / (us16 * 1e3));

            // get_rows: 37 random rows (some repeated) to f32 and f16.
            const int64_t        nids = 37;
            std::vector<int32_t> ids(nids);
            std::uniform_int_distribution<int32_t> pick(0, (int32_t) sh.rows - 1);
            for (auto & id : ids) {
                id = pick(rng);
            }
            int32_t * d_ids;
            CUDA_CHECK(cudaMalloc(&d_ids, nids * sizeof(int32_t)));
            CUDA_CHECK(cudaMemcpy(d_ids, ids.data(), nids * sizeof(int32_t), cudaMemcpyHostToDevice));
            CUDA_CHECK(cudaMemset(d_f32, 0xff, nids * sh.k * sizeof(float)));
            CUDA_CHECK(cudaMemset(d_f16, 0xff, nids * sh.k * sizeof(half)));
            q4_s24_cuda_get_rows(d_w, sh.k, row_bytes, row_bytes * sh.rows, row_bytes * sh.rows, d_ids, nids, 1, 1, 4,
                                 4 * nids, 4 * nids, d_f32, false, sh.k * 4, nids * sh.k * 4, nids * sh.k * 4, 0);
            LAUNCH_OK();
            q4_s24_cuda_get_rows(d_w, sh.k, row_bytes, row_bytes * sh.rows, row_bytes * sh.rows, d_ids, nids, 1, 1, 4,
                                 4 * nids, 4 * nids, d_f16, true, sh.k * 2, nids * sh.k * 2, nids * sh.k * 2, 0);
            LAUNCH_OK();
            CUDA_CHECK(cudaMemcpy(f32.data(), d_f32, nids * sh.k * sizeof(float), cudaMemcpyDeviceToHost));
            CUDA_CHECK(cudaMemcpy(f16.data(), d_f16, nids * sh.k * sizeof(half), cudaMemcpyDeviceToHost));
            bad32 = bad16 = 0;
            for (int64_t i = 0; i < nids; ++i) {
                for (int64_t c = 0; c < sh.k; ++c) {
                    const float want = hw.dense[(size_t) ids[i] * sh.k + c];
                    bad32 += memcmp(&f32[i * sh.k + c], &want, 4) != 0;
                    bad16 += f16[i * sh.k + c] != q4_s24_fp32_to_fp16(want);
                }
            }
            snprintf(what, sizeof what, "get_rows %lldx%lld: %lld f32 and %lld f16 values differ", (long long) sh.rows,
                     (long long) sh.k, (long long) bad32, (long long) bad16);
            expect(bad32 == 0 && bad16 == 0, what);
            CUDA_CHECK(cudaFree(d_ids));

#ifdef Q4_S24_HARNESS_CUBLAS
            // Prefill: dequantize to f16 + cuBLAS GEMM (what ggml-cuda does for batches past the mat-vec), against
            // dense f16 cuBLAS on the same values; outputs checked on sampled elements.
            for (int64_t ntok : {100, 256, 512, 2048}) {
                if ((quick && ntok > 256) || decode_only || !sh.prefill) {
                    break;
                }
                std::vector<half> xh((size_t) ntok * sh.k);
                std::vector<float> xf(xh.size());
                for (size_t i = 0; i < xh.size(); ++i) {
                    xh[i] = __float2half(nd(rng));
                    xf[i] = __half2float(xh[i]);
                }
                half *  d_xh;
                float * d_out;
                CUDA_CHECK(cudaMalloc(&d_xh, xh.size() * sizeof(half)));
                CUDA_CHECK(cudaMalloc(&d_out, (size_t) ntok * sh.rows * sizeof(float)));
                CUDA_CHECK(cudaMemcpy(d_xh, xh.data(), xh.size() * sizeof(half), cudaMemcpyHostToDevice));
                CUDA_CHECK(cudaMemset(d_out, 0xff, (size_t) ntok * sh.rows * sizeof(float)));
                const float one = 1.0f, zero = 0.0f;
                auto gemm = [&]() {
                    // out[tok][row] = sum_k W[row][k] * x[tok][k]  (column-major: out = W^T(k x rows)^T * x)
                    cublasStatus_t st = cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, (int) sh.rows, (int) ntok, (int) sh.k,
                                                     &one, d_f16, CUDA_R_16F, (int) sh.k, d_xh, CUDA_R_16F, (int) sh.k,
                                                     &zero, d_out, CUDA_R_32F, (int) sh.rows, CUBLAS_COMPUTE_32F,
                                                     CUBLAS_GEMM_DEFAULT);
                    if (st != CUBLAS_STATUS_SUCCESS) {
                        fprintf(stderr, "cublasGemmEx: %d\n", (int) st);
                        exit(1);
                    }
                };
                q4_s24_cuda_dequantize_f16(d_w, d_f16, n, 0);
                gemm();
                CUDA_CHECK(cudaDeviceSynchronize());
                std::vector<float> out((size_t) ntok * sh.rows);
                CUDA_CHECK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
                std::vector<float>  got;
                std::vector<double> want;
                std::vector<std::pair<int64_t, int64_t>> sampled; // (row, token)
                std::uniform_int_distribution<int64_t> pr(0, sh.rows - 1), pt(0, ntok - 1);
                for (int i = 0; i < 256; ++i) {
                    // the last token too: its tile is partial when ntok is not a multiple of 64
                    const int64_t r = pr(rng), t = i == 0 ? ntok - 1 : pt(rng);
                    sampled.emplace_back(r, t);
                    double        s = 0;
                    for (int64_t c = 0; c < sh.k; ++c) {
                        s += (double) q4_s24_fp16_to_fp32(q4_s24_fp32_to_fp16(hw.dense[r * sh.k + c])) * xf[t * sh.k + c];
                    }
                    got.push_back(out[t * sh.rows + r]);
                    want.push_back(s);
                }
                const double e = rel_err(got, want);
                snprintf(what, sizeof what, "prefill %lldx%lld x %lld tokens: err %.2e", (long long) sh.rows,
                         (long long) sh.k, (long long) ntok, e);
                expect(e < 1e-3, what);
                const float us_dq   = time_us([&](int i) {
                    q4_s24_cuda_dequantize_f16(d_w + (size_t) (i % copies) * w_bytes, d_f16, n, 0);
                    gemm();
                }, quick ? 1 : 20);
                const float us_gemm = time_us([&](int) { gemm(); }, quick ? 1 : 20);
                printf("prefill %lldx%lld x %4lld tok: dequant+cuBLAS %8.1f us, dense f16 cuBLAS %8.1f us, err %.1e\n",
                       (long long) sh.rows, (long long) sh.k, (long long) ntok, us_dq, us_gemm, e);
                // What ggml runs for this shape by default (its dispatch encodes earlier runs of this table).
                const auto rule_pick = [](int kernel) {
                    return kernel == Q4_S24_SPARSE_WGMMA ? "wgmma.sp" : kernel == Q4_S24_SPARSE_WGMMA_SPLIT_K ? "wgmma.sp split-k"
                                                                                                            : "dequant+cuBLAS";
                };
                printf("prefill %lldx%lld x %4lld tok: ggml's default here: %s (warp-specialized form; "
                       "Q4_S24_CUDA_SPARSE_MMA=3: %s)\n",
                       (long long) sh.rows, (long long) sh.k, (long long) ntok,
                       rule_pick(q4_s24_cuda_sparse_prefill_kernel(sh.rows, sh.k, ntok)),
                       rule_pick(q4_s24_cuda_sparse_prefill_kernel(sh.rows, sh.k, ntok, true)));

                // The same product on sparse tensor cores (each kernel this device runs), against the same sampled
                // references.
                const char * only_kernel = getenv("HARNESS_SPARSE_KERNEL");
                for (const auto & kern : kSparseKernels) {
                    if (only_kernel != nullptr && strncmp(only_kernel, kern.name, strlen(only_kernel)) != 0) {
                        continue; // not one of the kernels whose names start with HARNESS_SPARSE_KERNEL
                    }
                    void * workspace = sparse_workspace(kern.kernel, sh.rows, sh.k, ntok);
                    CUDA_CHECK(cudaMemset(d_out, 0xff, (size_t) ntok * sh.rows * sizeof(float)));
                    if (!q4_s24_cuda_mul_mat_sparse_mma(d_w, sh.rows, sh.k, row_bytes, d_xh, ntok, d_out, sh.rows, 0,
                                                        kern.kernel, workspace)) {
                        printf("prefill %s: not available on this device\n", kern.name);
                        continue;
                    }
                    LAUNCH_OK();
                    CUDA_CHECK(cudaDeviceSynchronize());
                    CUDA_CHECK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
                    std::vector<float> got_sp;
                    for (size_t i = 0; i < sampled.size(); ++i) {
                        got_sp.push_back(out[sampled[i].second * sh.rows + sampled[i].first]);
                    }
                    const double e_sp = rel_err(got_sp, want);
                    snprintf(what, sizeof what, "prefill %s %lldx%lld x %lld tokens: err %.2e", kern.name,
                             (long long) sh.rows, (long long) sh.k, (long long) ntok, e_sp);
                    expect(e_sp < 1e-3, what);
                    const float us_sp = time_us([&](int i) {
                        q4_s24_cuda_mul_mat_sparse_mma(d_w + (size_t) (i % copies) * w_bytes, sh.rows, sh.k, row_bytes, d_xh,
                                                       ntok, d_out, sh.rows, 0, kern.kernel, workspace);
                    }, quick ? 1 : 20);
                    printf("prefill %lldx%lld x %4lld tok: %-22s %8.1f us (%.2fx dense f16 cuBLAS), err %.1e\n",
                           (long long) sh.rows, (long long) sh.k, (long long) ntok, kern.name, us_sp, us_gemm / us_sp, e_sp);
                }
                CUDA_CHECK(cudaFree(d_xh));
                CUDA_CHECK(cudaFree(d_out));
            }

            // Dense f16 GEMV baseline (cuBLAS), batch 1, same shape, weights rotated past the L2.
            if (!quick) {
                const int fcopies = (int) std::max<int64_t>(2, (512ll << 20) / (n * 2));
                half *    d_wf;
                CUDA_CHECK(cudaMalloc(&d_wf, (size_t) n * 2 * fcopies));
                for (int i = 0; i < fcopies; ++i) {
                    CUDA_CHECK(cudaMemcpy(d_wf + (size_t) i * n, d_f16, n * 2, cudaMemcpyDeviceToDevice));
                }
                half * d_xh;
                CUDA_CHECK(cudaMalloc(&d_xh, sh.k * sizeof(half)));
                CUDA_CHECK(cudaMemset(d_xh, 0x3c, sh.k * sizeof(half)));
                const float one = 1.0f, zero = 0.0f;
                const float us  = time_us([&](int i) {
                    cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, (int) sh.rows, 1, (int) sh.k, &one,
                                 d_wf + (size_t) (i % fcopies) * n, CUDA_R_16F, (int) sh.k, d_xh, CUDA_R_16F,
                                 (int) sh.k, &zero, d_y, CUDA_R_32F, (int) sh.rows, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT);
                }, 200);
                printf("dense f16 GEMV (cuBLAS) %lldx%lld batch 1: %.2f us (%.0f GB/s)\n", (long long) sh.rows,
                       (long long) sh.k, us, n * 2.0 / (us * 1e3));
                char line[160];
                snprintf(line, sizeof line, "%5lldx%-6lld dense f16 cuBLAS GEMV batch 1: %.2f us", (long long) sh.rows,
                         (long long) sh.k, us);
                summary.push_back(line);
                CUDA_CHECK(cudaFree(d_wf));
                CUDA_CHECK(cudaFree(d_xh));
            }
#endif
            CUDA_CHECK(cudaFree(d_f32));
            CUDA_CHECK(cudaFree(d_f16));
        }

        CUDA_CHECK(cudaFree(d_w));
        CUDA_CHECK(cudaFree(d_x));
        CUDA_CHECK(cudaFree(d_y));
        CUDA_CHECK(cudaFree(d_scratch));
    }
    if (!prefill_only) {
        run_swiglu(rng, quick, summary);
        run_mul_mat_vec_group(rng, quick, summary);
        run_mul_mat_vec_add(rng);
        run_rms_norm_quantize(rng, quick);
        run_launch_chain_checks(rng);
        if (!quick) { // timings only: nothing for the sanitizer run
            run_feed_forward_chain_timing(rng, quick);
        }
    }
    if (!decode_only) {
        run_sparse_mma_partial_tiles(rng);
        run_sparse_swiglu(rng, quick);
    }
#ifdef Q4_S24_HARNESS_CUBLAS
    cublasDestroy(blas);
#endif
    CUDA_CHECK(cudaFree(g_workspace));

    printf("\nsummary (copy bandwidth %.0f GB/s)\n", copy_gbs);
    for (const auto & l : summary) {
        printf("%s\n", l.c_str());
    }
    printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "OK", g_failures);
    return g_failures ? 1 : 0;
}
