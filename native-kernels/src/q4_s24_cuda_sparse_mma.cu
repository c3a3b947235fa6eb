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
#include "q4_s24_cuda_async_copy.cuh"
#include "q4_s24_cuda_device_cache.cuh"
#include "q4_s24_cuda_layout.cuh"
#include "q4_s24_cuda_swiglu.cuh"

#include <cuda.h> // CUtensorMap (the warp-specialized kernel's activation copies); the driver call goes through the runtime
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstring>

namespace {

// Thread block tile: kTileRows (256) weight rows x kTileTokens (128) tokens, 8 warps. A warp covers kWarpRows rows
// (kMTiles 16-row mma tiles) x kWarpTokens tokens (kNTiles 8-token tiles): every A operand it builds from the 4-bit codes
// serves kNTiles mma.sp and every B operand it loads serves kMTiles. 32 x 128 (the A operands cost ~20 instructions
// each, a B operand one ldmatrix): on the H200 1.16-1.33x faster than 64 x 64 warps (docs/benchmarks.md, session 10).
// The K loop steps half a Q4_S24 block (128 dense columns, 4 sub-blocks) at a time through STAGES shared-memory stages
// filled with cp.async: per weight row the half's pieces of its 100-byte block (staged_byte_source), per token the
// 128 activations with a 16-byte pad (so that ldmatrix's eight row addresses fall in different banks).
constexpr int kTileRows       = 256;
constexpr int kTileTokens     = 128;
constexpr int kWarps          = 8;
constexpr int kThreads        = 32 * kWarps;
constexpr int kWarpRows       = 32;
constexpr int kWarpsM         = kTileRows / kWarpRows;
constexpr int kWarpsN         = kWarps / kWarpsM;
constexpr int kWarpTokens     = kTileTokens / kWarpsN;
constexpr int kMTiles         = kWarpRows / 16;
constexpr int kNTiles         = kWarpTokens / 8;
static_assert(kWarpsM * kWarpsN == kWarps && kWarpRows % 16 == 0, "warp tiles must cover the block tile");
constexpr int kStepCols       = QK_Q4_S24 / 2;           // half a block
constexpr int kStepSubs       = kStepCols / kSubCols;    // 4
constexpr int kXRowHalves     = kStepCols + 8;           // activation row in shared memory, padded
constexpr int kStageXBytes    = kTileTokens * kXRowHalves * 2;
// A staged weight row, 13 words: the block's scales word (both halves' d; the step's own is picked at use), the half's
// 32 code bytes (8 per sub-block), its 16 position bytes (4 per sub-block). 13 words apart, the two code words each row
// g = 0..7 of a warp reads share three banks (a 2-way conflict, ~14% of shared-load wavefronts in the H200 profile);
// Q4_S24_MMA_STAGED_PAD=1 stages a 14th word (the scales word again) so that they do not: measured next on a GPU.
#ifndef Q4_S24_MMA_STAGED_PAD
#    define Q4_S24_MMA_STAGED_PAD 0
#endif
constexpr int kStagedPieces   = 1 + kStepSubs * 2 + kStepSubs;
constexpr int kStagedWords    = kStagedPieces + Q4_S24_MMA_STAGED_PAD;
constexpr int kStagedBytes    = 4 * kStagedWords;        // 52 (56 padded)
constexpr int kStagedQs       = 4;
constexpr int kStagedIdx      = kStagedQs + 8 * kStepSubs;
constexpr int kStageWBytes    = kTileRows * kStagedBytes;
constexpr int kStageBytes     = kStageXBytes + kStageWBytes;

static_assert(kBlockBytes == 100 && kSubsPerBlock == 2 * kStepSubs, "the staging assumes FORMAT.md's block layout");

// Where staged word w of half `half` comes from in the 100-byte block (byte offset; every piece is 4-byte aligned).
__host__ __device__ constexpr int staged_byte_source(int half, int w) {
    return w == 0 || w >= kStagedPieces ? 0  // the scales word (and the pad)
           : w <= 2 * kStepSubs         ? kQsOffset + 8 * kStepSubs * half + 4 * (w - 1)
                                        : kIdxOffset + 4 * kStepSubs * half + 4 * (w - 1 - 2 * kStepSubs);
}

// The scale of a staged row's half, twice.
__host__ __device__ __forceinline__ half2 staged_scale(const uint8_t * staged_row, int half) {
    return __half2half2(reinterpret_cast<const __half *>(staged_row)[half]);
}

// The 16 metadata bits of one row for groups 4*half .. 4*half+3 of a sub-block, from its position word (FORMAT.md:
// byte b, bits [2j, 2j+2) hold the position of kept value 4j + b; kept value 2i + s is slot s of group i): bits 2b+1:2b
// take kept value 8*half + b (byte b's bits 1:0 after the shift), bits 8+2b+1:8+2b kept value 8*half + 4 + b (its bits
// 3:2). A multiply gathers the four bytes' 2-bit fields into the top byte (byte b's field lands at bit 24 + 2b; the
// other partial products land in distinct 2-bit slots below bit 24, so nothing carries into it): two multiplies instead
// of sixteen shift-and-mask steps.
__host__ __device__ __forceinline__ uint32_t metadata_bits(uint32_t positions, int half) {
    constexpr uint32_t kGather = (1u << 24) | (1u << 18) | (1u << 12) | (1u << 6);
    const uint32_t     v       = positions >> (4 * half);
    const uint32_t     first   = ((v & 0x03030303u) * kGather) >> 24;
    const uint32_t     second  = (((v >> 2) & 0x03030303u) * kGather) >> 24;
    return first | (second << 8);
}

// Two kept values (4-bit codes u = q + 8, in bits 0-3 and 16-19 of pair, other bits zero) times the row's scale d, as
// the halves of one A register. Integer bits 0x6400 | u are the half 1024 + u; minus 1032 is q exactly, and one half
// multiply rounds q * d once: the same half as rounding the exact float product (what dequantization to f16 gives), in
// three instructions instead of float conversions.
__host__ __device__ __forceinline__ uint32_t scaled_pair(uint32_t pair, half2 d) {
    const uint32_t biased = pair | 0x64006400u;
    half2          v;
    memcpy(&v, &biased, 4);
    v = __hmul2(__hsub2(v, __halves2half2(__ushort_as_half(0x6408), __ushort_as_half(0x6408))), d); // 0x6408: 1032
    uint32_t r;
    memcpy(&r, &v, 4);
    return r;
}

// Bytes lo and hi of x in bytes 0 and 2 of the result, zeros elsewhere (one PRMT on the GPU).
__host__ __device__ __forceinline__ uint32_t spread_bytes(uint32_t x) {
#ifdef __CUDA_ARCH__
    return __byte_perm(x, 0u, 0x4140);
#else
    return (x & 0xFFu) | ((x & 0xFF00u) << 8);
#endif
}

// Lane t's A registers and metadata for sub-block sub (0-3) of the step staged at sa (row g) and sb (row g + 8), with
// the rows' scales da, db (staged_scale). Host-callable, so that a CPU check (cuda-harness/sparse_mma_layout_check.cu)
// can replay the instruction's operand layout. Every lane computes metadata; the instruction reads lanes t = 0, 1.
__host__ __device__ __forceinline__ void weight_operands(const uint8_t * sa, const uint8_t * sb, int sub, int t,
                                                         half2 da, half2 db, uint32_t (&a)[4], uint32_t & metadata) {
    // Code bytes 2t, 2t+1 of the sub-block: kept values 2t, 2t+1 in their low nibbles, 2t+8, 2t+9 in their high ones.
    const uint32_t codes_a = spread_bytes(*reinterpret_cast<const unsigned short *>(sa + kStagedQs + 8 * sub + 2 * t));
    const uint32_t codes_b = spread_bytes(*reinterpret_cast<const unsigned short *>(sb + kStagedQs + 8 * sub + 2 * t));
    a[0] = scaled_pair(codes_a & 0x000F000Fu, da);        // row g,     kept 2t, 2t+1
    a[1] = scaled_pair(codes_b & 0x000F000Fu, db);        // row g + 8, kept 2t, 2t+1
    a[2] = scaled_pair((codes_a >> 4) & 0x000F000Fu, da); // row g,     kept 2t+8, 2t+9
    a[3] = scaled_pair((codes_b >> 4) & 0x000F000Fu, db); // row g + 8, kept 2t+8, 2t+9
    const uint32_t pa = *reinterpret_cast<const uint32_t *>(sa + kStagedIdx + 4 * sub);
    const uint32_t pb = *reinterpret_cast<const uint32_t *>(sb + kStagedIdx + 4 * sub);
    metadata          = metadata_bits(pa, t & 1) | (metadata_bits(pb, t & 1) << 16);
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

// Each thread's share of staging one step: kWCopies 4-byte weight copies (thread-strided word i of the tile's kTileRows
// x kStagedWords staged words goes to shared byte 4i; their sources computed once, in stage_plan) and kXCopies 16-byte
// activation copies. Rows and tokens past the end repeat the last ones. Offsets are 32-bit: accepts() bounds the
// matrix and activation sizes.
constexpr int kWCopies = kTileRows * kStagedWords / kThreads;
constexpr int kXChunks = kStepCols / 8; // 16-byte chunks per token and step
constexpr int kXCopies = kTileTokens * kXChunks / kThreads;
static_assert(kWCopies * kThreads == kTileRows * kStagedWords && kXCopies * kThreads == kTileTokens * kXChunks,
              "every thread stages the same number of pieces");

struct stage_plan {
    uint32_t w_off[kWCopies]; // byte offset of the piece in half 0 of block column 0
    uint32_t w_half;          // bits 2c+1:2c: copy c's piece is 16 x this many bytes further in a block's second half
};

// How far staged word w's source moves from half 0 to half 1 of a block (0 for the scales word).
__host__ __device__ constexpr int staged_half_delta(int w) {
    return staged_byte_source(1, w) - staged_byte_source(0, w);
}

// stage_plan stores each delta as a 2-bit count of 16 bytes.
constexpr bool staged_half_deltas_fit() {
    for (int w = 0; w < kStagedWords; ++w) {
        const int d = staged_half_delta(w);
        if (d != 0 && d != 16 && d != 32) {
            return false;
        }
    }
    return true;
}
static_assert(staged_half_deltas_fit(), "stage_plan::w_half encodes 0, 16 or 32 bytes");

// Sources of thread tid's COPIES weight copies (thread-strided staged word i = tid + c * kThreads of a tile whose first
// row is row0; rows past the end repeat the last one) in half 0 of block column 0, and their 2-bit half-1 deltas.
// Shared by the kernels' plans (tid: threadIdx.x, or a producer thread's share of a 256-thread plan).
template <int COPIES>
__device__ __forceinline__ void plan_weight_copies(int64_t row0, int64_t nrows, size_t row_bytes, uint32_t (&w_off)[COPIES],
                                                   uint32_t & w_half, int tid) {
    static_assert(2 * COPIES <= 32, "w_half holds 2 bits per copy");
    w_half = 0;
#pragma unroll
    for (int c = 0; c < COPIES; ++c) {
        const int     i   = tid + c * kThreads;
        const int     wd  = i % kStagedWords;
        const int64_t r   = row0 + i / kStagedWords;
        const int64_t row = r < nrows ? r : nrows - 1;
        w_off[c]          = (uint32_t) (row * row_bytes) + (uint32_t) staged_byte_source(0, wd);
        w_half |= (staged_half_delta(wd) == 32 ? 2u : staged_half_delta(wd) == 16 ? 1u : 0u) << (2 * c);
    }
}

__device__ __forceinline__ stage_plan make_stage_plan(int64_t row0, int64_t nrows, size_t row_bytes) {
    stage_plan p;
    plan_weight_copies(row0, nrows, row_bytes, p.w_off, p.w_half, (int) threadIdx.x);
    return p;
}

// Stage step `step` (half `step & 1` of block column `step / 2`) into ws / xs (activation rows padded for ldmatrix).
__device__ __forceinline__ void load_stage(uint8_t * ws, half * xs, const uint8_t * w, const half * x, int64_t k,
                                           int64_t tok0, int64_t ncols, const stage_plan & p, int step) {
    const uint8_t * block = w + (size_t) (step / 2) * kBlockBytes;
    const uint32_t  upper = step & 1; // the block's second half
#pragma unroll
    for (int c = 0; c < kWCopies; ++c) {
        const uint32_t delta = ((p.w_half >> (2 * c)) & 3u) * 16u * upper; // 0, 16 or 32 bytes
        cp_async<4>(ws + 4 * (threadIdx.x + c * kThreads), block + p.w_off[c] + delta);
    }
    const half * xstep = x + (size_t) step * kStepCols;
#pragma unroll
    for (int c = 0; c < kXCopies; ++c) {
        const int     i   = threadIdx.x + c * kThreads;
        const int64_t tok = tok0 + i / kXChunks < ncols ? tok0 + i / kXChunks : ncols - 1;
        cp_async<16>(xs + (i / kXChunks) * kXRowHalves + 8 * (i % kXChunks),
                     xstep + (uint32_t) (tok * k) + 8 * (i % kXChunks));
    }
}

// The tiled kernel: see the constants above. STAGES - 1 steps are in flight while one is computed; one barrier per
// step (the stage refilled at step s is the one every warp finished at step s - 1). Per sub-block each warp first builds
// its kMTiles A tiles (weight_operands, the code the CPU layout check replays), then for each of its kNTiles B tiles
// loads it with ldmatrix and issues kMTiles mma.sp (by default 2 A tiles, 16 B tiles, 32 mma.sp).
template <int STAGES>
__global__ void __launch_bounds__(kThreads, 1)
mul_mat_sparse_mma_kernel(const uint8_t * __restrict__ w, int64_t nrows, int nsteps, size_t row_bytes,
                          const half * __restrict__ x, int64_t k, int64_t ncols, float * __restrict__ y,
                          int64_t y_col_stride) {
    extern __shared__ __align__(16) uint8_t smem[];
    half *    xs_base = reinterpret_cast<half *>(smem);
    uint8_t * ws_base = smem + STAGES * kStageXBytes;

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

    const stage_plan plan = make_stage_plan(row0, nrows, row_bytes);
    // Empty commit groups keep the count uniform, so that wait<STAGES - 2> always means "step s has landed".
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < nsteps) {
            load_stage(ws_base + s * kStageWBytes, xs_base + s * (kStageXBytes / 2), w, x, k, tok0, ncols, plan, s);
        }
        cp_async_commit();
    }
    for (int step = 0; step < nsteps; ++step) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        const int next = step + STAGES - 1;
        if (next < nsteps) {
            load_stage(ws_base + (next % STAGES) * kStageWBytes, xs_base + (next % STAGES) * (kStageXBytes / 2), w, x,
                       k, tok0, ncols, plan, next);
        }
        cp_async_commit();

        const int       stage = step % STAGES;
        const uint8_t * ws    = ws_base + stage * kStageWBytes + (warp_m * kWarpRows) * kStagedBytes;
        const half *    xs = xs_base + stage * (kStageXBytes / 2) + (warp_n * kWarpTokens + b_token) * kXRowHalves + b_col;
        half2           d[kMTiles][2];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
            d[mt][0] = staged_scale(ws + (mt * 16 + g) * kStagedBytes, step & 1);
            d[mt][1] = staged_scale(ws + (mt * 16 + g + 8) * kStagedBytes, step & 1);
        }
#pragma unroll
        for (int sub = 0; sub < kStepSubs; ++sub) {
            uint32_t a[kMTiles][4];
            uint32_t metadata[kMTiles];
#pragma unroll
            for (int mt = 0; mt < kMTiles; ++mt) {
                weight_operands(ws + (mt * 16 + g) * kStagedBytes, ws + (mt * 16 + g + 8) * kStagedBytes, sub, t,
                                d[mt][0], d[mt][1], a[mt], metadata[mt]);
            }
#pragma unroll
            for (int nt = 0; nt < kNTiles; ++nt) {
                uint32_t b[4];
                ldmatrix_x4(b, xs + nt * 8 * kXRowHalves + sub * kSubCols);
#pragma unroll
                for (int mt = 0; mt < kMTiles; ++mt) {
                    mma_sp_16x8x32(acc[mt][nt], a[mt], b, metadata[mt]);
                }
            }
        }
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

// Three stages where shared memory allows (A100, H100/H200: 141 KiB), else two (94 KiB: the 99 KiB of sm_86/89).
template <int STAGES> constexpr int kSharedBytes = STAGES * kStageBytes;

template <int STAGES> bool stages_fit(int device) {
    int                optin = 0;
    cudaFuncAttributes attr{};
    return cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) == cudaSuccess &&
           optin >= kSharedBytes<STAGES> && cudaFuncGetAttributes(&attr, mul_mat_sparse_mma_kernel<STAGES>) == cudaSuccess &&
           attr.ptxVersion >= 80 &&
           cudaFuncSetAttribute(mul_mat_sparse_mma_kernel<STAGES>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                kSharedBytes<STAGES>) == cudaSuccess;
}


// ---- Hopper: the warpgroup's sparse instruction (wgmma.mma_async.sp, sm_90a code only) ----
//
// On the H200 mma.sp peaks at 1.5x dense mma.sync (mma_peak.cu), below what dense cuBLAS gets from Hopper's wgmma; the
// doubled sparse rate is in wgmma.mma_async.sp. Thread blocks of two warpgroups (256 threads) step through K half a
// Q4_S24 block (128 columns) at a time, like the mma.sp kernel and with the same staged weight rows. Each warpgroup
// owns 64 rows over all 256 tokens of the block (m64n256k32; 128 rows x 256 tokens per block): each A operand its warps
// build serves 256 tokens. (Two 64-row tiles over 128 tokens per warpgroup measured up to 7% slower at 512 and 2048
// tokens, equal within 0.5% on one shape, and were removed.) A comes from registers: a warp's part of it (16 rows) and
// its metadata are mma.sp's, built by the same weight_operands. B (the activations) is read by the tensor cores from
// shared memory through a matrix descriptor, K-major and 128-byte swizzled: each token's 128 activations of the step as
// two 128-byte rows (columns 0-63 and 64-127) kept in two 256-token halves, the 16-byte chunk c of token n at chunk c ^
// (n % 8) of its row, so that the tensor cores read eight tokens' chunks from distinct banks. (An unswizzled variant,
// 8-token x 16-byte core matrices, gave the same results with the descriptor's leading offset along K and wrong ones
// with the two offsets swapped on the H200, which pins down the field order; it was slower and was removed.)
// Pipeline: kWgStages shared-memory stages filled with cp.async, kept kWgStages - 1 steps ahead. Per 32-column
// sub-block each warpgroup builds its A registers (double-buffered: the tensor cores read them asynchronously), issues
// its wgmma as one group and waits until only that group is in flight. Two barriers per step: at the top (the step's
// stage has landed for every thread), and after the first sub-block's wait (every warpgroup's wgmma of the previous
// step are complete, so its stage can be refilled while this step's run).
// Where the time goes, for the harness only (the results are then wrong): Q4_S24_WGMMA_EXPERIMENT=1 builds the kernel
// without the weights' global reads (the copies write zeros), 2 without the activations', 3 without the wgmma (the A
// operands are still built; the plain kernel only; 1 applies to the warp-specialized one too, whose activations come
// by TMA whatever the setting). docs/benchmarks.md, session 11.
#ifndef Q4_S24_WGMMA_EXPERIMENT
#    define Q4_S24_WGMMA_EXPERIMENT 0
#endif
constexpr int kWgRows        = 64;  // rows of one wgmma (a warpgroup's tile)
constexpr int kWgTokens      = 256; // tokens of one wgmma and of a thread block
constexpr int kWgTileRows    = 2 * kWgRows;
constexpr int kWgStages      = 3;
constexpr int kWgXHalfBytes  = kWgTokens * 128; // one 64-column half of a stage's activations
constexpr int kWgXStageBytes = 2 * kWgXHalfBytes;
constexpr int kWgWStageBytes = kWgTileRows * kStagedBytes;
// rounded up to 1024 bytes, so that every stage's activations start on a swizzle period
constexpr int kWgStageBytes  = (kWgXStageBytes + kWgWStageBytes + 1023) / 1024 * 1024;
// + slack to align the stages to 1024 bytes (the swizzle pattern's period)
constexpr int kWgSharedBytes = kWgStages * kWgStageBytes + 1024;
constexpr int kWgWCopies     = (kWgTileRows * kStagedWords + kThreads - 1) / kThreads;
constexpr int kWgXCopies     = kWgTokens * kXChunks / kThreads;
static_assert(kThreads == 256 && kXChunks == 16, "two warpgroups; a thread copies one 16-byte chunk column of tokens");
static_assert(kWgXStageBytes % 1024 == 0 && kWgSharedBytes <= 227 * 1024,
              "activation halves start on 1024-byte boundaries; the stages fit Hopper's 227 KiB per block");

// Byte offset of token tok's 16-byte chunk `chunk` (0-15) of a step in an activation stage.
[[maybe_unused]] __host__ __device__ __forceinline__ uint32_t wgmma_x_offset(int tok, int chunk) {
    return (chunk / 8) * kWgXHalfBytes + tok * 128 + (((chunk % 8) ^ (tok % 8)) * 16);
}

// A thread's consecutive activation copies are 16 tokens apart: 16 rows of 128 bytes, the same swizzle (tok % 8).
[[maybe_unused]] constexpr uint32_t kWgXCopyStride = 16 * 128;

// Each thread's share of staging one step, sources computed once: kWgWCopies 4-byte weight copies (thread-strided
// word i of the tile's staged words goes to shared byte 4i, plan_weight_copies), and kWgXCopies 16-byte activation
// copies, all of chunk threadIdx % 16 for tokens threadIdx / 16 + 16c. Tokens past the end are zero-filled rather than
// read again from the last one (every block of a partial tile would hammer those same bytes); rows past the end repeat
// the last one (zeros would be invalid metadata). Offsets are 32-bit: accepts() bounds the matrix and activation sizes.
// With GLU (the gate / up + SWIGLU kernel) a tile covers kWgRows output rows of both matrices, interleaved so that a
// thread holds the gate and up sums of the same row and token (glu_output_row): copy c reads the second (up) matrix
// where bit c of w_second is set.
struct wgmma_stage_plan {
    uint32_t w_off[kWgWCopies];
    uint32_t w_half;
    uint32_t w_second;          // bit c: copy c's piece is in the second matrix (GLU only)
    uint32_t x_off[kWgXCopies]; // in halves, from the activations of step 0
    uint32_t x_valid;           // bit c: copy c's token exists
    uint32_t x_dst;             // shared byte offset of copy 0 in a stage (copy c: + kWgXCopyStride c)
};

// GLU tiles: staged row r (0 .. kWgTileRows - 1; warpgroup r / 64, its warp (r % 64) / 16, that warp's row i = r % 16)
// holds output row glu_output_row(r) of the gate matrix for i < 8 and of the up matrix for i >= 8. A wgmma accumulator
// element j is row g + 8 * ((j >> 1) & 1) of its warp's 16 (wgmma_sp_m64k32), so elements j and j | 2 of a thread are
// the gate and up sums of one row and token: SWIGLU needs no exchange between threads.
[[maybe_unused]] __host__ __device__ constexpr int glu_output_row(int r) {
    return (r / 64) * (kWgRows / 2) + ((r % 64) / 16) * 8 + r % 8;
}
[[maybe_unused]] __host__ __device__ constexpr bool glu_staged_row_is_up(int r) {
    return r % 16 >= 8;
}

template <bool GLU>
[[maybe_unused]] __device__ __forceinline__ wgmma_stage_plan make_wgmma_stage_plan(int64_t row0, int64_t nrows,
                                                                                   size_t row_bytes, int64_t tok0,
                                                                                   int64_t ncols, int64_t k, int tid) {
    static_assert(kWgXCopies <= 32 && kWgWCopies <= 32, "x_valid and w_second hold a bit per copy");
    wgmma_stage_plan p;
    p.w_second = 0;
    if constexpr (GLU) {
        // As plan_weight_copies, with the tile's second half of rows from the second matrix (rows row0 .. again).
        p.w_half = 0;
#pragma unroll
        for (int c = 0; c < kWgWCopies; ++c) {
            const int     i      = tid + c * kThreads;
            const int     wd     = i % kStagedWords;
            const int     r      = i / kStagedWords;
            const bool    second = glu_staged_row_is_up(r);
            const int64_t want   = row0 + glu_output_row(r);
            const int64_t row    = want < nrows ? want : nrows - 1;
            p.w_off[c]           = (uint32_t) (row * row_bytes) + (uint32_t) staged_byte_source(0, wd);
            p.w_half |= (staged_half_delta(wd) == 32 ? 2u : staged_half_delta(wd) == 16 ? 1u : 0u) << (2 * c);
            p.w_second |= (second ? 1u : 0u) << c;
        }
    } else {
        plan_weight_copies(row0, nrows, row_bytes, p.w_off, p.w_half, tid);
    }
    const int chunk = tid % kXChunks;
    p.x_valid       = 0;
#pragma unroll
    for (int c = 0; c < kWgXCopies; ++c) {
        const int64_t tok = tok0 + tid / kXChunks + 16 * c;
        p.x_off[c]        = (uint32_t) ((tok < ncols ? tok : ncols - 1) * k) + 8 * chunk;
        p.x_valid |= (tok < ncols ? 1u : 0u) << c;
    }
    p.x_dst = wgmma_x_offset(tid / kXChunks, chunk);
    return p;
}

// Stage step `step` (when `copy`: else the copies write zeros and read nothing) without branches, which would make
// ptxas serialize the wgmma in flight around them. A partial last round of weight copies writes its zeros into the
// stage's slack (kWgStageBytes is rounded up past them); so do the tokens past the end (plan.x_valid).
// w2: the second matrix of a GLU plan (p.w_second), else unused. COPY_X false: the weights only (the warp-specialized
// kernel copies the activations with the tensor memory accelerator).
template <bool COPY_X = true>
[[maybe_unused]] __device__ __forceinline__ void load_wgmma_stage(uint8_t * stage, const uint8_t * w, const uint8_t * w2,
                                                                  const half * x, const wgmma_stage_plan & p, int step,
                                                                  bool copy, int tid) {
    static_assert(kWgXStageBytes + 4 * kWgWCopies * kThreads <= kWgStageBytes,
                  "the last round of weight copies stays inside the stage");
    const size_t   column = (size_t) (step / 2) * kBlockBytes;
    const uint32_t upper  = step & 1;
    uint8_t *      ws     = stage + kWgXStageBytes;
#pragma unroll
    for (int c = 0; c < kWgWCopies; ++c) {
        const bool      in_tile = kWgWCopies * kThreads == kWgTileRows * kStagedWords ||
                                  tid + c * kThreads < kWgTileRows * kStagedWords;
        const uint32_t  delta   = ((p.w_half >> (2 * c)) & 3u) * 16u * upper;
        const uint8_t * block   = ((p.w_second >> c) & 1u ? w2 : w) + column;
        cp_async_if<4>(ws + 4 * (tid + c * kThreads), block + p.w_off[c] + delta,
                       copy && in_tile && Q4_S24_WGMMA_EXPERIMENT != 1);
    }
    if constexpr (!COPY_X) {
        return;
    }
    const half * xstep = x + (size_t) step * kStepCols;
#pragma unroll
    for (int c = 0; c < kWgXCopies; ++c) {
        cp_async_if<16>(stage + p.x_dst + kWgXCopyStride * c, xstep + p.x_off[c],
                        copy && ((p.x_valid >> c) & 1u) && Q4_S24_WGMMA_EXPERIMENT != 2);
    }
}

// The shared-memory matrix descriptor of sub-block sub's B (32 columns x kWgTokens tokens) in the activation stage at
// shared address stage_addr (1024-byte aligned): start address, leading and stride byte offsets (all >> 4), swizzle
// mode in bits 62-63 (1: 128-byte). Host-callable, so that the CPU layout check can replay the tensor cores' reads.
[[maybe_unused]] __host__ __device__ __forceinline__ uint64_t wgmma_x_descriptor(uint32_t stage_addr, int sub) {
    // The swizzle acts on address bits, so the second 32 columns of a 128-byte row start 64 bytes in.
    const uint32_t addr    = stage_addr + (sub / 2) * kWgXHalfBytes + (sub % 2) * 64;
    const uint64_t lbo     = 16;   // unused: K-major, swizzled, and a sub-block's K fits one 128-byte row
    const uint64_t sbo     = 1024; // eight tokens of 128 bytes
    const uint64_t swizzle = 1;
    return (uint64_t) ((addr & 0x3FFFF) >> 4) | ((lbo >> 4) << 16) | ((sbo >> 4) << 32) | (swizzle << 62);
}

[[maybe_unused]] __device__ __forceinline__ void wgmma_fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#endif
}

// Orders this thread's earlier shared-memory writes before later reads through the async proxy (wgmma's operands).
[[maybe_unused]] __device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}

[[maybe_unused]] __device__ __forceinline__ void wgmma_commit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#endif
}

template <int PENDING> __device__ __forceinline__ void wgmma_wait() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(PENDING) : "memory");
#endif
}

// The 128 f32 accumulators of an m64n256 wgmma, in the asm statement's text (operands %0 .. %127, braced) and as its
// in/out operands: shared by the kernel's instruction and mma_peak.cu's dense counterpart.
#define Q4_S24_WGMMA_ACC128_TEXT \
    "{" \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
    "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
    "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
    "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
    "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"
#define Q4_S24_WGMMA_ACC128_OPERANDS(d) \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
    "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
    "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
    "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
    "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
    "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
    "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
    "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
    "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])

// d += A (64 rows x 32 columns, 2:4 sparse: a and metadata as mma.sp's per warp) x B (32 x N tokens at desc).
// Element j of d: row 16 * (warp % 4) + g + 8 * ((j >> 1) & 1), token 8 * (j >> 2) + 2t + (j & 1).
[[maybe_unused]] __device__ __forceinline__ void wgmma_sp_m64k32(float (&d)[128], const uint32_t (&a)[4], uint64_t desc,
                                                                uint32_t metadata) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %134, 0;\n"
                 "wgmma.mma_async.sp.sync.aligned.m64n256k32.f32.f16.f16 " Q4_S24_WGMMA_ACC128_TEXT ", "
                 "{%128, %129, %130, %131}, %132, %133, 0, p, 1, 1, 0;\n}\n"
                 : Q4_S24_WGMMA_ACC128_OPERANDS(d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(metadata), "r"(1));
#else
    (void) d; (void) a; (void) desc; (void) metadata;
    __trap();
#endif
}
// Pins accumulator registers in place for the compiler (an empty asm that "reads and writes" them) before the first
// wgmma and after the last wait; between the two, nothing but wgmma may define them (ptxas would serialize).
template <int N> __device__ __forceinline__ void wgmma_fence_operands(float (&d)[N]) {
#pragma unroll
    for (int j = 0; j < N; ++j) {
        asm volatile("" : "+f"(d[j])::"memory");
    }
}

// Stores a finished tile from consumer warp cwarp (0-7) lane (g, t)'s accumulators: plain, added atomically (K split),
// or with GLU as silu(gate) * up (elements j and j | 2 are the gate and up sums of one row and token, glu_output_row).
// Tiles inside the matrix (all but the last row and token tiles) skip the per-element bounds checks.
template <bool GLU>
__device__ __forceinline__ void store_wgmma_tile(const float (&acc)[kWgTokens / 2], int cwarp, int g, int t,
                                                 int64_t row0, int64_t tok0, int64_t nrows, int64_t ncols,
                                                 float * __restrict__ y, int64_t y_col_stride, bool atomic) {
    constexpr int tile_rows = GLU ? kWgRows : kWgTileRows;
    // This thread's first output row in the tile (element j adds 8 * ((j >> 1) & 1) without GLU) and token.
    const int     row_in    = GLU ? glu_output_row(16 * cwarp + g) : 16 * cwarp + g;
    float *       y0        = y + (tok0 + 2 * t) * y_col_stride + row0 + row_in;
    const bool    interior  = row0 + tile_rows <= nrows && tok0 + kWgTokens <= ncols;
    const auto    store     = [&](int j, bool check) {
        const int  row_add = GLU ? 0 : 8 * ((j >> 1) & 1);
        const int  tok_add = 8 * (j >> 2) + (j & 1);
        if (check && (row0 + row_in + row_add >= nrows || tok0 + 2 * t + tok_add >= ncols)) {
            return;
        }
        float * dst = y0 + tok_add * y_col_stride + row_add;
        if constexpr (GLU) {
            *dst = q4_s24_swiglu(acc[j], acc[j | 2]);
        } else if (!atomic) {
            *dst = acc[j];
        } else {
            atomicAdd(dst, acc[j]);
        }
    };
    if (interior) {
#pragma unroll
        for (int j = 0; j < kWgTokens / 2; ++j) {
            if (!GLU || ((j >> 1) & 1) == 0) {
                store(j, false);
            }
        }
    } else {
#pragma unroll
        for (int j = 0; j < kWgTokens / 2; ++j) {
            if (!GLU || ((j >> 1) & 1) == 0) {
                store(j, true);
            }
        }
    }
}

// gridDim.z > 1 splits K: block z takes its share of the steps and adds its partial sums into y with atomicAdd, onto
// zeros the caller wrote. Two splits stay deterministic (0 + a + b and 0 + b + a round alike); more would not.
// GLU (the gate / up + SWIGLU kernel; no split): w is the gate matrix and w_up the up matrix of the same shape; a block
// takes the same kWgRows rows of both (interleaved, glu_output_row) and stores silu(gate) * up, so ggml's
// separate SWIGLU launch, the two f32 results it reads and one of the two activation conversions go away.
template <bool GLU>
__global__ void __launch_bounds__(kThreads, 1)
mul_mat_sparse_wgmma_kernel(const uint8_t * __restrict__ w, const uint8_t * __restrict__ w_up, int64_t nrows,
                            int nsteps_all, size_t row_bytes, const half * __restrict__ x, int64_t k, int64_t ncols,
                            float * __restrict__ y, int64_t y_col_stride) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int kAhead = kWgStages - 1;
    const int     share  = (nsteps_all + (int) gridDim.z - 1) / (int) gridDim.z;
    const int     first  = (int) blockIdx.z * share; // this block's steps: first .. first + nsteps - 1
    const int     nsteps = min(share, nsteps_all - first);
    extern __shared__ __align__(16) uint8_t smem_raw[];
    uint8_t * smem = smem_raw + ((1024u - ((uint32_t) __cvta_generic_to_shared(smem_raw) & 1023u)) & 1023u);

    const int     lane = threadIdx.x % 32;
    const int     warp = threadIdx.x / 32;
    const int     g    = lane / 4;
    const int     t    = lane % 4;
    const int64_t row0 = (int64_t) blockIdx.x * (GLU ? kWgRows : kWgTileRows);
    const int64_t tok0 = (int64_t) blockIdx.y * kWgTokens;

    float acc[kWgTokens / 2];
#pragma unroll
    for (int j = 0; j < kWgTokens / 2; ++j) {
        acc[j] = 0.0f;
    }
    wgmma_fence_operands(acc);

    // One cp.async group per step: the prologue's steps 0 .. kAhead - 1, then each iteration's step + kAhead.
    const wgmma_stage_plan plan = make_wgmma_stage_plan<GLU>(row0, nrows, row_bytes, tok0, ncols, k, (int) threadIdx.x);
#pragma unroll
    for (int s = 0; s < kAhead; ++s) {
        load_wgmma_stage(smem + s * kWgStageBytes, w, w_up, x, plan, first + (s < nsteps ? s : nsteps - 1), s < nsteps,
                         (int) threadIdx.x);
        cp_async_commit();
    }
    // This warp's first row (row g of its 16) in a staged step: warpgroup warp / 4 owns 64 rows.
    const int warp_row = (warp / 4) * kWgRows + 16 * (warp % 4) + g;
    uint32_t  a[2][4];
    uint32_t  metadata[2];
    for (int step = 0; step < nsteps; ++step) {
        cp_async_wait<kAhead - 1>();
        fence_proxy_async(); // this thread's cp.async writes, visible to the tensor cores' (async proxy) reads
        __syncthreads();

        const uint8_t * xs = smem + (step % kWgStages) * kWgStageBytes;
        const uint8_t * ws = xs + kWgXStageBytes + warp_row * kStagedBytes;
        const half2     da = staged_scale(ws, (first + step) & 1);
        const half2     db = staged_scale(ws + 8 * kStagedBytes, (first + step) & 1);
#pragma unroll
        for (int sub = 0; sub < kStepSubs; ++sub) {
            const int buf = sub & 1; // the other buffer's wgmma group has completed (wait below)
            weight_operands(ws, ws + 8 * kStagedBytes, sub, t, da, db, a[buf], metadata[buf]);
            const uint64_t desc = wgmma_x_descriptor((uint32_t) __cvta_generic_to_shared(xs), sub);
            wgmma_fence();
            if constexpr (Q4_S24_WGMMA_EXPERIMENT == 3) {
                asm volatile("" ::"r"(a[buf][0]), "r"(a[buf][1]), "r"(a[buf][2]), "r"(a[buf][3]), "r"(metadata[buf]),
                             "l"(desc));
            } else {
                wgmma_sp_m64k32(acc, a[buf], desc, metadata[buf]);
            }
            wgmma_commit();
            wgmma_wait<1>();
            if (sub == 0) {
                // Every warpgroup's wgmma of the previous step have completed: its stage takes step + kAhead.
                __syncthreads();
                const int next = step + kAhead;
                load_wgmma_stage(smem + (next % kWgStages) * kWgStageBytes, w, w_up, x, plan,
                                 first + (next < nsteps ? next : nsteps - 1), next < nsteps, (int) threadIdx.x);
                cp_async_commit();
            }
        }
    }
    wgmma_wait<0>();
    cp_async_wait<0>(); // the last iterations' zero-filling copies, before the block's shared memory is released
    wgmma_fence_operands(acc);
    store_wgmma_tile<GLU>(acc, warp, g, t, row0, tok0, nrows, ncols, y, y_col_stride, gridDim.z > 1);
#else
    (void) w; (void) w_up; (void) nrows; (void) nsteps_all; (void) row_bytes; (void) x; (void) k; (void) ncols; (void) y;
    (void) y_col_stride;
    __trap(); // wgmma_fits() refuses binaries without sm_90a code
#endif
}

// ---- The same tiles, warp-specialized (Q4_S24_SPARSE_WGMMA_WS) ----
//
// The kernel above spends ~1 us of each ~1.9 us step (H200, 512 tokens) on work its wgmma do not hide: every thread
// issues the step's copies and waits at two block-wide barriers (docs/benchmarks.md, sessions 11 and 22). Here a third
// warpgroup, the producer, issues every copy (the weights' cp.async, each of its threads the share of two of the plain
// kernel's threads; the activations as two TMA boxes per step from one thread) and the two consumer warpgroups only
// build A operands and issue wgmma, synchronized per stage by mbarriers instead of __syncthreads: full[s] completes
// when the producer's 128 threads have seen their weight copies of the step land (each waits for its own, makes them
// visible to the async proxy and arrives) and the TMA boxes' bytes have arrived, empty[s] when the consumer warps have
// seen their wgmma on the stage complete. The producer keeps one step landed ahead of the one it is copying.
// Measured 1.24x faster than the plain kernel on the 8B feed-forward products at 512 tokens (session 22). Nsight
// Compute then showed the producer setting the pace (session 23: ~300 instructions per step for its 46 copies per
// thread, consumers waiting on full[s]); TMA for the activations made it 1.26x faster again (92 vs 116 us, harness).
// Correct and slower (session 22): activations multicast to two blocks of a cluster (commit f21e922) and tall tiles
// (256 rows x 128 tokens, five stages, commit 97f9856).
constexpr int kWsThreads     = kThreads + 128;
constexpr int kConsumerWarps = kThreads / 32;

[[maybe_unused]] __device__ __forceinline__ uint32_t shared_address(const void * p) {
    return (uint32_t) __cvta_generic_to_shared(p);
}

[[maybe_unused]] __device__ __forceinline__ void mbarrier_init(uint64_t * bar, uint32_t count) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(shared_address(bar)), "r"(count) : "memory");
#endif
}

// Arrives (release) where `arrive` holds, without a branch: the consumers call it between a wgmma and its wait.
[[maybe_unused]] __device__ __forceinline__ void mbarrier_arrive_if(uint64_t * bar, bool arrive) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %1, 0;\n@p mbarrier.arrive.shared::cta.b64 _, [%0];\n}" ::"r"(
                     shared_address(bar)),
                 "r"((int) arrive)
                 : "memory");
#endif
}

// Waits (acquire) until the barrier's phase of parity `parity` has completed.
[[maybe_unused]] __device__ __forceinline__ void mbarrier_wait(uint64_t * bar, uint32_t parity) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("{\n.reg .pred done;\n"
                 "retry:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                 "@!done bra retry;\n}" ::"r"(shared_address(bar)),
                 "r"(parity)
                 : "memory");
#endif
}

// The warp-specialized kernel's work split: a block takes a contiguous range of the product's (tile, K step) pairs,
// tiles in order (row tiles first), a tile's steps in order, so that a range ends inside at most two tiles. With as
// many blocks as tiles each takes one whole tile; with more, or with as many as the GPU holds at once (stream-K: every
// SM busy to the end whatever the tile count), ranges split tiles. A tile's pieces then meet in the block that took
// its first step (its "head"), at the end of that block's range: every other piece is the first (or only) piece of a
// later block's range, which stores its partial sums in the workspace (one slot per block) and then sets the block's
// flag; the head waits for those flags in block order, adds the slots in that order (deterministic), and stores the
// tile. A block sets its flag right after its first piece, which never waits, and only heads wait, at the end of
// their ranges, on later blocks: with blocks started in index order (what the GPU does, though CUDA does not promise
// it; CUTLASS's stream-K assumes the same) the wait cannot deadlock, even when not every block fits at once.
// The flags are zeroed in the stream before each launch (launch_ws), so that the workspace can be any memory (ggml's
// pool) and a CUDA graph's replays work too (ggml captures prefill graphs as well).
struct stream_k_split {
    int      row_tiles; // tiles along the rows (tile t: rows (t % row_tiles) * tile rows, tokens (t / row_tiles) * 256)
    int      total;     // tiles x steps per tile (below 2^31: plan_ws_launch)
    int      steps;     // K steps per tile
    float *  partials;  // gridDim.x slots of kThreads x kWgTokens / 2 floats (null when no tile is split)
    uint64_t * flags;   // gridDim.x flags
};

__device__ __forceinline__ int range_begin(const stream_k_split & sk, int block) {
    return (int) ((int64_t) block * sk.total / gridDim.x);
}

[[maybe_unused]] __device__ __forceinline__ void store_release(uint64_t * p, uint64_t v) {
    asm volatile("st.release.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

[[maybe_unused]] __device__ __forceinline__ uint64_t load_acquire(const uint64_t * p) {
    uint64_t v;
    asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}

// The current phase of the barrier also waits for `bytes` more of asynchronous copies (complete_tx).
[[maybe_unused]] __device__ __forceinline__ void mbarrier_expect_tx(uint64_t * bar, uint32_t bytes) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;" ::"r"(shared_address(bar)), "r"(bytes)
                 : "memory");
#endif
}

// One 64-column x 256-token box of the activations (columns col .., tokens tok ..; past the last token zeros) from the
// tensor map (encode_x_map) into shared memory at dst (1024-byte aligned) in wgmma_x_offset's layout, its bytes
// counted on bar.
[[maybe_unused]] __device__ __forceinline__ void tma_x_box(uint8_t * dst, const CUtensorMap * map, int col, int tok,
                                                           uint64_t * bar) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                 ::"r"(shared_address(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(col), "r"(tok),
                 "r"(shared_address(bar))
                 : "memory");
#endif
}

template <bool GLU>
__global__ void __launch_bounds__(kWsThreads, 1)
mul_mat_sparse_wgmma_ws_kernel(const uint8_t * __restrict__ w, const uint8_t * __restrict__ w_up, int64_t nrows,
                               stream_k_split sk, size_t row_bytes, int64_t k, int64_t ncols, float * __restrict__ y,
                               int64_t y_col_stride, const __grid_constant__ CUtensorMap x_map) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int tile_rows = GLU ? kWgRows : kWgTileRows;
    const int     begin     = range_begin(sk, (int) blockIdx.x);
    const int     end       = range_begin(sk, (int) blockIdx.x + 1);
    extern __shared__ __align__(16) uint8_t smem_raw[];
    uint8_t * smem = smem_raw + ((1024u - ((uint32_t) __cvta_generic_to_shared(smem_raw) & 1023u)) & 1023u);
    __shared__ uint64_t full[kWgStages], empty[kWgStages];
    if (threadIdx.x == 0) {
        for (int s = 0; s < kWgStages; ++s) {
            mbarrier_init(&full[s], 128);
            mbarrier_init(&empty[s], kConsumerWarps);
        }
    }
    __syncthreads();

    if (threadIdx.x < 128) {
        // Producer: the range's i-th step into stage i % kWgStages once the consumers have released step
        // i - kWgStages; step i - 1 announced once step i's copies are issued.
        const int p = (int) threadIdx.x;
        int       i = 0;
        for (int pos = begin; pos < end;) {
            const int     tile = pos / sk.steps;
            const int     ks   = pos - tile * sk.steps;
            const int     n    = min(end - pos, sk.steps - ks);
            const int64_t row0 = (int64_t) (tile % sk.row_tiles) * tile_rows;
            const int64_t tok0 = (int64_t) (tile / sk.row_tiles) * kWgTokens;
            const wgmma_stage_plan plan0 = make_wgmma_stage_plan<GLU>(row0, nrows, row_bytes, tok0, ncols, k, p);
            const wgmma_stage_plan plan1 = make_wgmma_stage_plan<GLU>(row0, nrows, row_bytes, tok0, ncols, k, p + 128);
            for (int step = ks; step < ks + n; ++step, ++i) {
                const int s = i % kWgStages;
                if (i >= kWgStages) {
                    mbarrier_wait(&empty[s], (uint32_t) (i / kWgStages - 1) & 1u);
                }
                uint8_t * stage = smem + s * kWgStageBytes;
                if (p == 0) {
                    // The step's activations, both 64-column halves of the tile's tokens (zeros past the last).
                    mbarrier_expect_tx(&full[s], kWgXStageBytes);
                    tma_x_box(stage, &x_map, step * kStepCols, (int) tok0, &full[s]);
                    tma_x_box(stage + kWgXHalfBytes, &x_map, step * kStepCols + 64, (int) tok0, &full[s]);
                }
                load_wgmma_stage<false>(stage, w, w_up, nullptr, plan0, step, true, p);
                load_wgmma_stage<false>(stage, w, w_up, nullptr, plan1, step, true, p + 128);
                cp_async_commit();
                if (i > 0) {
                    cp_async_wait<1>();
                    fence_proxy_async();
                    mbarrier_arrive_if(&full[(i - 1) % kWgStages], true);
                }
            }
            pos += n;
        }
        if (i > 0) {
            cp_async_wait<0>();
            fence_proxy_async();
            mbarrier_arrive_if(&full[(i - 1) % kWgStages], true);
        }
    } else {
        const int ct       = (int) threadIdx.x - 128; // consumer thread, 0-255
        const int lane     = ct % 32;
        const int cwarp    = ct / 32;
        const int g        = lane / 4;
        const int t        = lane % 4;
        const int warp_row = 16 * cwarp + g; // this warp's first row (row g of its 16) in a staged step
        int       i        = 0;
        for (int pos = begin; pos < end;) {
            const int tile = pos / sk.steps;
            const int ks   = pos - tile * sk.steps;
            const int n    = min(end - pos, sk.steps - ks);
            float     acc[kWgTokens / 2];
#pragma unroll
            for (int j = 0; j < kWgTokens / 2; ++j) {
                acc[j] = 0.0f;
            }
            wgmma_fence_operands(acc);
            uint32_t a[2][4];
            uint32_t metadata[2];
            for (int step = 0; step < n; ++step, ++i) {
                const int s = i % kWgStages;
                mbarrier_wait(&full[s], (uint32_t) (i / kWgStages) & 1u);
                const uint8_t * xs = smem + s * kWgStageBytes;
                const uint8_t * ws = xs + kWgXStageBytes + warp_row * kStagedBytes;
                const half2     da = staged_scale(ws, (ks + step) & 1);
                const half2     db = staged_scale(ws + 8 * kStagedBytes, (ks + step) & 1);
#pragma unroll
                for (int sub = 0; sub < kStepSubs; ++sub) {
                    const int buf = sub & 1;
                    weight_operands(ws, ws + 8 * kStagedBytes, sub, t, da, db, a[buf], metadata[buf]);
                    const uint64_t desc = wgmma_x_descriptor((uint32_t) __cvta_generic_to_shared(xs), sub);
                    wgmma_fence();
                    wgmma_sp_m64k32(acc, a[buf], desc, metadata[buf]);
                    wgmma_commit();
                    wgmma_wait<1>();
                    if (sub == 0) {
                        // This warp's wgmma of the segment's previous step have completed: release its stage.
                        mbarrier_arrive_if(&empty[(i + kWgStages - 1) % kWgStages], step > 0 && lane == 0);
                    }
                }
            }
            wgmma_wait<0>();
            wgmma_fence_operands(acc);
            // The segment's last stage, released now rather than at the next segment's first step: the producer
            // fills it during the store below.
            mbarrier_arrive_if(&empty[(i + kWgStages - 1) % kWgStages], lane == 0);

            const int tile_end = (tile + 1) * sk.steps;
            if (ks > 0) {
                // A later piece of a tile: partial sums to this block's slot, then the flag.
                float * slot = sk.partials + (size_t) blockIdx.x * (kThreads * kWgTokens / 2);
#pragma unroll
                for (int j = 0; j < kWgTokens / 2; ++j) {
                    slot[j * kThreads + ct] = acc[j];
                }
                asm volatile("bar.sync 1, %0;" ::"n"(kThreads) : "memory"); // every consumer's sums written
                if (ct == 0) {
                    store_release(&sk.flags[blockIdx.x], 1);
                }
            } else {
                // The head: add the later pieces (blocks blockIdx.x + 1 .. while they start inside the tile), store.
                for (int b = (int) blockIdx.x + 1; pos + n < tile_end && range_begin(sk, b) < tile_end; ++b) {
                    while (load_acquire(&sk.flags[b]) == 0) {
                    }
                    const float * slot = sk.partials + (size_t) b * (kThreads * kWgTokens / 2);
#pragma unroll
                    for (int j = 0; j < kWgTokens / 2; ++j) {
                        acc[j] += slot[j * kThreads + ct];
                    }
                }
                const int64_t row0 = (int64_t) (tile % sk.row_tiles) * tile_rows;
                const int64_t tok0 = (int64_t) (tile / sk.row_tiles) * kWgTokens;
                store_wgmma_tile<GLU>(acc, cwarp, g, t, row0, tok0, nrows, ncols, y, y_col_stride, false);
            }
            pos += n;
        }
    }
#else
    (void) w; (void) w_up; (void) nrows; (void) sk; (void) row_bytes; (void) k; (void) ncols; (void) y;
    (void) y_col_stride; (void) x_map;
    __trap(); // wgmma_fits() refuses binaries without sm_90a code
#endif
}

// Whether this binary holds sm_90a code for the current device (code for plain sm_90, or PTX JIT-compiled from it,
// would take the trapping body): asked by running this once.
__global__ void wgmma_compiled_probe(int * out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    *out = 1;
#else
    *out = 0;
#endif
}

template <typename Kernel> bool takes_wgmma_shared_memory(Kernel kernel) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kWgSharedBytes) == cudaSuccess;
}

bool wgmma_kernel_fits(int optin) {
    // + the warp-specialized kernels' static mbarriers
    return optin >= kWgSharedBytes + 64 && takes_wgmma_shared_memory(mul_mat_sparse_wgmma_kernel<false>) &&
           takes_wgmma_shared_memory(mul_mat_sparse_wgmma_kernel<true>) &&
           takes_wgmma_shared_memory(mul_mat_sparse_wgmma_ws_kernel<false>) &&
           takes_wgmma_shared_memory(mul_mat_sparse_wgmma_ws_kernel<true>);
}

bool wgmma_fits(int device) {
    int major = 0, minor = 0, optin = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess ||
        major != 9 || minor != 0) {
        return false;
    }
    int * d_flag = nullptr;
    int   flag   = 0;
    if (cudaMalloc(&d_flag, sizeof(int)) != cudaSuccess) {
        return false;
    }
    wgmma_compiled_probe<<<1, 1>>>(d_flag);
    const bool ran = cudaGetLastError() == cudaSuccess &&
                     cudaMemcpy(&flag, d_flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess;
    (void) cudaFree(d_flag);
    return ran && flag == 1 && wgmma_kernel_fits(optin);
}

} // namespace

// The stage count the current device runs, 0 when it cannot run the kernel: no sparse tensor cores, too little shared
// memory, or code compiled below 8.0 (a binary with only pre-8.0 PTX would be JIT-compiled into the trapping body).
// Q4_S24_MMA_MAX_STAGES=2 builds the two-stage pipeline only, so that a GPU with room for three can run it too.
#ifndef Q4_S24_MMA_MAX_STAGES
#    define Q4_S24_MMA_MAX_STAGES 3
#endif
static int device_stages() {
    static std::atomic<int> fits3[64], fits2[64];
    const auto sparse_tensor_cores = [](int device) {
        int major = 0;
        return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major >= 8;
    };
    if (Q4_S24_MMA_MAX_STAGES >= 3 &&
        q4_s24_cuda_ask_once_per_device(fits3, [&](int d) { return sparse_tensor_cores(d) && stages_fit<3>(d); })) {
        return 3;
    }
    return q4_s24_cuda_ask_once_per_device(fits2, [&](int d) { return sparse_tensor_cores(d) && stages_fit<2>(d); }) ? 2 : 0;
}

static bool device_has_wgmma() {
    static std::atomic<int> fits[64];
    return q4_s24_cuda_ask_once_per_device(fits, wgmma_fits);
}

static int plain_rule(int64_t nrows, int64_t k, int64_t ncols) {
    return nrows >= 8192 && ncols <= 512                ? Q4_S24_SPARSE_WGMMA
           : k >= 8192 && ncols >= 384 && ncols <= 512 ? Q4_S24_SPARSE_WGMMA_SPLIT_K
                                                        : -1;
}

static int warp_specialized_rule(int64_t nrows, int64_t k, int64_t ncols) {
    if (ncols > 2048) {
        return -1;
    }
    if (nrows >= 8192) {
        return Q4_S24_SPARSE_WGMMA;
    }
    if (nrows < 4096) {
        return plain_rule(nrows, k, ncols); // not measured in this form: what the plain rule picks
    }
    const int64_t fewest_split = k >= 8192 ? 256 : 384;
    if (k < 4096 || ncols < fewest_split) {
        return -1;
    }
    return ncols <= 512 ? Q4_S24_SPARSE_WGMMA_SPLIT_K : Q4_S24_SPARSE_WGMMA;
}

int q4_s24_cuda_sparse_prefill_kernel(int64_t nrows, int64_t k, int64_t ncols, bool warp_specialized) {
    const int by_shape = warp_specialized ? warp_specialized_rule(nrows, k, ncols) : plain_rule(nrows, k, ncols);
    return by_shape >= 0 && device_has_wgmma() ? by_shape : -1;
}

static bool has_tensor_map_encoder();

// The warp-specialized kernels copy with TMA: where the driver's tensor-map encoder is missing, the plain wgmma kernel
// of the same split instead (stream-K: unsplit).
static int runnable_wgmma_form(int chosen) {
    const bool ws = chosen == Q4_S24_SPARSE_WGMMA_WS || chosen == Q4_S24_SPARSE_WGMMA_WS_SPLIT_K ||
                    chosen == Q4_S24_SPARSE_WGMMA_WS_STREAM_K;
    if (!ws || has_tensor_map_encoder()) {
        return chosen;
    }
    return chosen == Q4_S24_SPARSE_WGMMA_WS_SPLIT_K ? Q4_S24_SPARSE_WGMMA_SPLIT_K : Q4_S24_SPARSE_WGMMA;
}

// The kernel a request (without the WARP_SPECIALIZED bit) runs on the current device, or -1.
static int chosen_plain_kernel(int kernel, int64_t nrows, int64_t k, int64_t ncols) {
    switch (kernel) {
        case Q4_S24_SPARSE_WHERE_FASTER:
        case Q4_S24_SPARSE_WHERE_WS_FASTER:
            return q4_s24_cuda_sparse_prefill_kernel(nrows, k, ncols, kernel == Q4_S24_SPARSE_WHERE_WS_FASTER);
        case Q4_S24_SPARSE_AUTO:
            return device_has_wgmma() ? Q4_S24_SPARSE_WGMMA : device_stages() != 0 ? Q4_S24_SPARSE_MMA_SP : -1;
        case Q4_S24_SPARSE_MMA_SP:
            return device_stages() != 0 ? kernel : -1;
        case Q4_S24_SPARSE_WGMMA:
        case Q4_S24_SPARSE_WGMMA_SPLIT_K:
        case Q4_S24_SPARSE_WGMMA_WS:
        case Q4_S24_SPARSE_WGMMA_WS_SPLIT_K:
        case Q4_S24_SPARSE_WGMMA_WS_STREAM_K:
            return device_has_wgmma() ? kernel : -1;
    }
    return -1;
}

static int chosen_kernel(q4_s24_sparse_kernel kernel, int64_t nrows, int64_t k, int64_t ncols) {
    constexpr int request_bits = Q4_S24_SPARSE_WARP_SPECIALIZED | Q4_S24_SPARSE_STREAM_K;
    int           chosen       = chosen_plain_kernel(kernel & ~request_bits, nrows, k, ncols);
    if (kernel & Q4_S24_SPARSE_WARP_SPECIALIZED) {
        chosen = chosen == Q4_S24_SPARSE_WGMMA         ? Q4_S24_SPARSE_WGMMA_WS
                 : chosen == Q4_S24_SPARSE_WGMMA_SPLIT_K ? Q4_S24_SPARSE_WGMMA_WS_SPLIT_K
                                                          : chosen;
    }
    if ((kernel & Q4_S24_SPARSE_STREAM_K) &&
        (chosen == Q4_S24_SPARSE_WGMMA_WS || chosen == Q4_S24_SPARSE_WGMMA_WS_SPLIT_K)) {
        chosen = Q4_S24_SPARSE_WGMMA_WS_STREAM_K;
    }
    return runnable_wgmma_form(chosen);
}

static int device_sms() {
    static std::atomic<int> sms[64];
    int                     device = 0;
    if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) {
        (void) cudaGetLastError();
        return 1;
    }
    int n = sms[device].load(std::memory_order_relaxed);
    if (n == 0) {
        if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || n < 1) {
            (void) cudaGetLastError();
            n = 1;
        }
        sms[device].store(n, std::memory_order_relaxed);
    }
    return n;
}

// The warp-specialized kernel's launch for a chosen kernel (WS, WS_SPLIT_K, WS_STREAM_K): its blocks (stream_k_split),
// and the workspace they need (0 when every block takes whole tiles).
struct ws_launch {
    int64_t row_tiles;
    int64_t tiles;
    int     steps;
    int64_t blocks;
    size_t  workspace_bytes;
};

static ws_launch plan_ws_launch(int chosen, bool glu, int64_t nrows, int64_t k, int64_t ncols) {
    ws_launch l;
    const int tile_rows = glu ? kWgRows : kWgTileRows;
    l.row_tiles         = (nrows + tile_rows - 1) / tile_rows;
    l.tiles             = l.row_tiles * ((ncols + kWgTokens - 1) / kWgTokens);
    l.steps          = (int) (k / kStepCols);
    const int64_t total = l.tiles * l.steps;
    l.blocks = chosen == Q4_S24_SPARSE_WGMMA_WS_SPLIT_K   ? l.tiles * std::min(2, l.steps)
               : chosen == Q4_S24_SPARSE_WGMMA_WS_STREAM_K ? std::min<int64_t>(device_sms(), total)
                                                            : l.tiles;
    l.workspace_bytes = l.blocks == l.tiles ? 0
                                            : (size_t) l.blocks * (kThreads * (kWgTokens / 2) * sizeof(float) +
                                                                   sizeof(uint64_t));
    return l;
}

// cuTensorMapEncodeTiled from the driver, through the runtime (no link to libcuda), or null.
using encode_tiled_fn = CUresult (*)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *, const cuuint64_t *,
                                     const cuuint64_t *, const cuuint32_t *, const cuuint32_t *, CUtensorMapInterleave,
                                     CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
static encode_tiled_fn tensor_map_encoder() {
    static const encode_tiled_fn fn = [] {
        void *                          p = nullptr;
        cudaDriverEntryPointQueryResult found{};
#if CUDART_VERSION >= 12050
        const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault,
                                                                 &found);
#else
        const cudaError_t err = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &p, cudaEnableDefault, &found);
#endif
        (void) cudaGetLastError();
        return err == cudaSuccess && found == cudaDriverEntryPointSuccess ? reinterpret_cast<encode_tiled_fn>(p)
                                                                           : nullptr;
    }();
    return fn;
}

static bool has_tensor_map_encoder() {
    return tensor_map_encoder() != nullptr;
}

// The activations (ncols columns of k halves) as a tensor of 64-column x 256-token boxes, 128-byte swizzled: the
// warp-specialized kernel's copies land in wgmma_x_offset's layout; tokens past the end read as zeros.
static bool encode_x_map(CUtensorMap * map, const half * x, int64_t k, int64_t ncols) {
    const encode_tiled_fn encode = tensor_map_encoder();
    if (encode == nullptr) {
        return false;
    }
    const cuuint64_t dims[2]    = { (cuuint64_t) k, (cuuint64_t) ncols };
    const cuuint64_t strides[1] = { (cuuint64_t) k * sizeof(half) };
    const cuuint32_t box[2]     = { 64, kWgTokens };
    const cuuint32_t steps[2]   = { 1, 1 };
    return encode(map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, const_cast<half *>(x), dims, strides, box, steps,
                  CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// Launches the warp-specialized kernel as planned; false (nothing launched) where the plan needs a workspace that was
// not given.
template <bool GLU>
static bool launch_ws(const ws_launch & l, const uint8_t * w, const uint8_t * w_up, int64_t nrows, size_t row_bytes,
                      const half * x, int64_t k, int64_t ncols, float * y, int64_t y_col_stride, cudaStream_t stream,
                      void * workspace) {
    if (l.tiles * l.steps > INT32_MAX) {
        return false; // stream_k_split counts (tile, step) pairs in 32 bits
    }
    stream_k_split sk{};
    sk.row_tiles = (int) l.row_tiles;
    sk.total     = (int) (l.tiles * l.steps);
    sk.steps     = l.steps;
    CUtensorMap x_map;
    if (!encode_x_map(&x_map, x, k, ncols)) {
        return false;
    }
    if (l.workspace_bytes > 0) {
        if (workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % 16 != 0) {
            return false;
        }
        sk.partials = static_cast<float *>(workspace);
        sk.flags    = reinterpret_cast<uint64_t *>(sk.partials + (size_t) l.blocks * kThreads * (kWgTokens / 2));
        if (cudaMemsetAsync(sk.flags, 0, (size_t) l.blocks * sizeof(uint64_t), stream) != cudaSuccess) {
            return false;
        }
    }
    mul_mat_sparse_wgmma_ws_kernel<GLU><<<(unsigned) l.blocks, kWsThreads, kWgSharedBytes, stream>>>(
        w, w_up, nrows, sk, row_bytes, k, ncols, y, y_col_stride, x_map);
    return true;
}

// The arguments within both kernels' limits: cp.async moves 4 bytes of weights at a time; grid.y counts token tiles
// (128 tokens or more); the staging offsets are 32-bit.
static bool within_limits(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, int64_t ncols) {
    return (ncols + kTileTokens - 1) / kTileTokens <= 65535 && k % QK_Q4_S24 == 0 && w_row_bytes % 4 == 0 &&
           reinterpret_cast<uintptr_t>(w) % 4 == 0 && (uint64_t) nrows * w_row_bytes <= UINT32_MAX - kBlockBytes &&
           (uint64_t) ncols * k <= UINT32_MAX;
}

int q4_s24_cuda_sparse_chosen_kernel(q4_s24_sparse_kernel kernel, int64_t nrows, int64_t k, int64_t ncols) {
    return chosen_kernel(kernel, nrows, k, ncols);
}

bool q4_s24_cuda_sparse_mma_accepts(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, int64_t ncols,
                                    q4_s24_sparse_kernel kernel) {
    return within_limits(w, nrows, k, w_row_bytes, ncols) && chosen_kernel(kernel, nrows, k, ncols) >= 0;
}

size_t q4_s24_cuda_sparse_workspace_bytes(q4_s24_sparse_kernel kernel, int64_t nrows, int64_t k, int64_t ncols,
                                          bool glu) {
    const int chosen = glu ? runnable_wgmma_form(kernel) : chosen_kernel(kernel, nrows, k, ncols);
    if (chosen != Q4_S24_SPARSE_WGMMA_WS && chosen != Q4_S24_SPARSE_WGMMA_WS_SPLIT_K &&
        chosen != Q4_S24_SPARSE_WGMMA_WS_STREAM_K) {
        return 0;
    }
    return plan_ws_launch(chosen, glu, nrows, k, ncols).workspace_bytes;
}

bool q4_s24_cuda_mul_mat_sparse_mma(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const void * x_f16,
                                    int64_t ncols, float * y, int64_t y_col_stride, cudaStream_t stream,
                                    q4_s24_sparse_kernel kernel, void * workspace) {
    // cp.async moves 16 bytes of activations at a time.
    const int chosen = chosen_kernel(kernel, nrows, k, ncols);
    if (chosen < 0 || !within_limits(w, nrows, k, w_row_bytes, ncols) || reinterpret_cast<uintptr_t>(x_f16) % 16 != 0) {
        return false;
    }
    if (nrows == 0 || ncols == 0) {
        return true;
    }
    const dim3 grid((unsigned) ((nrows + kTileRows - 1) / kTileRows), (unsigned) ((ncols + kTileTokens - 1) / kTileTokens));
    const auto * wb     = static_cast<const uint8_t *>(w);
    const auto * xh     = static_cast<const half *>(x_f16);
    const int    nsteps = (int) (k / kStepCols);
    switch (chosen) {
        case Q4_S24_SPARSE_WGMMA_WS:
        case Q4_S24_SPARSE_WGMMA_WS_SPLIT_K:
        case Q4_S24_SPARSE_WGMMA_WS_STREAM_K:
            return launch_ws<false>(plan_ws_launch(chosen, false, nrows, k, ncols), wb, nullptr, nrows, w_row_bytes, xh,
                                    k, ncols, y, y_col_stride, stream, workspace);
        case Q4_S24_SPARSE_WGMMA:
        case Q4_S24_SPARSE_WGMMA_SPLIT_K: {
            const unsigned splits = chosen == Q4_S24_SPARSE_WGMMA_SPLIT_K ? 2 : 1;
            if (splits > 1 && cudaMemset2DAsync(y, (size_t) y_col_stride * sizeof(float), 0, (size_t) nrows * sizeof(float),
                                                (size_t) ncols, stream) != cudaSuccess) {
                return false;
            }
            const dim3 wg_grid((unsigned) ((nrows + kWgTileRows - 1) / kWgTileRows),
                               (unsigned) ((ncols + kWgTokens - 1) / kWgTokens), splits);
            mul_mat_sparse_wgmma_kernel<false><<<wg_grid, kThreads, kWgSharedBytes, stream>>>(
                wb, nullptr, nrows, nsteps, w_row_bytes, xh, k, ncols, y, y_col_stride);
            break;
        }
        default:
            if (device_stages() == 3) {
                mul_mat_sparse_mma_kernel<3><<<grid, kThreads, kSharedBytes<3>, stream>>>(wb, nrows, nsteps, w_row_bytes,
                                                                                           xh, k, ncols, y, y_col_stride);
            } else {
                mul_mat_sparse_mma_kernel<2><<<grid, kThreads, kSharedBytes<2>, stream>>>(wb, nrows, nsteps, w_row_bytes,
                                                                                           xh, k, ncols, y, y_col_stride);
            }
    }
    return true;
}

bool q4_s24_cuda_sparse_swiglu_accepts(const void * w_gate, const void * w_up, int64_t nrows, int64_t k,
                                       size_t w_row_bytes, int64_t ncols) {
    return within_limits(w_gate, nrows, k, w_row_bytes, ncols) && within_limits(w_up, nrows, k, w_row_bytes, ncols) &&
           device_has_wgmma();
}

bool q4_s24_cuda_mul_mat_sparse_swiglu(const void * w_gate, const void * w_up, int64_t nrows, int64_t k,
                                       size_t w_row_bytes, const void * x_f16, int64_t ncols, float * y,
                                       int64_t y_col_stride, cudaStream_t stream, q4_s24_sparse_kernel kernel,
                                       void * workspace) {
    if (!q4_s24_cuda_sparse_swiglu_accepts(w_gate, w_up, nrows, k, w_row_bytes, ncols) ||
        reinterpret_cast<uintptr_t>(x_f16) % 16 != 0 ||
        (kernel != Q4_S24_SPARSE_WGMMA && kernel != Q4_S24_SPARSE_WGMMA_WS && kernel != Q4_S24_SPARSE_WGMMA_WS_STREAM_K)) {
        return false;
    }
    if (nrows == 0 || ncols == 0) {
        return true;
    }
    const auto * wg = static_cast<const uint8_t *>(w_gate);
    const auto * wu = static_cast<const uint8_t *>(w_up);
    const auto * xh = static_cast<const half *>(x_f16);
    kernel          = (q4_s24_sparse_kernel) runnable_wgmma_form(kernel);
    if (kernel != Q4_S24_SPARSE_WGMMA) {
        return launch_ws<true>(plan_ws_launch(kernel, true, nrows, k, ncols), wg, wu, nrows, w_row_bytes, xh, k, ncols,
                               y, y_col_stride, stream, workspace);
    }
    const dim3 grid((unsigned) ((nrows + kWgRows - 1) / kWgRows), (unsigned) ((ncols + kWgTokens - 1) / kWgTokens));
    mul_mat_sparse_wgmma_kernel<true><<<grid, kThreads, kWgSharedBytes, stream>>>(
        wg, wu, nrows, (int) (k / kStepCols), w_row_bytes, xh, k, ncols, y, y_col_stride);
    return true;
}
