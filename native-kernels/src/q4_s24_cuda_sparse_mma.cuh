// Q4_S24 prefill on sparse tensor cores: mma.sp (compute capability 8.0 and newer, with 94 KiB of shared memory per
// thread block; 141 KiB for the three-stage pipeline of A100 and H100/H200; 256 rows x 128 tokens per block) and, on
// Hopper with sm_90a code, wgmma.mma_async.sp (128 rows x 256 tokens per block, 217 KiB). The weights and activations
// are staged in shared memory. The standalone harness checks and times both; by default ggml calls them only where the
// wgmma kernel was measured faster than its dequantize to f16 + cuBLAS (WHERE_FASTER, in the warp-specialized form);
// Q4_S24_CUDA_SPARSE_MMA chooses otherwise (q4_s24_ggml_cuda.cu).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

// Which sparse tensor-core kernel runs. AUTO: wgmma.mma_async.sp on Hopper (compute capability 9.0) when the binary
// holds sm_90a code, else mma.sp. WGMMA_SPLIT_K: the wgmma kernel with K split in two (twice the thread blocks, for
// grids below one wave; y zeroed first, then both halves added atomically, which stays deterministic). WHERE_FASTER:
// only the shapes where a wgmma kernel beat dequantize to f16 + cuBLAS on the H200 (ggml's default, see
// q4_s24_cuda_sparse_prefill_kernel), else none. WGMMA_WS, WGMMA_WS_SPLIT_K: the same tiles warp-specialized (a
// producer warpgroup issues the copies, the two consumer warpgroups only build operands and issue wgmma, mbarriers
// between them). WARP_SPECIALIZED, or-ed into any other request: wherever it would run WGMMA or WGMMA_SPLIT_K, the
// warp-specialized form. WHERE_WS_FASTER: as WHERE_FASTER, by the warp-specialized form's wider rule (see
// q4_s24_cuda_sparse_prefill_kernel). WGMMA_WS_STREAM_K: the warp-specialized kernel with as many blocks as the GPU
// has SMs, each taking an equal share of the product's (tile, K step) pairs (stream-K: no partly idle last wave;
// split tiles are summed through a workspace, deterministically). STREAM_K, or-ed into a request: wherever the
// warp-specialized form would run (either split), stream-K. Split-K of the warp-specialized form sums its halves
// through the workspace too (no atomics, y not zeroed first). The warp-specialized forms copy the activations with
// TMA: where the driver offers no tensor-map encoder, requests for them run the plain form of the same split.
enum q4_s24_sparse_kernel {
    Q4_S24_SPARSE_AUTO,
    Q4_S24_SPARSE_MMA_SP,
    Q4_S24_SPARSE_WGMMA,
    Q4_S24_SPARSE_WGMMA_SPLIT_K,
    Q4_S24_SPARSE_WHERE_FASTER,
    Q4_S24_SPARSE_WGMMA_WS,
    Q4_S24_SPARSE_WGMMA_WS_SPLIT_K,
    Q4_S24_SPARSE_WHERE_WS_FASTER,
    Q4_S24_SPARSE_WGMMA_WS_STREAM_K,
    Q4_S24_SPARSE_WARP_SPECIALIZED = 0x100,
    Q4_S24_SPARSE_STREAM_K         = 0x200,
};

// The kernel WHERE_FASTER runs for nrows x k weights and ncols tokens, or -1 (dequantize + cuBLAS): a rule by shape
// from the harness on the H200 (docs/benchmarks.md, session 12), measured on the 8B feed-forward matrices at 100, 256,
// 512 and 2048 tokens, where the wgmma kernel's time is flat up to 256 tokens and the f16 dequantization that cuBLAS
// needs costs a fixed ~45 us per matrix. wgmma for 8192 rows or more at up to 512 tokens (14336x4096: 62.8 vs 96.1 us
// at 256 tokens, 122.8 vs 137.6 at 512; it loses at 2048); split-K for fewer rows over k >= 8192 at 384-512 tokens
// (4096x14336 at 512: 111.6 vs 125.2 us; it loses at 256 and 2048). Other shapes with such dimensions (70B's) follow
// the same rule unmeasured. Hopper only: -1 where the device has no wgmma.
// warp_specialized: the rule where the warp-specialized form beat dequantize + cuBLAS in session 22's harness
// (docs/benchmarks.md), a superset of the one above: 8192+ rows up to 2048 tokens (14336x4096: 50.7 vs 83.2 us at 100
// tokens, 343.6 vs 370.7 at 2048); 4096+ rows over k >= 8192 split-K at 256-512 tokens (4096x14336 at 256: 84.4 vs
// 97.3 us), unsplit past 512 up to 2048 (329.9 vs 352.5); 4096+ rows over k >= 4096 split-K at 384-512 tokens
// (4096x4096 at 512: 36.8 vs 40.3 us; it loses at 256), unsplit past 512 up to 2048 (96.3 vs 104.7); fewer rows as
// above. Token counts between 512 and 2048 are interpolated, not measured; whole-model effect not yet measured
// (opt-in: Q4_S24_CUDA_SPARSE_MMA=3).
int q4_s24_cuda_sparse_prefill_kernel(int64_t nrows, int64_t k, int64_t ncols, bool warp_specialized = false);

// The kernel (a q4_s24_sparse_kernel other than AUTO, WHERE_FASTER and WHERE_WS_FASTER, without the request bits) a
// request for `kernel` (request bits included) runs on the current device for these sizes, or -1 (none: dequantize +
// cuBLAS).
int q4_s24_cuda_sparse_chosen_kernel(q4_s24_sparse_kernel kernel, int64_t nrows, int64_t k, int64_t ncols);

// y[c*y_col_stride + r] = dot(weight row r, x column c) for r < nrows, c < ncols. w: nrows rows of k/256 blocks,
// row r at w + r*w_row_bytes (w_row_bytes % 4 == 0). x_f16: ncols columns of k half values, column c at x_f16 + c*k
// (16-byte aligned). Returns false, launching nothing, when the current device cannot run the requested kernel (no
// sparse tensor cores, too little shared memory, code compiled below 8.0; for WGMMA, not compute capability 9.0 or no
// sm_90a code in the binary) or the arguments break its alignment or grid limits, or it needs a workspace
// (q4_s24_cuda_sparse_workspace_bytes) and none was given.
bool q4_s24_cuda_mul_mat_sparse_mma(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const void * x_f16,
                                    int64_t ncols, float * y, int64_t y_col_stride, cudaStream_t stream,
                                    q4_s24_sparse_kernel kernel = Q4_S24_SPARSE_AUTO, void * workspace = nullptr);

// The workspace (bytes, 16-byte aligned, any contents, used only until the launch completes) a launch of `kernel`
// needs for these sizes on the current device: 0 for every kernel but the warp-specialized form's split-K and
// stream-K (one slot of partial sums per thread block, ~128 KiB each). glu: for
// q4_s24_cuda_mul_mat_sparse_swiglu, whose `kernel` is taken as given.
size_t q4_s24_cuda_sparse_workspace_bytes(q4_s24_sparse_kernel kernel, int64_t nrows, int64_t k, int64_t ncols,
                                          bool glu = false);

// Whether it would run for these weights and ncols on the current device, everything but the activations' alignment:
// sparse tensor cores, enough shared memory, code compiled for 8.0 or newer (for WGMMA: sm_90a code on a 9.0 device),
// asked once per device, the first time with a small probe kernel and a synchronous copy, so not from inside a CUDA
// graph capture (ggml runs a graph uncaptured, a warm-up, before it captures it, prefill graphs too); the weights' alignment; the grid limit;
// the weights below 4 GiB and the activations below 2^32 halves. Callers ask it before preparing f16 activations.
bool q4_s24_cuda_sparse_mma_accepts(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, int64_t ncols,
                                    q4_s24_sparse_kernel kernel = Q4_S24_SPARSE_AUTO);

// The feed-forward's gate / up + SWIGLU on Hopper's sparse tensor cores (the wgmma kernel, sm_90a code on a 9.0
// device): y[c*y_col_stride + r] = silu(dot(gate row r, x column c)) * dot(up row r, x column c), in one launch, for
// nrows rows of each (same shape and row bytes). kernel: WGMMA (the plain form), WGMMA_WS or WGMMA_WS_STREAM_K (which
// needs q4_s24_cuda_sparse_workspace_bytes(kernel, ..., true) of workspace). Arguments as
// q4_s24_cuda_mul_mat_sparse_mma's; false, launching nothing, where the device or the arguments do not fit.
bool q4_s24_cuda_mul_mat_sparse_swiglu(const void * w_gate, const void * w_up, int64_t nrows, int64_t k,
                                       size_t w_row_bytes, const void * x_f16, int64_t ncols, float * y,
                                       int64_t y_col_stride, cudaStream_t stream,
                                       q4_s24_sparse_kernel kernel = Q4_S24_SPARSE_WGMMA, void * workspace = nullptr);

// Whether it would run (everything but the activations' alignment), as q4_s24_cuda_sparse_mma_accepts.
bool q4_s24_cuda_sparse_swiglu_accepts(const void * w_gate, const void * w_up, int64_t nrows, int64_t k,
                                       size_t w_row_bytes, int64_t ncols);
