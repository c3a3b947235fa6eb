// Adapts the batch-1 Q6_K mat-vec (q6_k_cuda.cu) to ggml tensors. Compiled into ggml-cuda only.
#include "q6_k_ggml_cuda.cuh"

#include "../ggml-cuda/common.cuh"
#include "q4_s24_cuda_env_flag.cuh"
#include "q6_k_cuda.cuh"

static bool q6_k_kernel_disabled() {
    static const bool disabled = q4_s24_cuda_env_flag("Q4_S24_CUDA_NO_Q6_K");
    return disabled;
}

bool ggml_cuda_q6_k_mul_mat_vec(ggml_backend_cuda_context & ctx, const ggml_tensor * src0, const ggml_tensor * src1,
                                ggml_tensor * dst) {
    // One column (ggml's shape rules then make src0 one matrix and dst one column of its rows).
    if (q6_k_kernel_disabled() || src0->type != GGML_TYPE_Q6_K || src1->type != GGML_TYPE_F32 ||
        dst->type != GGML_TYPE_F32 || ggml_nrows(src1) != 1 || src0->nb[0] != ggml_type_size(GGML_TYPE_Q6_K) ||
        src1->nb[0] != sizeof(float) || dst->nb[0] != sizeof(float) ||
        !q6_k_cuda_mul_mat_vec_takes(src0->data, src0->ne[1], src0->ne[0], src0->nb[1])) {
        return false;
    }
    // src0 is a weight (nothing in a graph writes Q6_K): the kernel copies it before waiting for the kernel ahead.
    const int64_t k = src0->ne[0];
    ggml_cuda_pool_alloc<char> scratch(ctx.pool(), q4_s24_cuda_act_bytes(k, 1));
    const q4_s24_cuda_act act = q4_s24_cuda_act_view(scratch.get(), k, 1);
    q4_s24_cuda_quantize_act((const float *) src1->data, k, k, 1, act, ctx.stream());
    CUDA_CHECK(cudaGetLastError());
    // A refusal after the quantization (a failed occupancy query) leaves ggml's kernel to it; the quantized copy is
    // scratch nothing else reads.
    const bool taken = q6_k_cuda_mul_mat_vec(src0->data, src0->ne[1], k, src0->nb[1], act, (float *) dst->data,
                                             ctx.stream());
    CUDA_CHECK(cudaGetLastError());
    return taken;
}
