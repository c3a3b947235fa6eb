// Q4_S24 CUDA kernels: activation quantization, decode mat-vec (batch 1..8), dequantization, get_rows.
#include "q4_s24_cuda.cuh"
#include "q4_s24_cuda_async_copy.cuh"
#include "q4_s24_cuda_env_flag.cuh"
#include "q4_s24_cuda_launch.cuh"
#include "q4_s24_cuda_layout.cuh"
#include "q4_s24_cuda_quantize_in_warp.cuh"
#include "q4_s24_cuda_swiglu.cuh"
#include "q4_s24_cuda_word_ops.cuh"

#include <stdio.h>
#include <stdlib.h>

#include <algorithm>

namespace {

__device__ __forceinline__ uint32_t load_word(const uint8_t * p) {
    return __ldg(reinterpret_cast<const uint32_t *>(p));
}

// One sub-block of one row, ready for four dp4a: dot m (0..3) multiplies weights[m] by
// select_bytes(act[m], act[m + 4], selectors[m]), where act[0..7] are the sub-block's 32 int8 activations as
// words. Dot m takes the kept values {2m, 8 + 2m, 2m + 1, 9 + 2m}: kept value k belongs to group k / 2, so these
// come from activation words m (groups 2m's columns: value 2m, 2m + 1) and m + 4 (values 8 + 2m, 9 + 2m). This
// pairing makes both halves cheap to build:
// - selectors: idx byte b holds the positions of kept values b, 4 + b, 8 + b, 12 + b at bits 0, 2, 4, 6, so
//   (idx & 0x33333333) has, per byte, the position of kept value b in its low nibble and that of 8 + b in its high
//   nibble: exactly the selector nibbles of dots 0 (bytes 0, 1) and 1 (bytes 2, 3) once the high nibbles get +4
//   (they pick from the second word); idx >> 2 gives dots 2 and 3 the same way. Five instructions for all four.
// - weights: nibble byte b holds u(b) low and u(8 + b) high (u = q + 8). Both nibbles moved to the high half of a
//   byte with the top bit flipped are the two's complement of 16 q, so no subtraction (the 1/16 goes into the
//   scale); then one prmt per dot interleaves low and high: bytes (lo b, hi b, lo b+1, hi b+1).
__device__ __forceinline__ void decode_sub_block(uint32_t qs0, uint32_t qs1, uint32_t idx, int weights[4],
                                                 uint32_t selectors[4]) {
    const uint32_t s01 = and_or(idx, 0x33333333u, 0x40404040u);
    const uint32_t s23 = and_or(idx >> 2, 0x33333333u, 0x40404040u);
    selectors[0] = s01;
    selectors[1] = s01 >> 16;
    selectors[2] = s23;
    selectors[3] = s23 >> 16;
    const uint32_t lo0 = and_xor(qs0 << 4, 0xF0F0F0F0u, 0x80808080u);
    const uint32_t hi0 = and_xor(qs0, 0xF0F0F0F0u, 0x80808080u);
    const uint32_t lo1 = and_xor(qs1 << 4, 0xF0F0F0F0u, 0x80808080u);
    const uint32_t hi1 = and_xor(qs1, 0xF0F0F0F0u, 0x80808080u);
    weights[0] = (int) __byte_perm(lo0, hi0, 0x5140);
    weights[1] = (int) __byte_perm(lo0, hi0, 0x7362);
    weights[2] = (int) __byte_perm(lo1, hi1, 0x5140);
    weights[3] = (int) __byte_perm(lo1, hi1, 0x7362);
}

__device__ __forceinline__ int pack_s8(float a, float b, float c, float d) {
    const int lo = (int) __byte_perm((uint32_t) __float2int_rn(a), (uint32_t) __float2int_rn(b), 0x0040);
    const int hi = (int) __byte_perm((uint32_t) __float2int_rn(c), (uint32_t) __float2int_rn(d), 0x0040);
    return (int) __byte_perm((uint32_t) lo, (uint32_t) hi, 0x5410);
}

// The quantize kernel's arithmetic for one 32-value sub-block, done by the thread that uses it (fused variants):
// same integers and scale, so fused and separate quantization give identical results.
__device__ __forceinline__ void quantize_sub_block(const float * x, int q[8], float & d) {
    float4 v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        v[i] = reinterpret_cast<const float4 *>(x)[i];
    }
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v[i].x), fabsf(v[i].y)), fmaxf(fabsf(v[i].z), fabsf(v[i].w))));
    }
    d               = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        q[i] = pack_s8(v[i].x * inv, v[i].y * inv, v[i].z * inv, v[i].w * inv);
    }
}

// Four int8 products summed into c: the dp4a instruction from compute capability 6.1 on; ggml's non-native CUDA
// builds with CUDA 12 also emit PTX for 5.0, which gets this plain version (Q4_S24_CUDA_NO_DP4A forces it, so that
// it is compile-checked too).
__device__ __forceinline__ int dot4_s8(int a, int b, int c) {
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 610) || defined(Q4_S24_CUDA_NO_DP4A)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        c += (int) (int8_t) (a >> (8 * i)) * (int) (int8_t) (b >> (8 * i));
    }
    return c;
#else
    return __dp4a(a, b, c);
#endif
}

// One warp per 32 values: symmetric int8 with one float scale per 32 columns.
__global__ void quantize_act_kernel(const float * x, int64_t k, int64_t x_col_stride,
                                    int64_t total, int8_t * q, float * d) {
    // Lets the mat-vec launch at once: it waits for this whole grid before reading q and d. This relies on every kernel
    // that follows waiting before it writes x (the programmatic-launch contract; ggml's quantize_q8_1 does the same).
    allow_next_kernel();
    const int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) {
        return; // total is a multiple of 32 and blockDim of 32: whole warps leave together
    }
    const int64_t col = i / k;
    const int64_t e   = i - col * k;
    wait_for_previous_kernel();
    q4_s24_cuda_quantize_in_warp(x[col * x_col_stride + e], i, q, d);
}

// RMS norm times a weight row (ggml's RMS_NORM then MUL, as a Llama layer normalizes the input of q/k/v and of
// gate/up), written as floats to y and quantized for the mat-vec like quantize_act_kernel: one launch instead of two.
// Grid: k/kNormThreads thread blocks of kNormThreads threads per column (blockIdx.y), one value per thread. Every block
// sums its column's squares itself (k floats from L2, 16 KB for Llama-3-8B), so that no grid-wide reduction or second
// launch is needed. x 16-byte aligned, x_col_stride % 4 == 0, k % kNormThreads == 0.
constexpr int kNormThreads = 256; // a multiple of the 32 values that share a quantization scale
// PREFETCH: the norm weight is read before the wait (a model weight, which no kernel writes; it comes from DRAM, a token
// streams far more than the L2 holds) and the thread's own value with the loads of its sums, so that after the wait
// only one round of loads from the L2 stands between the kernel ahead and the reduction. Without (a weight some kernel
// computes, or Q4_S24_CUDA_NO_PREFETCH=1 to measure it): session 18's order, the weight and the value read after the
// reduction. Same float operations either way.
template <bool PREFETCH>
__global__ void rms_norm_quantize_act_kernel(const float * x, int64_t k, int64_t x_col_stride, const float * weight,
                                             float eps, float * y, int64_t y_col_stride, int8_t * q, float * d) {
    allow_next_kernel(); // as in quantize_act_kernel
    const int64_t col = blockIdx.y;
    const float * xc  = x + col * x_col_stride;
    const int64_t e   = (int64_t) blockIdx.x * kNormThreads + threadIdx.x;
    float         w   = PREFETCH ? __ldg(weight + e) : 0.0f;
    wait_for_previous_kernel();
    float own = PREFETCH ? xc[e] : 0.0f;
    float sum = 0.0f;
#pragma unroll 4
    for (int64_t i = 4 * threadIdx.x; i < k; i += 4 * kNormThreads) {
        const float4 v = *reinterpret_cast<const float4 *>(xc + i);
        sum += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    __shared__ float warp_sums[kNormThreads / 32];
    sum = warp_sum(sum);
    if ((threadIdx.x & 31) == 0) {
        warp_sums[threadIdx.x / 32] = sum;
    }
    __syncthreads();
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < kNormThreads / 32; ++i) {
        total += warp_sums[i]; // the same order in every thread and block: one scale per column
    }
    if constexpr (!PREFETCH) {
        own = xc[e];
        w   = weight[e];
    }
    const float scale = rsqrtf(total / (float) k + eps);
    const float v     = scale * own * w; // ggml's rms_norm + mul in the same float operations
    y[col * y_col_stride + e] = v;
    q4_s24_cuda_quantize_in_warp(v, col * k + e, q, d);
}

// Whether the norm kernel reads its weight before its wait and the staged mat-vec its residual right after it (both by
// default); Q4_S24_CUDA_NO_PREFETCH=1 reads them where session 18 did, to measure the difference.
bool latency_prefetch() {
    static const bool prefetch = !q4_s24_cuda_env_flag("Q4_S24_CUDA_NO_PREFETCH");
    return prefetch;
}

// What one mat-vec launch computes: one matrix, or a group of up to kMmvMaxGroup that read the same activations with
// the same row length (q, k and v), their thread blocks one after the other (first_block[0] is 0). Matrix 0 is also
// passed as the single-matrix kernel's parameters. add (one matrix only, else null): a same-shaped addend, column c at
// add + c*add_col_stride, summed into y (ggml's MUL_MAT + ADD: the residual connection after a projection).
constexpr int kMmvMaxGroup = Q4_S24_CUDA_MMV_MAX_GROUP;
// A group matrix's epilogue (q4_s24_cuda_mmv_matrix's rotate, roped and cache fields).
struct mmv_epilogue {
    bool            rotate;
    float *         roped;
    int64_t         roped_col_stride;
    half *          cache;
    const int64_t * cache_rows;
    int64_t         cache_row_stride;
};
// Where a mat-vec launch lets the next kernel launch (griddepcontrol.launch_dependents): after its last read of the
// activations; before its own wait (the staged kernel only, once its weight copies are issued; the register kernel
// then triggers after its reads); or never, so that the next kernel launches as the blocks exit (a launch with the
// rope / KV-cache epilogue: see launch_mul_mat_vec).
enum mmv_trigger { kTriggerAfterReads, kTriggerBeforeWait, kTriggerAtExit };
struct mmv_matrices {
    const uint8_t * w[kMmvMaxGroup];
    float *         y[kMmvMaxGroup];
    int64_t         nrows[kMmvMaxGroup];
    int64_t         y_col_stride[kMmvMaxGroup];
    unsigned        first_block[kMmvMaxGroup];
    int             count;
    const float *   add;
    int64_t         add_col_stride;
    bool            has_epilogue; // a group with rope (then every matrix's rows go through store_row_pair)
    mmv_trigger     trigger;      // where the next kernel may launch (set by launch_mul_mat_vec)
    bool            prefetch_addend; // staged kernel: reads add right after its wait (see there)
    mmv_epilogue    epilogue[kMmvMaxGroup];
    q4_s24_cuda_rope rope;
};

// The blocks of a group launch (GROUP) that compute matrix m: group.first_block[m] on. Sets the matrix's index,
// weights, rows and output, and the block index its rows count from.
__device__ __forceinline__ void select_group_matrix(const mmv_matrices & group, int & matrix,
                                                    const uint8_t * __restrict__ & w, int64_t & nrows,
                                                    float *& y, int64_t & y_col_stride, int64_t & first_block) {
#pragma unroll
    for (int m = 1; m < kMmvMaxGroup; ++m) {
        if (m < group.count && blockIdx.x >= group.first_block[m]) {
            matrix       = m;
            w            = group.w[m];
            nrows        = group.nrows[m];
            y            = group.y[m];
            y_col_stride = group.y_col_stride[m];
            first_block  = group.first_block[m];
        }
    }
}

// ggml's ROPE (normal mode, forward) of one pair of a head's adjacent dimensions: pair i of the rotated ones at
// position pos, with YaRN's ramp when ext_factor is not 0. The float operations of ggml-cuda's rope.cu, in its order;
// the results still differ from it in rounding on the H200 (docs/benchmarks.md, session 15), not traced.
__device__ __forceinline__ void rope_rotate_pair(const q4_s24_cuda_rope & rope, int pair, int32_t pos, float & x0,
                                                 float & x1) {
    const float freq_factor = rope.freq_factors != nullptr ? rope.freq_factors[pair] : 1.0f;
    const float extrap      = pos * powf(rope.theta_scale, (float) pair) / freq_factor;
    const float interp      = rope.freq_scale * extrap;
    float       theta       = interp;
    float       mscale      = rope.attn_factor;
    if (rope.ext_factor != 0.0f) {
        const float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, (pair - rope.corr_low) /
                                                               fmaxf(0.001f, rope.corr_high - rope.corr_low)))) *
                           rope.ext_factor;
        theta  = interp * (1 - ramp) + extrap * ramp;
        mscale *= 1.0f + 0.1f * logf(1.0f / rope.freq_scale);
    }
    const float c = cosf(theta) * mscale;
    const float s = sinf(theta) * mscale;
    const float r0 = x0 * c - x1 * s;
    const float r1 = x0 * s + x1 * c;
    x0 = r0;
    x1 = r1;
}

// Rows row and row + 1 (row even) of group matrix `matrix`, column c, with its epilogue: stored plain, then rotated
// (roped) and / or written to the cache. The epilogue is picked with constant indices (a dynamic index into the
// kernel's parameters would copy them to local memory).
__device__ __forceinline__ void store_row_pair(const mmv_matrices & group, int matrix, int64_t row, int c, float v0,
                                               float v1, float * y, int64_t y_col_stride) {
    mmv_epilogue e = group.epilogue[0];
#pragma unroll
    for (int m = 1; m < kMmvMaxGroup; ++m) {
        if (matrix == m) {
            e = group.epilogue[m];
        }
    }
    if (y != nullptr) {
        y[c * y_col_stride + row]     = v0;
        y[c * y_col_stride + row + 1] = v1;
    }
    if (e.rotate) {
        const q4_s24_cuda_rope & rope = group.rope;
        const int                d    = (int) (row % rope.head_dim) - rope.n_offs;
        if (d >= 0 && d < rope.n_dims) {
            rope_rotate_pair(rope, d / 2, rope.pos[c], v0, v1);
        }
        if (e.roped != nullptr) {
            e.roped[c * e.roped_col_stride + row]     = v0; // after y's store: y may be this tensor
            e.roped[c * e.roped_col_stride + row + 1] = v1;
        }
    }
    if (e.cache != nullptr) {
        half * to = e.cache + e.cache_rows[c] * e.cache_row_stride + row;
        to[0]     = __float2half(v0);
        to[1]     = __float2half(v1);
    }
}

// The int8 activations of one sub-block for NCOLS columns (a: its first byte in column 0, d: its scale in column 0),
// with the 1/16 of the weight bytes folded into the scale; zeros past the row's end. Plain loads: the kernel ahead
// writes them (read after wait_for_previous_kernel).
template <int NCOLS>
__device__ __forceinline__ void load_act_sub_block(const int8_t * a, const float * d, int64_t a_col, int64_t d_col,
                                                   bool in_row, int (&act)[NCOLS][8], float (&da)[NCOLS]) {
#pragma unroll
    for (int c = 0; c < NCOLS; ++c) {
        const int4 * ap = reinterpret_cast<const int4 *>(a + c * a_col);
        const int4   lo = in_row ? ap[0] : make_int4(0, 0, 0, 0);
        const int4   hi = in_row ? ap[1] : make_int4(0, 0, 0, 0);
        act[c][0] = lo.x; act[c][1] = lo.y; act[c][2] = lo.z; act[c][3] = lo.w;
        act[c][4] = hi.x; act[c][5] = hi.y; act[c][6] = hi.z; act[c][7] = hi.w;
        da[c] = in_row ? d[c * d_col] * (1.0f / 16.0f) : 0.0f;
    }
}

// One row's sub-block (its two nibble words, position word and scale) times NCOLS activation columns, into acc.
template <int NCOLS>
__device__ __forceinline__ void accumulate_sub_block(uint32_t qs0, uint32_t qs1, uint32_t idx, float dw,
                                                     const int (&act)[NCOLS][8], const float (&da)[NCOLS],
                                                     float (&acc)[NCOLS]) {
    int      wq[4];
    uint32_t sel[4];
    decode_sub_block(qs0, qs1, idx, wq, sel);
#pragma unroll
    for (int c = 0; c < NCOLS; ++c) {
        int isum = 0;
#pragma unroll
        for (int m = 0; m < 4; ++m) {
            const int a = (int) select_bytes((uint32_t) act[c][m], (uint32_t) act[c][m + 4], sel[m]);
            isum = dot4_s8(wq[m], a, isum);
        }
        acc[c] = fmaf((float) isum, dw * da[c], acc[c]);
    }
}

// The residual this thread adds to its output value in store_rows (a single matrix's MUL_MAT + ADD; never with SWIGLU
// or a group), else 0. Written by an earlier kernel: read after wait_for_previous_kernel.
template <int ROWS, int NCOLS, bool SWIGLU, bool GROUP>
__device__ __forceinline__ float load_addend(const mmv_matrices & group, int64_t row0, int64_t nrows) {
    if constexpr (!SWIGLU && !GROUP) {
        const int64_t row = row0 + threadIdx.x / NCOLS;
        if (group.add != nullptr && threadIdx.x < ROWS * NCOLS && row < nrows) {
            return group.add[(threadIdx.x % NCOLS) * group.add_col_stride + row];
        }
    }
    return 0.0f;
}

// The end of both mat-vec kernels: each thread's partial sums of the block's rows, summed over the block, then (SWIGLU)
// silu(gate) * up, (single matrix) plus the residual (addend, from load_addend), stored.
template <int ROWS, int NCOLS, int THREADS, bool SWIGLU, bool GROUP>
__device__ __forceinline__ void store_rows(const float (&acc)[SWIGLU ? 2 * ROWS : ROWS][NCOLS], int64_t row0,
                                           int64_t nrows, float * y, int64_t y_col_stride,
                                           const mmv_matrices & group, int matrix, float addend) {
    static_assert(!GROUP || ROWS % 2 == 0, "a group's epilogue takes rows in pairs");
    constexpr int kRows  = SWIGLU ? 2 * ROWS : ROWS;
    constexpr int kWarps = THREADS / 32;
    __shared__ float partial[kWarps][kRows * NCOLS];
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int c = 0; c < NCOLS; ++c) {
            const float v = warp_sum(acc[r][c]);
            if (lane == 0) {
                partial[warp][r * NCOLS + c] = v;
            }
        }
    }
    __syncthreads();
    if constexpr (GROUP) {
        if (group.has_epilogue) { // rows in pairs (a rotation needs both); each sums as below
            if (threadIdx.x < ROWS / 2 * NCOLS) {
                const int     pair = threadIdx.x / NCOLS;
                const int     c    = threadIdx.x % NCOLS;
                const int64_t row  = row0 + 2 * pair;
                float         v[2] = { 0.0f, 0.0f };
#pragma unroll
                for (int h = 0; h < 2; ++h) {
#pragma unroll
                    for (int i = 0; i < kWarps; ++i) {
                        v[h] += partial[i][(2 * pair + h) * NCOLS + c];
                    }
                }
                if (row < nrows) { // nrows even: then row + 1 too
                    store_row_pair(group, matrix, row, c, v[0], v[1], y, y_col_stride);
                }
            }
            return;
        }
    }
    if (threadIdx.x < ROWS * NCOLS) {
        float sum = 0.0f;
#pragma unroll
        for (int i = 0; i < kWarps; ++i) {
            sum += partial[i][threadIdx.x];
        }
        if constexpr (SWIGLU) {
            float gate = 0.0f;
#pragma unroll
            for (int i = 0; i < kWarps; ++i) {
                gate += partial[i][ROWS * NCOLS + threadIdx.x];
            }
            sum = q4_s24_swiglu(gate, sum);
        }
        const int     r   = threadIdx.x / NCOLS;
        const int     c   = threadIdx.x % NCOLS;
        const int64_t row = row0 + r;
        if (row < nrows) {
            if constexpr (!GROUP) {
                if (group.add != nullptr) {
                    sum += addend;
                }
            }
            y[c * y_col_stride + row] = sum;
        }
    }
}

// ROWS weight rows per thread block. Thread t handles sub-blocks t, t + THREADS, ... of each row; THREADS is a
// multiple of 8, so a thread always sees the same sub-block slot (t % 8) of every block it visits and its
// field offsets just advance by THREADS/8 blocks per step. The activations of a sub-block stay in registers
// for all ROWS rows (fewer activation re-reads per weight byte).
// UNROLL: sub-blocks whose loads a thread issues before it computes on any of them. The kernel is latency-bound
// (Nsight Compute: L1TEX scoreboard stalls, DRAM a third busy), and a 4096-row matrix gives an H200 only ~16-32
// warps per SM, so more loads in flight per thread is the way to more bytes in flight.
// FUSED: read float activations (x) and quantize each sub-block in the thread that uses it, instead of reading
// the int8 copy made by quantize_act_kernel: one launch instead of two, more arithmetic per weight.
// SWIGLU: the feed-forward gate and up projections in one launch: the block also reads the same ROWS rows of
// w_gate (same shape and row bytes as w, the up matrix) and writes silu(gate row . x) * (up row . x).
template <int ROWS, int NCOLS, int THREADS, int UNROLL, bool FUSED, bool SWIGLU = false, bool GROUP = false>
__global__ void __launch_bounds__(THREADS)
mul_mat_vec_kernel(const uint8_t * __restrict__ w, const uint8_t * __restrict__ w_gate, int64_t nrows, int nsub,
                   size_t row_bytes, const int8_t * aq, const float * ad, int64_t k,
                   const float * x, int64_t x_col_stride,
                   float * y, int64_t y_col_stride, mmv_matrices group) {
    static_assert(THREADS % 32 == 0, "THREADS must be a multiple of 32");
    static_assert(!(FUSED && SWIGLU), "the gate/up kernel reads pre-quantized activations");
    static_assert(!(GROUP && (FUSED || SWIGLU)), "a group reads pre-quantized activations");
    constexpr int kStepBytes = THREADS / kSubsPerBlock * kBlockBytes;
    constexpr int kRows      = SWIGLU ? 2 * ROWS : ROWS; // up rows, then the same rows of gate

    // A group (GROUP) takes its matrices from group, the thread blocks of matrix m from group.first_block[m] on, and
    // ignores w, nrows, y and y_col_stride. A separate instantiation: the selection would cost the single-matrix
    // kernels registers.
    int64_t first_block = 0;
    int     matrix      = 0;
    if constexpr (GROUP) {
        select_group_matrix(group, matrix, w, nrows, y, y_col_stride, first_block);
    }
    const int64_t row0 = ((int64_t) blockIdx.x - first_block) * ROWS;
    const int     sub  = threadIdx.x % kSubsPerBlock;

    float acc[kRows][NCOLS];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int c = 0; c < NCOLS; ++c) {
            acc[r][c] = 0.0f;
        }
    }

    // Rows past the end re-read the last row (no divergence) and are never written. Every row has the same layout,
    // so each field is at the same offset in every row: one pointer per row and field, all advanced by the same step
    // (cheaper than recomputing row * row_bytes + offset at every load).
    const int       first_blk = threadIdx.x / kSubsPerBlock;
    const uint8_t * qs_at[kRows];  // this thread's 8 nibble bytes
    const uint8_t * idx_at[kRows]; // its position word
    const uint8_t * d_at[kRows];   // its half of the scale word
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
        const int64_t   row = row0 + r % ROWS;
        const uint8_t * blk = (r < ROWS ? w : w_gate) + (row < nrows ? row : nrows - 1) * row_bytes +
                             first_blk * kBlockBytes;
        qs_at[r]  = blk + kQsOffset + 8 * sub;
        idx_at[r] = blk + kIdxOffset + 4 * sub;
        d_at[r]   = blk + (sub < 4 ? 0 : 2);
    }
    const int8_t * a_ptr   = aq + (int64_t) threadIdx.x * kSubCols;
    const float *  d_act   = ad + threadIdx.x;
    const int64_t  a_col   = k;            // bytes between activation columns
    const int64_t  d_col   = k / kSubCols; // scales between activation columns
    const float *  x_ptr   = FUSED ? x + (int64_t) threadIdx.x * kSubCols : nullptr;

    wait_for_previous_kernel();
    for (int s = threadIdx.x; s < nsub; s += UNROLL * THREADS) {
        // All loads of the UNROLL sub-blocks first. A sub-block past the row's end loads nothing and counts zero
        // (its weight scale is 0 and its codes stay finite).
        uint32_t qs0[UNROLL][kRows], qs1[UNROLL][kRows], idx[UNROLL][kRows];
        float    dw[UNROLL][kRows];
        int      act[UNROLL][NCOLS][8];
        float    da[UNROLL][NCOLS];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const bool in_row = u == 0 || s + u * THREADS < nsub;
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
                qs0[u][r] = in_row ? load_word(qs_at[r] + u * kStepBytes) : 0u;
                qs1[u][r] = in_row ? load_word(qs_at[r] + u * kStepBytes + 4) : 0u;
                idx[u][r] = in_row ? load_word(idx_at[r] + u * kStepBytes) : 0u;
                dw[u][r]  = in_row ? __half2float(__ushort_as_half(
                                         __ldg(reinterpret_cast<const unsigned short *>(d_at[r] + u * kStepBytes))))
                                   : 0.0f;
            }
            if constexpr (FUSED) {
#pragma unroll
                for (int c = 0; c < NCOLS; ++c) {
                    if (in_row) {
                        quantize_sub_block(x_ptr + u * THREADS * kSubCols + c * x_col_stride, act[u][c], da[u][c]);
                        da[u][c] *= 1.0f / 16.0f; // the weight bytes are 16 q
                    } else {
#pragma unroll
                        for (int i = 0; i < 8; ++i) {
                            act[u][c][i] = 0;
                        }
                        da[u][c] = 0.0f;
                    }
                }
            } else {
                load_act_sub_block<NCOLS>(a_ptr + u * THREADS * kSubCols, d_act + u * THREADS, a_col, d_col, in_row,
                                          act[u], da[u]);
            }
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            qs_at[r] += UNROLL * kStepBytes;
            idx_at[r] += UNROLL * kStepBytes;
            d_at[r] += UNROLL * kStepBytes;
        }
        if constexpr (FUSED) {
            x_ptr += UNROLL * THREADS * kSubCols;
        } else {
            a_ptr += UNROLL * THREADS * kSubCols;
            d_act += UNROLL * THREADS;
        }

#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
                accumulate_sub_block<NCOLS>(qs0[u][r], qs1[u][r], idx[u][r], dw[u][r], act[u], da[u], acc[r]);
            }
        }
    }

    // Only the reduction and the stores are left: the next kernel may be scheduled now (a dependent's
    // griddepcontrol.wait waits for this whole grid to complete), except with kTriggerAtExit: see launch_mul_mat_vec
    // for a dependent that reads our results past that wait's guarantee.
    if (!(GROUP && group.trigger == kTriggerAtExit)) { // only a group has an epilogue
        allow_next_kernel();
    }
    store_rows<ROWS, NCOLS, THREADS, SWIGLU, GROUP>(acc, row0, nrows, y, y_col_stride, group, matrix,
                                                    load_addend<ROWS, NCOLS, SWIGLU, GROUP>(group, row0, nrows));
}

// Waits until at most `newer` (0..3) of this thread's cp.async groups are in flight (the instruction takes a constant).
__device__ __forceinline__ void cp_async_wait_at_most(int newer) {
    if (newer <= 0) {
        cp_async_wait<0>();
    } else if (newer == 1) {
        cp_async_wait<1>();
    } else if (newer == 2) {
        cp_async_wait<2>();
    } else {
        cp_async_wait<3>();
    }
}

// The same mat-vec with the weights staged in shared memory: the thread block copies its ROWS rows (SWIGLU: and the
// same rows of w_gate) whole with cp.async, 16 bytes per copy, before it waits for the kernel ahead of it, which the
// weights do not depend on. Under programmatic dependent launch the blocks that fit on the GPU beside that kernel
// (all of them for Llama-3-8B's 4096-row matrices) so fetch their weights while it still runs, and each block has all
// its bytes in flight at once without holding them in registers. Then, step by step (THREADS sub-blocks of every row,
// the same slots as mul_mat_vec_kernel with UNROLL 1, so the sums are bitwise the same), it computes from shared
// memory as the step's copies land: steps 0, 1 and 2 are separate copy groups, the rest one more. (Hopper's bulk
// copies, one per row and group counted on mbarriers, measured no faster in the harness: commit 2ec088f.)
// Preconditions (staged_fits): row_bytes % 16 == 0, weights 16-byte aligned, kRows * row_bytes of dynamic shared memory.
constexpr int kStagedCopyGroups = 4;
// A staged launch's shared memory: its rows (dynamic) plus the reduction's partial sums (static, at most this much for
// the shapes in q4_s24_cuda.cuh), within the 48 KiB every device gives a block without opting in.
constexpr size_t kStagedStaticBytesMax = 128 / 32 * 2 * 8 * Q4_S24_CUDA_MMV_MAX_COLS * sizeof(float);
constexpr size_t kStagedRowBytesMax    = 48 * 1024 - kStagedStaticBytesMax;

template <int ROWS, int NCOLS, int THREADS, bool SWIGLU, bool GROUP>
__global__ void __launch_bounds__(THREADS)
mul_mat_vec_staged_kernel(const uint8_t * __restrict__ w, const uint8_t * __restrict__ w_gate, int64_t nrows, int nsub,
                          size_t row_bytes, const int8_t * aq, const float * ad, int64_t k,
                          const float * x, int64_t x_col_stride,
                          float * y, int64_t y_col_stride, mmv_matrices group) {
    static_assert(THREADS % 32 == 0, "THREADS must be a multiple of 32");
    static_assert(!(GROUP && SWIGLU), "a group has no gate matrix");
    constexpr int kRows      = SWIGLU ? 2 * ROWS : ROWS;
    constexpr int kStepBytes = THREADS / kSubsPerBlock * kBlockBytes; // of one row; THREADS % 32 == 0 makes it % 16
    static_assert(kStepBytes % 16 == 0, "a step's bytes must be whole 16-byte copies");
    static_assert(THREADS / 32 * kRows * NCOLS * sizeof(float) <= kStagedStaticBytesMax,
                  "the static shared memory staged_fits allows for");
    (void) x;
    (void) x_col_stride;
    extern __shared__ uint4 staged_words[];
    uint8_t * staged = reinterpret_cast<uint8_t *>(staged_words); // row r at r * row_bytes

    int64_t first_block = 0;
    int     matrix      = 0;
    if constexpr (GROUP) {
        select_group_matrix(group, matrix, w, nrows, y, y_col_stride, first_block);
    }
    const int64_t row0   = ((int64_t) blockIdx.x - first_block) * ROWS;
    const int     nsteps = (nsub + THREADS - 1) / THREADS;
    const int     groups = min(nsteps, kStagedCopyGroups);
    const auto    source = [&](int r) { // past the end: the last row again, never stored
        const int64_t row = row0 + r % ROWS;
        return (r < ROWS ? w : w_gate) + (row < nrows ? row : nrows - 1) * row_bytes;
    };
    const int row_units = (int) (row_bytes / 16);
    for (int step = 0; step < nsteps; ++step) {
        const int u_end = min(row_units, (step + 1) * (kStepBytes / 16));
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            const uint8_t * src = source(r);
            for (int u = step * (kStepBytes / 16) + threadIdx.x; u < u_end; u += THREADS) {
                cp_async<16>(staged + r * row_bytes + 16 * u, src + 16 * u);
            }
        }
        if (step < kStagedCopyGroups - 1 || step == nsteps - 1) {
            cp_async_commit();
        }
    }

    float acc[kRows][NCOLS];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int c = 0; c < NCOLS; ++c) {
            acc[r][c] = 0.0f;
        }
    }
    const int sub = threadIdx.x % kSubsPerBlock;
    // Where the next kernel may launch (it waits for this whole grid before it touches memory this one reads or
    // writes): by default here, once every block has issued its copies, so that the kernels after it (each letting its
    // own next one launch as early) stage their weights while this one still streams; with
    // Q4_S24_CUDA_EARLY_TRIGGER=0 after the last read of the activations. Dependents launch only when every block of
    // this grid has passed the trigger, i.e. in its last wave, so they never take slots its own blocks still need.
    // A launch with the rope / KV-cache epilogue never triggers (kTriggerAtExit, see launch_mul_mat_vec).
    if (group.trigger == kTriggerBeforeWait) {
        allow_next_kernel();
    }
    wait_for_previous_kernel();
    // The residual now rather than at the end, where its read from the L2 would be one more round trip on the block's
    // critical path (unless Q4_S24_CUDA_NO_PREFETCH=1, which the launch passes as prefetch_addend).
    float addend = group.prefetch_addend ? load_addend<ROWS, NCOLS, SWIGLU, GROUP>(group, row0, nrows) : 0.0f;
    for (int step = 0; step < nsteps; ++step) {
        const int  s      = step * THREADS + threadIdx.x;
        const bool in_row = s < nsub;
        int        act[NCOLS][8];
        float      da[NCOLS];
        load_act_sub_block<NCOLS>(aq + (int64_t) s * kSubCols, ad + s, k, k / kSubCols, in_row, act, da);
        cp_async_wait_at_most(groups - 1 - min(step, kStagedCopyGroups - 1)); // this step's group has landed
        __syncthreads();                                                       // and every thread's copies in it
        if (in_row) {
            const uint8_t * blk = staged + (s / kSubsPerBlock) * kBlockBytes;
#pragma unroll
            for (int r = 0; r < kRows; ++r) {
                const uint8_t * b  = blk + r * row_bytes;
                const uint32_t  q0 = *reinterpret_cast<const uint32_t *>(b + kQsOffset + 8 * sub);
                const uint32_t  q1 = *reinterpret_cast<const uint32_t *>(b + kQsOffset + 8 * sub + 4);
                const uint32_t  ix = *reinterpret_cast<const uint32_t *>(b + kIdxOffset + 4 * sub);
                const float     dw = __half2float(*reinterpret_cast<const half *>(b + (sub < 4 ? 0 : 2)));
#ifdef Q4_S24_MMV_EXPERIMENT_NO_MATH // timings only (harness): the staged bytes and activations read, no dot products
                acc[r][0] += __uint_as_float((q0 ^ q1 ^ ix ^ (uint32_t) act[0][0]) & 0x3fffffffu) * dw * da[0];
#else
                accumulate_sub_block<NCOLS>(q0, q1, ix, dw, act, da, acc[r]);
#endif
            }
        }
    }

    if (group.trigger == kTriggerAfterReads) {
        allow_next_kernel(); // as in mul_mat_vec_kernel: after every read of the activations
    }
    if (!group.prefetch_addend) {
        addend = load_addend<ROWS, NCOLS, SWIGLU, GROUP>(group, row0, nrows);
    }
    store_rows<ROWS, NCOLS, THREADS, SWIGLU, GROUP>(acc, row0, nrows, y, y_col_stride, group, matrix, addend);
}

// Dense values of kept 4j..4j+3 of one sub-block: 8 columns (8j..8j+7). Equal positions add up,
// like the CPU reference.
__device__ __forceinline__ void decode_eight(const uint8_t * blk, int sub, int j, float out[8]) {
    const uint32_t qs_word  = load_word(blk + kQsOffset + 8 * sub + 4 * (j & 1));
    const uint32_t idx_word = load_word(blk + kIdxOffset + 4 * sub);
    const uint32_t dword    = load_word(blk);
    const uint16_t dbits    = (uint16_t) (sub < 4 ? (dword & 0xffffu) : (dword >> 16));
    const float    d        = __half2float(__ushort_as_half(dbits));
    const int      shift    = j < 2 ? 0 : 4;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        out[i] = 0.0f;
    }
#pragma unroll
    for (int b = 0; b < 4; ++b) {
        const int   u   = (int) ((qs_word >> (8 * b + shift)) & 0xFu);
        const int   pos = (int) ((idx_word >> (8 * b + 2 * j)) & 0x3u);
        const float v   = d * (float) (u - 8);
        const int   base = b < 2 ? 0 : 4;
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            out[base + p] += pos == p ? v : 0.0f;
        }
    }
}

__device__ __forceinline__ void store_eight(float * y, const float v[8]) {
    reinterpret_cast<float4 *>(y)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4 *>(y)[1] = make_float4(v[4], v[5], v[6], v[7]);
}

__device__ __forceinline__ void store_eight(half * y, const float v[8]) {
    union {
        half2 h[4];
        uint4 u;
    } pack;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        pack.h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    }
    *reinterpret_cast<uint4 *>(y) = pack.u;
}

// One thread per 8 dense columns (a quarter of a sub-block): a warp writes one whole block contiguously.
template <typename T>
__global__ void dequantize_kernel(const uint8_t * __restrict__ w, T * __restrict__ y, int64_t n_eighths) {
    const int64_t t = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_eighths) {
        return;
    }
    const int64_t s   = t / 4;
    const int     j   = (int) (t % 4);
    const int64_t blk = s / kSubsPerBlock;
    const int     sub = (int) (s % kSubsPerBlock);
    float v[8];
    decode_eight(w + blk * kBlockBytes, sub, j, v);
    store_eight(y + s * kSubCols + 8 * j, v);
}

template <typename T>
__global__ void get_rows_kernel(const uint8_t * __restrict__ src, int64_t ne00, size_t nb01, size_t nb02, size_t nb03,
                                const int32_t * __restrict__ ids, int64_t ne10, int64_t ne11,
                                size_t nb10, size_t nb11, size_t nb12,
                                uint8_t * __restrict__ dst, size_t nb1, size_t nb2, size_t nb3) {
    const int64_t t = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= ne00 / 8) {
        return;
    }
    const int64_t i11 = blockIdx.z % ne11;
    const int64_t i12 = blockIdx.z / ne11;
    const int64_t s   = t / 4;
    const int     j   = (int) (t % 4);
    for (int64_t i10 = blockIdx.y; i10 < ne10; i10 += gridDim.y) {
        const int32_t row = *reinterpret_cast<const int32_t *>(
            reinterpret_cast<const uint8_t *>(ids) + i10 * nb10 + i11 * nb11 + i12 * nb12);
        const uint8_t * src_row = src + row * nb01 + i11 * nb02 + i12 * nb03;
        float v[8];
        decode_eight(src_row + (s / kSubsPerBlock) * kBlockBytes, (int) (s % kSubsPerBlock), j, v);
        T * dst_row = reinterpret_cast<T *>(dst + i10 * nb1 + i11 * nb2 + i12 * nb3);
        store_eight(dst_row + s * kSubCols + 8 * j, v);
    }
}

// The UNROLL of a launch shape that selects mul_mat_vec_staged_kernel.
constexpr int kStaged = 0;

// Whether the staged kernel can take these matrices: whole 16-byte copies from 16-byte aligned rows that fit.
bool staged_fits(const mmv_matrices & mats, const void * w_gate, size_t w_row_bytes, size_t row_bytes_staged) {
    if (w_row_bytes % 16 != 0 || row_bytes_staged > kStagedRowBytesMax ||
        reinterpret_cast<uintptr_t>(w_gate) % 16 != 0) {
        return false;
    }
    for (int m = 0; m < mats.count; ++m) {
        if (reinterpret_cast<uintptr_t>(mats.w[m]) % 16 != 0) {
            return false;
        }
    }
    return true;
}

// The staged kernel lets the next kernel launch before its wait (see the kernel); Q4_S24_CUDA_EARLY_TRIGGER=0 moves the
// trigger after its last activation read, as before session 19, to measure it. Read once per process.
bool staged_trigger_early() {
    static const bool early = q4_s24_cuda_env_int("Q4_S24_CUDA_EARLY_TRIGGER", 1) != 0;
    return early;
}

// Q4_S24_CUDA_SMEM_CARVEOUT=N (percent of an SM's unified L1 / shared memory given to shared memory, 0-100; unset: the
// driver's choice) asks for that split for every staged kernel, once per kernel and device. To measure whether, under
// programmatic launch, staged blocks wait for an SM whose split suits the kernel ahead (the norms and quantizations
// use almost no shared memory) to drain and change it.
template <auto Kernel> void apply_staged_carveout() {
    static const int percent = q4_s24_cuda_env_int("Q4_S24_CUDA_SMEM_CARVEOUT", -1);
    if (percent < 0) {
        return;
    }
    static std::atomic<int> applied[64];
    q4_s24_cuda_ask_once_per_device(applied, [](int) {
        return cudaFuncSetAttribute(Kernel, cudaFuncAttributePreferredSharedMemoryCarveout, percent) == cudaSuccess;
    });
}

// A launch with the rope / KV-cache epilogue lets the next kernel launch only as its blocks exit, never earlier. That
// kernel is ggml's flash attention, whose vec and tile kernels read q through the non-coherent load path
// (ld.global.nc), defined only for memory nothing writes while the reading kernel runs: launched early, it ran while
// this launch still wrote q, and on the H200 identical processes gave different greedy outputs (session 20). Launching
// it as our blocks exit is llama.cpp's own order (its rope kernel, which writes q there, is launched without
// programmatic launch); identical outputs with it are measured, not guaranteed by the PTX rules for a non-coherent
// reader (blocks exiting does not make their stores visible; the dependent's wait does, for plain loads).
// llama.cpp-fattn-vec-coherent-q.diff makes the vec kernel's (decode's) q loads plain, so that there the order is
// guaranteed; the tile kernel (head sizes 40 and 72 on Hopper) keeps its non-coherent loads. With that patch an early
// trigger before the vec kernel gave identical outputs but measured no faster (session 21: +0.3%, within noise), so
// every epilogue launch keeps this one order.
// mats.first_block is filled in here, from ROWS. UNROLL kStaged: the staged kernel where it fits, else the register
// kernel with 2 rows per block (session 12's default shape at batch 1).
template <int ROWS, int NCOLS, int THREADS, int UNROLL, bool FUSED, bool SWIGLU>
void launch_mul_mat_vec(mmv_matrices mats, const void * w_gate, int64_t k, size_t w_row_bytes, q4_s24_cuda_act act,
                        cudaStream_t stream) {
    int64_t blocks = 0;
    for (int m = 0; m < mats.count; ++m) {
        mats.first_block[m] = (unsigned) blocks;
        blocks += (mats.nrows[m] + ROWS - 1) / ROWS;
    }
    const dim3   grid((unsigned) blocks);
    mats.trigger = mats.has_epilogue ? kTriggerAtExit : kTriggerAfterReads;
    const size_t staged_bytes = (size_t) (SWIGLU ? 2 * ROWS : ROWS) * w_row_bytes;
    const auto   args = [&](auto kernel, size_t shared_bytes) {
        launch_kernel(kernel, grid, dim3(THREADS), shared_bytes, stream, mats.w[0],
                      static_cast<const uint8_t *>(w_gate), mats.nrows[0], (int) (k / kSubCols), w_row_bytes,
                      (const int8_t *) act.q, (const float *) act.d, k, act.x, act.x_col_stride, mats.y[0],
                      mats.y_col_stride[0], mats);
    };
    if constexpr (UNROLL == kStaged) {
        static_assert(!FUSED, "the staged kernel reads pre-quantized activations");
        if (staged_fits(mats, w_gate, w_row_bytes, staged_bytes)) {
            if (mats.trigger == kTriggerAfterReads && staged_trigger_early()) {
                mats.trigger = kTriggerBeforeWait;
            }
            mats.prefetch_addend = latency_prefetch();
            if constexpr (!SWIGLU) {
                if (mats.count > 1 || mats.has_epilogue) {
                    apply_staged_carveout<mul_mat_vec_staged_kernel<ROWS, NCOLS, THREADS, false, true>>();
                    args(mul_mat_vec_staged_kernel<ROWS, NCOLS, THREADS, false, true>, staged_bytes);
                    return;
                }
            }
            apply_staged_carveout<mul_mat_vec_staged_kernel<ROWS, NCOLS, THREADS, SWIGLU, false>>();
            args(mul_mat_vec_staged_kernel<ROWS, NCOLS, THREADS, SWIGLU, false>, staged_bytes);
            return;
        }
        launch_mul_mat_vec<2, NCOLS, THREADS, 1, false, SWIGLU>(mats, w_gate, k, w_row_bytes, act, stream);
    } else {
        if constexpr (!FUSED && !SWIGLU) {
            if (mats.count > 1 || mats.has_epilogue) {
                args(mul_mat_vec_kernel<ROWS, NCOLS, THREADS, UNROLL, false, false, true>, 0);
                return;
            }
        }
        args(mul_mat_vec_kernel<ROWS, NCOLS, THREADS, UNROLL, FUSED, SWIGLU>, 0);
    }
}

template <int ROWS, int THREADS, int UNROLL, bool FUSED, bool SWIGLU = false>
void launch_for_cols(int ncols, const mmv_matrices & mats, const void * w_gate, int64_t k, size_t w_row_bytes,
                     q4_s24_cuda_act act, cudaStream_t stream) {
    switch (ncols) {
#define Q4_S24_COLS_CASE(C) \
        case C: \
            launch_mul_mat_vec<ROWS, C, THREADS, UNROLL, FUSED, SWIGLU>(mats, w_gate, k, w_row_bytes, act, stream); \
            break;
        Q4_S24_COLS_CASE(1)
        Q4_S24_COLS_CASE(2)
        Q4_S24_COLS_CASE(3)
        Q4_S24_COLS_CASE(4)
        Q4_S24_COLS_CASE(5)
        Q4_S24_COLS_CASE(6)
        Q4_S24_COLS_CASE(7)
        Q4_S24_COLS_CASE(8)
#undef Q4_S24_COLS_CASE
        default:
            fprintf(stderr, "q4_s24_cuda_mul_mat_vec: %d columns (at most %d)\n", ncols, Q4_S24_CUDA_MMV_MAX_COLS);
            abort();
    }
}

mmv_matrices single_matrix(const void * w, int64_t nrows, float * y, int64_t y_col_stride, const float * add = nullptr,
                           int64_t add_col_stride = 0) {
    mmv_matrices mats = {};
    mats.add            = add;
    mats.add_col_stride = add_col_stride;
    mats.w[0]            = static_cast<const uint8_t *>(w);
    mats.y[0]            = y;
    mats.nrows[0]        = nrows;
    mats.y_col_stride[0] = y_col_stride;
    mats.count           = 1;
    return mats;
}

void launch_variant(q4_s24_cuda_mmv_variant variant, const mmv_matrices & mats, int64_t k, size_t w_row_bytes,
                    q4_s24_cuda_act act, int ncols, cudaStream_t stream) {
    switch (variant) {
#define Q4_S24_MMV_CASE(R, T, U) \
        case Q4_S24_MMV_R##R##_T##T##_U##U: \
            launch_for_cols<R, T, U, false>(ncols, mats, nullptr, k, w_row_bytes, act, stream); \
            break; \
        case Q4_S24_MMV_FUSED_R##R##_T##T##_U##U: \
            launch_for_cols<R, T, U, true>(ncols, mats, nullptr, k, w_row_bytes, act, stream); \
            break;
        Q4_S24_MMV_SHAPES(Q4_S24_MMV_CASE)
#undef Q4_S24_MMV_CASE
#define Q4_S24_MMV_CASE(R, T) \
        case Q4_S24_MMV_STAGED_R##R##_T##T: \
            launch_for_cols<R, T, kStaged, false>(ncols, mats, nullptr, k, w_row_bytes, act, stream); \
            break;
        Q4_S24_MMV_STAGED_SHAPES(Q4_S24_MMV_CASE)
#undef Q4_S24_MMV_CASE
        default:
            fprintf(stderr, "q4_s24_cuda_mul_mat_vec_variant: unknown variant %d\n", (int) variant);
            abort();
    }
}

size_t align_up(size_t n, size_t a) {
    return (n + a - 1) / a * a;
}

} // namespace

size_t q4_s24_cuda_act_bytes(int64_t k, int ncols) {
    return align_up((size_t) k * ncols, 256) + align_up((size_t) (k / kSubCols) * ncols * sizeof(float), 256);
}

q4_s24_cuda_act q4_s24_cuda_act_view(void * scratch, int64_t k, int ncols) {
    q4_s24_cuda_act act;
    act.q = static_cast<int8_t *>(scratch);
    act.d = reinterpret_cast<float *>(static_cast<uint8_t *>(scratch) + align_up((size_t) k * ncols, 256));
    act.x = nullptr;
    act.x_col_stride = 0;
    return act;
}

void q4_s24_cuda_quantize_act(const float * x, int64_t k, int64_t x_col_stride, int ncols, q4_s24_cuda_act act,
                              cudaStream_t stream) {
    const int64_t total   = k * ncols;
    const int     threads = 256;
    launch_kernel(quantize_act_kernel, dim3((unsigned) ((total + threads - 1) / threads)), dim3(threads), 0, stream,
                  x, k, x_col_stride, total, act.q, act.d);
}

bool q4_s24_cuda_rms_norm_quantize_act(const float * x, int64_t k, int64_t x_col_stride, int ncols,
                                       const float * weight, bool weight_is_constant, float eps, float * y,
                                       int64_t y_col_stride, q4_s24_cuda_act act, cudaStream_t stream) {
    if (reinterpret_cast<uintptr_t>(x) % 16 != 0 || x_col_stride % 4 != 0 || k % kNormThreads != 0 || ncols < 1 ||
        ncols > 65535) {
        return false;
    }
    const bool prefetch = latency_prefetch() && weight_is_constant;
    launch_kernel(prefetch ? rms_norm_quantize_act_kernel<true> : rms_norm_quantize_act_kernel<false>,
                  dim3((unsigned) (k / kNormThreads), (unsigned) ncols), dim3(kNormThreads), 0, stream, x, k,
                  x_col_stride, weight, eps, y, y_col_stride, act.q, act.d);
    return true;
}

// "r2t128u1": rows per thread block, threads, sub-blocks in flight (the harness's column of launch shapes).
#define Q4_S24_SHAPE_NAME(R, T, U) "r" #R "t" #T "u" #U,
// "S.r4t128": a staged shape.
#define Q4_S24_STAGED_SHAPE_NAME(R, T) "S.r" #R "t" #T,

void q4_s24_cuda_mul_mat_vec_variant(q4_s24_cuda_mmv_variant variant, const void * w, int64_t nrows, int64_t k,
                                     size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                     int64_t y_col_stride, cudaStream_t stream, const float * add,
                                     int64_t add_col_stride) {
    launch_variant(variant, single_matrix(w, nrows, y, y_col_stride, add, add_col_stride), k, w_row_bytes, act, ncols,
                   stream);
}

bool q4_s24_cuda_mmv_variant_is_fused(q4_s24_cuda_mmv_variant variant) {
    return variant >= Q4_S24_MMV_SHAPE_COUNT && variant < Q4_S24_MMV_FUSED_END;
}

q4_s24_cuda_mmv_variant q4_s24_cuda_mmv_variant_unfused(q4_s24_cuda_mmv_variant variant) {
    return q4_s24_cuda_mmv_variant_is_fused(variant) ? (q4_s24_cuda_mmv_variant) (variant - Q4_S24_MMV_SHAPE_COUNT)
                                                     : variant;
}

const char * q4_s24_cuda_mmv_variant_name(q4_s24_cuda_mmv_variant variant) {
    static const char * const names[] = {
        Q4_S24_MMV_SHAPES(Q4_S24_SHAPE_NAME)
#define Q4_S24_FUSED_SHAPE_NAME(R, T, U) "F." Q4_S24_SHAPE_NAME(R, T, U)
        Q4_S24_MMV_SHAPES(Q4_S24_FUSED_SHAPE_NAME)
#undef Q4_S24_FUSED_SHAPE_NAME
        Q4_S24_MMV_STAGED_SHAPES(Q4_S24_STAGED_SHAPE_NAME)
    };
    static_assert(sizeof(names) / sizeof(names[0]) == Q4_S24_MMV_VARIANT_COUNT, "one name per variant");
    return variant >= 0 && variant < Q4_S24_MMV_VARIANT_COUNT ? names[variant] : "?";
}

// Whether the defaults use the staged kernel for `rows` rows per block of `matrices` matrices of k columns (2 for the
// gate/up + SWIGLU kernel): only on devices running compute capability 9.0 code (the only ones measured; its gain is the
// overlap that programmatic launch gives), for rows of a multiple of 1024 columns that fit its shared memory, and
// unless Q4_S24_CUDA_NO_STAGED=1 (any nonzero number) asks for session 12's defaults, to measure it.
static bool staged_default(int64_t k, int rows, int matrices) {
    static const bool env_allows = !q4_s24_cuda_env_flag("Q4_S24_CUDA_NO_STAGED");
    return env_allows && k % 1024 == 0 && (size_t) (matrices * rows) * (size_t) (k / kSubCols / kSubsPerBlock) *
                                                  kBlockBytes <= kStagedRowBytesMax &&
           device_code_is_sm90(reinterpret_cast<const void *>(quantize_act_kernel));
}

// 8 rows per block for rows of 8192 columns and more (the feed-forward down projection: fewer activation reads per
// weight byte, 16 KB of them per block at 14336 columns; +1.8% for the 8B-shaped model with the early trigger, session
// 19). Q4_S24_CUDA_STAGED_R8=1: wherever the staged kernel takes the matrix; =0: only from 8192 rows on, as before.
// (Session 25's =3, the attention output with 8 rows per block too, measured 0.984x in session 27 and was removed.)
static bool staged_rows8(int64_t k) {
    static const int mode = q4_s24_cuda_env_int("Q4_S24_CUDA_STAGED_R8", 2);
    return mode == 1 || (mode == 2 && k >= 8192);
}

// Which staged batch-1 launches take 256 threads per block instead of 128 (Q4_S24_CUDA_STAGED_T256, a sum of these
// bits; default 1, the down projection): twice the warps per resident block. The down projection's 512 blocks fit in
// one wave, and with more warps each block computes faster once its weights have landed: +1.4-1.6% tg128 on the H200
// (session 25; alone in the harness, without a kernel ahead to overlap, no faster). The other roles lost (q/k/v and o
// 0.95x, gate / up 0.90x: many waves, where fewer resident blocks stream less). Per role so each can be measured.
constexpr int kStagedWideRows  = 1; // rows of 8192 columns and more (the feed-forward down projection)
constexpr int kStagedOtherRows = 2; // other single matrices and groups (q/k/v, the attention output)
constexpr int kStagedSwiglu    = 4; // gate / up + SWIGLU
static bool staged_threads256(int role) {
    static const int mask = q4_s24_cuda_env_int("Q4_S24_CUDA_STAGED_T256", kStagedWideRows);
    return (mask & role) != 0;
}
// (Session 25's Q4_S24_CUDA_STAGED_T512, the down projection with 512 threads, measured ~1.01x in the model, within
// the runs' spread, and 0.965x in the harness's feed-forward chain in session 27; removed with its shape.)

// From the harness on the H200 (docs/benchmarks.md, "GPU (H200)"): small matrices (the 1024-row k/v projections)
// are launch-bound, so at batch 1-2 in-kernel quantization (one launch) wins; otherwise separate quantization.
// Larger matrices at batch 1: the staged kernel (+3.8-3.9% for the whole 8B-shaped model, where it overlaps the kernel
// ahead), 8 rows per block from 8192 rows on (14336x4096: 9.2-9.7 against 11.2-11.7 us, quantization included) and for
// rows of 8192+ columns (staged_rows8), else 4 (4096x4096: within run-to-run noise of the register kernel in the
// harness); otherwise 2 rows per 128
// threads (4 rows need 72 registers, which leaves a second wave of thread blocks). At batch 2: 4 rows per 64 threads
// with two sub-blocks in flight, and without from batch 3 on.
q4_s24_cuda_mmv_variant q4_s24_cuda_mmv_default_variant(int64_t nrows, int64_t k, int ncols) {
    if (nrows <= 2048) {
        return ncols <= 2 ? Q4_S24_MMV_FUSED_R4_T128_U1 : Q4_S24_MMV_R4_T128_U1;
    }
    if (ncols == 1) {
        const bool wide = staged_threads256(k >= 8192 ? kStagedWideRows : kStagedOtherRows);
        if ((nrows >= 8192 || staged_rows8(k)) && staged_default(k, 8, 1)) {
            return wide ? Q4_S24_MMV_STAGED_R8_T256 : Q4_S24_MMV_STAGED_R8_T128;
        }
        if (staged_default(k, 4, 1)) {
            return wide ? Q4_S24_MMV_STAGED_R4_T256 : Q4_S24_MMV_STAGED_R4_T128;
        }
        return Q4_S24_MMV_R2_T128_U1;
    }
    return ncols == 2 ? Q4_S24_MMV_R4_T64_U2 : Q4_S24_MMV_R4_T64_U1;
}

void q4_s24_cuda_mul_mat_vec_q(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, q4_s24_cuda_act act,
                               int ncols, float * y, int64_t y_col_stride, cudaStream_t stream, const float * add,
                               int64_t add_col_stride) {
    q4_s24_cuda_mmv_variant variant = q4_s24_cuda_mmv_default_variant(nrows, k, ncols);
    variant = q4_s24_cuda_mmv_variant_unfused(variant); // same shape, int8 activations
    act.x   = nullptr;
    q4_s24_cuda_mul_mat_vec_variant(variant, w, nrows, k, w_row_bytes, act, ncols, y, y_col_stride, stream, add,
                                    add_col_stride);
}

void q4_s24_cuda_mul_mat_vec_group(const q4_s24_cuda_mmv_matrix * matrices, int count, int64_t k, size_t w_row_bytes,
                                   q4_s24_cuda_act act, int ncols, cudaStream_t stream, const q4_s24_cuda_rope * rope) {
    if (count < 1 || count > kMmvMaxGroup) {
        fprintf(stderr, "q4_s24_cuda_mul_mat_vec_group: %d matrices (1 to %d)\n", count, kMmvMaxGroup);
        abort();
    }
    mmv_matrices mats = {};
    int64_t      rows = 0;
    for (int m = 0; m < count; ++m) {
        const q4_s24_cuda_mmv_matrix & mat = matrices[m];
        if (rope != nullptr && (mat.nrows % 2 != 0 || (mat.rotate && (rope->head_dim < 2 || rope->head_dim % 2 != 0)))) {
            fprintf(stderr, "q4_s24_cuda_mul_mat_vec_group: odd rows with a rope epilogue\n");
            abort();
        }
        mats.w[m]            = static_cast<const uint8_t *>(mat.w);
        mats.y[m]            = mat.y;
        mats.nrows[m]        = mat.nrows;
        mats.y_col_stride[m] = mat.y_col_stride;
        mats.epilogue[m]     = { mat.rotate, mat.roped, mat.roped_col_stride, mat.cache, mat.cache_rows,
                                 mat.cache_row_stride };
        rows += mat.nrows;
    }
    mats.count = count;
    if (rope != nullptr) {
        mats.has_epilogue = true;
        mats.rope         = *rope;
    }
    // The launch shape of one matrix with all the rows, on the int8 activations.
    const q4_s24_cuda_mmv_variant variant =
        q4_s24_cuda_mmv_variant_unfused(q4_s24_cuda_mmv_default_variant(rows, k, ncols));
    act.x = nullptr;
    launch_variant(variant, mats, k, w_row_bytes, act, ncols, stream);
}

void q4_s24_cuda_swiglu_variant(q4_s24_cuda_swiglu_shape shape, const void * w_up, const void * w_gate, int64_t nrows,
                                int64_t k, size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                int64_t y_col_stride, cudaStream_t stream) {
    switch (shape) {
#define Q4_S24_SWIGLU_CASE(R, T, U) \
        case Q4_S24_SWIGLU_R##R##_T##T##_U##U: \
            launch_for_cols<R, T, U, false, true>(ncols, single_matrix(w_up, nrows, y, y_col_stride), w_gate, k, \
                                                  w_row_bytes, act, stream); \
            break;
        Q4_S24_SWIGLU_SHAPES(Q4_S24_SWIGLU_CASE)
#undef Q4_S24_SWIGLU_CASE
#define Q4_S24_SWIGLU_CASE(R, T) \
        case Q4_S24_SWIGLU_STAGED_R##R##_T##T: \
            launch_for_cols<R, T, kStaged, false, true>(ncols, single_matrix(w_up, nrows, y, y_col_stride), w_gate, \
                                                        k, w_row_bytes, act, stream); \
            break;
        Q4_S24_SWIGLU_STAGED_SHAPES(Q4_S24_SWIGLU_CASE)
#undef Q4_S24_SWIGLU_CASE
        default:
            fprintf(stderr, "q4_s24_cuda_swiglu_variant: unknown shape %d\n", (int) shape);
            abort();
    }
}

const char * q4_s24_cuda_swiglu_shape_name(q4_s24_cuda_swiglu_shape shape) {
    static const char * const names[] = {
        Q4_S24_SWIGLU_SHAPES(Q4_S24_SHAPE_NAME)
        Q4_S24_SWIGLU_STAGED_SHAPES(Q4_S24_STAGED_SHAPE_NAME)
    };
    static_assert(sizeof(names) / sizeof(names[0]) == Q4_S24_SWIGLU_SHAPE_COUNT, "one name per shape");
    return shape >= 0 && shape < Q4_S24_SWIGLU_SHAPE_COUNT ? names[shape] : "?";
}

// From the harness on the H200 (14336x4096, docs/benchmarks.md): at batch 1 the staged kernel with 4 rows of each
// matrix per 128 threads where staged_default allows (16.7-17.2 us with the quantization, against 17.6-17.7 for the
// best register-staged shape); otherwise 2 rows of each matrix per 64 threads with two sub-blocks in flight per thread
// up to batch 3, without from batch 4 on (fewer registers for 4-8 columns).
q4_s24_cuda_swiglu_shape q4_s24_cuda_swiglu_default_shape(int64_t nrows, int64_t k, int ncols) {
    (void) nrows;
    if (ncols == 1 && staged_default(k, 4, 2)) {
        return staged_threads256(kStagedSwiglu) ? Q4_S24_SWIGLU_STAGED_R4_T256 : Q4_S24_SWIGLU_STAGED_R4_T128;
    }
    return ncols <= 3 ? Q4_S24_SWIGLU_R2_T64_U2 : Q4_S24_SWIGLU_R2_T64_U1;
}

void q4_s24_cuda_mul_mat_vec_swiglu(const void * w_up, const void * w_gate, int64_t nrows, int64_t k,
                                    size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                    int64_t y_col_stride, cudaStream_t stream) {
    q4_s24_cuda_swiglu_variant(q4_s24_cuda_swiglu_default_shape(nrows, k, ncols), w_up, w_gate, nrows, k, w_row_bytes,
                               act, ncols, y, y_col_stride, stream);
}

void q4_s24_cuda_mul_mat_vec(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const float * x,
                             int64_t x_col_stride, int ncols, float * y, int64_t y_col_stride, void * scratch,
                             cudaStream_t stream, const float * add, int64_t add_col_stride) {
    q4_s24_cuda_mmv_variant variant = q4_s24_cuda_mmv_default_variant(nrows, k, ncols);
    const bool x_aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && x_col_stride % 4 == 0;
    if (!x_aligned) {
        variant = q4_s24_cuda_mmv_variant_unfused(variant); // same shape, separate quantization
    }
    q4_s24_cuda_act act = q4_s24_cuda_act_view(scratch, k, ncols);
    if (q4_s24_cuda_mmv_variant_is_fused(variant)) {
        act.x            = x;
        act.x_col_stride = x_col_stride;
    } else {
        q4_s24_cuda_quantize_act(x, k, x_col_stride, ncols, act, stream);
    }
    q4_s24_cuda_mul_mat_vec_variant(variant, w, nrows, k, w_row_bytes, act, ncols, y, y_col_stride, stream, add,
                                    add_col_stride);
}

void q4_s24_cuda_dequantize_f16(const void * w, half * y, int64_t n, cudaStream_t stream) {
    const int64_t eighths = n / 8;
    const int     threads = 256;
    dequantize_kernel<half><<<(unsigned) ((eighths + threads - 1) / threads), threads, 0, stream>>>(
        static_cast<const uint8_t *>(w), y, eighths);
}

void q4_s24_cuda_dequantize_f32(const void * w, float * y, int64_t n, cudaStream_t stream) {
    const int64_t eighths = n / 8;
    const int     threads = 256;
    dequantize_kernel<float><<<(unsigned) ((eighths + threads - 1) / threads), threads, 0, stream>>>(
        static_cast<const uint8_t *>(w), y, eighths);
}

void q4_s24_cuda_get_rows(const void * src, int64_t ne00, size_t nb01, size_t nb02, size_t nb03,
                          const int32_t * ids, int64_t ne10, int64_t ne11, int64_t ne12,
                          size_t nb10, size_t nb11, size_t nb12,
                          void * dst, bool dst_is_f16, size_t nb1, size_t nb2, size_t nb3,
                          cudaStream_t stream) {
    if (ne10 == 0 || ne11 == 0 || ne12 == 0) {
        return;
    }
    const int  threads = 256;
    const dim3 grid((unsigned) ((ne00 / 8 + threads - 1) / threads), (unsigned) (ne10 < 65535 ? ne10 : 65535),
                    (unsigned) (ne11 * ne12));
    const uint8_t * s = static_cast<const uint8_t *>(src);
    uint8_t *       d = static_cast<uint8_t *>(dst);
    if (dst_is_f16) {
        get_rows_kernel<half><<<grid, threads, 0, stream>>>(s, ne00, nb01, nb02, nb03, ids, ne10, ne11, nb10, nb11,
                                                            nb12, d, nb1, nb2, nb3);
    } else {
        get_rows_kernel<float><<<grid, threads, 0, stream>>>(s, ne00, nb01, nb02, nb03, ids, ne10, ne11, nb10, nb11,
                                                             nb12, d, nb1, nb2, nb3);
    }
}
