// Adapts the greedy argmax (greedy_argmax_cuda.cu) to ggml tensors. Compiled into ggml-cuda only.
#include "greedy_argmax_ggml_cuda.cuh"

#include "../ggml-cuda/common.cuh"
#include "q4_s24_cuda_env_flag.cuh"
#include "greedy_argmax_cuda.cuh"

static bool greedy_argmax_disabled() {
    static const bool disabled = q4_s24_cuda_env_flag("Q4_S24_CUDA_NO_ARGMAX");
    return disabled;
}

bool ggml_cuda_greedy_argmax(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const ggml_tensor * src0 = dst->src[0];
    if (greedy_argmax_disabled() || src0->type != GGML_TYPE_F32 || dst->type != GGML_TYPE_I32 || ggml_nrows(src0) != 1 ||
        !ggml_is_contiguous(src0)) {
        return false;
    }
    const int64_t n = src0->ne[0];
    ggml_cuda_pool_alloc<char> scratch(ctx.pool(), greedy_argmax_cuda_scratch_bytes(n));
    const bool taken = greedy_argmax_cuda((const float *) src0->data, n, scratch.get(), (int32_t *) dst->data, ctx.stream());
    CUDA_CHECK(cudaGetLastError());
    return taken;
}
