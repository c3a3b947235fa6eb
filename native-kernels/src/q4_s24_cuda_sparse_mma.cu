// Q4_S24 prefill on sparse tensor cores (byte layout: native-kernels/FORMAT.md).
//
// The weights are the sparse operand A of mma.sp.m16n8k32 (f16 inputs, f32 accumulation): a 32-column sub-block of 16
// rows is one A tile, its 16 kept values per row are A's 16 compressed columns, and the sub-block's 2-bit positions are
// the metadata. The activations (f16) are B, 8 tokens per instruction. Operand layouts (PTX ISA, "Matrix fragments for
// mma.sp" with 16-bit types; g = lane / 4, t = lane % 4):
//   A register r (two halves h): row g + 8*(r & 1), compressed column 2t + 8*(r >> 1) + h
//   B register r (two halves h): k = 2t + 8*r + h, token g
//   C/D element j: row g + 8*(j >> 1), token 2t + (j & 1)
//   metadata (sparsity selector 0: lanes with t = 0 and t = 1 supply it): lane t covers dense columns 16t .. 16t+15
//   (groups 4t .. 4t+3), row g in the low 16 bits and row g + 8 in the high 16 bits, one nibble per group (bits 1:0
//   the position of its first kept value, bits 3:2 the second's, increasing as the ordered variant requires).
// In FORMAT.md's terms compressed column c is kept value c of the sub-block, so lane t needs kept values 2t, 2t+1 (the
// low nibbles of qs bytes 2t, 2t+1) and 2t+8, 2t+9 (their high nibbles): one 16-bit load per row and sub-block.
#include "q4_s24_cuda_sparse_mma.cuh"
#include "q4_s24_cuda_layout.cuh"

#include <cuda_fp16.h>

namespace {


constexpr int kWarps         = 4;  // warps per thread block, 16 weight rows each
constexpr int kTokenTiles    = 8;  // 8-token tiles per warp
constexpr int kRowsPerBlock   = 16 * kWarps;
constexpr int kTokensPerBlock = 8 * kTokenTiles;

// The 16 metadata bits of one row for groups 4*half .. 4*half+3 of a sub-block, from its position word (FORMAT.md:
// byte b, bits [2j, 2j+2) hold the position of kept value 4j + b; kept value 2i + s is slot s of group i).
__host__ __device__ __forceinline__ uint32_t metadata_bits(uint32_t positions, int half) {
    const uint32_t v = (positions >> (4 * half)) & 0x0F0F0F0Fu; // byte b: kept values 8*half + b (bits 1:0), + 4 (3:2)
    uint32_t bits = 0;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
        const uint32_t byte = v >> (8 * b);
        bits |= (byte & 3u) << (2 * b);            // kept value 8*half + b
        bits |= ((byte >> 2) & 3u) << (8 + 2 * b); // kept value 8*half + 4 + b
    }
    return bits;
}

// Two kept values (4-bit codes q + 8) times the row's scale, as the halves of one A register.
__host__ __device__ __forceinline__ uint32_t scaled_pair(uint32_t code_lo, uint32_t code_hi, float d) {
    const half2 v = __floats2half2_rn(((float) code_lo - 8.0f) * d, ((float) code_hi - 8.0f) * d);
    return *reinterpret_cast<const uint32_t *>(&v);
}

// Lane t's A registers and metadata for sub-block sub of the blocks at wa (row g) and wb (row g + 8). Host-callable, so
// that a CPU check (cuda-harness/sparse_mma_layout_check.cu) can replay the instruction's operand layout.
__host__ __device__ __forceinline__ void weight_operands(const uint8_t * wa, const uint8_t * wb, int sub, int t,
                                                         uint32_t (&a)[4], uint32_t & metadata) {
    const uint32_t codes_a = *reinterpret_cast<const unsigned short *>(wa + kQsOffset + 8 * sub + 2 * t);
    const uint32_t codes_b = *reinterpret_cast<const unsigned short *>(wb + kQsOffset + 8 * sub + 2 * t);
    const float    da = __half2float(*reinterpret_cast<const half *>(wa + 2 * (sub / 4)));
    const float    db = __half2float(*reinterpret_cast<const half *>(wb + 2 * (sub / 4)));
    a[0] = scaled_pair(codes_a & 15, (codes_a >> 8) & 15, da);         // row g,     kept 2t, 2t+1
    a[1] = scaled_pair(codes_b & 15, (codes_b >> 8) & 15, db);         // row g + 8, kept 2t, 2t+1
    a[2] = scaled_pair((codes_a >> 4) & 15, (codes_a >> 12) & 15, da); // row g,     kept 2t+8, 2t+9
    a[3] = scaled_pair((codes_b >> 4) & 15, (codes_b >> 12) & 15, db); // row g + 8, kept 2t+8, 2t+9
    metadata = 0;
    if (t < 2) {
        const uint32_t pa = *reinterpret_cast<const uint32_t *>(wa + kIdxOffset + 4 * sub);
        const uint32_t pb = *reinterpret_cast<const uint32_t *>(wb + kIdxOffset + 4 * sub);
        metadata = metadata_bits(pa, t) | (metadata_bits(pb, t) << 16);
    }
}

// Lane t's B registers for one token: its activations of the sub-block start at xs (4-byte aligned).
__host__ __device__ __forceinline__ void activation_operands(const half * xs, int t, uint32_t (&b)[4]) {
    for (int r = 0; r < 4; ++r) {
        b[r] = *reinterpret_cast<const uint32_t *>(xs + 2 * t + 8 * r); // k = 2t + 8r, 2t + 8r + 1
    }
}

// The ordered-metadata form (PTX 8.5, CUDA 12.5) where the toolkit has it: the two positions of a group increase, as
// Q4_S24 stores them.
#if __CUDACC_VER_MAJOR__ > 12 || (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ >= 5)
#    define Q4_S24_MMA_SP "mma.sp::ordered_metadata"
#else
#    define Q4_S24_MMA_SP "mma.sp"
#endif

__device__ __forceinline__ void mma_sp_16x8x32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[4],
                                               uint32_t metadata) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(Q4_S24_MMA_SP ".sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9, %10, %11}, {%0, %1, %2, %3}, %12, 0x0;"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]),
                   "r"(metadata));
#else
    (void) c; (void) a; (void) b; (void) metadata;
    __trap(); // the host function refuses devices and binaries below compute capability 8.0
#endif
}

// One warp: 16 weight rows x 64 tokens over the whole row, one sub-block (32 dense columns) per step. The weights come
// straight from global memory (one 16-bit code load, one position word and one scale per row and step); the
// activations through L1. No shared-memory staging or software pipelining yet.
__global__ void __launch_bounds__(32 * kWarps)
mul_mat_sparse_mma_kernel(const uint8_t * __restrict__ w, int64_t nrows, int nsub, size_t row_bytes,
                          const half * __restrict__ x, int64_t k, int64_t ncols, float * __restrict__ y,
                          int64_t y_col_stride) {
    const int     lane = threadIdx.x % 32;
    const int     g    = lane / 4;
    const int     t    = lane % 4;
    const int64_t row0 = (int64_t) blockIdx.x * kRowsPerBlock + (threadIdx.x / 32) * 16;
    const int64_t tok0 = (int64_t) blockIdx.y * kTokensPerBlock;

    // Rows and tokens past the end read the last ones (no divergence around the mma) and are never written.
    const int64_t   ra  = row0 + g < nrows ? row0 + g : nrows - 1;
    const int64_t   rb  = row0 + g + 8 < nrows ? row0 + g + 8 : nrows - 1;
    const uint8_t * wa  = w + ra * row_bytes;
    const uint8_t * wb  = w + rb * row_bytes;
    const half *    xt[kTokenTiles];
#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j) {
        const int64_t tok = tok0 + 8 * j + g;
        xt[j] = x + (tok < ncols ? tok : ncols - 1) * k;
    }

    float acc[kTokenTiles][4];
#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            acc[j][e] = 0.0f;
        }
    }

    for (int s = 0; s < nsub; ++s) {
        const size_t at = (size_t) (s / kSubsPerBlock) * kBlockBytes;
        uint32_t     a[4];
        uint32_t     metadata;
        weight_operands(wa + at, wb + at, s % kSubsPerBlock, t, a, metadata);
#pragma unroll
        for (int j = 0; j < kTokenTiles; ++j) {
            uint32_t b[4];
            activation_operands(xt[j] + (int64_t) s * kSubCols, t, b);
            mma_sp_16x8x32(acc[j], a, b, metadata);
        }
    }

#pragma unroll
    for (int j = 0; j < kTokenTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int64_t row = row0 + g + 8 * (e >> 1);
            const int64_t tok = tok0 + 8 * j + 2 * t + (e & 1);
            if (row < nrows && tok < ncols) {
                y[tok * y_col_stride + row] = acc[j][e];
            }
        }
    }
}

} // namespace

bool q4_s24_cuda_mul_mat_sparse_mma(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const void * x_f16,
                                    int64_t ncols, float * y, int64_t y_col_stride, cudaStream_t stream) {
    // The device must have sparse tensor cores, and the code it runs must have been compiled for them: a binary with
    // only pre-8.0 PTX would be JIT-compiled into the trapping body on a newer GPU.
    int                device = 0;
    int                major  = 0;
    cudaFuncAttributes attr{};
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess || major < 8 ||
        cudaFuncGetAttributes(&attr, mul_mat_sparse_mma_kernel) != cudaSuccess || attr.ptxVersion < 80) {
        (void) cudaGetLastError();
        return false;
    }
    if (nrows == 0 || ncols == 0) {
        return true;
    }
    if ((ncols + kTokensPerBlock - 1) / kTokensPerBlock > 65535) {
        return false; // grid y limit
    }
    const dim3 grid((unsigned) ((nrows + kRowsPerBlock - 1) / kRowsPerBlock),
                    (unsigned) ((ncols + kTokensPerBlock - 1) / kTokensPerBlock));
    mul_mat_sparse_mma_kernel<<<grid, 32 * kWarps, 0, stream>>>(static_cast<const uint8_t *>(w), nrows,
                                                                (int) (k / kSubCols), w_row_bytes,
                                                                static_cast<const half *>(x_f16), k, ncols, y,
                                                                y_col_stride);
    return true;
}
