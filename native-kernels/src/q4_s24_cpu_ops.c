// Op capability for Q4_S24 on the CPU backend: declared here, so the scheduler refuses an
// unsupported op up front instead of reaching a GGML_ABORT in an op's type switch.
#include "q4_s24_cpu_ops.h"
#include "q4_s24.h"

_Static_assert(GGML_TYPE_Q4_S24 == Q4_S24_GGML_TYPE_ID, "ggml.h and q4_s24.h disagree on the type id");
_Static_assert(QK_Q4_S24 % 32 == 0, "a block must hold whole Q8_0 activation blocks");

static bool q4_s24_is(const struct ggml_tensor * t) {
    return t != NULL && t->type == GGML_TYPE_Q4_S24;
}

bool ggml_cpu_q4_s24_supports_op(const struct ggml_tensor * op) {
    bool involved = q4_s24_is(op);
    for (int i = 0; i < GGML_MAX_SRC; i++) {
        involved = involved || q4_s24_is(op->src[i]);
    }
    if (!involved) {
        return true;
    }

    const struct ggml_tensor * src0 = op->src[0];
    const struct ggml_tensor * src1 = op->src[1];

    switch (op->op) {
        case GGML_OP_NONE:
        case GGML_OP_RESHAPE:
        case GGML_OP_VIEW:
        case GGML_OP_PERMUTE:
        case GGML_OP_TRANSPOSE:
            return true;
        case GGML_OP_MUL_MAT:
            // vec_dot against Q8_0 activations; src1 arrives as F32 (converted by the matmul) or Q8_0
            return q4_s24_is(src0) && (src1->type == GGML_TYPE_F32 || src1->type == GGML_TYPE_Q8_0) &&
                   op->type == GGML_TYPE_F32;
        case GGML_OP_MUL_MAT_ID:
            return q4_s24_is(src0) && src1->type == GGML_TYPE_F32 && op->type == GGML_TYPE_F32;
        case GGML_OP_GET_ROWS:
            // rows are dequantized with the type's to_float
            return q4_s24_is(src0) && op->type == GGML_TYPE_F32;
        case GGML_OP_DUP:
        case GGML_OP_CPY:
            // Q4_S24 -> F32 (to_float per block), same type (byte copy), F32/F16/BF16 -> Q4_S24 (from_float, contiguous rows)
            if (q4_s24_is(src0)) {
                return op->type == GGML_TYPE_F32 || op->type == GGML_TYPE_Q4_S24;
            }
            return (src0->type == GGML_TYPE_F32 || src0->type == GGML_TYPE_F16 || src0->type == GGML_TYPE_BF16) &&
                   ggml_is_contiguous(op) && src0->ne[0] % QK_Q4_S24 == 0;
        case GGML_OP_SET_ROWS:
            return q4_s24_is(op) && src0->type == GGML_TYPE_F32 && op->ne[0] % QK_Q4_S24 == 0;
        default:
            // element-wise ops, out_prod, flash attention, ...: no Q4_S24 path
            return false;
    }
}
