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
#include "q4_s24_cuda_device_cache.cuh"
#include "q4_s24_cuda_layout.cuh"

#include <cuda_fp16.h>

#include <atomic>
#include <cstring>

namespace {

// Thread block tile: kTileRows weight rows x kTileTokens tokens, 8 warps as 4 (rows) x 2 (tokens), each warp 32 rows
// (two 16-row mma tiles) x 64 tokens (eight 8-token tiles). The K loop steps one Q4_S24 block column (256 dense
// columns, 8 sub-blocks) at a time through two shared-memory stages filled with cp.async: the weights' 100-byte blocks
// as stored, the activations' 256 halves per token with a 16-byte pad (so that ldmatrix's eight row addresses fall in
// different banks).
constexpr int kWarpsM         = 4;
constexpr int kWarpsN         = 2;
constexpr int kThreads        = 32 * kWarpsM * kWarpsN;
constexpr int kWarpRows       = 32;
constexpr int kWarpTokens     = 64;
constexpr int kTileRows       = kWarpRows * kWarpsM;     // 128
constexpr int kTileTokens     = kWarpTokens * kWarpsN;   // 128
constexpr int kMTiles         = kWarpRows / 16;          // 2
constexpr int kNTiles         = kWarpTokens / 8;         // 8
constexpr int kStageCols      = 256;                     // one Q4_S24 block column
constexpr int kXRowHalves     = kStageCols + 8;          // activation row in shared memory, padded
constexpr int kStageXBytes    = kTileTokens * kXRowHalves * 2;
constexpr int kStageWBytes    = kTileRows * 100;         // kBlockBytes per row (static_assert below)
constexpr int kStages         = 2;
constexpr int kSharedBytes    = kStages * (kStageXBytes + kStageWBytes);

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

// Two kept values (4-bit codes u = q + 8, in bits 0-3 and 16-19 of pair) times the row's scale d, as the halves of
// one A register. Integer bits 0x6400 | u are the half 1024 + u; minus 1032 is q exactly, and one half multiply
// rounds q * d once: the same half as rounding the exact float product (what dequantization to f16 gives), in three
// instructions instead of float conversions.
__host__ __device__ __forceinline__ uint32_t scaled_pair(uint32_t pair, half2 d) {
    const uint32_t biased = pair | 0x64006400u;
    half2          v;
    memcpy(&v, &biased, 4);
    v = __hmul2(__hsub2(v, __halves2half2(__ushort_as_half(0x6408), __ushort_as_half(0x6408))), d); // 0x6408: 1032
    uint32_t r;
    memcpy(&r, &v, 4);
    return r;
}

// Lane t's A registers and metadata for sub-block sub of the blocks at wa (row g) and wb (row g + 8). Host-callable, so
// that a CPU check (cuda-harness/sparse_mma_layout_check.cu) can replay the instruction's operand layout.
__host__ __device__ __forceinline__ void weight_operands(const uint8_t * wa, const uint8_t * wb, int sub, int t,
                                                         uint32_t (&a)[4], uint32_t & metadata) {
    const uint32_t codes_a = *reinterpret_cast<const unsigned short *>(wa + kQsOffset + 8 * sub + 2 * t);
    const uint32_t codes_b = *reinterpret_cast<const unsigned short *>(wb + kQsOffset + 8 * sub + 2 * t);
    const half2    da = __half2half2(*reinterpret_cast<const half *>(wa + 2 * (sub / 4)));
    const half2    db = __half2half2(*reinterpret_cast<const half *>(wb + 2 * (sub / 4)));
    // Low nibbles of the two code bytes (kept 2t, 2t+1) to bits 0-3 and 16-19; then their high nibbles (2t+8, 2t+9).
    a[0] = scaled_pair((codes_a & 0x000Fu) | ((codes_a & 0x0F00u) << 8), da);        // row g,     kept 2t, 2t+1
    a[1] = scaled_pair((codes_b & 0x000Fu) | ((codes_b & 0x0F00u) << 8), db);        // row g + 8, kept 2t, 2t+1
    a[2] = scaled_pair(((codes_a & 0x00F0u) >> 4) | ((codes_a & 0xF000u) << 4), da); // row g,     kept 2t+8, 2t+9
    a[3] = scaled_pair(((codes_b & 0x00F0u) >> 4) | ((codes_b & 0xF000u) << 4), db); // row g + 8, kept 2t+8, 2t+9
    metadata = 0;
    if (t < 2) {
        const uint32_t pa = *reinterpret_cast<const uint32_t *>(wa + kIdxOffset + 4 * sub);
        const uint32_t pb = *reinterpret_cast<const uint32_t *>(wb + kIdxOffset + 4 * sub);
        metadata = metadata_bits(pa, t) | (metadata_bits(pb, t) << 16);
    }
}

// Lane t's B registers for one token: its activations of the sub-block start at xs (4-byte aligned). The documented
// layout the kernel's ldmatrix loads must reproduce (the CPU layout check compares the two); not called by the kernel.
[[maybe_unused]] __host__ __device__ __forceinline__ void activation_operands(const half * xs, int t, uint32_t (&b)[4]) {
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

// Lane l's ldmatrix row address for one 8-token tile and one sub-block: matrix j = l / 8 (dense columns 8j .. 8j+7
// of the sub-block), row l % 8 (token). ldmatrix.x4 then gives lane l, in register j, the two halves of row l / 4 at
// columns 2 (l % 4) and + 1 of matrix j: token g, k = 2t + 8j + h, which is B's register layout (activation_operands).
// Host-callable for the CPU layout check.
__host__ __device__ __forceinline__ void ldmatrix_b_row(int lane, int & token, int & col) {
    token = lane % 8;
    col   = 8 * (lane / 8);
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const half * p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const uint32_t addr = (uint32_t) __cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
#else
    (void) r; (void) p;
    __trap();
#endif
}

// BYTES (4 or 16) from global to shared memory without registers; 16-byte copies bypass L1 (.cg, which only exists
// for 16), smaller ones cannot (.ca).
template <int BYTES> __device__ __forceinline__ void cp_async(void * dst, const void * src) {
    static_assert(BYTES == 4 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes; these kernels use 4 and 16");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const uint32_t to = (uint32_t) __cvta_generic_to_shared(dst);
    if constexpr (BYTES == 16) {
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(to), "l"(src));
    } else {
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(to), "l"(src));
    }
#else
    (void) dst; (void) src;
    __trap();
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

template <int PENDING> __device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(PENDING) : "memory");
#endif
}

static_assert(kBlockBytes == 100, "kStageWBytes assumes 100-byte blocks");

// Stage the weights' block column kb (kTileRows rows, rows past the end repeat the last) and the activations' columns
// kb*256 .. +256 (kTileTokens tokens, tokens past the end repeat the last) into shared memory.
__device__ __forceinline__ void load_stage(uint8_t * ws, half * xs, const uint8_t * w, int64_t row0, int64_t nrows,
                                           size_t row_bytes, const half * x, int64_t k, int64_t tok0, int64_t ncols,
                                           int kb) {
    constexpr int kWords = kBlockBytes / 4;
    for (int i = threadIdx.x; i < kTileRows * kWords; i += kThreads) {
        const int     r   = i / kWords;
        const int     wd  = i % kWords;
        const int64_t row = row0 + r < nrows ? row0 + r : nrows - 1;
        cp_async<4>(ws + r * kBlockBytes + 4 * wd, w + row * row_bytes + (size_t) kb * kBlockBytes + 4 * wd);
    }
    constexpr int kChunks = kStageCols / 8; // 16-byte chunks per token
    for (int i = threadIdx.x; i < kTileTokens * kChunks; i += kThreads) {
        const int     n   = i / kChunks;
        const int     ch  = i % kChunks;
        const int64_t tok = tok0 + n < ncols ? tok0 + n : ncols - 1;
        cp_async<16>(xs + n * kXRowHalves + 8 * ch, x + tok * k + (int64_t) kb * kStageCols + 8 * ch);
    }
}

// The tiled kernel: see the constants above. Each warp builds its two A tiles per sub-block from the staged blocks
// (weight_operands, the same code the CPU layout check replays) and its eight B tiles with ldmatrix, then issues 16
// mma.sp.
__global__ void __launch_bounds__(kThreads, 1)
mul_mat_sparse_mma_kernel(const uint8_t * __restrict__ w, int64_t nrows, int nblocks, size_t row_bytes,
                          const half * __restrict__ x, int64_t k, int64_t ncols, float * __restrict__ y,
                          int64_t y_col_stride) {
    extern __shared__ __align__(16) uint8_t smem[];
    half *    xs_base = reinterpret_cast<half *>(smem);
    uint8_t * ws_base = smem + kStages * kStageXBytes;

    const int     lane   = threadIdx.x % 32;
    const int     warp   = threadIdx.x / 32;
    const int     warp_m = warp % kWarpsM;
    const int     warp_n = warp / kWarpsM;
    const int     g      = lane / 4;
    const int     t      = lane % 4;
    const int64_t row0   = (int64_t) blockIdx.x * kTileRows;
    const int64_t tok0   = (int64_t) blockIdx.y * kTileTokens;

    float acc[kMTiles][kNTiles][4] = {};

    int b_token, b_col;
    ldmatrix_b_row(lane, b_token, b_col);

    load_stage(ws_base, xs_base, w, row0, nrows, row_bytes, x, k, tok0, ncols, 0);
    cp_async_commit();
    for (int kb = 0; kb < nblocks; ++kb) {
        const int stage = kb % kStages;
        if (kb + 1 < nblocks) {
            const int next = (kb + 1) % kStages;
            load_stage(ws_base + next * kStageWBytes, xs_base + next * (kStageXBytes / 2), w, row0, nrows, row_bytes, x,
                       k, tok0, ncols, kb + 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();

        const uint8_t * ws = ws_base + stage * kStageWBytes + (warp_m * kWarpRows) * kBlockBytes;
        const half *    xs = xs_base + stage * (kStageXBytes / 2) + (warp_n * kWarpTokens + b_token) * kXRowHalves + b_col;
#pragma unroll 2
        for (int sub = 0; sub < kSubsPerBlock; ++sub) {
            uint32_t b[kNTiles][4];
#pragma unroll
            for (int nt = 0; nt < kNTiles; ++nt) {
                ldmatrix_x4(b[nt], xs + nt * 8 * kXRowHalves + sub * kSubCols);
            }
#pragma unroll
            for (int mt = 0; mt < kMTiles; ++mt) {
                uint32_t a[4];
                uint32_t metadata;
                weight_operands(ws + (mt * 16 + g) * kBlockBytes, ws + (mt * 16 + g + 8) * kBlockBytes, sub, t, a,
                                metadata);
#pragma unroll
                for (int nt = 0; nt < kNTiles; ++nt) {
                    mma_sp_16x8x32(acc[mt][nt], a, b[nt], metadata);
                }
            }
        }
        __syncthreads(); // the stage is refilled two steps later
    }

#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int64_t row = row0 + warp_m * kWarpRows + mt * 16 + g + 8 * (e >> 1);
                const int64_t tok = tok0 + warp_n * kWarpTokens + nt * 8 + 2 * t + (e & 1);
                if (row < nrows && tok < ncols) {
                    y[tok * y_col_stride + row] = acc[mt][nt][e];
                }
            }
        }
    }
}

} // namespace

static bool device_supported() {
    // Sparse tensor cores, room for the two stages in shared memory (opted in here), and code compiled for them: a
    // binary with only pre-8.0 PTX would be JIT-compiled into the trapping body.
    static std::atomic<int> cached[64];
    return q4_s24_cuda_ask_once_per_device(cached, [](int device) {
        int                major = 0;
        int                optin = 0;
        cudaFuncAttributes attr{};
        return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major >= 8 &&
               cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) == cudaSuccess &&
               optin >= kSharedBytes && cudaFuncGetAttributes(&attr, mul_mat_sparse_mma_kernel) == cudaSuccess &&
               attr.ptxVersion >= 80 &&
               cudaFuncSetAttribute(mul_mat_sparse_mma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    kSharedBytes) == cudaSuccess;
    });
}

bool q4_s24_cuda_sparse_mma_accepts(const void * w, int64_t k, size_t w_row_bytes, int64_t ncols) {
    // cp.async moves 4 bytes of weights at a time; grid.y counts token tiles.
    return (ncols + kTileTokens - 1) / kTileTokens <= 65535 && k % QK_Q4_S24 == 0 && w_row_bytes % 4 == 0 &&
           reinterpret_cast<uintptr_t>(w) % 4 == 0 && device_supported();
}

bool q4_s24_cuda_mul_mat_sparse_mma(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const void * x_f16,
                                    int64_t ncols, float * y, int64_t y_col_stride, cudaStream_t stream) {
    // cp.async moves 16 bytes of activations at a time.
    if (!q4_s24_cuda_sparse_mma_accepts(w, k, w_row_bytes, ncols) || reinterpret_cast<uintptr_t>(x_f16) % 16 != 0) {
        return false;
    }
    if (nrows == 0 || ncols == 0) {
        return true;
    }
    const dim3 grid((unsigned) ((nrows + kTileRows - 1) / kTileRows), (unsigned) ((ncols + kTileTokens - 1) / kTileTokens));
    mul_mat_sparse_mma_kernel<<<grid, kThreads, kSharedBytes, stream>>>(
        static_cast<const uint8_t *>(w), nrows, (int) (k / QK_Q4_S24), w_row_bytes, static_cast<const half *>(x_f16), k,
        ncols, y, y_col_stride);
    return true;
}
