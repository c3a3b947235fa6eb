// Adapts the Q4_S24 CUDA kernels (q4_s24_cuda.cu) to ggml tensors. Compiled into ggml-cuda only.
#include "q4_s24_ggml_cuda.cuh"

#include "../ggml-cuda/common.cuh"
#include "q4_s24_cuda.cuh"
#include "q4_s24_cuda_sparse_mma.cuh"
#include "../ggml-cuda/convert.cuh"

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

// Per CUDA backend context: the int8 activations of the last input a Q4_S24 mat-vec quantized into the buffer, kept
// for the next matmul that reads the same tensor (q, k and v read one input; so do gate and up when the fused
// gate/up kernel does not take them) so it skips the quantization. Valid within one graph evaluation (graph_begin
// forgets it) and on the main stream. The key is the tensor and its data pointer: this assumes no node writes into
// an input's memory while later nodes still read it as that tensor, which ggml's allocator guarantees for
// llama.cpp's graphs (an in-place op makes a new tensor, a miss here). The buffer is allocated once at a fixed size
// and never moved: captured CUDA graphs keep its address.
struct ggml_cuda_q4_s24_state {
    void *              buffer = nullptr;
    bool                no_buffer = false; // cudaMalloc failed once (device full): scratch from the pool from then on
    const ggml_tensor * src1   = nullptr; // input whose activations the buffer holds, or null
    const void *        data   = nullptr;
    cudaStream_t        stream = nullptr;
};

// Covers inputs of up to 32768 values x 8 columns (Llama-3-70B's feed-forward width is 28672).
static const size_t kActCacheBytes = q4_s24_cuda_act_bytes(32768, Q4_S24_CUDA_MMV_MAX_COLS);

// Q4_S24_CUDA_NO_FUSION=1 (any nonzero number) turns off activation reuse and the gate/up fusion, to measure them.
static bool fusion_disabled() {
    static const bool disabled = [] {
        const char * env = getenv("Q4_S24_CUDA_NO_FUSION");
        return env != nullptr && atoi(env) != 0;
    }();
    return disabled;
}

void ggml_cuda_q4_s24_free_state(ggml_cuda_q4_s24_state * state) {
    if (state != nullptr) {
        if (state->buffer != nullptr) {
            CUDA_CHECK(cudaFree(state->buffer));
        }
        delete state;
    }
}

void ggml_cuda_q4_s24_graph_begin(ggml_backend_cuda_context & ctx) {
    if (ctx.q4_s24_state != nullptr) {
        ctx.q4_s24_state->src1 = nullptr;
    }
}

// The context's activation buffer, allocated on first use; null when it cannot be (then callers use pool scratch).
static void * activation_buffer(ggml_backend_cuda_context & ctx) {
    if (ctx.q4_s24_state == nullptr) {
        ctx.q4_s24_state = new ggml_cuda_q4_s24_state();
    }
    ggml_cuda_q4_s24_state & state = *ctx.q4_s24_state;
    if (state.buffer == nullptr && !state.no_buffer) {
        if (cudaMalloc(&state.buffer, kActCacheBytes) != cudaSuccess) {
            (void) cudaGetLastError(); // a full device: run without reuse rather than abort
            state.buffer    = nullptr;
            state.no_buffer = true;
        }
    }
    return state.buffer;
}

// Whether the context's buffer holds src1's quantized activations, written on this stream in this graph evaluation.
static bool reuses_activations(ggml_backend_cuda_context & ctx, const ggml_tensor * src1) {
    const ggml_cuda_q4_s24_state * state = ctx.q4_s24_state;
    return state != nullptr && state->buffer != nullptr && state->src1 == src1 && state->data == src1->data &&
           state->stream == ctx.stream();
}

// The quantized activations of src1 (one matrix of ncols <= Q4_S24_CUDA_MMV_MAX_COLS columns): reused when the
// context's buffer holds them, else quantized into that buffer, or into scratch (allocated here) when src1 is larger
// than the buffer or there is none.
static q4_s24_cuda_act quantized_activations(ggml_backend_cuda_context & ctx, const ggml_tensor * src1,
                                             ggml_cuda_pool_alloc<char> & scratch) {
    const int64_t k     = src1->ne[0];
    const int     ncols = (int) src1->ne[1];
    const size_t  bytes = q4_s24_cuda_act_bytes(k, ncols);
    if (reuses_activations(ctx, src1)) {
        return q4_s24_cuda_act_view(ctx.q4_s24_state->buffer, k, ncols);
    }
    // Only the main stream uses the buffer: matmuls on the side streams of ggml's concurrent branches
    // (GGML_CUDA_GRAPH_OPT) could overwrite it while the main stream still reads it.
    void * buffer = bytes > kActCacheBytes || fusion_disabled() || ctx.curr_stream_no != 0 ? nullptr
                                                                                           : activation_buffer(ctx);
    void * const          dst = buffer != nullptr ? buffer : scratch.alloc(ctx.pool(), bytes);
    const q4_s24_cuda_act act = q4_s24_cuda_act_view(dst, k, ncols);
    q4_s24_cuda_quantize_act((const float *) src1->data, k, (int64_t) (src1->nb[1] / sizeof(float)), ncols, act,
                             ctx.stream());
    if (buffer != nullptr) {
        ggml_cuda_q4_s24_state & state = *ctx.q4_s24_state;
        state.src1   = src1;
        state.data   = src1->data;
        state.stream = ctx.stream();
    }
    return act;
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
    const int64_t x_col_stride = (int64_t) (nb11 / sizeof(float));
    const int64_t y_col_stride = (int64_t) (nb1 / sizeof(float));

    if (ne12 * ne13 == 1) {
        // One matrix: share the int8 activations with the other matmuls of this input, unless this shape's kernel
        // quantizes in-kernel (launch-bound small matrices) and nothing is there to share yet.
        const bool in_kernel = q4_s24_cuda_mmv_variant_is_fused(q4_s24_cuda_mmv_default_variant(ne01, ne00, ncols));
        ggml_cuda_pool_alloc<char> scratch;
        if (in_kernel && !reuses_activations(ctx, src1)) {
            scratch.alloc(ctx.pool(), q4_s24_cuda_act_bytes(ne10, ncols));
            q4_s24_cuda_mul_mat_vec(src0->data, ne01, ne00, nb01, (const float *) src1->data, x_col_stride, ncols,
                                    (float *) dst->data, y_col_stride, scratch.get(), stream);
        } else {
            const q4_s24_cuda_act act = quantized_activations(ctx, src1, scratch);
            q4_s24_cuda_mul_mat_vec_q(src0->data, ne01, ne00, nb01, act, ncols, (float *) dst->data, y_col_stride,
                                      stream);
        }
        CUDA_CHECK(cudaGetLastError());
        return true;
    }

    ggml_cuda_pool_alloc<char> scratch(ctx.pool(), q4_s24_cuda_act_bytes(ne10, ncols));
    // Dims 2 and 3 broadcast the weights over the activations (ne12 = r2 * ne02, ne13 = r3 * ne03).
    const int64_t r2 = ne12 / ne02;
    const int64_t r3 = ne13 / ne03;
    for (int64_t i13 = 0; i13 < ne13; ++i13) {
        for (int64_t i12 = 0; i12 < ne12; ++i12) {
            const char * w = (const char *) src0->data + (i12 / r2) * nb02 + (i13 / r3) * nb03;
            const float * x = (const float *) ((const char *) src1->data + i12 * nb12 + i13 * nb13);
            float *       y = (float *) ((char *) dst->data + i12 * nb2 + i13 * nb3);
            q4_s24_cuda_mul_mat_vec(w, ne01, ne00, nb01, x, x_col_stride, ncols, y, y_col_stride, scratch.get(),
                                    stream);
            CUDA_CHECK(cudaGetLastError());
        }
    }
    return true;
}

// Prefill on sparse tensor cores, only with Q4_S24_CUDA_SPARSE_MMA=1 while the kernel is new (see
// q4_s24_cuda_sparse_mma.cu); otherwise, and for shapes it does not take, ggml-cuda dequantizes to f16 for cuBLAS.
bool ggml_cuda_q4_s24_mul_mat_sparse_mma(ggml_backend_cuda_context & ctx, const ggml_tensor * src0,
                                         const ggml_tensor * src1, ggml_tensor * dst) {
    static const bool enabled = [] {
        const char * env = getenv("Q4_S24_CUDA_SPARSE_MMA");
        return env != nullptr && atoi(env) != 0;
    }();
    GGML_TENSOR_BINARY_OP_LOCALS

    const int cc = ggml_cuda_info().devices[ctx.device].cc;
    if (!enabled || !GGML_CUDA_CC_IS_NVIDIA(cc) || ggml_cuda_highest_compiled_arch(cc) < GGML_CUDA_CC_AMPERE ||
        ne02 * ne03 != 1 || ne12 * ne13 != 1 || ne11 < 1 || ne11 > 65535ll * 64 || src1->type != GGML_TYPE_F32 ||
        !ggml_is_contiguous(src1) || dst->type != GGML_TYPE_F32 || nb0 != sizeof(float) ||
        ne00 % QK_Q4_S24_CUDA != 0 || nb01 % 4 != 0 || ((uintptr_t) src0->data & 3) != 0) {
        return false;
    }
    cudaStream_t stream = ctx.stream();
    ggml_cuda_pool_alloc<half> x16(ctx.pool(), ne10 * ne11);
    ggml_get_to_fp16_cuda(GGML_TYPE_F32)(src1->data, x16.get(), ne10 * ne11, stream);
    if (!q4_s24_cuda_mul_mat_sparse_mma(src0->data, ne01, ne00, nb01, x16.get(), ne11, (float *) dst->data,
                                        (int64_t) (nb1 / sizeof(float)), stream)) {
        return false; // not compiled for this device after all: cuBLAS (the f16 copy goes unused)
    }
    CUDA_CHECK(cudaGetLastError());
    return true;
}

bool ggml_cuda_q4_s24_mul_mat_vec_swiglu(ggml_backend_cuda_context & ctx, const ggml_tensor * up,
                                         const ggml_tensor * gate, ggml_tensor * glu) {
    const ggml_tensor * w_up   = up->src[0];
    const ggml_tensor * w_gate = gate->src[0];
    const ggml_tensor * x      = up->src[1];
    if (fusion_disabled() || up->op != GGML_OP_MUL_MAT || gate->op != GGML_OP_MUL_MAT || w_up->type != GGML_TYPE_Q4_S24 ||
        w_gate->type != GGML_TYPE_Q4_S24 || gate->src[1] != x || glu->op != GGML_OP_GLU ||
        ggml_get_glu_op(glu) != GGML_GLU_OP_SWIGLU || ggml_get_op_params_i32(glu, 1) != 0 ||
        glu->src[0] != gate || glu->src[1] != up || glu->type != GGML_TYPE_F32) {
        return false;
    }
    // One matrix each, same shape, batch within the mat-vec kernel; contiguous weights; glu's rows contiguous.
    if (!ggml_are_same_shape(w_up, w_gate) || w_up->nb[1] != w_gate->nb[1] || !ggml_is_contiguous(w_up) ||
        !ggml_is_contiguous(w_gate) || w_up->ne[2] * w_up->ne[3] != 1 || x->ne[2] * x->ne[3] != 1 ||
        x->ne[1] > Q4_S24_CUDA_MMV_MAX_COLS || x->type != GGML_TYPE_F32 || x->nb[0] != sizeof(float) ||
        glu->nb[0] != sizeof(float) || glu->ne[0] != w_up->ne[1] || glu->ne[1] != x->ne[1]) {
        return false;
    }
    ggml_cuda_pool_alloc<char> scratch;
    const q4_s24_cuda_act act = quantized_activations(ctx, x, scratch);
    q4_s24_cuda_mul_mat_vec_swiglu(w_up->data, w_gate->data, w_up->ne[1], w_up->ne[0], w_up->nb[1], act,
                                   (int) x->ne[1], (float *) glu->data, (int64_t) (glu->nb[1] / sizeof(float)),
                                   ctx.stream());
    CUDA_CHECK(cudaGetLastError());
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
