#include "greedy_argmax_cuda.cuh"

#include <climits>
#include <cmath>

namespace {

constexpr int threads_per_block = 256;
constexpr int max_blocks = 128; // ~1 float4 per thread for Llama 3's vocabulary; the second launch reduces <= 256

struct best_logit {
    float value;
    int index;
};

// Higher value first, then the lower index; NaN compares false both ways, so it never replaces anything.
__device__ __forceinline__ void keep_better(best_logit & best, float value, int index) {
    if (value > best.value || (value == best.value && index < best.index)) {
        best.value = value;
        best.index = index;
    }
}

// The block's best into thread 0 (threads_per_block threads).
__device__ best_logit block_best(best_logit best) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        keep_better(best, __shfl_xor_sync(0xffffffffu, best.value, offset), __shfl_xor_sync(0xffffffffu, best.index, offset));
    }
    __shared__ best_logit per_warp[threads_per_block / 32];
    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (lane == 0) {
        per_warp[warp] = best;
    }
    __syncthreads();
    if (warp == 0) {
        best = lane < threads_per_block / 32 ? per_warp[lane] : best_logit{-INFINITY, INT_MAX};
        for (int offset = 16; offset > 0; offset >>= 1) {
            keep_better(best, __shfl_xor_sync(0xffffffffu, best.value, offset), __shfl_xor_sync(0xffffffffu, best.index, offset));
        }
    }
    return best;
}

__global__ void __launch_bounds__(threads_per_block) argmax_partial(const float * __restrict__ x, int n,
                                                                      best_logit * __restrict__ partial) {
    best_logit best{-INFINITY, INT_MAX};
    const int stride = gridDim.x * threads_per_block;
    const int n4 = n / 4;
    for (int i = blockIdx.x * threads_per_block + threadIdx.x; i < n4; i += stride) {
        const float4 v = reinterpret_cast<const float4 *>(x)[i];
        keep_better(best, v.x, 4 * i);
        keep_better(best, v.y, 4 * i + 1);
        keep_better(best, v.z, 4 * i + 2);
        keep_better(best, v.w, 4 * i + 3);
    }
    for (int i = 4 * n4 + blockIdx.x * threads_per_block + threadIdx.x; i < n; i += stride) {
        keep_better(best, x[i], i);
    }
    best = block_best(best);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = best;
    }
}

__global__ void __launch_bounds__(threads_per_block) argmax_final(const float * __restrict__ x,
                                                                    const best_logit * __restrict__ partial, int n_partial,
                                                                    int32_t * __restrict__ dst) {
    best_logit best = threadIdx.x < n_partial ? partial[threadIdx.x] : best_logit{-INFINITY, INT_MAX};
    best = block_best(best);
    if (threadIdx.x == 0) {
        // the host sampler's answers where nothing is higher than its first candidate
        *dst = best.index == INT_MAX || isnan(x[0]) ? 0 : best.index;
    }
}

int blocks_for(int64_t n) {
    const int64_t needed = (n / 4 + threads_per_block - 1) / threads_per_block;
    return (int) (needed < 1 ? 1 : needed > max_blocks ? max_blocks : needed);
}

} // namespace

size_t greedy_argmax_cuda_scratch_bytes(int64_t n) {
    return sizeof(best_logit) * (size_t) blocks_for(n);
}

bool greedy_argmax_cuda(const float * x, int64_t n, void * scratch, int32_t * dst, cudaStream_t stream) {
    // below 2^30 values the tail's index (4 * n/4 + up to the grid's stride) stays an int
    if (n < 4096 || n >= (int64_t) 1 << 30 || reinterpret_cast<uintptr_t>(x) % 16 != 0) {
        return false;
    }
    const int blocks = blocks_for(n);
    best_logit * partial = static_cast<best_logit *>(scratch);
    argmax_partial<<<blocks, threads_per_block, 0, stream>>>(x, (int) n, partial);
    argmax_final<<<1, threads_per_block, 0, stream>>>(x, partial, blocks, dst);
    return true;
}
