// One query token's attention in one launch (decode_attention_cuda.cuh). Grid: one cluster of kClusterBlocks thread
// blocks per KV head; block r of a cluster takes the r-th eighth of the cache for the G query heads that share the KV
// head (grouped-query attention: K and V rows are read once for all of them), keeps its scores in shared memory, and
// leaves its softmax maximum, sum and unnormalized output there; after a cluster barrier each block combines a share of
// the outputs from all eight blocks' shared memory (distributed shared memory), so no second launch and no global
// scratch are needed.
#include "decode_attention_cuda.cuh"

#include "q4_s24_cuda_launch.cuh"
#include "q4_s24_cuda_quantize_in_warp.cuh"

#include <cooperative_groups.h>
#include <math.h>

namespace cg = cooperative_groups;

namespace {

// maybe_unused: code for GPUs before compute capability 9.0 has an empty kernel.
constexpr int                  kClusterBlocks        = 8; // the portable cluster size
[[maybe_unused]] constexpr int kDim                  = kDecodeAttentionHeadDim;
[[maybe_unused]] constexpr int kUnroll               = 2; // steps whose loads are in flight at once

// Threads per block for G query heads per KV head: 8 warps, but 4 for G = 8 (the same shared memory for the warps'
// partial outputs, and registers for twice the query values per lane).
__host__ __device__ constexpr int threads_for(int g) {
    return g <= 4 ? 256 : 128;
}

// G: query heads per KV head. Each warp runs its own online softmax over its positions (flash decoding), so the pass
// over the cache needs no barrier; the warps' parts are combined in shared memory, the blocks' across the cluster.
template <int G>
__global__ void __launch_bounds__(threads_for(G)) decode_attention_kernel(const decode_attention_args a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    constexpr int kThreads = threads_for(G);
    constexpr int kWarps   = kThreads / 32;
    // Scores: kLanes lanes per cache position, each with kDims dimensions of the G query heads in registers.
    constexpr int kLanes   = G <= 4 ? 8 : 16;
    constexpr int kDims    = kDim / kLanes; // 16 or 8 halves of a K row: two or one 16-byte loads
    constexpr int kPerWarp = 32 / kLanes;   // positions a warp takes at once
    constexpr int kStep    = kWarps * kPerWarp;

    __shared__ float warp_out[kWarps][G][kDim];
    __shared__ float warp_max[kWarps][G], warp_sum[kWarps][G];
    __shared__ float block_out[G][kDim]; // read by the whole cluster
    __shared__ float block_max[G], block_sum[G];

    cg::cluster_group cluster = cg::this_cluster();
    const int rank      = (int) cluster.block_rank();
    const int kv_head   = (int) blockIdx.x;
    const int warp      = (int) threadIdx.x / 32;
    const int lane      = (int) threadIdx.x % 32;
    const int group     = lane / kLanes;
    const int sub       = lane % kLanes;
    const int per_block = (a.n_kv + kClusterBlocks - 1) / kClusterBlocks;
    const int p0        = min(a.n_kv, rank * per_block);
    const int n         = min(a.n_kv, p0 + per_block) - p0;

    allow_next_kernel();        // the o-projection after it waits for this whole grid before reading the output
    wait_for_previous_kernel(); // q and this token's K and V rows come from the kernel ahead

    // Lane sub's dimensions: 8 at sub * 8 of each kLanes * 8 (so a group's lanes read 128 contiguous bytes of a K row
    // per load); the query scaled by scale * log2(e), so that the softmax takes powers of 2.
    const float log2_scale = a.scale * 1.44269504088896340736f;
    float       qr[G][kDims];
#pragma unroll
    for (int h = 0; h < G; ++h) {
        const float * qh = a.q + (int64_t) (kv_head * G + h) * a.q_head_stride + sub * 8;
#pragma unroll
        for (int i = 0; i < kDims / 4; ++i) {
            const float4 f    = *reinterpret_cast<const float4 *>(qh + (i / 2) * kLanes * 8 + (i % 2) * 4);
            qr[h][4 * i + 0] = f.x * log2_scale;
            qr[h][4 * i + 1] = f.y * log2_scale;
            qr[h][4 * i + 2] = f.z * log2_scale;
            qr[h][4 * i + 3] = f.w * log2_scale;
        }
    }
    const half * k_rows = a.k + (int64_t) kv_head * a.k_head_stride + (int64_t) p0 * a.k_pos_stride + sub * 8;
    const half * v_rows = a.v + (int64_t) kv_head * a.v_head_stride + (int64_t) p0 * a.v_pos_stride + 4 * lane;

    float top[G], sum[G], acc[G][4] = {}; // top and sum are the same in all lanes; acc: dimensions 4 lane .. + 3
#pragma unroll
    for (int h = 0; h < G; ++h) {
        top[h] = -INFINITY;
        sum[h] = 0.0f;
    }
    // kUnroll steps' K and V loads first, then their arithmetic; the trip count is the same for all of a warp's lanes.
    for (int base = warp * kPerWarp; base < n; base += kUnroll * kStep) {
        uint4 k_words[kUnroll][kDims / 8];
        uint2 v_words[kUnroll][kPerWarp]; // the step's kPerWarp V rows, 8 bytes of each per lane
        float bias[kUnroll][kPerWarp];    // the mask, times log2(e); -inf past the block's end
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int j = base + u * kStep + group;
#pragma unroll
            for (int c = 0; c < kDims / 8; ++c) {
                k_words[u][c] = j < n ? *reinterpret_cast<const uint4 *>(k_rows + (int64_t) j * a.k_pos_stride +
                                                                         c * kLanes * 8)
                                      : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int r = 0; r < kPerWarp; ++r) {
                const int jr  = base + u * kStep + r;
                v_words[u][r] = jr < n ? *reinterpret_cast<const uint2 *>(v_rows + (int64_t) jr * a.v_pos_stride)
                                       : make_uint2(0, 0);
                bias[u][r]    = jr >= n ? -INFINITY
                              : a.mask != nullptr ? __half2float(a.mask[p0 + jr]) * 1.44269504088896340736f : 0.0f;
            }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            if (base + u * kStep >= n) {
                break; // a step past the block's end (the same for the whole warp)
            }
            float dot[G] = {};
#pragma unroll
            for (int c = 0; c < kDims / 8; ++c) {
                const half2 * h2 = reinterpret_cast<const half2 *>(&k_words[u][c]);
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const float2 f = __half22float2(h2[e]);
#pragma unroll
                    for (int h = 0; h < G; ++h) {
                        dot[h] = fmaf(qr[h][8 * c + 2 * e], f.x, dot[h]);
                        dot[h] = fmaf(qr[h][8 * c + 2 * e + 1], f.y, dot[h]);
                    }
                }
            }
#pragma unroll
            for (int h = 0; h < G; ++h) {
#pragma unroll
                for (int off = kLanes / 2; off > 0; off >>= 1) {
                    dot[h] += __shfl_xor_sync(0xffffffffu, dot[h], off);
                }
            }
            // Every lane takes the step's kPerWarp scores (a position past the block's end scores -inf).
            float score[kPerWarp][G]; // in units of log2: the softmax's powers of e as powers of 2
#pragma unroll
            for (int r = 0; r < kPerWarp; ++r) {
#pragma unroll
                for (int h = 0; h < G; ++h) {
                    score[r][h] = __shfl_sync(0xffffffffu, dot[h], r * kLanes) + bias[u][r];
                }
            }
            float2 lo[kPerWarp], hi[kPerWarp];
#pragma unroll
            for (int r = 0; r < kPerWarp; ++r) {
                lo[r] = __half22float2(*reinterpret_cast<const half2 *>(&v_words[u][r].x));
                hi[r] = __half22float2(*reinterpret_cast<const half2 *>(&v_words[u][r].y));
            }
#pragma unroll
            for (int h = 0; h < G; ++h) {
                float next = top[h];
#pragma unroll
                for (int r = 0; r < kPerWarp; ++r) {
                    next = fmaxf(next, score[r][h]);
                }
                if (next == -INFINITY) {
                    continue; // nothing unmasked yet: sum and acc stay 0
                }
                const float keep = exp2f(top[h] - next); // 0 when top was -inf
                top[h]           = next;
                sum[h] *= keep;
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    acc[h][i] *= keep;
                }
#pragma unroll
                for (int r = 0; r < kPerWarp; ++r) {
                    const float p = exp2f(score[r][h] - next); // 0 for -inf
                    sum[h] += p;
                    acc[h][0] = fmaf(p, lo[r].x, acc[h][0]);
                    acc[h][1] = fmaf(p, lo[r].y, acc[h][1]);
                    acc[h][2] = fmaf(p, hi[r].x, acc[h][2]);
                    acc[h][3] = fmaf(p, hi[r].y, acc[h][3]);
                }
            }
        }
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {
        *reinterpret_cast<float4 *>(&warp_out[warp][h][4 * lane]) = make_float4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]);
        if (lane == 0) {
            warp_max[warp][h] = top[h];
            warp_sum[warp][h] = sum[h];
        }
    }
    __syncthreads();
    // The block's maximum per head, and each warp's weight relative to it (in place of the warp's maximum): a warp
    // (or a block) with every position masked, or none, gets weight 0, a block keeps -inf as its maximum.
    if (threadIdx.x < G) {
        const int h = (int) threadIdx.x;
        float     m = -INFINITY;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            m = fmaxf(m, warp_max[w][h]);
        }
        float den = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            const float weight = m == -INFINITY ? 0.0f : exp2f(warp_max[w][h] - m);
            warp_max[w][h]     = weight;
            den                = fmaf(weight, warp_sum[w][h], den);
        }
        block_max[h] = m;
        block_sum[h] = den;
    }
    __syncthreads();
    for (int t = (int) threadIdx.x; t < G * kDim; t += kThreads) {
        const int h   = t / kDim;
        const int d   = t % kDim;
        float     num = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            num = fmaf(warp_max[w][h], warp_out[w][h][d], num);
        }
        block_out[h][d] = num;
    }

    // The cluster's blocks combined: a warp per 32 outputs (one quantization scale's worth), spread over the blocks.
    cluster.sync();
    constexpr int kGroups = G * kDim / 32;
    for (int g = rank + kClusterBlocks * warp; g < kGroups; g += kClusterBlocks * kWarps) { // warp-uniform
        const int h = g / (kDim / 32);
        const int d = (g % (kDim / 32)) * 32 + lane;
        float     mb[kClusterBlocks], lb[kClusterBlocks], ob[kClusterBlocks];
#pragma unroll
        for (int b = 0; b < kClusterBlocks; ++b) { // all remote loads first
            mb[b] = *cluster.map_shared_rank(&block_max[h], b);
            lb[b] = *cluster.map_shared_rank(&block_sum[h], b);
            ob[b] = *cluster.map_shared_rank(&block_out[h][d], b);
        }
        float m = -INFINITY;
#pragma unroll
        for (int b = 0; b < kClusterBlocks; ++b) {
            m = fmaxf(m, mb[b]);
        }
        float num = 0.0f, den = 0.0f;
        if (m != -INFINITY) {
#pragma unroll
            for (int b = 0; b < kClusterBlocks; ++b) {
                const float w = exp2f(mb[b] - m);
                num           = fmaf(w, ob[b], num);
                den           = fmaf(w, lb[b], den);
            }
        }
        const float   value = den > 0.0f ? num / den : 0.0f;
        const int64_t i     = (int64_t) (kv_head * G + h) * kDim + d;
        a.out[i]            = value;
        if (a.out_q != nullptr) {
            quantize_in_warp(value, i, a.out_q, a.out_d);
        }
    }
    cluster.sync(); // no block leaves (freeing its shared memory) while another still reads it
#else
    (void) a;
#endif
}

using kernel_t = void (*)(decode_attention_args);

kernel_t kernel_for(int gqa) {
    switch (gqa) {
        case 1: return decode_attention_kernel<1>;
        case 2: return decode_attention_kernel<2>;
        case 4: return decode_attention_kernel<4>;
        case 8: return decode_attention_kernel<8>;
        default: return nullptr;
    }
}

bool aligned16(const void * p) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

} // namespace

bool decode_attention_cuda_accepts(const decode_attention_args & a) {
    if (a.n_head_kv < 1 || a.n_head % a.n_head_kv != 0 || a.n_kv < 1 || a.n_kv > kDecodeAttentionMaxKv) {
        return false;
    }
    const kernel_t kernel = kernel_for(a.n_head / a.n_head_kv);
    return kernel != nullptr && aligned16(a.q) && a.q_head_stride % 4 == 0 && aligned16(a.k) && aligned16(a.v) &&
           a.k_pos_stride % 8 == 0 && a.k_head_stride % 8 == 0 && a.v_pos_stride % 8 == 0 && a.v_head_stride % 8 == 0 &&
           (a.out_q == nullptr) == (a.out_d == nullptr) &&
           device_code_is_sm90(reinterpret_cast<const void *>(kernel));
}

bool decode_attention_cuda(const decode_attention_args & a, cudaStream_t stream) {
#if CUDART_VERSION >= 12000
    if (!decode_attention_cuda_accepts(a)) {
        return false;
    }
    const kernel_t      kernel = kernel_for(a.n_head / a.n_head_kv);
    cudaLaunchAttribute attrs[2];
    attrs[0].id               = cudaLaunchAttributeClusterDimension;
    attrs[0].val.clusterDim.x = 1;
    attrs[0].val.clusterDim.y = kClusterBlocks;
    attrs[0].val.clusterDim.z = 1;
    unsigned int count        = 1;
    if (pdl_enabled(reinterpret_cast<const void *>(kernel))) {
        attrs[1].id                                         = cudaLaunchAttributeProgrammaticStreamSerialization;
        attrs[1].val.programmaticStreamSerializationAllowed = 1;
        count                                               = 2;
    }
    cudaLaunchConfig_t config = {};
    config.gridDim            = dim3((unsigned) a.n_head_kv, kClusterBlocks, 1);
    config.blockDim           = dim3((unsigned) threads_for(a.n_head / a.n_head_kv), 1, 1);
    config.stream             = stream;
    config.attrs              = attrs;
    config.numAttrs           = count;
    return cudaLaunchKernelEx(&config, kernel, a) == cudaSuccess;
#else
    (void) a;
    (void) stream;
    return false;
#endif
}
