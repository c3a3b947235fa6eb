// The greedy pick over one row of logits on the GPU: the argmax that llama.cpp's backend greedy sampler appends to a
// decode's graph (ggml_argmax over the vocabulary, 128256 values for Llama 3). Plain CUDA like q6_k_cuda.cu;
// greedy_argmax_ggml_cuda.cu adapts it to ggml tensors.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

// Scratch bytes greedy_argmax_cuda needs for a row of n values (one partial result per thread block).
size_t greedy_argmax_cuda_scratch_bytes(int64_t n);

// *dst = the first index of the highest of x[0..n), as llama.cpp's greedy sampler picks on the host (a NaN never wins
// and a NaN at x[0] gives 0, as does a row with nothing above -inf). ggml's own CUDA argmax reduces a row in one thread
// block and its CPU argmax keeps the last of equal values; this one spreads the row over up to 128 blocks (a float4
// per thread and pass) and reduces their results in a second, one-block launch. Returns false, launching nothing,
// unless x is 16-byte aligned and 4096 <= n < 2^30 (shorter rows stay ggml's).
bool greedy_argmax_cuda(const float * x, int64_t n, void * scratch, int32_t * dst, cudaStream_t stream);
