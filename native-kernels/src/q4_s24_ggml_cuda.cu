// Adapts the Q4_S24 CUDA kernels (q4_s24_cuda.cu) to ggml tensors. Compiled into ggml-cuda only.
#include "q4_s24_ggml_cuda.cuh"

#include "../ggml-cuda/common.cuh"
#include "q4_s24_cuda.cuh"

bool ggml_cuda_q4_s24_involved(const ggml_tensor * op) {
    if (op->type == GGML_TYPE_Q4_S24) {
        return true;
    }
    for (int i = 0; i < GGML_MAX_SRC; ++i) {
        if (op->src[i] && op->src[i]->type == GGML_TYPE_Q4_S24) {
            return true;
        }
    }
    return false;
}

bool ggml_cuda_q4_s24_supports_op(const ggml_tensor * op) {
    const ggml_tensor * src0 = op->src[0];
    const ggml_tensor * src1 = op->src[1];
    switch (op->op) {
        case GGML_OP_NONE:
        case GGML_OP_VIEW:
        case GGML_OP_RESHAPE:
        case GGML_OP_PERMUTE:
        case GGML_OP_TRANSPOSE:
            return true;
        case GGML_OP_MUL_MAT:
            // Weights contiguous (the dequantize path converts whole tensors), activations F32 with
            // contiguous rows; broadcasting over dims 2 and 3 as ggml defines it.
            return src0->type == GGML_TYPE_Q4_S24 && src1->type == GGML_TYPE_F32 && op->type == GGML_TYPE_F32 &&
                   src0->ne[0] % QK_Q4_S24_CUDA == 0 && ggml_is_contiguous(src0) &&
                   src1->nb[0] == sizeof(float) && op->nb[0] == sizeof(float) &&
                   src1->ne[2] % src0->ne[2] == 0 && src1->ne[3] % src0->ne[3] == 0;
        case GGML_OP_GET_ROWS:
            return src0->type == GGML_TYPE_Q4_S24 && src1->type == GGML_TYPE_I32 &&
                   (op->type == GGML_TYPE_F32 || op->type == GGML_TYPE_F16) && src0->ne[0] % QK_Q4_S24_CUDA == 0 &&
                   src0->nb[0] == ggml_type_size(src0->type) && src1->ne[3] == 1 && op->nb[0] == ggml_type_size(op->type);
        default:
            return false; // CPY, SET_ROWS, MUL_MAT_ID, CONCAT, ... stay on the CPU backend
    }
}

bool ggml_cuda_q4_s24_mul_mat_vec(ggml_backend_cuda_context & ctx, const ggml_tensor * src0,
                                  const ggml_tensor * src1, ggml_tensor * dst) {
    GGML_TENSOR_BINARY_OP_LOCALS

    if (ne11 > Q4_S24_CUDA_MMV_MAX_COLS) {
        return false;
    }
    GGML_ASSERT(src0->type == GGML_TYPE_Q4_S24 && src1->type == GGML_TYPE_F32 && dst->type == GGML_TYPE_F32);
    GGML_ASSERT(nb10 == sizeof(float) && nb0 == sizeof(float) && ne00 % QK_Q4_S24_CUDA == 0);

    cudaStream_t stream = ctx.stream();
    const int    ncols  = (int) ne11;
    ggml_cuda_pool_alloc<char> scratch(ctx.pool(), q4_s24_cuda_act_bytes(ne10, ncols));

    // Dims 2 and 3 broadcast the weights over the activations (ne12 = r2 * ne02, ne13 = r3 * ne03).
    const int64_t r2 = ne12 / ne02;
    const int64_t r3 = ne13 / ne03;
    for (int64_t i13 = 0; i13 < ne13; ++i13) {
        for (int64_t i12 = 0; i12 < ne12; ++i12) {
            const char * w = (const char *) src0->data + (i12 / r2) * nb02 + (i13 / r3) * nb03;
            const float * x = (const float *) ((const char *) src1->data + i12 * nb12 + i13 * nb13);
            float *       y = (float *) ((char *) dst->data + i12 * nb2 + i13 * nb3);
            q4_s24_cuda_mul_mat_vec(w, ne01, ne00, nb01, x, (int64_t) (nb11 / sizeof(float)), ncols, y,
                                    (int64_t) (nb1 / sizeof(float)), scratch.get(), stream);
            CUDA_CHECK(cudaGetLastError());
        }
    }
    return true;
}

void ggml_cuda_q4_s24_get_rows(ggml_backend_cuda_context & ctx, ggml_tensor * dst) {
    const ggml_tensor * src0 = dst->src[0];
    const ggml_tensor * src1 = dst->src[1];
    GGML_TENSOR_BINARY_OP_LOCALS
    GGML_ASSERT(src1->type == GGML_TYPE_I32 && ne13 == 1);
    GGML_ASSERT(dst->type == GGML_TYPE_F32 || dst->type == GGML_TYPE_F16);
    q4_s24_cuda_get_rows(src0->data, ne00, nb01, nb02, nb03, (const int32_t *) src1->data, ne10, ne11, ne12, nb10,
                         nb11, nb12, dst->data, dst->type == GGML_TYPE_F16, nb1, nb2, nb3, ctx.stream());
    CUDA_CHECK(cudaGetLastError());
}
