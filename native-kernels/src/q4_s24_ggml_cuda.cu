// Adapts the Q4_S24 CUDA kernels (q4_s24_cuda.cu) to ggml tensors. Compiled into ggml-cuda only.
#include "q4_s24_ggml_cuda.cuh"

#include "../ggml-cuda/common.cuh"
#include "q4_s24_cuda.cuh"
#include "q4_s24_cuda_env_flag.cuh"
#include "q4_s24_cuda_sparse_mma.cuh"
#include "../ggml-cuda/convert.cuh"
#include "../ggml-cuda/fattn.cuh"

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

// The attention result a fused o-projection wants quantized (try_fuse_attention), while ggml's attention runs.
struct attention_quantization_request {
    const ggml_tensor * dst = nullptr;
    q4_s24_cuda_act     act = {};
    bool                taken = false; // the combine launch writes act
};

// Per CUDA backend context: a buffer for the int8 activations a Q4_S24 mat-vec reads, allocated once at a fixed
// size and never moved (captured CUDA graphs keep its address), used on the main stream only. Each matmul (or fused
// group) quantizes its input into it, or the fused RMS norm writes it, and the next launch reads it. (Earlier,
// separate q, k and v launches shared one quantization through this buffer; they share one launch now, so that
// bookkeeping is gone.)
struct ggml_cuda_q4_s24_state {
    void * buffer    = nullptr;
    bool   no_buffer = false; // cudaMalloc failed once (device full): scratch from the pool from then on
    attention_quantization_request attention_request;
};

// Covers inputs of up to 32768 values x 8 columns (Llama-3-70B's feed-forward width is 28672).
static const size_t kActCacheBytes = q4_s24_cuda_act_bytes(32768, Q4_S24_CUDA_MMV_MAX_COLS);

// Q4_S24_CUDA_NO_FUSION=1 (any nonzero number) turns off our graph fusions (RMS norm + quantization, q/k/v group,
// gate/up + SWIGLU, mat-vec + residual) and the activation buffer, to measure them.
static bool fusion_disabled() {
    static const bool disabled = q4_s24_cuda_env_flag("Q4_S24_CUDA_NO_FUSION");
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

// The context's Q4_S24 state (its buffers), created on first use.
static ggml_cuda_q4_s24_state & q4_s24_state(ggml_backend_cuda_context & ctx) {
    if (ctx.q4_s24_state == nullptr) {
        ctx.q4_s24_state = new ggml_cuda_q4_s24_state();
    }
    return *ctx.q4_s24_state;
}

// The context's activation buffer, allocated on first use; null when it cannot be (then callers use pool scratch).
static void * activation_buffer(ggml_backend_cuda_context & ctx) {
    ggml_cuda_q4_s24_state & state = q4_s24_state(ctx);
    if (state.buffer == nullptr && !state.no_buffer) {
        if (cudaMalloc(&state.buffer, kActCacheBytes) != cudaSuccess) {
            (void) cudaGetLastError(); // a full device: pool scratch per matmul rather than abort
            state.buffer    = nullptr;
            state.no_buffer = true;
        }
    }
    return state.buffer;
}

// Whether two tensors' bytes overlap.
static bool overlaps(const ggml_tensor * a, const ggml_tensor * b) {
    const char * a0 = (const char *) a->data;
    const char * b0 = (const char *) b->data;
    return a0 < b0 + ggml_nbytes(b) && b0 < a0 + ggml_nbytes(a);
}

// Room for ncols quantized columns of k values: the context's buffer, or scratch (allocated here) when they do not fit
// or there is none.
static q4_s24_cuda_act activation_space(ggml_backend_cuda_context & ctx, int64_t k, int ncols,
                                        ggml_cuda_pool_alloc<char> & scratch) {
    const size_t bytes = q4_s24_cuda_act_bytes(k, ncols);
    // Only the main stream uses the buffer: matmuls on the side streams of ggml's concurrent branches
    // (GGML_CUDA_GRAPH_OPT) could overwrite it while the main stream still reads it.
    void * buffer = bytes > kActCacheBytes || fusion_disabled() || ctx.curr_stream_no != 0 ? nullptr
                                                                                           : activation_buffer(ctx);
    return q4_s24_cuda_act_view(buffer != nullptr ? buffer : scratch.alloc(ctx.pool(), bytes), k, ncols);
}

// src1 (one matrix of ncols <= Q4_S24_CUDA_MMV_MAX_COLS columns) quantized into the context's buffer, or into scratch
// (allocated here) when src1 is larger than the buffer or there is none.
static q4_s24_cuda_act quantized_activations(ggml_backend_cuda_context & ctx, const ggml_tensor * src1,
                                             ggml_cuda_pool_alloc<char> & scratch) {
    const q4_s24_cuda_act act = activation_space(ctx, src1->ne[0], (int) src1->ne[1], scratch);
    q4_s24_cuda_quantize_act((const float *) src1->data, src1->ne[0], (int64_t) (src1->nb[1] / sizeof(float)),
                             (int) src1->ne[1], act, ctx.stream());
    return act;
}

// One matrix (src0: one contiguous Q4_S24 matrix; src1: one F32 matrix of 1..Q4_S24_CUDA_MMV_MAX_COLS columns with
// contiguous rows), plus add when not null: the shape's default launch, which quantizes src1 in-kernel (launch-bound
// small matrices at batch 1-2) or reads a quantized copy. may_read_x false: always a quantized copy (y may overlap
// src1).
static void mul_mat_vec_one(ggml_backend_cuda_context & ctx, const ggml_tensor * src0, const ggml_tensor * src1,
                            float * y, int64_t y_col_stride, const float * add, int64_t add_col_stride,
                            bool may_read_x = true) {
    const int64_t nrows = src0->ne[1];
    const int64_t k     = src0->ne[0];
    const int     ncols = (int) src1->ne[1];
    const bool in_kernel = may_read_x &&
                           q4_s24_cuda_mmv_variant_is_fused(q4_s24_cuda_mmv_default_variant(nrows, k, ncols));
    ggml_cuda_pool_alloc<char> scratch;
    if (in_kernel) {
        scratch.alloc(ctx.pool(), q4_s24_cuda_act_bytes(k, ncols));
        q4_s24_cuda_mul_mat_vec(src0->data, nrows, k, src0->nb[1], (const float *) src1->data,
                                (int64_t) (src1->nb[1] / sizeof(float)), ncols, y, y_col_stride, scratch.get(),
                                ctx.stream(), add, add_col_stride);
    } else {
        const q4_s24_cuda_act act = quantized_activations(ctx, src1, scratch);
        q4_s24_cuda_mul_mat_vec_q(src0->data, nrows, k, src0->nb[1], act, ncols, y, y_col_stride, ctx.stream(), add,
                                  add_col_stride);
    }
    CUDA_CHECK(cudaGetLastError());
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
        mul_mat_vec_one(ctx, src0, src1, (float *) dst->data, y_col_stride, nullptr, 0);
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

// Grouping: MUL_MATs of Q4_S24 weights on one input (attention's q, k and v) in one mat-vec launch. At a batch of one
// these are latency-bound launches (a 1024-row projection takes about as long as a 4096-row one), so three become one.
// Off with fusion, with Q4_S24_CUDA_NO_GROUP=1 (to measure it), and with GGML_CUDA_GRAPH_OPT=1, whose concurrent
// streams run q, k and v side by side instead (and expect them on their own streams).
static bool grouping_disabled() {
    static const bool disabled = q4_s24_cuda_env_flag("Q4_S24_CUDA_NO_GROUP") ||
                                 q4_s24_cuda_env_int("GGML_CUDA_GRAPH_OPT", 0) == 1;
    return disabled || fusion_disabled();
}

// The feed-forward gate and up projections also read one input, but by default the group leaves them to the gate/up +
// SWIGLU kernel (one launch that also applies the GLU): on the H200 that measured 472.5 t/s against 434.4 t/s with
// them grouped (two launches: the group's, then ggml's SWIGLU), 8B-shaped model, llama-bench tg128, same run.
// Q4_S24_CUDA_GROUP_GLU=1 groups them (at batch 1 its rows sum exactly as the plain path's; the SWIGLU kernel's do not).
static bool group_takes_glu_inputs() {
    static const bool takes = q4_s24_cuda_env_flag("Q4_S24_CUDA_GROUP_GLU");
    return takes;
}

// Whether glu = swiglu(gate, up) over two Q4_S24 matrices of one shape and one f32 input, any batch (checks only; the
// caller checks fusion is on).
static bool is_q4_s24_swiglu(const ggml_tensor * up, const ggml_tensor * gate, const ggml_tensor * glu) {
    const ggml_tensor * w_up   = up->src[0];
    const ggml_tensor * w_gate = gate->src[0];
    const ggml_tensor * x      = up->src[1];
    if (up->op != GGML_OP_MUL_MAT || gate->op != GGML_OP_MUL_MAT || w_up->type != GGML_TYPE_Q4_S24 ||
        w_gate->type != GGML_TYPE_Q4_S24 || gate->src[1] != x || glu->op != GGML_OP_GLU ||
        ggml_get_glu_op(glu) != GGML_GLU_OP_SWIGLU || ggml_get_op_params_i32(glu, 1) != 0 ||
        glu->src[0] != gate || glu->src[1] != up || glu->type != GGML_TYPE_F32) {
        return false;
    }
    // One matrix each, same shape; contiguous weights; glu's rows contiguous.
    return ggml_are_same_shape(w_up, w_gate) && w_up->nb[1] == w_gate->nb[1] && ggml_is_contiguous(w_up) &&
           ggml_is_contiguous(w_gate) && w_up->ne[2] * w_up->ne[3] == 1 && x->ne[2] * x->ne[3] == 1 &&
           x->type == GGML_TYPE_F32 && x->nb[0] == sizeof(float) && glu->nb[0] == sizeof(float) &&
           glu->ne[0] == w_up->ne[1] && glu->ne[1] == x->ne[1];
}

// Whether the (decode) gate/up + SWIGLU mat-vec kernel computes glu: batch within the mat-vec kernel's.
static bool swiglu_kernel_takes(const ggml_tensor * up, const ggml_tensor * gate, const ggml_tensor * glu) {
    return is_q4_s24_swiglu(up, gate, glu) && up->src[1]->ne[1] <= Q4_S24_CUDA_MMV_MAX_COLS;
}

// Whether node i and the node after it are the gate and up of a GLU right after them that the gate/up + SWIGLU kernel
// takes (any other GLU, e.g. GEGLU or swapped halves, is better served by the group).
static bool feeds_swiglu_kernel(const ggml_cgraph * cgraph, int i) {
    if (i + 2 >= cgraph->n_nodes || cgraph->nodes[i + 2]->op != GGML_OP_GLU) {
        return false;
    }
    const ggml_tensor * glu = cgraph->nodes[i + 2];
    const ggml_tensor * a   = cgraph->nodes[i];
    const ggml_tensor * b   = cgraph->nodes[i + 1];
    const bool          pair = (glu->src[0] == a && glu->src[1] == b) || (glu->src[0] == b && glu->src[1] == a);
    return pair && swiglu_kernel_takes(glu->src[1], glu->src[0], glu);
}

// Whether the node after node i is an ADD or MUL of it (a bias or scale that ggml's mul_mat + add / mul fusions would
// fold into node i's launch): such a matmul is not moved or grouped, so that it keeps that fusion.
static bool followed_by_its_bias(const ggml_cgraph * cgraph, int i) {
    if (i + 1 >= cgraph->n_nodes) {
        return false;
    }
    const ggml_tensor * next = cgraph->nodes[i + 1];
    return (next->op == GGML_OP_ADD || next->op == GGML_OP_MUL) &&
           (next->src[0] == cgraph->nodes[i] || next->src[1] == cgraph->nodes[i]);
}

// A MUL_MAT the fused launches (group, + ADD) take: one contiguous Q4_S24 matrix of weights (a leaf), F32 activations
// of 1 to Q4_S24_CUDA_MMV_MAX_COLS columns, an F32 result with contiguous rows that is no view.
static bool plain_mat_vec(const ggml_tensor * node) {
    if (node->op != GGML_OP_MUL_MAT || node->view_src != nullptr || node->type != GGML_TYPE_F32 ||
        node->nb[0] != sizeof(float)) {
        return false;
    }
    const ggml_tensor * w = node->src[0];
    const ggml_tensor * x = node->src[1];
    return w->type == GGML_TYPE_Q4_S24 && w->op == GGML_OP_NONE && ggml_is_contiguous(w) && w->ne[2] * w->ne[3] == 1 &&
           w->ne[0] % QK_Q4_S24_CUDA == 0 && x->type == GGML_TYPE_F32 && x->nb[0] == sizeof(float) &&
           x->ne[2] * x->ne[3] == 1 && x->ne[1] >= 1 && x->ne[1] <= Q4_S24_CUDA_MMV_MAX_COLS;
}

// Whether the mat-vec + residual launch computes sum = mul_mat + addend (checks only).
static bool mat_vec_add_takes(const ggml_tensor * mul_mat, const ggml_tensor * addend, const ggml_tensor * sum) {
    if (!plain_mat_vec(mul_mat) || sum->op != GGML_OP_ADD || sum->type != GGML_TYPE_F32 ||
        addend->type != GGML_TYPE_F32 || !ggml_are_same_shape(addend, mul_mat) || !ggml_are_same_shape(sum, mul_mat) ||
        addend->nb[0] != sizeof(float) || sum->nb[0] != sizeof(float)) {
        return false;
    }
    // Each thread reads the addend where it then writes the sum: the same memory (ggml's in-place ADD) or none of it.
    return !overlaps(sum, addend) || (sum->data == addend->data && sum->nb[1] == addend->nb[1]);
}

// Whether plain_mat_vec node b can share a launch with groupable node a: same input, same row length.
static bool same_group(const ggml_tensor * a, const ggml_tensor * b) {
    return b->src[1] == a->src[1] && b->src[0]->ne[0] == a->src[0]->ne[0] && b->src[0]->nb[1] == a->src[0]->nb[1];
}

void ggml_cuda_q4_s24_graph_optimize(ggml_cgraph * cgraph) {
    if (grouping_disabled()) {
        return;
    }
    // llama.cpp lists q's matmul, its rope, then v's and k's with theirs: up to this many nodes apart.
    constexpr int kLookahead = 16;
    for (int i = 0; i < cgraph->n_nodes; ++i) {
        ggml_tensor * first = cgraph->nodes[i];
        if (!plain_mat_vec(first) || followed_by_its_bias(cgraph, i)) {
            continue;
        }
        // A node that writes the input's memory (in place, or through a view of it) ends the search: nothing after it
        // moves above it.
        const ggml_tensor * input = first->src[1]->view_src ? first->src[1]->view_src : first->src[1];
        int grouped = 1;
        for (int j = i + 1; j < cgraph->n_nodes && j <= i + kLookahead && grouped < Q4_S24_CUDA_MMV_MAX_GROUP; ++j) {
            ggml_tensor * node = cgraph->nodes[j];
            if (node == input || node->view_src == input) {
                break;
            }
            if (plain_mat_vec(node) && same_group(first, node) && !followed_by_its_bias(cgraph, j)) {
                // Its inputs (a leaf and first's input) exist at i already, and it writes a tensor of its own.
                for (int m = j; m > i + grouped; --m) {
                    cgraph->nodes[m] = cgraph->nodes[m - 1];
                }
                cgraph->nodes[i + grouped] = node;
                ++grouped;
            }
        }
        i += grouped - 1;
    }
}

static void launch_swiglu(ggml_backend_cuda_context & ctx, const ggml_tensor * up, const ggml_tensor * gate,
                          ggml_tensor * glu, q4_s24_cuda_act act) {
    const ggml_tensor * w_up   = up->src[0];
    const ggml_tensor * w_gate = gate->src[0];
    q4_s24_cuda_mul_mat_vec_swiglu(w_up->data, w_gate->data, w_up->ne[1], w_up->ne[0], w_up->nb[1], act,
                                   (int) up->src[1]->ne[1], (float *) glu->data,
                                   (int64_t) (glu->nb[1] / sizeof(float)), ctx.stream());
    CUDA_CHECK(cudaGetLastError());
}

// The group that starts at node i: the consecutive MUL_MATs the group launch takes (into matrices), or 0 when fewer
// than two do (then each matmul runs on its own).
static int collect_mul_mat_group(const ggml_cgraph * cgraph, int i, q4_s24_cuda_mmv_matrix * matrices) {
    const ggml_tensor * first = cgraph->nodes[i];
    if (grouping_disabled() || !plain_mat_vec(first) || (!group_takes_glu_inputs() && feeds_swiglu_kernel(cgraph, i))) {
        return 0;
    }
    int count = 0;
    for (int j = i; j < cgraph->n_nodes && count < Q4_S24_CUDA_MMV_MAX_GROUP; ++j) {
        ggml_tensor * node = cgraph->nodes[j];
        if ((node->flags & GGML_TENSOR_FLAG_COMPUTE) == 0 || !plain_mat_vec(node) || !same_group(first, node) ||
            followed_by_its_bias(cgraph, j)) {
            break; // (a matmul followed by its own bias keeps ggml's mul_mat + add fusion)
        }
        matrices[count++] = { node->src[0]->data, node->src[0]->ne[1], (float *) node->data,
                              (int64_t) (node->nb[1] / sizeof(float)) };
    }
    return count >= 2 ? count : 0;
}

// Q4_S24_CUDA_NO_ROPE_FUSION=1 leaves the rope and KV-cache writes after q, k and v to ggml's kernels (to measure
// their fusion into the group's launch); Q4_S24_CUDA_NO_FUSION=1 turns it off with the others.
static bool rope_fusion_disabled() {
    static const bool disabled = q4_s24_cuda_env_flag("Q4_S24_CUDA_NO_ROPE_FUSION");
    return disabled || fusion_disabled();
}

// The matmul whose result t is, or a contiguous view of from its start (a reshape), else null.
static const ggml_tensor * viewed_result(const ggml_tensor * t) {
    const ggml_tensor * base = t->view_src != nullptr ? t->view_src : t;
    return t->view_offs == 0 && ggml_is_contiguous(t) && ggml_nelements(t) == ggml_nelements(base) ? base : nullptr;
}

// A ROPE the group's epilogue computes for a matmul of ncols columns: ggml's normal mode, forward, F32 in and out,
// contiguous heads of an even size covering the matmul's rows, I32 positions per column, optional F32 frequency
// factors.
static bool epilogue_takes_rope(const ggml_tensor * rope, const ggml_tensor * mul_mat) {
    const ggml_tensor * x     = rope->src[0];
    const ggml_tensor * pos   = rope->src[1];
    const ggml_tensor * freqs = rope->src[2];
    const int32_t *     p     = (const int32_t *) rope->op_params;
    const int           n_dims = p[1], mode = p[2], n_offs = p[15];
    const int64_t       head_dim = x->ne[0], ncols = mul_mat->ne[1];
    return mode == GGML_ROPE_TYPE_NORMAL && rope->type == GGML_TYPE_F32 && ggml_is_contiguous(rope) &&
           ggml_are_same_shape(rope, x) && head_dim % 2 == 0 && x->ne[1] * head_dim == mul_mat->ne[0] &&
           x->ne[2] == ncols && x->ne[3] == 1 && n_dims > 0 && n_dims % 2 == 0 && n_offs >= 0 &&
           n_offs % 2 == 0 && n_offs + n_dims <= head_dim && pos->type == GGML_TYPE_I32 && pos->ne[0] == ncols &&
           ggml_is_contiguous(pos) &&
           (freqs == nullptr || (freqs->type == GGML_TYPE_F32 && ggml_is_contiguous(freqs) &&
                                 freqs->ne[0] >= n_dims / 2));
}

// The rotation's parameters as ggml-cuda's rope.cu derives them from the op's parameters.
static q4_s24_cuda_rope rope_parameters(const ggml_tensor * rope) {
    const int32_t * p = (const int32_t *) rope->op_params;
    float           freq_base, beta_fast, beta_slow, corr_dims[2];
    q4_s24_cuda_rope r = {};
    memcpy(&freq_base, p + 5, sizeof(float));
    memcpy(&r.freq_scale, p + 6, sizeof(float));
    memcpy(&r.ext_factor, p + 7, sizeof(float));
    memcpy(&r.attn_factor, p + 8, sizeof(float));
    memcpy(&beta_fast, p + 9, sizeof(float));
    memcpy(&beta_slow, p + 10, sizeof(float));
    ggml_rope_yarn_corr_dims(p[1], p[4], freq_base, beta_fast, beta_slow, corr_dims);
    r.pos          = (const int32_t *) rope->src[1]->data;
    r.freq_factors = rope->src[2] != nullptr ? (const float *) rope->src[2]->data : nullptr;
    r.theta_scale  = powf(freq_base, -2.0f / p[1]);
    r.corr_low     = corr_dims[0];
    r.corr_high    = corr_dims[1];
    r.head_dim     = (int) rope->src[0]->ne[0];
    r.n_dims       = p[1];
    r.n_offs       = p[15];
    return r;
}

// A SET_ROWS the group's epilogue computes: all of `rows` (ncols rows of the matrix's width, contiguous) into an F16
// destination with contiguous rows, at I64 indices, one per column.
static bool epilogue_takes_set_rows(const ggml_tensor * set_rows, const ggml_tensor * rows, const ggml_tensor * mul_mat) {
    const ggml_tensor * ids = set_rows->src[1];
    return set_rows->type == GGML_TYPE_F16 && set_rows->nb[0] == sizeof(half) && set_rows->nb[1] % sizeof(half) == 0 &&
           set_rows->ne[0] == mul_mat->ne[0] && rows->ne[0] == mul_mat->ne[0] && rows->ne[1] == mul_mat->ne[1] &&
           rows->ne[2] * rows->ne[3] == 1 && ggml_is_contiguous(rows) && ids->type == GGML_TYPE_I64 &&
           ids->ne[0] == mul_mat->ne[1] && ggml_nelements(ids) == ids->ne[0] && ggml_is_contiguous(ids);
}

// Whether something outside nodes[first..last] reads node `at` (one of them), directly or through views of it (then
// the fused launch must still store it; else it skips the store, which matters beyond the bytes: ggml's allocator may
// give a tensor that dies inside the span the memory of another that the launch writes, and one launch writes them
// all at once). A node without uses is a result of the graph: stored.
static bool read_outside(const ggml_cgraph * cgraph, int first, int last, int at, int depth = 0) {
    const ggml_tensor * t    = cgraph->nodes[at];
    const int32_t       uses = ggml_node_get_use_count(cgraph, at);
    if ((t->flags & GGML_TENSOR_FLAG_OUTPUT) != 0 || uses == 0 || depth > 4) {
        return true;
    }
    int32_t inside = 0;
    for (int j = first; j <= last; ++j) {
        const ggml_tensor * node = cgraph->nodes[j];
        for (int s = 0; s < GGML_MAX_SRC; ++s) {
            if (node->src[s] == t) {
                ++inside;
                if (ggml_op_is_empty(node->op) && read_outside(cgraph, first, last, j, depth + 1)) {
                    return true;
                }
            }
        }
    }
    return inside != uses;
}

// Whether one launch may do what the span's nodes do one by one: what it writes (the stored results, the cache
// destinations) overlaps neither what it reads after its wait (positions, frequency factors, cache row indices; ggml's
// allocator may reuse an input's memory for a result computed after the input's last use) nor each other, but for a
// rope stored in place of its own matmul's result (the same thread stores both, the rotation last).
// stored_y, stored_roped, ropes, caches: per matrix, null where there is none.
static bool epilogue_memory_disjoint(int count, const ggml_tensor * const * stored_y,
                                     const ggml_tensor * const * stored_roped, const ggml_tensor * const * ropes,
                                     const ggml_tensor * const * caches) {
    constexpr int       kMax = Q4_S24_CUDA_MMV_MAX_GROUP;
    const ggml_tensor * written[3 * kMax];
    const ggml_tensor * read[3 * kMax];
    int                 n_written = 0, n_read = 0;
    for (int m = 0; m < count; ++m) {
        for (const ggml_tensor * t : { stored_y[m], stored_roped[m], caches[m] }) {
            if (t != nullptr) {
                written[n_written++] = t;
            }
        }
        for (const ggml_tensor * t : { ropes[m] ? ropes[m]->src[1] : nullptr, ropes[m] ? ropes[m]->src[2] : nullptr,
                                       caches[m] ? caches[m]->src[1] : nullptr }) {
            if (t != nullptr) {
                read[n_read++] = t;
            }
        }
    }
    const auto in_place = [&](const ggml_tensor * a, const ggml_tensor * b) {
        for (int m = 0; m < count; ++m) {
            const ggml_tensor * y = stored_y[m], * roped = stored_roped[m];
            if (((a == y && b == roped) || (a == roped && b == y)) && y->data == roped->data &&
                y->nb[1] == roped->nb[2]) { // the same column stride: every element where its rotation goes
                return true;
            }
        }
        return false;
    };
    for (int w = 0; w < n_written; ++w) {
        for (int r = 0; r < n_read; ++r) {
            if (overlaps(written[w], read[r])) {
                return false;
            }
        }
        for (int v = w + 1; v < n_written; ++v) {
            if (overlaps(written[w], written[v]) && !in_place(written[w], written[v])) {
                return false;
            }
        }
    }
    return true;
}

// What llama.cpp does with attention's q, k and v right after the group at nodes[first] (count matmuls): each one's
// ROPE, and K's and V's SET_ROWS into the KV cache (K's through a VIEW of its rope), in any order, with no-op views in
// between. Fills the matrices' epilogues and rope, and returns the index of the last node they take (first + count - 1
// when none: then the group has no epilogue). Stops at the first node that is neither.
static int collect_group_epilogue(const ggml_cgraph * cgraph, int first, int count, q4_s24_cuda_mmv_matrix * matrices,
                                  q4_s24_cuda_rope & rope) {
    int last = first + count - 1;
    if (rope_fusion_disabled()) {
        return last;
    }
    const ggml_tensor * ropes[Q4_S24_CUDA_MMV_MAX_GROUP]  = {}; // per matrix: its ROPE node, its SET_ROWS node
    const ggml_tensor * caches[Q4_S24_CUDA_MMV_MAX_GROUP] = {};
    int                 rope_at[Q4_S24_CUDA_MMV_MAX_GROUP] = {}; // the ROPE node's index
    const ggml_tensor * rope_params = nullptr; // the first rope taken: the others must match it
    const auto          matrix_of   = [&](const ggml_tensor * t, bool roped) { // -1: none of the group's
        for (int m = 0; m < count; ++m) {
            if (t != nullptr && t == (roped ? ropes[m] : cgraph->nodes[first + m])) {
                return m;
            }
        }
        return -1;
    };
    constexpr int kLookahead = 16;
    for (int j = last + 1; j < cgraph->n_nodes && j <= first + count + kLookahead; ++j) {
        const ggml_tensor * node = cgraph->nodes[j];
        if (ggml_op_is_empty(node->op)) {
            continue; // computes nothing
        }
        if ((node->flags & GGML_TENSOR_FLAG_COMPUTE) == 0) {
            break;
        }
        if (node->op == GGML_OP_ROPE) {
            const int m = matrix_of(viewed_result(node->src[0]), false);
            if (m < 0 || ropes[m] != nullptr || caches[m] != nullptr ||
                !epilogue_takes_rope(node, cgraph->nodes[first + m]) ||
                (rope_params != nullptr &&
                 (memcmp(node->op_params, rope_params->op_params, sizeof(node->op_params)) != 0 ||
                  node->src[1] != rope_params->src[1] || node->src[2] != rope_params->src[2] ||
                  node->src[0]->ne[0] != rope_params->src[0]->ne[0]))) {
                break;
            }
            ropes[m]                     = node;
            rope_at[m]                   = j;
            rope_params                  = rope_params != nullptr ? rope_params : node;
            matrices[m].rotate           = true;
            matrices[m].roped            = (float *) node->data;
            matrices[m].roped_col_stride = (int64_t) (node->nb[2] / sizeof(float));
        } else if (node->op == GGML_OP_SET_ROWS) {
            const ggml_tensor * rows    = node->src[0];
            const ggml_tensor * base    = viewed_result(rows);
            const int           roped_m = matrix_of(base, true);
            const int           m       = roped_m >= 0 ? roped_m : matrix_of(base, false);
            if (m < 0 || caches[m] != nullptr || (roped_m < 0 && ropes[m] != nullptr) ||
                !epilogue_takes_set_rows(node, rows, cgraph->nodes[first + m])) {
                break;
            }
            caches[m]                    = node;
            matrices[m].cache            = (half *) node->data;
            matrices[m].cache_rows       = (const int64_t *) node->src[1]->data;
            matrices[m].cache_row_stride = (int64_t) (node->nb[1] / sizeof(half));
        } else {
            break;
        }
        last = j;
    }
    const int none = first + count - 1;
    if (last == none) {
        return none;
    }
    // With an epilogue every matrix's rows are stored in pairs.
    for (int m = 0; m < count; ++m) {
        if (matrices[m].nrows % 2 != 0) {
            return none;
        }
    }
    // Intermediate results only the span reads are not stored (see read_outside).
    const ggml_tensor * stored_y[Q4_S24_CUDA_MMV_MAX_GROUP]     = {};
    const ggml_tensor * stored_roped[Q4_S24_CUDA_MMV_MAX_GROUP] = {};
    for (int m = 0; m < count; ++m) {
        if (read_outside(cgraph, first, last, first + m)) {
            stored_y[m] = cgraph->nodes[first + m];
        }
        if (ropes[m] != nullptr && read_outside(cgraph, first, last, rope_at[m])) {
            stored_roped[m] = ropes[m];
        }
    }
    if (!epilogue_memory_disjoint(count, stored_y, stored_roped, ropes, caches)) {
        return none;
    }
    for (int m = 0; m < count; ++m) {
        if (stored_y[m] == nullptr) {
            matrices[m].y = nullptr;
        }
        if (stored_roped[m] == nullptr) {
            matrices[m].roped = nullptr;
        }
    }
    rope = rope_params != nullptr ? rope_parameters(rope_params) : q4_s24_cuda_rope{};
    return last;
}

// The group at nodes[first] (count matmuls) and its epilogue in one launch; returns the index of the last node it
// computed.
static int launch_group_and_epilogue(ggml_backend_cuda_context & ctx, const ggml_cgraph * cgraph, int first,
                                     q4_s24_cuda_mmv_matrix * matrices, int count, q4_s24_cuda_act act) {
    q4_s24_cuda_rope    rope;
    const int           last = collect_group_epilogue(cgraph, first, count, matrices, rope);
    const ggml_tensor * mm   = cgraph->nodes[first];
    q4_s24_cuda_mul_mat_vec_group(matrices, count, mm->src[0]->ne[0], mm->src[0]->nb[1], act, (int) mm->src[1]->ne[1],
                                  ctx.stream(), last > first + count - 1 ? &rope : nullptr);
    CUDA_CHECK(cudaGetLastError());
    return last;
}

int ggml_cuda_q4_s24_try_fuse_mul_mat_group(ggml_backend_cuda_context & ctx, ggml_cgraph * cgraph, int i) {
    q4_s24_cuda_mmv_matrix matrices[Q4_S24_CUDA_MMV_MAX_GROUP];
    const int              count = collect_mul_mat_group(cgraph, i, matrices);
    if (count == 0) {
        return 0;
    }
    ggml_cuda_pool_alloc<char> scratch;
    const q4_s24_cuda_act      act = quantized_activations(ctx, cgraph->nodes[i]->src[1], scratch);
    return launch_group_and_epilogue(ctx, cgraph, i, matrices, count, act) - i;
}

// Q4_S24_CUDA_NO_NORM_FUSION=1 leaves the RMS norm to ggml's kernel and the quantization to its own launch (to
// measure the norm fusion alone); Q4_S24_CUDA_NO_FUSION=1 turns it off with the others.
static bool norm_fusion_disabled() {
    static const bool disabled = q4_s24_cuda_env_flag("Q4_S24_CUDA_NO_NORM_FUSION");
    return disabled || fusion_disabled();
}

// rms_norm's input and mul's weight as the fused kernel takes them: F32 columns of k values (k a multiple of 256,
// 1..Q4_S24_CUDA_MMV_MAX_COLS of them, contiguous rows) and one contiguous F32 weight row of k values broadcast over
// the columns; mul's result F32 with contiguous rows. Null when they are not.
static const ggml_tensor * norm_weight_row(const ggml_tensor * rms_norm, const ggml_tensor * mul) {
    const ggml_tensor * x      = rms_norm->src[0];
    const ggml_tensor * weight = mul->src[0] == rms_norm ? mul->src[1] : mul->src[0];
    const int64_t       k      = x->ne[0];
    const bool fits = x->type == GGML_TYPE_F32 && x->nb[0] == sizeof(float) && x->ne[2] * x->ne[3] == 1 &&
                      x->ne[1] >= 1 && x->ne[1] <= Q4_S24_CUDA_MMV_MAX_COLS && k % QK_Q4_S24_CUDA == 0 &&
                      rms_norm->type == GGML_TYPE_F32 && mul->type == GGML_TYPE_F32 &&
                      ggml_are_same_shape(mul, rms_norm) && mul->nb[0] == sizeof(float) &&
                      weight->type == GGML_TYPE_F32 && ggml_is_contiguous(weight) && weight->ne[0] == k &&
                      ggml_nrows(weight) == 1;
    return fits ? weight : nullptr;
}

int ggml_cuda_q4_s24_try_fuse_rms_norm(ggml_backend_cuda_context & ctx, ggml_cgraph * cgraph, int i,
                                       bool glu_fusable) {
    if (norm_fusion_disabled() || i + 3 >= cgraph->n_nodes) {
        return 0;
    }
    const ggml_tensor * rms_norm = cgraph->nodes[i];
    ggml_tensor *       mul      = cgraph->nodes[i + 1];
    const ggml_tensor * weight   = norm_weight_row(rms_norm, mul);
    // Every thread block reads the whole input column: the result must not overwrite it (ggml's allocator may put it
    // there when nothing later reads the input).
    if (weight == nullptr || cgraph->nodes[i + 2]->src[1] != mul || overlaps(mul, rms_norm->src[0])) {
        return 0;
    }
    // What reads the normalized input right after: the gate/up + SWIGLU kernel, or a group (q, k and v).
    q4_s24_cuda_mmv_matrix matrices[Q4_S24_CUDA_MMV_MAX_GROUP];
    const bool to_swiglu = glu_fusable && !group_takes_glu_inputs() && feeds_swiglu_kernel(cgraph, i + 2);
    const int  grouped   = to_swiglu ? 0 : collect_mul_mat_group(cgraph, i + 2, matrices);
    if (!to_swiglu && grouped == 0) {
        return 0;
    }
    const ggml_tensor *        x     = rms_norm->src[0];
    const int64_t              k     = x->ne[0];
    const int                  ncols = (int) x->ne[1];
    ggml_cuda_pool_alloc<char> scratch;
    const q4_s24_cuda_act      act   = activation_space(ctx, k, ncols, scratch);
    float eps;
    memcpy(&eps, rms_norm->op_params, sizeof(float));
    // A model weight (no op, in a weights buffer) is never written by a kernel: the norm may read it before its wait.
    const bool weight_is_constant = weight->op == GGML_OP_NONE && weight->buffer != nullptr &&
                                    ggml_backend_buffer_get_usage(weight->buffer) == GGML_BACKEND_BUFFER_USAGE_WEIGHTS;
    if (!q4_s24_cuda_rms_norm_quantize_act((const float *) x->data, k, (int64_t) (x->nb[1] / sizeof(float)), ncols,
                                           (const float *) weight->data, weight_is_constant, eps, (float *) mul->data,
                                           (int64_t) (mul->nb[1] / sizeof(float)), act, ctx.stream())) {
        return 0; // a misaligned view: ggml's kernels (nothing was launched)
    }
    CUDA_CHECK(cudaGetLastError());
    if (to_swiglu) {
        ggml_tensor * glu = cgraph->nodes[i + 4];
        launch_swiglu(ctx, glu->src[1], glu->src[0], glu, act);
        return 4; // rms_norm, mul, the two matmuls and the GLU
    }
    return launch_group_and_epilogue(ctx, cgraph, i + 2, matrices, grouped, act) - i;
}

// The warp-specialized form of the wgmma kernels wherever they run (MUL_MAT and the gate / up + SWIGLU launch): on the
// H200 1.24x faster on the 8B feed-forward products at 512 tokens, pp2048 +5.3% (docs/benchmarks.md, session 22).
// Q4_S24_CUDA_WGMMA_WS=0: the plain form.
static bool wgmma_warp_specialized() {
    static const bool on = q4_s24_cuda_env_int("Q4_S24_CUDA_WGMMA_WS", 1) != 0;
    return on;
}

// Q4_S24_CUDA_STREAM_K=1: the warp-specialized form as stream-K (one block per SM, each an equal share of the product's
// tile steps; Q4_S24_SPARSE_WGMMA_WS_STREAM_K) wherever it runs. Opt-in until measured on the whole model.
static bool wgmma_stream_k() {
    static const bool on = q4_s24_cuda_env_int("Q4_S24_CUDA_STREAM_K", 0) != 0;
    return on;
}

// Q4_S24_CUDA_SPARSE_MMA as a q4_s24_sparse_kernel, or -1: off (see ggml_cuda_q4_s24_mul_mat_sparse_mma). Read once.
static int sparse_mma_setting() {
    static const int setting = [] {
        const char * env   = getenv("Q4_S24_CUDA_SPARSE_MMA");
        const bool   unset = env == nullptr || *env == '\0';
        const int    mode  = unset ? 1 : atoi(env);
        const int stream_k = wgmma_stream_k() ? Q4_S24_SPARSE_STREAM_K : 0;
        if (mode == 3) { // the rule measured for the warp-specialized form
            return Q4_S24_SPARSE_WHERE_WS_FASTER | Q4_S24_SPARSE_WARP_SPECIALIZED | stream_k;
        }
        const int kernel = unset ? Q4_S24_SPARSE_WHERE_FASTER : mode == 2 ? Q4_S24_SPARSE_MMA_SP : Q4_S24_SPARSE_AUTO;
        return mode == 0 ? -1 : kernel | (wgmma_warp_specialized() ? Q4_S24_SPARSE_WARP_SPECIALIZED | stream_k : 0);
    }();
    return setting;
}

// Prefill on sparse tensor cores. By default only for the shapes q4_s24_cuda_sparse_prefill_kernel picks (Hopper only;
// 8192+ rows at up to 512 tokens, split-K over k >= 8192 at 384-512 tokens, from the H200 harness on the 8B
// feed-forward matrices, where the wgmma kernel beat dequantize to f16 + cuBLAS), in the wgmma kernel's
// warp-specialized form (Q4_S24_CUDA_WGMMA_WS above); Q4_S24_CUDA_SPARSE_MMA=0 never (dequantize + cuBLAS
// everywhere), 2 mma.sp for every shape it takes, 3 the rule where the warp-specialized form beat dequantize + cuBLAS
// in the harness (attention's 4096x4096 matrices at 384-2048 tokens, the feed-forward's up to 2048; always that form;
// opt-in until measured on the whole model), any other number the best kernel the GPU has (wgmma.sp on Hopper, else
// mma.sp) for every shape.
bool ggml_cuda_q4_s24_mul_mat_sparse_mma(ggml_backend_cuda_context & ctx, const ggml_tensor * src0,
                                         const ggml_tensor * src1, ggml_tensor * dst) {
    const int setting = sparse_mma_setting();
    if (setting < 0) {
        return false;
    }
    const auto kernel = (q4_s24_sparse_kernel) setting;
    GGML_TENSOR_BINARY_OP_LOCALS

    const int cc = ggml_cuda_info().devices[ctx.device].cc;
    if (!GGML_CUDA_CC_IS_NVIDIA(cc) || ne02 * ne03 != 1 || ne12 * ne13 != 1 || ne11 < 1 ||
        src1->type != GGML_TYPE_F32 || !ggml_is_contiguous(src1) || dst->type != GGML_TYPE_F32 ||
        nb0 != sizeof(float) || !q4_s24_cuda_sparse_mma_accepts(src0->data, ne01, ne00, nb01, ne11, kernel)) {
        return false;
    }
    cudaStream_t stream = ctx.stream();
    ggml_cuda_pool_alloc<half> x16(ctx.pool(), ne10 * ne11);
    ggml_get_to_fp16_cuda(GGML_TYPE_F32)(src1->data, x16.get(), ne10 * ne11, stream);
    ggml_cuda_pool_alloc<char> workspace;
    const size_t               workspace_bytes = q4_s24_cuda_sparse_workspace_bytes(kernel, ne01, ne00, ne11);
    if (!q4_s24_cuda_mul_mat_sparse_mma(src0->data, ne01, ne00, nb01, x16.get(), ne11, (float *) dst->data,
                                        (int64_t) (nb1 / sizeof(float)), stream, kernel,
                                        workspace_bytes > 0 ? workspace.alloc(ctx.pool(), workspace_bytes) : nullptr)) {
        return false; // the pool's f16 copy not 16-byte aligned: cuBLAS (the copy goes unused)
    }
    CUDA_CHECK(cudaGetLastError());
    return true;
}

// Whether a MUL_MAT request for `kernel` runs the unsplit wgmma kernel (either form) on these sizes.
static bool runs_plain_wgmma(q4_s24_sparse_kernel kernel, int64_t nrows, int64_t k, int64_t ncols) {
    // (stream-K aside: it replaces either split)
    const auto tiles  = (q4_s24_sparse_kernel) (kernel & ~Q4_S24_SPARSE_STREAM_K);
    const int  chosen = q4_s24_cuda_sparse_chosen_kernel(tiles, nrows, k, ncols);
    return chosen == Q4_S24_SPARSE_WGMMA || chosen == Q4_S24_SPARSE_WGMMA_WS;
}

// Prefill's gate / up + SWIGLU in one sparse tensor-core launch (q4_s24_cuda_mul_mat_sparse_swiglu). By default (1)
// where the MUL_MAT path (as Q4_S24_CUDA_SPARSE_MMA sets it) would run the wgmma kernel on gate and up anyway (the 8B
// model's at up to 512 tokens): on the H200 pp2048 +6.5% (docs/benchmarks.md, session 22).
// Q4_S24_CUDA_SPARSE_GLU=0 turns it off, 2 runs it for every batch past the mat-vec kernel's.
static bool launch_sparse_swiglu(ggml_backend_cuda_context & ctx, const ggml_tensor * up, const ggml_tensor * gate,
                                 ggml_tensor * glu) {
    static const int setting = q4_s24_cuda_env_int("Q4_S24_CUDA_SPARSE_GLU", 1);
    const ggml_tensor * w_up   = up->src[0];
    const ggml_tensor * w_gate = gate->src[0];
    const ggml_tensor * x      = up->src[1];
    const int64_t       nrows  = w_up->ne[1];
    const int64_t       k      = w_up->ne[0];
    const int64_t       ncols  = x->ne[1];
    if (setting == 0 || ncols <= Q4_S24_CUDA_MMV_MAX_COLS || !is_q4_s24_swiglu(up, gate, glu) ||
        !GGML_CUDA_CC_IS_NVIDIA(ggml_cuda_info().devices[ctx.device].cc) || !ggml_is_contiguous(x) ||
        (setting == 1 && (sparse_mma_setting() < 0 || !runs_plain_wgmma((q4_s24_sparse_kernel) sparse_mma_setting(),
                                                                        nrows, k, ncols))) ||
        !q4_s24_cuda_sparse_swiglu_accepts(w_gate->data, w_up->data, nrows, k, w_up->nb[1], ncols)) {
        return false;
    }
    // The kernel reads this copy of x only (ggml's fusion check keeps glu off x's memory anyway).
    cudaStream_t stream = ctx.stream();
    ggml_cuda_pool_alloc<half> x16(ctx.pool(), k * ncols);
    ggml_get_to_fp16_cuda(GGML_TYPE_F32)(x->data, x16.get(), k * ncols, stream);
    const q4_s24_sparse_kernel kernel = !wgmma_warp_specialized() ? Q4_S24_SPARSE_WGMMA
                                        : wgmma_stream_k()         ? Q4_S24_SPARSE_WGMMA_WS_STREAM_K
                                                                   : Q4_S24_SPARSE_WGMMA_WS;
    ggml_cuda_pool_alloc<char> workspace;
    const size_t               workspace_bytes = q4_s24_cuda_sparse_workspace_bytes(kernel, nrows, k, ncols, true);
    if (!q4_s24_cuda_mul_mat_sparse_swiglu(w_gate->data, w_up->data, nrows, k, w_up->nb[1], x16.get(), ncols,
                                           (float *) glu->data, (int64_t) (glu->nb[1] / sizeof(float)), stream, kernel,
                                           workspace_bytes > 0 ? workspace.alloc(ctx.pool(), workspace_bytes) : nullptr)) {
        return false; // the pool's f16 copy not 16-byte aligned: ggml's own path (the copy goes unused)
    }
    CUDA_CHECK(cudaGetLastError());
    return true;
}

bool ggml_cuda_q4_s24_mul_mat_swiglu(ggml_backend_cuda_context & ctx, const ggml_tensor * up, const ggml_tensor * gate,
                                     ggml_tensor * glu) {
    if (fusion_disabled()) {
        return false;
    }
    if (launch_sparse_swiglu(ctx, up, gate, glu)) {
        return true;
    }
    if (!swiglu_kernel_takes(up, gate, glu)) {
        return false;
    }
    ggml_cuda_pool_alloc<char> scratch;
    launch_swiglu(ctx, up, gate, glu, quantized_activations(ctx, up->src[1], scratch));
    return true;
}

bool ggml_cuda_q4_s24_mul_mat_vec_add(ggml_backend_cuda_context & ctx, const ggml_tensor * mul_mat,
                                      const ggml_tensor * addend, ggml_tensor * sum) {
    if (fusion_disabled() || !mat_vec_add_takes(mul_mat, addend, sum)) {
        return false;
    }
    // ggml's allocator may give the sum the memory of the matmul's input, which no later node reads: then the
    // activations are quantized into a buffer of their own first (a kernel reading them while others write the sum
    // would race).
    const ggml_tensor * x       = mul_mat->src[1];
    const bool          overlap = overlaps(sum, x);
    mul_mat_vec_one(ctx, mul_mat->src[0], x, (float *) sum->data, (int64_t) (sum->nb[1] / sizeof(float)),
                    (const float *) addend->data, (int64_t) (addend->nb[1] / sizeof(float)), !overlap);
    return true;
}

// By default the attention's combine launch quantizes the o-projection's input (+1.6-1.8% tg128 on the H200, the same
// greedy output, session 25); Q4_S24_CUDA_ATTENTION_QUANT=0 turns it off, Q4_S24_CUDA_NO_FUSION=1 with the other fusions.
static bool attention_quantization_enabled() {
    static const bool enabled = q4_s24_cuda_env_int("Q4_S24_CUDA_ATTENTION_QUANT", 1) != 0;
    return enabled && !fusion_disabled();
}

ggml_cuda_q4_s24_quantized_copy ggml_cuda_q4_s24_take_attention_quantization(ggml_backend_cuda_context & ctx,
                                                                               const ggml_tensor * dst) {
    if (ctx.q4_s24_state == nullptr) {
        return {};
    }
    attention_quantization_request & request = ctx.q4_s24_state->attention_request;
    if (request.dst != dst || request.taken) {
        return {};
    }
    request.taken = true;
    return { request.act.q, request.act.d };
}

// The request lives while ggml's attention launches its kernels, and no longer.
struct scoped_attention_quantization_request {
    attention_quantization_request & request;
    scoped_attention_quantization_request(ggml_backend_cuda_context & ctx, const ggml_tensor * dst,
                                          const q4_s24_cuda_act & act) :
        request(q4_s24_state(ctx).attention_request) {
        request = { dst, act, false };
    }
    ~scoped_attention_quantization_request() { request = {}; }
    bool taken() const { return request.taken; }
};

int ggml_cuda_q4_s24_try_fuse_attention(ggml_backend_cuda_context & ctx, ggml_cgraph * cgraph, int i) {
    ggml_tensor * fa = cgraph->nodes[i];
    if (fa->op != GGML_OP_FLASH_ATTN_EXT || !attention_quantization_enabled() || i + 2 >= cgraph->n_nodes ||
        ctx.curr_stream_no != 0) {
        return 0;
    }
    // llama.cpp's attention output: the heads reshaped into columns, then the o-projection.
    const ggml_tensor * columns = cgraph->nodes[i + 1];
    ggml_tensor *       mm      = cgraph->nodes[i + 2];
    if (columns->op != GGML_OP_RESHAPE || columns->src[0] != fa || !plain_mat_vec(mm) || mm->src[1] != columns ||
        (mm->flags & GGML_TENSOR_FLAG_COMPUTE) == 0) {
        return 0;
    }
    // The combine kernel writes value j of head h of token t at ((t * heads) + h) * head_size + j: the columns' layout
    // when the result is a contiguous F32 [head_size, heads, tokens] with heads of a multiple of 32 values.
    if (fa->type != GGML_TYPE_F32 || !ggml_is_contiguous(fa) || fa->ne[0] % 32 != 0 || fa->ne[3] != 1 ||
        columns->ne[0] != fa->ne[0] * fa->ne[1] || columns->ne[1] != fa->ne[2]) {
        return 0;
    }
    const ggml_tensor * w     = mm->src[0];
    const int           ncols = (int) columns->ne[1];
    if (q4_s24_cuda_mmv_variant_is_fused(q4_s24_cuda_mmv_default_variant(w->ne[1], w->ne[0], ncols))) {
        return 0; // that launch quantizes its input itself
    }
    // The residual ADD right after, when the mat-vec + residual launch takes it.
    ggml_tensor *       sum    = i + 3 < cgraph->n_nodes ? cgraph->nodes[i + 3] : nullptr;
    const ggml_tensor * addend = nullptr;
    if (sum != nullptr && sum->op == GGML_OP_ADD && (sum->src[0] == mm || sum->src[1] == mm) &&
        (sum->flags & GGML_TENSOR_FLAG_COMPUTE) != 0 && (mm->flags & GGML_TENSOR_FLAG_OUTPUT) == 0 &&
        ggml_node_get_use_count(cgraph, i + 2) == 1) {
        addend = sum->src[0] == mm ? sum->src[1] : sum->src[0];
        if (!mat_vec_add_takes(mm, addend, sum)) {
            addend = nullptr;
        }
    }
    const ggml_tensor * out        = addend != nullptr ? sum : mm;
    float * const       y          = (float *) out->data;
    const int64_t       y_stride   = (int64_t) (out->nb[1] / sizeof(float));
    const float * const add        = addend != nullptr ? (const float *) addend->data : nullptr;
    const int64_t       add_stride = addend != nullptr ? (int64_t) (addend->nb[1] / sizeof(float)) : 0;

    ggml_cuda_pool_alloc<char> scratch;
    const q4_s24_cuda_act      act = activation_space(ctx, w->ne[0], ncols, scratch);
    bool                       quantized;
    {
        const scoped_attention_quantization_request request(ctx, fa, act);
        ggml_cuda_flash_attn_ext(ctx, fa);
        quantized = request.taken();
    }
    if (quantized) {
        q4_s24_cuda_mul_mat_vec_q(w->data, w->ne[1], w->ne[0], w->nb[1], act, ncols, y, y_stride, ctx.stream(), add,
                                  add_stride);
        CUDA_CHECK(cudaGetLastError());
    } else { // a single part, no combine launch: the projection quantizes as it would unfused
        mul_mat_vec_one(ctx, w, columns, y, y_stride, add, add_stride, !overlaps(out, columns));
    }
    return addend != nullptr ? 3 : 2;
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
