// silu(gate) * up, as ggml's SWIGLU computes it: shared by the decode (mat-vec) and prefill (sparse tensor-core)
// gate / up + SWIGLU kernels, so that both round alike.
#pragma once

__device__ __forceinline__ float q4_s24_swiglu(float gate, float up) {
    return gate / (1.0f + expf(-gate)) * up;
}
