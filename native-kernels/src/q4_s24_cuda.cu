// Q4_S24 CUDA kernels: activation quantization, decode mat-vec (batch 1..8), dequantization, get_rows.
// Layout recap (FORMAT.md): block = 256 dense columns, 100 bytes: d[2] fp16 at 0, qs at 4 (8 bytes per
// 32-column sub-block), idx at 68 (4 bytes per sub-block). Every field is 4-byte aligned.
#include "q4_s24_cuda.cuh"

#include <stdio.h>
#include <stdlib.h>

namespace {

constexpr int kBlockBytes   = 100;
constexpr int kQsOffset     = 4;
constexpr int kIdxOffset    = 68;
constexpr int kSubCols      = 32;
constexpr int kSubsPerBlock = 8;

__device__ __forceinline__ uint32_t load_word(const uint8_t * p) {
    return __ldg(reinterpret_cast<const uint32_t *>(p));
}

// Kept values 4j..4j+3 of a sub-block (groups 2j and 2j+1, dense columns 8j..8j+7) live in byte b of
// nibble word (j & 1), low nibbles for j < 2, high nibbles for j >= 2. Returns them as 4 signed bytes
// equal to 16*q: the nibble u = q + 8 moved to the high half of the byte with its top bit flipped is
// the two's complement of q in 4 bits, so no subtraction is needed; the 1/16 goes into the scale.
__device__ __forceinline__ int weights_x16(uint32_t qs_word, int j) {
    const uint32_t hi = j < 2 ? (qs_word << 4) : qs_word;
    return (int) ((hi & 0xF0F0F0F0u) ^ 0x80808080u);
}

// __byte_perm selector that picks, for kept values 4j..4j+3, the activation byte at their dense
// position out of the 8 activation bytes of columns 8j..8j+7 (word 2j = bytes 0..3, word 2j+1 = 4..7).
// Positions come as 2-bit fields (bits 2j of each idx byte); values of group 2j+1 get +4.
__device__ __forceinline__ uint32_t gather_selector(uint32_t idx_word, int j) {
    const uint32_t pos = ((idx_word >> (2 * j)) & 0x03030303u) | 0x04040000u;
    const uint32_t nib = pos | (pos >> 4);        // byte 0 = sel0 | sel1 << 4, byte 2 = sel2 | sel3 << 4
    return __byte_perm(nib, 0, 0x0020);           // low 16 bits: the 4 selector nibbles
}

__device__ __forceinline__ int pack_s8(float a, float b, float c, float d) {
    const int lo = (int) __byte_perm((uint32_t) __float2int_rn(a), (uint32_t) __float2int_rn(b), 0x0040);
    const int hi = (int) __byte_perm((uint32_t) __float2int_rn(c), (uint32_t) __float2int_rn(d), 0x0040);
    return (int) __byte_perm((uint32_t) lo, (uint32_t) hi, 0x5410);
}

// The quantize kernel's arithmetic for one 32-value sub-block, done by the thread that uses it (fused variants):
// same integers and scale, so fused and separate quantization give identical results.
__device__ __forceinline__ void quantize_sub_block(const float * __restrict__ x, int q[8], float & d) {
    float4 v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        v[i] = __ldg(reinterpret_cast<const float4 *>(x) + i);
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

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, off);
    }
    return v;
}

// One warp per 32 values: symmetric int8 with one float scale per 32 columns.
__global__ void quantize_act_kernel(const float * __restrict__ x, int64_t k, int64_t x_col_stride,
                                    int64_t total, int8_t * __restrict__ q, float * __restrict__ d) {
    const int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) {
        return; // total is a multiple of 32 and blockDim of 32: whole warps leave together
    }
    const int64_t col = i / k;
    const int64_t e   = i - col * k;
    const float   v   = x[col * x_col_stride + e];
    float amax = fabsf(v);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    }
    const float scale = amax / 127.0f;
    const float inv   = amax > 0.0f ? 127.0f / amax : 0.0f;
    q[i] = (int8_t) __float2int_rn(v * inv);
    if ((threadIdx.x & 31) == 0) {
        d[i / kSubCols] = scale;
    }
}

// silu(gate) * up, as ggml's SWIGLU computes it.
__device__ __forceinline__ float swiglu(float gate, float up) {
    return gate / (1.0f + expf(-gate)) * up;
}

// ROWS weight rows per thread block. Thread t handles sub-blocks t, t + THREADS, ... of each row; THREADS is a
// multiple of 8, so a thread always sees the same sub-block slot (t % 8) of every block it visits and its
// field offsets just advance by THREADS/8 blocks per step. The activations of a sub-block stay in registers
// for all ROWS rows (fewer activation re-reads per weight byte).
// FUSED: read float activations (x) and quantize each sub-block in the thread that uses it, instead of reading
// the int8 copy made by quantize_act_kernel: one launch instead of two, more arithmetic per weight.
// SWIGLU: the feed-forward gate and up projections in one launch: the block also reads the same ROWS rows of
// w_gate (same shape and row bytes as w, the up matrix) and writes silu(gate row . x) * (up row . x).
template <int ROWS, int NCOLS, int THREADS, bool FUSED, bool SWIGLU = false>
__global__ void __launch_bounds__(THREADS)
mul_mat_vec_kernel(const uint8_t * __restrict__ w, const uint8_t * __restrict__ w_gate, int64_t nrows, int nsub,
                   size_t row_bytes, const int8_t * __restrict__ aq, const float * __restrict__ ad, int64_t k,
                   const float * __restrict__ x, int64_t x_col_stride,
                   float * __restrict__ y, int64_t y_col_stride) {
    static_assert(THREADS % 32 == 0, "THREADS must be a multiple of 32");
    static_assert(!(FUSED && SWIGLU), "the gate/up kernel reads pre-quantized activations");
    constexpr int kStepBytes = THREADS / kSubsPerBlock * kBlockBytes;
    constexpr int kRows      = SWIGLU ? 2 * ROWS : ROWS; // up rows, then the same rows of gate

    const int64_t row0 = (int64_t) blockIdx.x * ROWS;
    const int     sub  = threadIdx.x % kSubsPerBlock;

    float acc[kRows][NCOLS];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int c = 0; c < NCOLS; ++c) {
            acc[r][c] = 0.0f;
        }
    }

    // Rows past the end re-read the last row (no divergence) and are never written. Every row has the
    // same layout, so one byte offset per field serves all rows.
    const uint8_t * rows[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
        const int64_t row = row0 + r % ROWS;
        rows[r] = (r < ROWS ? w : w_gate) + (row < nrows ? row : nrows - 1) * row_bytes;
    }
    uint32_t       off_qs  = (threadIdx.x / kSubsPerBlock) * kBlockBytes + kQsOffset + 8 * sub;
    const uint32_t to_idx  = kIdxOffset - kQsOffset - 4 * sub;       // idx field minus qs field
    const uint32_t to_d    = kQsOffset + 8 * sub - (sub < 4 ? 0 : 2); // qs field minus this slot's scale
    const int8_t * a_ptr   = aq + (int64_t) threadIdx.x * kSubCols;
    const float *  d_act   = ad + threadIdx.x;
    const int64_t  a_col   = k;            // bytes between activation columns
    const int64_t  d_col   = k / kSubCols; // scales between activation columns
    const float *  x_ptr   = FUSED ? x + (int64_t) threadIdx.x * kSubCols : nullptr;

    for (int s = threadIdx.x; s < nsub; s += THREADS, off_qs += kStepBytes) {
        uint32_t qs0[kRows], qs1[kRows], idx[kRows];
        float    dw[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            const uint8_t * q = rows[r] + off_qs;
            qs0[r] = load_word(q);
            qs1[r] = load_word(q + 4);
            idx[r] = load_word(q + to_idx);
            dw[r]  = __half2float(__ushort_as_half(__ldg(reinterpret_cast<const unsigned short *>(q - to_d)))) *
                    (1.0f / 16.0f);
        }
        int   act[NCOLS][8];
        float da[NCOLS];
        if constexpr (FUSED) {
#pragma unroll
            for (int c = 0; c < NCOLS; ++c) {
                quantize_sub_block(x_ptr + c * x_col_stride, act[c], da[c]);
            }
            x_ptr += THREADS * kSubCols;
        } else {
#pragma unroll
            for (int c = 0; c < NCOLS; ++c) {
                const int4 * ap = reinterpret_cast<const int4 *>(a_ptr + c * a_col);
                const int4 lo = __ldg(ap);
                const int4 hi = __ldg(ap + 1);
                act[c][0] = lo.x; act[c][1] = lo.y; act[c][2] = lo.z; act[c][3] = lo.w;
                act[c][4] = hi.x; act[c][5] = hi.y; act[c][6] = hi.z; act[c][7] = hi.w;
                da[c] = __ldg(d_act + c * d_col);
            }
            a_ptr += THREADS * kSubCols;
            d_act += THREADS;
        }

#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            int      wq[4];
            uint32_t sel[4];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                wq[j]  = weights_x16((j & 1) ? qs1[r] : qs0[r], j);
                sel[j] = gather_selector(idx[r], j);
            }
#pragma unroll
            for (int c = 0; c < NCOLS; ++c) {
                int isum = 0;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int a = (int) __byte_perm((uint32_t) act[c][2 * j], (uint32_t) act[c][2 * j + 1], sel[j]);
                    isum = dot4_s8(wq[j], a, isum);
                }
                acc[r][c] = fmaf((float) isum, dw[r] * da[c], acc[r][c]);
            }
        }
    }

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
            sum = swiglu(gate, sum);
        }
        const int     r   = threadIdx.x / NCOLS;
        const int     c   = threadIdx.x % NCOLS;
        const int64_t row = row0 + r;
        if (row < nrows) {
            y[c * y_col_stride + row] = sum;
        }
    }
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

template <int ROWS, int NCOLS, int THREADS, bool FUSED, bool SWIGLU>
void launch_mul_mat_vec(const void * w, const void * w_gate, int64_t nrows, int64_t k, size_t w_row_bytes,
                        q4_s24_cuda_act act, float * y, int64_t y_col_stride, cudaStream_t stream) {
    const int64_t blocks = (nrows + ROWS - 1) / ROWS;
    mul_mat_vec_kernel<ROWS, NCOLS, THREADS, FUSED, SWIGLU><<<(unsigned) blocks, THREADS, 0, stream>>>(
        static_cast<const uint8_t *>(w), static_cast<const uint8_t *>(w_gate), nrows, (int) (k / kSubCols),
        w_row_bytes, act.q, act.d, k, act.x, act.x_col_stride, y, y_col_stride);
}

template <int ROWS, int THREADS, bool FUSED, bool SWIGLU = false>
void launch_for_cols(int ncols, const void * w, const void * w_gate, int64_t nrows, int64_t k, size_t w_row_bytes,
                     q4_s24_cuda_act act, float * y, int64_t y_col_stride, cudaStream_t stream) {
    switch (ncols) {
#define Q4_S24_COLS_CASE(C) \
        case C: \
            launch_mul_mat_vec<ROWS, C, THREADS, FUSED, SWIGLU>(w, w_gate, nrows, k, w_row_bytes, act, y, y_col_stride, \
                                                                stream); \
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
    quantize_act_kernel<<<(unsigned) ((total + threads - 1) / threads), threads, 0, stream>>>(
        x, k, x_col_stride, total, act.q, act.d);
}

void q4_s24_cuda_mul_mat_vec_variant(q4_s24_cuda_mmv_variant variant, const void * w, int64_t nrows, int64_t k,
                                     size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                     int64_t y_col_stride, cudaStream_t stream) {
    switch (variant) {
#define Q4_S24_MMV_CASE(R, T) \
        case Q4_S24_MMV_R##R##_T##T: \
            launch_for_cols<R, T, false>(ncols, w, nullptr, nrows, k, w_row_bytes, act, y, y_col_stride, stream); break; \
        case Q4_S24_MMV_FUSED_R##R##_T##T: \
            launch_for_cols<R, T, true>(ncols, w, nullptr, nrows, k, w_row_bytes, act, y, y_col_stride, stream); break;
        Q4_S24_MMV_CASE(2, 128)
        Q4_S24_MMV_CASE(4, 128)
        Q4_S24_MMV_CASE(4, 64)
#undef Q4_S24_MMV_CASE
        default:
            fprintf(stderr, "q4_s24_cuda_mul_mat_vec_variant: unknown variant %d\n", (int) variant);
            abort();
    }
}

bool q4_s24_cuda_mmv_variant_is_fused(q4_s24_cuda_mmv_variant variant) {
    return variant >= Q4_S24_MMV_FUSED_R2_T128;
}

// From the harness on the H200 (docs/benchmarks.md, "GPU (H200)"): small matrices (the 1024-row k/v projections)
// are launch-bound, so at batch 1-2 in-kernel quantization (one launch) wins; otherwise separate quantization.
// Up to 4096 rows: 4 rows per 128 threads at batch 1 and 2 rows per 128 threads at batch 2 (the best in three
// harness runs: 0.2-1.2 us and 0.5-2.4 us ahead of the next shape); 4 rows per 64 threads for taller matrices and
// larger batches.
q4_s24_cuda_mmv_variant q4_s24_cuda_mmv_default_variant(int64_t nrows, int64_t k, int ncols) {
    (void) k;
    if (nrows <= 2048) {
        return ncols <= 2 ? Q4_S24_MMV_FUSED_R4_T128 : Q4_S24_MMV_R4_T128;
    }
    if (nrows <= 4096 && ncols <= 2) {
        return ncols == 1 ? Q4_S24_MMV_R4_T128 : Q4_S24_MMV_R2_T128;
    }
    return Q4_S24_MMV_R4_T64;
}

void q4_s24_cuda_mul_mat_vec_q(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, q4_s24_cuda_act act,
                               int ncols, float * y, int64_t y_col_stride, cudaStream_t stream) {
    q4_s24_cuda_mmv_variant variant = q4_s24_cuda_mmv_default_variant(nrows, k, ncols);
    if (q4_s24_cuda_mmv_variant_is_fused(variant)) {
        variant = (q4_s24_cuda_mmv_variant) (variant - Q4_S24_MMV_FUSED_R2_T128); // same shape, int8 activations
    }
    act.x = nullptr;
    q4_s24_cuda_mul_mat_vec_variant(variant, w, nrows, k, w_row_bytes, act, ncols, y, y_col_stride, stream);
}

void q4_s24_cuda_swiglu_variant(q4_s24_cuda_swiglu_shape shape, const void * w_up, const void * w_gate, int64_t nrows,
                                int64_t k, size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                int64_t y_col_stride, cudaStream_t stream) {
    switch (shape) {
#define Q4_S24_SWIGLU_CASE(R, T) \
        case Q4_S24_SWIGLU_R##R##_T##T: \
            launch_for_cols<R, T, false, true>(ncols, w_up, w_gate, nrows, k, w_row_bytes, act, y, y_col_stride, stream); \
            break;
        Q4_S24_SWIGLU_CASE(1, 128)
        Q4_S24_SWIGLU_CASE(2, 64)
        Q4_S24_SWIGLU_CASE(2, 128)
        Q4_S24_SWIGLU_CASE(4, 64)
#undef Q4_S24_SWIGLU_CASE
        default:
            fprintf(stderr, "q4_s24_cuda_swiglu_variant: unknown shape %d\n", (int) shape);
            abort();
    }
}

// From the harness on the H200 (14336x4096, docs/benchmarks.md): 4 rows of each matrix per 64 threads is best at
// batch 1 (22.6 us with the quantization, against 26.3 us for quantization + two mat-vecs); from batch 2 on,
// 2 rows per 64 threads is as fast or faster (within 4%) and keeps the registers of 8 columns in check.
q4_s24_cuda_swiglu_shape q4_s24_cuda_swiglu_default_shape(int64_t nrows, int64_t k, int ncols) {
    (void) nrows;
    (void) k;
    return ncols == 1 ? Q4_S24_SWIGLU_R4_T64 : Q4_S24_SWIGLU_R2_T64;
}

void q4_s24_cuda_mul_mat_vec_swiglu(const void * w_up, const void * w_gate, int64_t nrows, int64_t k,
                                    size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                    int64_t y_col_stride, cudaStream_t stream) {
    q4_s24_cuda_swiglu_variant(q4_s24_cuda_swiglu_default_shape(nrows, k, ncols), w_up, w_gate, nrows, k, w_row_bytes,
                               act, ncols, y, y_col_stride, stream);
}

void q4_s24_cuda_mul_mat_vec(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const float * x,
                             int64_t x_col_stride, int ncols, float * y, int64_t y_col_stride, void * scratch,
                             cudaStream_t stream) {
    q4_s24_cuda_mmv_variant variant = q4_s24_cuda_mmv_default_variant(nrows, k, ncols);
    const bool x_aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && x_col_stride % 4 == 0;
    if (q4_s24_cuda_mmv_variant_is_fused(variant) && !x_aligned) {
        variant = (q4_s24_cuda_mmv_variant) (variant - Q4_S24_MMV_FUSED_R2_T128); // same shape, separate quantization
    }
    q4_s24_cuda_act act = q4_s24_cuda_act_view(scratch, k, ncols);
    if (q4_s24_cuda_mmv_variant_is_fused(variant)) {
        act.x            = x;
        act.x_col_stride = x_col_stride;
    } else {
        q4_s24_cuda_quantize_act(x, k, x_col_stride, ncols, act, stream);
    }
    q4_s24_cuda_mul_mat_vec_variant(variant, w, nrows, k, w_row_bytes, act, ncols, y, y_col_stride, stream);
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
