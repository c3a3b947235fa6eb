// Q4_S24 prefill on sparse tensor cores (mma.sp, compute capability 8.0 and newer). First version, written for
// correctness of the operand layouts before speed; the standalone harness checks and times it. ggml calls it only with
// Q4_S24_CUDA_SPARSE_MMA=1 (q4_s24_ggml_cuda.cu); by default its prefill path is dequantize to f16 + cuBLAS.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

// y[c*y_col_stride + r] = dot(weight row r, x column c) for r < nrows, c < ncols. w: nrows rows of k/256 blocks,
// row r at w + r*w_row_bytes (w_row_bytes % 4 == 0). x_f16: ncols columns of k half values, column c at x_f16 + c*k
// (4-byte aligned). Returns false, launching nothing, when the current device has no sparse tensor cores.
bool q4_s24_cuda_mul_mat_sparse_mma(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const void * x_f16,
                                    int64_t ncols, float * y, int64_t y_col_stride, cudaStream_t stream);
