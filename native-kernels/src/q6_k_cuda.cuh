// Batch-1 mat-vec for ggml's Q6_K weights (the type llama.cpp's quantizer gives output.weight, the 128256 x 4096
// vocabulary projection that ends every decode step). Plain CUDA like q4_s24_cuda.cu: the harness builds it with nvcc
// alone; q6_k_ggml_cuda.cu adapts it to ggml tensors.
#pragma once

#include "q4_s24_cuda.cuh"

// y[r] = dot(weight row r, x) for r < nrows, where act holds x (k values, one column) quantized by
// q4_s24_cuda_quantize_act. w: nrows rows of k/256 Q6_K blocks (210 bytes: ql[128], qh[64], int8 scales[16], fp16 d),
// row r at w + r*w_row_bytes. Returns false, launching nothing, for shapes it does not take: k 4096 (Llama-3-8B's width)
// or 2048, so that a row's blocks end on a 16-byte boundary and a warp's 32 lanes cover a row with one half-block
// (128 weights) each; w and w_row_bytes 16-byte aligned. (A 14336-column row, Q4_K_M's down projection, measured 60 us
// for 4096 rows in an earlier version that took it, one warp per block: ggml's kernel keeps those.)
bool q6_k_cuda_mul_mat_vec(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, q4_s24_cuda_act act,
                           float * y, cudaStream_t stream);

// Whether a caller should use q6_k_cuda_mul_mat_vec for this shape on this GPU (asked before quantizing the
// activations): also asks for 16384 rows or more (a vocabulary projection) and device code of compute capability 9.0 or
// newer, where it was measured faster than ggml's kernel (an H200).
bool q6_k_cuda_mul_mat_vec_takes(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes);

// The same with the launch shape given (the harness times them): each warp copies its rows whole into shared memory,
// `stages` rows in flight (2..4), `warps` warps per thread block (1..8). False where that shape does not fit (48 KiB of
// shared memory per block).
bool q6_k_cuda_mul_mat_vec_shape(int stages, int warps, const void * w, int64_t nrows, int64_t k, size_t w_row_bytes,
                                 q4_s24_cuda_act act, float * y, cudaStream_t stream);
