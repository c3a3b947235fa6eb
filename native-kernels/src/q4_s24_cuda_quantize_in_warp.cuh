// The Q4_S24 mat-vec's activation quantization for one value per lane (plain CUDA, no ggml), shared by our kernels and
// by ggml's flash-attention combine kernel (llama.cpp-q4_s24_fusion.diff), so that both write the same bytes.
#pragma once

#include "q4_s24_cuda_layout.cuh"

#include <stdint.h>

// Activation value v at index i (column * k + element) of the quantized copy: symmetric int8 with one float scale per
// 32 values, the warp's lanes holding one sub-block's 32 values in order.
static __device__ __forceinline__ void q4_s24_cuda_quantize_in_warp(float v, int64_t i, int8_t * q, float * d) {
    float amax = fabsf(v);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    }
    const float scale = amax / 127.0f;
    const float inv   = amax > 0.0f ? 127.0f / amax : 0.0f;
    q[i] = (int8_t) __float2int_rn(v * inv);
    if ((threadIdx.x & 31) == 0) {
        d[i / kSubCols] = scale;
    }
}
