// Attention for one query token over an f16 KV cache in one launch (Hopper), written for the decode of a Llama-shaped
// model: 128-dim heads, grouped-query attention. ggml's own kernel for this case takes two launches (the vector kernel
// over parts of the cache, then one combining the parts) and the Q4_S24 o-projection after it a third (quantizing its
// input); this one combines the parts inside a thread block cluster and can also write its result quantized for the
// o-projection's mat-vec. Plain CUDA: the standalone harness builds it with nvcc alone.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

constexpr int kDecodeAttentionHeadDim = 128;
// Longest cache it takes: each KV head's eight thread blocks pass over an eighth of the cache each, so a longer one is
// left to ggml's kernel, which spreads it over more blocks.
constexpr int kDecodeAttentionMaxKv = 4096;

// Strides in elements. Query head h reads KV head h / (n_head / n_head_kv), as ggml broadcasts them.
struct decode_attention_args {
    const float * q;             // head h: q + h * q_head_stride, 128 floats
    int64_t       q_head_stride;
    const half *  k;             // KV head j, position p: k + j * k_head_stride + p * k_pos_stride, 128 halves
    int64_t       k_pos_stride, k_head_stride;
    const half *  v;
    int64_t       v_pos_stride, v_head_stride;
    const half *  mask;          // n_kv values added to the scaled scores (0 or -inf), or null
    int           n_kv, n_head, n_head_kv;
    float         scale;
    float *       out;           // head h: out + h * 128
    int8_t *      out_q;         // optional (null: not written): out quantized as q4_s24_cuda_quantize_act quantizes
    float *       out_d;         // one column of n_head * 128 values (int8 values, one float scale per 32)
};

// Whether decode_attention_cuda takes these arguments on the current device: compute capability 9.0 code (thread block
// clusters, programmatic launch), n_head / n_head_kv of 1, 2, 4 or 8, 1 <= n_kv <= kDecodeAttentionMaxKv, q, k, v and
// their strides 16-byte aligned.
bool decode_attention_cuda_accepts(const decode_attention_args & args);

// out = softmax(scale * q . k + mask) . v per query head. False (nothing launched) when it does not accept the args.
bool decode_attention_cuda(const decode_attention_args & args, cudaStream_t stream);
