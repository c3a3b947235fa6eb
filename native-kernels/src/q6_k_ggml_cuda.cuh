// The batch-1 Q6_K mat-vec (q6_k_cuda.cu) in ggml's CUDA backend: the entry point the patched ggml-cuda.cu calls
// (native-kernels/patches/llama.cpp-q6_k.diff). Compiled only inside the llama.cpp tree.
#pragma once

#include "ggml.h"

struct ggml_backend_cuda_context;

// MUL_MAT with Q6_K weights on one F32 column (a decode step's output projection): quantizes the column, then our
// kernel. Returns false, doing nothing, for anything else it does not take (the caller keeps ggml's kernels), and
// always with Q4_S24_CUDA_NO_Q6_K=1 (to measure it against ggml's).
bool ggml_cuda_q6_k_mul_mat_vec(ggml_backend_cuda_context & ctx, const ggml_tensor * src0, const ggml_tensor * src1,
                                ggml_tensor * dst);
