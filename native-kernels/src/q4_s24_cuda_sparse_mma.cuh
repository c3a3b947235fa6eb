// Q4_S24 prefill on sparse tensor cores (mma.sp, compute capability 8.0 and newer, with 94 KiB of shared memory per
// thread block; 141 KiB for the three-stage pipeline of A100 and H100/H200). Tiled: 256 rows x 128 tokens per thread
// block, the weights and activations staged in shared memory. The standalone harness checks and times it; ggml calls
// it only with Q4_S24_CUDA_SPARSE_MMA=1 (q4_s24_ggml_cuda.cu); by default its prefill path is dequantize to f16 +
// cuBLAS.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

// Which sparse tensor-core kernel runs. AUTO: wgmma.mma_async.sp on Hopper when the binary holds sm_90a code, else
// mma.sp. WGMMA_N128: the wgmma kernel with 128-token tiles (256 rows) instead of 256-token tiles (128 rows).
enum q4_s24_sparse_kernel {
    Q4_S24_SPARSE_AUTO,
    Q4_S24_SPARSE_MMA_SP,
    Q4_S24_SPARSE_WGMMA,
    Q4_S24_SPARSE_WGMMA_N128,
};

// y[c*y_col_stride + r] = dot(weight row r, x column c) for r < nrows, c < ncols. w: nrows rows of k/256 blocks,
// row r at w + r*w_row_bytes (w_row_bytes % 4 == 0). x_f16: ncols columns of k half values, column c at x_f16 + c*k
// (16-byte aligned). Returns false, launching nothing, when the current device cannot run it (no sparse tensor cores,
// too little shared memory, code compiled below 8.0) or the arguments break its alignment or grid limits.
bool q4_s24_cuda_mul_mat_sparse_mma(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const void * x_f16,
                                    int64_t ncols, float * y, int64_t y_col_stride, cudaStream_t stream,
                                    q4_s24_sparse_kernel kernel = Q4_S24_SPARSE_AUTO);

// Whether it would run for these weights and ncols on the current device (sparse tensor cores, enough shared memory,
// code compiled for 8.0 or newer: asked once per device; the weights' alignment; the grid limit; the weights below
// 4 GiB and the activations below 2^32 halves), everything but the activations' alignment. Callers ask it before preparing f16 activations.
bool q4_s24_cuda_sparse_mma_accepts(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, int64_t ncols,
                                    q4_s24_sparse_kernel kernel = Q4_S24_SPARSE_AUTO);
