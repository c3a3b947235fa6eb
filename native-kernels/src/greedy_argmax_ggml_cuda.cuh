// The greedy argmax (greedy_argmax_cuda.cu) in ggml's CUDA backend: the entry point the patched argmax.cu calls
// (native-kernels/patches/llama.cpp-sampling-argmax.diff). Compiled only inside the llama.cpp tree.
#pragma once

#include "ggml.h"

struct ggml_backend_cuda_context;

// ARGMAX of one contiguous F32 row of 4096+ values (a decode's logits under llama.cpp's backend greedy sampler). Returns
// false, doing nothing, for anything else (the caller keeps ggml's kernel), and always with Q4_S24_CUDA_NO_ARGMAX=1
// (to measure it against ggml's).
bool ggml_cuda_greedy_argmax(ggml_backend_cuda_context & ctx, ggml_tensor * dst);
