// Checks the one-launch decode attention (src/decode_attention_cuda.cu) against a CPU reference in double precision on
// fresh random queries, caches and masks, and its quantized copy against the quantization of its own output; then
// times it on Llama-3-8B's and Llama-3-70B's attention at cache lengths 256-4096, beside a plain read of the same K and
// V bytes (measured in the same run). Built and run by run.sh (needs a GPU of compute capability 9.0):
//   decode_attention_cuda_harness SEED [quick]   (quick: the checks alone, for memcheck)
#include "../src/decode_attention_cuda.cuh"

#include <cooperative_groups.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#define CHECK(call)                                                                                    \
    do {                                                                                               \
        cudaError_t err_ = (call);                                                                     \
        if (err_ != cudaSuccess) {                                                                     \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(err_));              \
            exit(2);                                                                                   \
        }                                                                                              \
    } while (0)

namespace {

constexpr int D = kDecodeAttentionHeadDim;

struct attention_case {
    int n_head, n_head_kv, n_kv;
    int n_used;     // positions 0 .. n_used - 1 unmasked, the rest -inf (a padded cache); n_kv: no mask at all
    int pos_pad;    // extra halves per cache row beyond n_head_kv * 128 (a strided view)
};

// Host copies of one case's inputs, laid out as llama.cpp's KV cache is: row p holds every KV head's 128 values.
struct attention_inputs {
    std::vector<float> q;
    std::vector<half>  k, v, mask;
    int64_t            pos_stride;
    float              scale;
};

attention_inputs make_inputs(std::mt19937 & rng, const attention_case & c) {
    attention_inputs in;
    in.pos_stride = (int64_t) c.n_head_kv * D + c.pos_pad;
    in.scale      = 1.0f / sqrtf((float) D);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    in.q.resize((size_t) c.n_head * D);
    for (float & x : in.q) {
        x = 2.0f * normal(rng);
    }
    in.k.resize((size_t) c.n_kv * in.pos_stride);
    in.v.resize(in.k.size());
    for (size_t i = 0; i < in.k.size(); ++i) {
        in.k[i] = __float2half(normal(rng));
        in.v[i] = __float2half(normal(rng));
    }
    if (c.n_used < c.n_kv) {
        in.mask.resize((size_t) c.n_kv);
        for (int p = 0; p < c.n_kv; ++p) {
            in.mask[p] = __float2half(p < c.n_used ? 0.0f : -INFINITY);
        }
    }
    return in;
}

std::vector<double> reference(const attention_case & c, const attention_inputs & in) {
    const int           g = c.n_head / c.n_head_kv;
    std::vector<double> out((size_t) c.n_head * D, 0.0);
    std::vector<double> s((size_t) c.n_kv);
    for (int h = 0; h < c.n_head; ++h) {
        const int64_t kv = (int64_t) (h / g) * D;
        double        m  = -INFINITY;
        for (int p = 0; p < c.n_kv; ++p) {
            double dot = 0.0;
            for (int d = 0; d < D; ++d) {
                dot += (double) in.q[(size_t) h * D + d] * (double) __half2float(in.k[p * in.pos_stride + kv + d]);
            }
            s[p] = dot * in.scale + (in.mask.empty() ? 0.0 : (double) __half2float(in.mask[p]));
            m    = std::max(m, s[p]);
        }
        double sum = 0.0;
        for (int p = 0; p < c.n_kv; ++p) {
            s[p] = std::exp(s[p] - m);
            sum += s[p];
        }
        for (int p = 0; p < c.n_kv; ++p) {
            for (int d = 0; d < D; ++d) {
                out[(size_t) h * D + d] += s[p] / sum * (double) __half2float(in.v[p * in.pos_stride + kv + d]);
            }
        }
    }
    return out;
}

struct device_case {
    float * q = nullptr, *out = nullptr, *out_d = nullptr;
    half *  k = nullptr, *v = nullptr, *mask = nullptr;
    int8_t * out_q = nullptr;
    decode_attention_args args = {};

    device_case(const attention_case & c, const attention_inputs & in) {
        CHECK(cudaMalloc(&q, in.q.size() * sizeof(float)));
        CHECK(cudaMalloc(&k, in.k.size() * sizeof(half)));
        CHECK(cudaMalloc(&v, in.v.size() * sizeof(half)));
        CHECK(cudaMalloc(&out, (size_t) c.n_head * D * sizeof(float)));
        CHECK(cudaMalloc(&out_q, (size_t) c.n_head * D));
        CHECK(cudaMalloc(&out_d, (size_t) c.n_head * D / 32 * sizeof(float)));
        CHECK(cudaMemcpy(q, in.q.data(), in.q.size() * sizeof(float), cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(k, in.k.data(), in.k.size() * sizeof(half), cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(v, in.v.data(), in.v.size() * sizeof(half), cudaMemcpyHostToDevice));
        if (!in.mask.empty()) {
            CHECK(cudaMalloc(&mask, in.mask.size() * sizeof(half)));
            CHECK(cudaMemcpy(mask, in.mask.data(), in.mask.size() * sizeof(half), cudaMemcpyHostToDevice));
        }
        args = { q, D, k, in.pos_stride, D, v, in.pos_stride, D, mask, c.n_kv, c.n_head, c.n_head_kv, in.scale,
                 out, out_q, out_d };
    }

    ~device_case() {
        cudaFree(q);
        cudaFree(k);
        cudaFree(v);
        cudaFree(mask);
        cudaFree(out);
        cudaFree(out_q);
        cudaFree(out_d);
    }
};

// Largest error against the reference, relative to the largest reference value; and whether the quantized copy is
// exactly the quantization of the float output (the mat-vec's own arithmetic: amax / 127, round to nearest even).
bool check(std::mt19937 & rng, const attention_case & c) {
    const attention_inputs in  = make_inputs(rng, c);
    const auto             ref = reference(c, in);
    device_case            dev(c, in);
    if (!decode_attention_cuda(dev.args, nullptr)) {
        printf("FAIL heads %d/%d n_kv %d: not accepted\n", c.n_head, c.n_head_kv, c.n_kv);
        return false;
    }
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    const size_t        n = ref.size();
    std::vector<float>  out(n), d(n / 32);
    std::vector<int8_t> q(n);
    CHECK(cudaMemcpy(out.data(), dev.out, n * sizeof(float), cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(q.data(), dev.out_q, n, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(d.data(), dev.out_d, n / 32 * sizeof(float), cudaMemcpyDeviceToHost));
    double max_err = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < n; ++i) {
        max_err = std::max(max_err, std::fabs((double) out[i] - ref[i]));
        max_ref = std::max(max_ref, std::fabs(ref[i]));
    }
    int bad_q = 0;
    for (size_t s = 0; s < n / 32; ++s) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) {
            amax = std::max(amax, std::fabs(out[s * 32 + j]));
        }
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        bad_q += d[s] != amax / 127.0f;
        for (int j = 0; j < 32; ++j) {
            bad_q += q[s * 32 + j] != (int8_t) std::nearbyint(out[s * 32 + j] * inv);
        }
    }
    const double rel = max_err / std::max(max_ref, 1e-30);
    const bool   ok  = rel < 1e-4 && bad_q == 0 && std::isfinite(rel);
    printf("%s heads %2d/%d n_kv %4d unmasked %4d row pad %d: max error %.2e of max %.3f, quantized copy %d wrong\n",
           ok ? "ok  " : "FAIL", c.n_head, c.n_head_kv, c.n_kv, c.n_used, c.pos_pad, rel, max_ref, bad_q);
    return ok;
}

__global__ void read_bytes_kernel(const uint4 * __restrict__ p, int64_t n, unsigned * sink) {
    uint4 acc = {};
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x) {
        const uint4 x = p[i];
        acc.x ^= x.x;
        acc.y ^= x.y;
        acc.z ^= x.z;
        acc.w ^= x.w;
    }
    if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345678u) {
        *sink = 1; // never, in practice: keeps the loads
    }
}

// Microseconds per launch, as llama.cpp runs kernels: 20 launches captured in one CUDA graph (programmatic launches
// become programmatic edges), the graph replayed; after a warm-up replay.
template <typename Launch> float time_us(Launch launch, int replays) {
    constexpr int kPerGraph = 20;
    cudaStream_t  stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaGraph_t graph;
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < kPerGraph; ++i) {
        launch(stream);
    }
    CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CHECK(cudaGraphLaunch(exec, stream));
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < replays; ++i) {
        CHECK(cudaGraphLaunch(exec, stream));
    }
    CHECK(cudaEventRecord(stop, stream));
    CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(stop));
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(graph));
    CHECK(cudaStreamDestroy(stream));
    return ms * 1000.0f / (float) (replays * kPerGraph);
}

void time_case(std::mt19937 & rng, const attention_case & c, unsigned * sink) {
    const attention_inputs in = make_inputs(rng, c);
    device_case            dev(c, in);
    const float attention = time_us([&](cudaStream_t s) {
        if (!decode_attention_cuda(dev.args, s)) {
            fprintf(stderr, "not launched\n");
            exit(2);
        }
    }, 50);
    CHECK(cudaGetLastError());
    // The K and V bytes the launch reads (whole rows of the cache here: every KV head's values), in one launch.
    const int64_t n16  = (int64_t) in.k.size() * (int64_t) sizeof(half) / 16;
    const float   read = time_us([&](cudaStream_t s) {
        read_bytes_kernel<<<264, 256, 0, s>>>(reinterpret_cast<const uint4 *>(dev.k), n16, sink);
    }, 50);
    CHECK(cudaGetLastError());
    printf("heads %2d/%d n_kv %4d: attention %6.2f us per launch (in a CUDA graph; K and V in L2: %.1f MB); "
           "reading its K bytes alone %6.2f us\n", c.n_head, c.n_head_kv, c.n_kv, attention,
           2.0 * (double) in.k.size() * sizeof(half) / 1e6, read);
}

// Launch costs to read the attention's timings against: an empty kernel of the same grid, plain and as a cluster of 8
// blocks, each with and without programmatic launch, and one that only does the cluster's two barriers.
template <bool kClusterSync> __global__ void empty_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    asm volatile("griddepcontrol.wait;" ::: "memory");
    if (kClusterSync) {
        cooperative_groups::this_cluster().sync();
        cooperative_groups::this_cluster().sync();
    }
#endif
}

void time_launch_costs() {
    const auto launch = [](void (*kernel)(), bool cluster, bool pdl, cudaStream_t s) {
        cudaLaunchAttribute attrs[2];
        unsigned            count = 0;
        if (cluster) {
            attrs[count].id             = cudaLaunchAttributeClusterDimension;
            attrs[count].val.clusterDim = { 1, 8, 1 };
            ++count;
        }
        if (pdl) {
            attrs[count].id                                         = cudaLaunchAttributeProgrammaticStreamSerialization;
            attrs[count].val.programmaticStreamSerializationAllowed = 1;
            ++count;
        }
        cudaLaunchConfig_t config = {};
        config.gridDim            = dim3(8, 8, 1);
        config.blockDim           = dim3(256, 1, 1);
        config.stream             = s;
        config.attrs              = attrs;
        config.numAttrs           = count;
        CHECK(cudaLaunchKernelEx(&config, kernel));
    };
    for (int cluster = 0; cluster < 2; ++cluster) {
        for (int pdl = 0; pdl < 2; ++pdl) {
            const float us = time_us([&](cudaStream_t s) { launch(empty_kernel<false>, cluster, pdl, s); }, 50);
            printf("empty kernel, 64 blocks%s%s: %.2f us per launch\n", cluster ? " in clusters of 8" : "",
                   pdl ? ", programmatic launch" : "", us);
        }
    }
    const float us = time_us([&](cudaStream_t s) { launch(empty_kernel<true>, true, true, s); }, 50);
    printf("empty kernel, 64 blocks in clusters of 8, programmatic launch, two cluster barriers: %.2f us per launch\n", us);
}

} // namespace

int main(int argc, char ** argv) {
    const unsigned seed  = argc > 1 ? (unsigned) atoi(argv[1]) : 1;
    const bool     quick = argc > 2 && strcmp(argv[2], "quick") == 0;
    std::mt19937   rng(seed);
    printf("decode attention harness, seed %u\n", seed);
    const attention_case checks[] = {
        { 32, 8, 256, 130, 0 },   // Llama-3-8B, a padded cache partly used (the last blocks see only -inf)
        { 32, 8, 1024, 1024, 0 }, // no mask
        { 32, 8, 4096, 4000, 0 }, // the longest cache it takes
        { 32, 8, 5, 5, 0 },       // fewer positions than blocks
        { 32, 8, 300, 1, 8 },     // one unmasked position; strided rows
        { 64, 8, 512, 400, 0 },   // Llama-3-70B (8 query heads per KV head)
        { 16, 8, 777, 700, 16 },  // 2 per KV head, a length that splits unevenly
        { 8, 8, 256, 200, 0 },    // no grouping
    };
    int failures = 0;
    for (const attention_case & c : checks) {
        if (quick && c.n_kv > 1024) {
            continue;
        }
        failures += check(rng, c) ? 0 : 1;
    }
    if (!quick) {
        unsigned * sink = nullptr;
        CHECK(cudaMalloc(&sink, sizeof(unsigned)));
        time_launch_costs();
        time_case(rng, { 32, 8, 8, 8, 0 }, sink); // one position per block: the fixed cost
        for (int n_kv : { 256, 512, 1024, 2048, 4096 }) {
            time_case(rng, { 32, 8, n_kv, n_kv - 100, 0 }, sink);
        }
        time_case(rng, { 64, 8, 1024, 924, 0 }, sink);
        CHECK(cudaFree(sink));
    }
    printf("%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
