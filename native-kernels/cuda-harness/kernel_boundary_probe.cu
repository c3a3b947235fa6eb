// Kernel boundary probe (Hopper): what a decode layer's feed-forward half loses at its kernel boundaries, measured on
// the memory traffic alone (no arithmetic), to size the one design the decode gap still points at: gate / up and the
// down projection in one persistent launch, the down projection's weights streamed in with gate / up's instead of after
// them. The feed-forward chain (q4_s24_cuda_harness ffchain, 26.7 us per layer) moves 68.8 MB per layer, 16.2 us at the
// copy bandwidth; the L2 probe reads 22.9 MB cold in 9.5 us (one launch, events around it). Here every case is a CUDA
// graph of 8 layers with distinct weights (550 MB, so nothing stays in the 60 MB L2), launched with programmatic
// dependent launch as ggml and our kernels are, timed per layer (median of 7 runs of 20 graph launches):
//   one read           each layer's 68.8 MB in one plain-read launch (the fewest boundaries one launch per layer gets)
//   two reads          gate / up (45.9 MB) then down (22.9 MB), plain reads, each waiting for the one before
//   staged             the staged mat-vecs' memory pattern: gate / up in 3584 blocks of 12.8 KB (128 threads), down
//                      in 512 blocks of 44.8 KB (256 threads), each block copying its bytes to shared memory before
//                      its wait and letting the next launch start then; with "+ tiny" the norm before gate / up and the
//                      quantization between them as one-wave launches that read nothing (today's chain of launches)
//   persistent         one launch per layer, one block per SM: its share of the down weights copied to shared memory
//                      first, then its share of gate / up streamed through registers, a grid-wide barrier (what the
//                      down projection's input needs), then the shared copy read; "no barrier" leaves the barrier out
//   all layers         the 550 MB in one launch: the copy bandwidth these sizes can reach
// Usage: kernel_boundary_probe [repeats]
// On the H200 (session 28, docs/benchmarks.md): staged 16.23 us per layer (97% of the 15.77 of one long read), + the two
// one-wave launches 18.30, persistent with the barrier 18.98: the persistent launch loses on bytes alone.
#include "cuda_check.cuh"
#include "graph_timing.cuh"
#include "../src/q4_s24_cuda_async_copy.cuh"
#include "../src/q4_s24_cuda_launch.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>

namespace {

constexpr size_t kGateUpBytes = 2ull * 14336 * 1600; // Llama-3-8B's gate and up, Q4_S24 (1600 bytes per 4096 columns)
constexpr size_t kDownBytes   = 4096ull * 5600;      // its down projection (5600 bytes per 14336 columns)
constexpr size_t kLayerBytes  = kGateUpBytes + kDownBytes;
constexpr int    kLayers      = 8;

// The xor of what a thread read, kept alive by a store nobody expects to happen.
__device__ __forceinline__ void keep(uint32_t acc, unsigned * sink) {
    if (acc == 0x9e3779b9u) {
        atomicAdd(sink, 1u);
    }
}

// Reads n 16-byte words once (grid-stride) after the wait.
__global__ void plain_read_kernel(const uint4 * p, size_t n, unsigned * sink) {
    allow_next_kernel();
    wait_for_previous_kernel();
    uint32_t acc = 0;
    for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
        const uint4 v = __ldg(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    keep(acc, sink);
}

// The staged mat-vec's memory pattern: block b copies bytes [b * block_bytes, (b + 1) * block_bytes) to shared memory
// before its wait, lets the next launch start, waits, then reads its copy.
__global__ void staged_read_kernel(const uint8_t * p, unsigned block_bytes, unsigned * sink) {
    extern __shared__ uint4 staged[];
    const uint4 * src   = reinterpret_cast<const uint4 *>(p + (size_t) blockIdx.x * block_bytes);
    const unsigned words = block_bytes / 16;
    for (unsigned i = threadIdx.x; i < words; i += blockDim.x) {
        cp_async<16>(staged + i, src + i);
    }
    cp_async_commit();
    allow_next_kernel();
    wait_for_previous_kernel();
    cp_async_wait<0>();
    __syncthreads();
    uint32_t acc = 0;
    for (unsigned i = threadIdx.x; i < words; i += blockDim.x) {
        acc ^= staged[i].x ^ staged[i].w;
    }
    keep(acc, sink);
}

// A one-wave launch that reads nothing (stands for the norm and the quantization between the mat-vecs).
__global__ void tiny_kernel(unsigned * sink) {
    allow_next_kernel();
    wait_for_previous_kernel();
    keep(threadIdx.x + blockIdx.x, sink);
}

// One layer in one launch of one block per SM: the block's share of the down weights (down_share bytes) copied to
// shared memory first, then its share of gate / up read (grid-stride, four 16-byte loads in flight per thread and
// step), then (BARRIER) every block of the grid waits for all others to have read theirs, then the shared copy is read.
// arrived: this layer's counter, zero before the launch.
template <bool BARRIER>
__global__ void persistent_layer_kernel(const uint8_t * gate_up, size_t gate_up_bytes, const uint8_t * down,
                                        unsigned down_share, unsigned * arrived, unsigned * sink) {
    extern __shared__ uint4 staged[];
    const uint4 *  dsrc   = reinterpret_cast<const uint4 *>(down + (size_t) blockIdx.x * down_share);
    const unsigned dwords = down_share / 16;
    wait_for_previous_kernel();
    for (unsigned i = threadIdx.x; i < dwords; i += blockDim.x) {
        cp_async<16>(staged + i, dsrc + i);
    }
    cp_async_commit();
    uint32_t       acc    = 0;
    const uint4 *  g      = reinterpret_cast<const uint4 *>(gate_up);
    const size_t   n      = gate_up_bytes / 16;
    const size_t   stride = (size_t) gridDim.x * blockDim.x;
    size_t         i      = (size_t) blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        const uint4 a = __ldg(g + i), b = __ldg(g + i + stride), c = __ldg(g + i + 2 * stride),
                    d = __ldg(g + i + 3 * stride);
        acc ^= a.x ^ b.y ^ c.z ^ d.w;
    }
    for (; i < n; i += stride) {
        acc ^= __ldg(g + i).x;
    }
    if constexpr (BARRIER) {
        __syncthreads();
        if (threadIdx.x == 0) {
            __threadfence();
            atomicAdd(arrived, 1u);
            while (*(volatile unsigned *) arrived < gridDim.x) {
            }
        }
        __syncthreads();
    }
    cp_async_wait<0>();
    __syncthreads();
    for (unsigned j = threadIdx.x; j < dwords; j += blockDim.x) {
        acc ^= staged[j].y;
    }
    allow_next_kernel();
    keep(acc, sink);
}

} // namespace

int main(int argc, char ** argv) {
    const int repeats = argc > 1 ? std::max(3, atoi(argv[1])) : 7;
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("device %s, %d SMs, L2 %.1f MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize / 1e6);
    if (prop.major < 9) {
        printf("needs compute capability 9.0 (programmatic dependent launch)\n");
        return 0;
    }
    const int sms = prop.multiProcessorCount;
    uint8_t *  weights = nullptr;
    unsigned * sink = nullptr, *arrived = nullptr;
    CUDA_CHECK(cudaMalloc(&weights, kLayerBytes * kLayers));
    CUDA_CHECK(cudaMemset(weights, 5, kLayerBytes * kLayers));
    CUDA_CHECK(cudaMalloc(&sink, sizeof(unsigned)));
    CUDA_CHECK(cudaMalloc(&arrived, kLayers * sizeof(unsigned)));
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

    // Median us per layer of a graph of kLayers layers, each enqueued by `layer` (l, its gate / up, its down).
    const auto per_layer_us = [&](const std::function<void(int, const uint8_t *, const uint8_t *)> & layer) {
        CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        CUDA_CHECK(cudaMemsetAsync(arrived, 0, kLayers * sizeof(unsigned), stream));
        for (int l = 0; l < kLayers; ++l) {
            const uint8_t * gate_up = weights + l * kLayerBytes;
            layer(l, gate_up, gate_up + kGateUpBytes);
        }
        cudaGraph_t graph;
        CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
        return median_graph_launch_us(graph, stream, 20, repeats, kLayers);
    };
    const auto row = [&](const char * name, float us) {
        printf("| %s | %.2f | %.0f |\n", name, us, kLayerBytes / (us * 1e3));
    };
    const auto plain = [&](const uint8_t * p, size_t bytes) {
        launch_kernel(plain_read_kernel, dim3(sms * 8), dim3(256), 0, stream, reinterpret_cast<const uint4 *>(p),
                      bytes / 16, sink);
    };
    const unsigned gate_up_block = 8 * 1600, down_block = 8 * 5600; // 4 rows of gate and up; 8 rows of down
    const auto     staged        = [&](const uint8_t * p, size_t bytes, unsigned block_bytes, int threads) {
        launch_kernel(staged_read_kernel, dim3((unsigned) (bytes / block_bytes)), dim3(threads), block_bytes, stream, p,
                      block_bytes, sink);
    };
    const auto tiny = [&](int blocks) { launch_kernel(tiny_kernel, dim3(blocks), dim3(256), 0, stream, sink); };
    CUDA_CHECK(cudaFuncSetAttribute(staged_read_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) down_block));
    // One share per block, whole shares only: the down bytes past the last one (under 0.3% of a layer) are not read,
    // and the GB/s column still counts them.
    const unsigned down_share        = (unsigned) ((kDownBytes / sms + 15) / 16 * 16);
    const unsigned persistent_blocks = (unsigned) (kDownBytes / down_share);
    const auto     persistent        = [&](auto kernel, int l, const uint8_t * gate_up, const uint8_t * down) {
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) down_share));
        // The grid barrier needs every block resident at once, or it never returns.
        int per_sm = 0;
        CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 1024, down_share));
        if ((long) per_sm * sms < (long) persistent_blocks) {
            fprintf(stderr, "persistent layer: %u blocks cannot all be resident (%d per SM)\n", persistent_blocks, per_sm);
            exit(1);
        }
        const unsigned blocks = persistent_blocks;
        launch_kernel(kernel, dim3(blocks), dim3(1024), down_share, stream, gate_up, kGateUpBytes, down, down_share,
                      arrived + l, sink);
    };

    printf("per layer: %.1f MB (gate / up %.1f, down %.1f), %d layers per graph\n\n", kLayerBytes / 1e6,
           kGateUpBytes / 1e6, kDownBytes / 1e6, kLayers);
    printf("| case | us per layer | GB/s |\n|---|---:|---:|\n");
    row("one read per layer", per_layer_us([&](int, const uint8_t * g, const uint8_t *) { plain(g, kLayerBytes); }));
    row("two reads per layer (gate / up, down)", per_layer_us([&](int, const uint8_t * g, const uint8_t * d) {
            plain(g, kGateUpBytes);
            plain(d, kDownBytes);
        }));
    row("staged (gate / up, down)", per_layer_us([&](int, const uint8_t * g, const uint8_t * d) {
            staged(g, kGateUpBytes, gate_up_block, 128);
            staged(d, kDownBytes, down_block, 256);
        }));
    row("staged + tiny (norm, gate / up, quantization, down)",
        per_layer_us([&](int, const uint8_t * g, const uint8_t * d) {
            tiny(16);
            staged(g, kGateUpBytes, gate_up_block, 128);
            tiny(56);
            staged(d, kDownBytes, down_block, 256);
        }));
    row("persistent, no barrier", per_layer_us([&](int l, const uint8_t * g, const uint8_t * d) {
            persistent(persistent_layer_kernel<false>, l, g, d);
        }));
    row("persistent, grid barrier", per_layer_us([&](int l, const uint8_t * g, const uint8_t * d) {
            persistent(persistent_layer_kernel<true>, l, g, d);
        }));
    row("persistent + tiny (norm before)", per_layer_us([&](int l, const uint8_t * g, const uint8_t * d) {
            tiny(16);
            persistent(persistent_layer_kernel<true>, l, g, d);
        }));
    row("all layers in one read", per_layer_us([&](int l, const uint8_t *, const uint8_t *) {
            if (l == 0) {
                plain(weights, kLayerBytes * kLayers);
            }
        }));
    CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
}
