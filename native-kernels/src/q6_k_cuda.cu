// Batch-1 Q6_K mat-vec (q6_k_cuda.cuh). ggml's own kernel for it (mul_mat_vec_q) read the 8B model's output matrix
// at ~1.7 TB/s on the H200, 250 us of every decode token: its threads read each 210-byte block in 2- and 4-byte pieces
// (the blocks are only 2-byte aligned), too few bytes in flight. Here every warp copies whole rows into shared memory
// with 16-byte asynchronous copies, several rows ahead, and computes from there.
#include "q6_k_cuda.cuh"
#include "q4_s24_cuda_async_copy.cuh"
#include "q4_s24_cuda_launch.cuh"
#include "q4_s24_cuda_word_ops.cuh"

#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>

namespace {

// ggml's block_q6_K (ggml-common.h): 256 weights as ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16] (one
// per 16 weights), fp16 d. Weight 128h + 32s + l (half h, series s 0..3, l 0..31) is
// ((ql[64h + l + 32(s & 1)] >> 4(s >> 1)) & 15 | ((qh[32h + l] >> 2s) & 3) << 4) - 32, times d and scales[8h + 2s + l/16].
constexpr int kQ6KBytes       = 210;
constexpr int kQ6KQhOffset    = 128;
constexpr int kQ6KScaleOffset = 192;
constexpr int kQ6KDOffset     = 208;

// Bytes of a row's blocks (k a multiple of 256).
constexpr int row_blocks_bytes(int64_t k) {
    return (int) (k / 256) * kQ6KBytes;
}

// Four unsigned 6-bit weights times four int8 activations, added to c.
__device__ __forceinline__ int dot4_u8_s8(uint32_t weights, uint32_t acts, int c) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
    int r;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(r) : "r"(weights), "r"(acts), "r"(c));
    return r;
#else
    for (int i = 0; i < 4; ++i) {
        c += (int) ((weights >> (8 * i)) & 0xFF) * (int) (int8_t) (acts >> (8 * i));
    }
    return c;
#endif
}

// One lane's activations: the 128 of its half-block as int8 words, their 4 scales (one per 32) and 8 sums of 16, times
// -32 (the weights' offset folded into the dot product). Loaded once per kernel: a lane keeps its half-block for every
// row (k <= 4096, so a row has at most 32 half-blocks).
struct half_block_acts {
    uint32_t q[32];
    float    d[4];
    int      offsets[8];
};

// Dot product of half-block hb of a row in shared memory with the lane's activations. A row starts 16-byte aligned and
// a block is 210 bytes, so odd blocks start 2 bytes past a word: words are read aligned and realigned with prmt. Each
// read stays inside the row because a row has an even number of blocks (shape_fits): the last block is odd, and its
// last aligned word ends at its own last byte.
__device__ __forceinline__ float dot_half_block(const uint8_t * row, int hb, const half_block_acts & acts) {
    const int       b        = hb >> 1;
    const int       h        = hb & 1;
    const int       skew     = (b & 1) * 2;
    const uint32_t  selector = skew ? 0x5432 : 0x3210;
    const uint8_t * block    = row + b * kQ6KBytes - skew;
    const uint32_t * ql      = reinterpret_cast<const uint32_t *>(block + 64 * h);
    const uint32_t * qh      = reinterpret_cast<const uint32_t *>(block + kQ6KQhOffset + 32 * h);
    const uint32_t * scales  = reinterpret_cast<const uint32_t *>(block + kQ6KScaleOffset + 8 * h);
    const uint32_t   d_word  = *reinterpret_cast<const uint32_t *>(block + kQ6KDOffset);
    const float      d       = __half2float(__ushort_as_half((unsigned short) (d_word >> (8 * skew))));

    uint32_t low[16], high[8];
#pragma unroll
    for (int j = 0; j < 16; ++j) {
        low[j] = select_bytes(ql[j], ql[j + 1], selector);
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        high[j] = select_bytes(qh[j], qh[j + 1], selector);
    }
    const uint32_t scale_words[2] = { select_bytes(scales[0], scales[1], selector),
                                      select_bytes(scales[1], scales[2], selector) };

    const uint32_t low_mask = 0x0F0F0F0Fu, high_mask = 0x30303030u;
    float          sum      = 0.0f;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
        int acc = 0;
#pragma unroll
        for (int group16 = 0; group16 < 2; ++group16) {
            int dot = acts.offsets[2 * s + group16];
#pragma unroll
            for (int jj = 0; jj < 4; ++jj) {
                const int      j  = 4 * group16 + jj;
                const uint32_t lo = low[j + 8 * (s & 1)] >> (4 * (s >> 1));
                const uint32_t hi = s < 2 ? high[j] << (4 - 2 * s) : high[j] >> (2 * s - 4); // bits 2s.. to 4..
                dot               = dot4_u8_s8(and_or(lo, low_mask, hi & high_mask), acts.q[8 * s + j], dot);
            }
            const int sc = (int) (int8_t) (scale_words[s >> 1] >> (8 * (2 * (s & 1) + group16)));
            acc += dot * sc;
        }
        sum += acts.d[s] * (float) acc;
    }
    return d * sum;
}

// Persistent: warp g of the grid takes rows g, g + step, ... (step = all warps of the grid), each copied whole into the
// warp's own STAGES shared buffers, STAGES - 1 rows ahead of the one it computes; lane l computes half-block l of each
// row. The weights are copied from before the wait for the kernel ahead (they do not depend on it), the activations
// after it, straight into registers.
template <int STAGES>
__global__ void q6_k_mul_mat_vec_kernel(const uint8_t * __restrict__ w, int64_t nrows, int half_blocks, int row_bytes,
                                        size_t w_row_bytes, const int8_t * act_q, const float * act_d, float * y) {
    extern __shared__ __align__(16) uint8_t shared[];
    const int     warps          = blockDim.x / 32;
    const int     warp           = threadIdx.x / 32;
    const int     lane           = threadIdx.x % 32;
    uint8_t *     rows           = shared + warp * STAGES * row_bytes;
    const int64_t step           = (int64_t) gridDim.x * warps;
    const int     copies_per_row = row_bytes / 16;

    auto copy_row = [&](int64_t row, int stage) {
        if (row < nrows) {
            const uint8_t * src = w + row * w_row_bytes;
            uint8_t *       dst = rows + stage * row_bytes;
            for (int c = lane; c < copies_per_row; c += 32) {
                cp_async<16>(dst + 16 * c, src + 16 * c);
            }
        }
        cp_async_commit(); // also when empty: each loop step waits for a fixed count of groups
    };

    int64_t row = (int64_t) blockIdx.x * warps + warp;
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        copy_row(row + s * step, s);
    }
    allow_next_kernel(); // safe this early: a dependent's griddepcontrol.wait waits for this whole grid to complete
    wait_for_previous_kernel();
    half_block_acts acts           = {};
    const bool      has_half_block = lane < half_blocks; // k = 2048: lanes 16..31 have none
    if (has_half_block) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const int4 v = reinterpret_cast<const int4 *>(act_q + 128 * lane)[j];
            acts.q[4 * j] = v.x, acts.q[4 * j + 1] = v.y, acts.q[4 * j + 2] = v.z, acts.q[4 * j + 3] = v.w;
        }
        const float4 d = reinterpret_cast<const float4 *>(act_d)[lane];
        acts.d[0] = d.x, acts.d[1] = d.y, acts.d[2] = d.z, acts.d[3] = d.w;
#pragma unroll
        for (int g = 0; g < 8; ++g) {
            int total = 0;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                total = dot4_u8_s8(0x01010101u, acts.q[4 * g + j], total);
            }
            acts.offsets[g] = -32 * total;
        }
    }

    int stage = 0;
    for (; row < nrows; row += step) {
        copy_row(row + (STAGES - 1) * step, stage == 0 ? STAGES - 1 : stage - 1);
        cp_async_wait<STAGES - 1>();
        __syncwarp(); // every lane's copies of this row have landed
        float sum = has_half_block ? dot_half_block(rows + stage * row_bytes, lane, acts) : 0.0f;
        sum       = warp_sum(sum);
        if (lane == 0) {
            y[row] = sum;
        }
        __syncwarp(); // the buffer is refilled next step only after every lane has read it
        stage = stage + 1 == STAGES ? 0 : stage + 1;
    }
}

constexpr size_t kMaxShared = 48 * 1024; // the default limit: no per-kernel attribute to raise first

size_t shared_bytes(int stages, int warps, int64_t k) {
    return (size_t) warps * stages * (size_t) row_blocks_bytes(k);
}

template <int STAGES>
bool launch_shape(int warps, const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, q4_s24_cuda_act act,
                  float * y, cudaStream_t stream) {
    const int    half_blocks = (int) (k / 128);
    const int    row_bytes   = row_blocks_bytes(k);
    const size_t shared      = shared_bytes(STAGES, warps, k);
    if (shared > kMaxShared) {
        return false;
    }
    auto kernel = q6_k_mul_mat_vec_kernel<STAGES>;
    // Thread blocks resident on the whole GPU at once: asked of the runtime once per device, warps and width (three
    // host queries per launch otherwise, every token where CUDA graphs are off). 0 unknown, -1 the query failed.
    static std::atomic<int> resident_cache[64][9][2];
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) {
        (void) cudaGetLastError();
        return false;
    }
    std::atomic<int> & cached   = resident_cache[device][warps][k == 4096 ? 1 : 0];
    int                resident = cached.load(std::memory_order_relaxed);
    if (resident == 0) {
        int per_sm = 0, sm_count = 0;
        const bool known =
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 32 * warps, shared) == cudaSuccess &&
            cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device) == cudaSuccess && per_sm > 0;
        (void) cudaGetLastError(); // a failed query means: not taken here
        resident = known ? per_sm * sm_count : -1;
        cached.store(resident, std::memory_order_relaxed);
    }
    if (resident < 0) {
        return false;
    }
    const int64_t blocks = std::min<int64_t>((nrows + warps - 1) / warps, resident);
    launch_kernel(kernel, dim3((unsigned) blocks), dim3(32 * warps), shared, stream,
                  static_cast<const uint8_t *>(w), nrows, half_blocks, row_bytes, w_row_bytes,
                  static_cast<const int8_t *>(act.q), static_cast<const float *>(act.d), y);
    return true;
}

bool shape_fits(int64_t nrows, int64_t k, size_t w_row_bytes, const void * w) {
    return nrows > 0 && (k == 2048 || k == 4096) && w_row_bytes % 16 == 0 &&
           w_row_bytes >= (size_t) row_blocks_bytes(k) && reinterpret_cast<uintptr_t>(w) % 16 == 0;
}

} // namespace

// Where it was measured against ggml's kernel: the vocabulary projection (tens of thousands of rows) on an H200. Smaller
// Q6_K matrices (Q4_K_M's 1024-row v projection: 4.23 us here against a plain read's 3.20, ggml's not measured) and
// older devices keep ggml's kernel.
constexpr int64_t kMinRowsTaken = 16384;

bool q6_k_cuda_mul_mat_vec_takes(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes) {
    return nrows >= kMinRowsTaken && shape_fits(nrows, k, w_row_bytes, w) &&
           device_code_is_sm90(reinterpret_cast<const void *>(q6_k_mul_mat_vec_kernel<3>));
}

bool q6_k_cuda_mul_mat_vec_shape(int stages, int warps, const void * w, int64_t nrows, int64_t k, size_t w_row_bytes,
                                 q4_s24_cuda_act act, float * y, cudaStream_t stream) {
    if (!shape_fits(nrows, k, w_row_bytes, w) || warps < 1 || warps > 8) {
        return false;
    }
    switch (stages) {
        case 2: return launch_shape<2>(warps, w, nrows, k, w_row_bytes, act, y, stream);
        case 3: return launch_shape<3>(warps, w, nrows, k, w_row_bytes, act, y, stream);
        case 4: return launch_shape<4>(warps, w, nrows, k, w_row_bytes, act, y, stream);
        default: return false;
    }
}

// Three rows in flight per warp, four warps per block (harness, H200: 105.5 us for the 8B output matrix; the other
// shapes that fit 104.4-106.6 us).
bool q6_k_cuda_mul_mat_vec(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, q4_s24_cuda_act act,
                           float * y, cudaStream_t stream) {
    return q6_k_cuda_mul_mat_vec_shape(3, 4, w, nrows, k, w_row_bytes, act, y, stream);
}
