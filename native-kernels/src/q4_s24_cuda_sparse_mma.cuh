// Q4_S24 prefill on sparse tensor cores: mma.sp (compute capability 8.0 and newer, with 94 KiB of shared memory per
// thread block; 141 KiB for the three-stage pipeline of A100 and H100/H200; 256 rows x 128 tokens per block) and, on
// Hopper with sm_90a code, wgmma.mma_async.sp (128 rows x 256 tokens per block, 217 KiB). The weights and activations
// are staged in shared memory. The standalone harness checks and times both; ggml calls them only with
// Q4_S24_CUDA_SPARSE_MMA set (q4_s24_ggml_cuda.cu); by default its prefill path is dequantize to f16 + cuBLAS.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

// Which sparse tensor-core kernel runs. AUTO: wgmma.mma_async.sp on Hopper (compute capability 9.0) when the binary
// holds sm_90a code, else mma.sp. WGMMA_SPLIT_K: the wgmma kernel with K split in two (twice the thread blocks, for
// grids below one wave; y zeroed first, then both halves added atomically, which stays deterministic): not yet run on
// a GPU, so AUTO never picks it.
enum q4_s24_sparse_kernel {
    Q4_S24_SPARSE_AUTO,
    Q4_S24_SPARSE_MMA_SP,
    Q4_S24_SPARSE_WGMMA,
    Q4_S24_SPARSE_WGMMA_SPLIT_K,
};

// y[c*y_col_stride + r] = dot(weight row r, x column c) for r < nrows, c < ncols. w: nrows rows of k/256 blocks,
// row r at w + r*w_row_bytes (w_row_bytes % 4 == 0). x_f16: ncols columns of k half values, column c at x_f16 + c*k
// (16-byte aligned). Returns false, launching nothing, when the current device cannot run the requested kernel (no
// sparse tensor cores, too little shared memory, code compiled below 8.0; for WGMMA, not compute capability 9.0 or no
// sm_90a code in the binary) or the arguments break its alignment or grid limits.
bool q4_s24_cuda_mul_mat_sparse_mma(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const void * x_f16,
                                    int64_t ncols, float * y, int64_t y_col_stride, cudaStream_t stream,
                                    q4_s24_sparse_kernel kernel = Q4_S24_SPARSE_AUTO);

// Whether it would run for these weights and ncols on the current device, everything but the activations' alignment:
// sparse tensor cores, enough shared memory, code compiled for 8.0 or newer (for WGMMA: sm_90a code on a 9.0 device),
// asked once per device, the first time with a small probe kernel and a synchronous copy, so not from inside a CUDA
// graph capture (ggml captures batch-1 graphs only, which never come here); the weights' alignment; the grid limit;
// the weights below 4 GiB and the activations below 2^32 halves. Callers ask it before preparing f16 activations.
bool q4_s24_cuda_sparse_mma_accepts(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, int64_t ncols,
                                    q4_s24_sparse_kernel kernel = Q4_S24_SPARSE_AUTO);
