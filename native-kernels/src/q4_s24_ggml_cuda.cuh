// Q4_S24 in ggml's CUDA backend: the entry points the patched ggml-cuda files call (see
// native-kernels/patches/llama.cpp-q4_s24.diff). Compiled only inside the llama.cpp tree.
#pragma once

#include "ggml.h"

struct ggml_backend_cuda_context;

// True when op reads or writes a Q4_S24 tensor; supports_op then asks ggml_cuda_q4_s24_supports_op alone.
bool ggml_cuda_q4_s24_involved(const ggml_tensor * op);
// Which ops the CUDA backend runs on Q4_S24 tensors: MUL_MAT (weights Q4_S24, activations F32) and GET_ROWS.
bool ggml_cuda_q4_s24_supports_op(const ggml_tensor * op);

// MUL_MAT with Q4_S24 weights for batches of at most Q4_S24_CUDA_MMV_MAX_COLS columns: quantizes the activations
// (in the kernel itself for small matrices at batch 1-2), then the mat-vec kernel. Returns false for larger batches
// (the caller dequantizes to fp16 and uses cuBLAS).
bool ggml_cuda_q4_s24_mul_mat_vec(ggml_backend_cuda_context & ctx, const ggml_tensor * src0,
                                  const ggml_tensor * src1, ggml_tensor * dst);

// Batches past the mat-vec on sparse tensor cores (by default where faster, see q4_s24_ggml_cuda.cu); false: not taken.
bool ggml_cuda_q4_s24_mul_mat_sparse_mma(ggml_backend_cuda_context & ctx, const ggml_tensor * src0,
                                         const ggml_tensor * src1, ggml_tensor * dst);

// Feed-forward fusion (ggml-cuda's {MUL_MAT, MUL_MAT, GLU} pattern): glu = swiglu(gate, up) where up and gate are
// MUL_MATs of Q4_S24 weights on one input, in one launch: the mat-vec kernel's at batches up to its columns, the sparse
// tensor-core kernel's past them (on Hopper where that kernel runs; Q4_S24_CUDA_SPARSE_GLU). Returns false, doing
// nothing, for any other case.
bool ggml_cuda_q4_s24_mul_mat_swiglu(ggml_backend_cuda_context & ctx, const ggml_tensor * up, const ggml_tensor * gate,
                                     ggml_tensor * glu);

// MUL_MATs of Q4_S24 weights on one input (attention's q, k and v) in one launch. graph_optimize (from ggml-cuda's
// graph_optimize, before allocation) moves such MUL_MATs of a graph next to each other; try_fuse_mul_mat_group (from
// ggml-cuda's fusion pass at node i) launches nodes i, i + 1, ... that form a group together and returns how many
// nodes after i it took (0: none, node i is not grouped).
struct ggml_cgraph;
void ggml_cuda_q4_s24_graph_optimize(ggml_cgraph * cgraph);
int ggml_cuda_q4_s24_try_fuse_mul_mat_group(ggml_backend_cuda_context & ctx, ggml_cgraph * cgraph, int i);

// Nodes i and i + 1 an RMS_NORM and the MUL by its weight row that ggml would fuse, followed by what reads the
// normalized input (a group as above, or gate and up then a GLU for the gate/up + SWIGLU kernel, which glu_fusable says
// ggml's checks allow): the norm, the activations' quantization and the matmuls in two launches instead of three.
// Returns how many nodes after i it took (0: none, nothing launched).
int ggml_cuda_q4_s24_try_fuse_rms_norm(ggml_backend_cuda_context & ctx, ggml_cgraph * cgraph, int i,
                                       bool glu_fusable);

// ggml-cuda's {MUL_MAT, ADD} pattern (the residual connection after a projection, batch 1-8): sum = mul_mat + addend,
// where addend is the ADD's other operand, same shape, in one mat-vec launch. Returns false, doing nothing, when
// mul_mat is not a Q4_S24 mat-vec this can take.
bool ggml_cuda_q4_s24_mul_mat_vec_add(ggml_backend_cuda_context & ctx, const ggml_tensor * mul_mat,
                                      const ggml_tensor * addend, ggml_tensor * sum);

// Attention followed by a Q4_S24 o-projection (llama.cpp's FLASH_ATTN_EXT, RESHAPE, MUL_MAT, optionally the residual
// ADD, at batches of 1-8), unless Q4_S24_CUDA_ATTENTION_QUANT=0: ggml's flash attention runs as usual, and where it
// combines parts in a second launch, that launch also writes its result quantized as the mat-vec reads it (asked for
// through ggml_cuda_q4_s24_take_attention_quantization), so the projection needs no quantization launch of its own.
// On Hopper with an F16 KV cache that is batch 1 (ggml's vector kernel; at 2-8 tokens its mma kernel has no combine
// launch, and the projection quantizes as before). Returns how many nodes after i it took (0: none, nothing launched).
int ggml_cuda_q4_s24_try_fuse_attention(ggml_backend_cuda_context & ctx, ggml_cgraph * cgraph, int i);

// Called by ggml's flash attention where it launches the kernel that combines dst's parts (dst contiguous F32, heads of a
// multiple of 32 values): the int8 copy of dst (one float scale per 32 values, what q4_s24_cuda_quantize_act would
// write) that try_fuse_attention asked for, which the combine kernel then writes; nulls when none was asked for dst.
struct ggml_cuda_q4_s24_quantized_copy {
    int8_t * q = nullptr;
    float *  d = nullptr;
};
ggml_cuda_q4_s24_quantized_copy ggml_cuda_q4_s24_take_attention_quantization(ggml_backend_cuda_context & ctx,
                                                                               const ggml_tensor * dst);

// Per-context state (the mat-vecs' activation buffer), freed with the context.
struct ggml_cuda_q4_s24_state;
void ggml_cuda_q4_s24_free_state(ggml_cuda_q4_s24_state * state);

void ggml_cuda_q4_s24_get_rows(ggml_backend_cuda_context & ctx, ggml_tensor * dst);
