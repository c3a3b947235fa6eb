// Q4_S24 CUDA kernels (byte layout: native-kernels/FORMAT.md). Plain CUDA: nothing here depends on ggml,
// so the standalone harness (native-kernels/cuda-harness) builds q4_s24_cuda.cu with nvcc alone.
// q4_s24_ggml_cuda.cu adapts these entry points to ggml tensors inside the llama.cpp tree.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

// Dense columns per block (QK_Q4_S24 in q4_s24.h, which this header does not include).
#define QK_Q4_S24_CUDA 256

// Largest batch (activation columns) the mat-vec kernel handles; larger batches dequantize + cuBLAS.
#define Q4_S24_CUDA_MMV_MAX_COLS 8

// Activations of the mat-vec kernel. Quantized once per matmul (q4_s24_cuda_quantize_act): per column, k int8
// values (one 32-column scale each, symmetric, like Q8_1 without the sum) plus k/32 float scales. Fused variants
// instead read the float columns x (16-byte aligned, column stride a multiple of 4 floats) and quantize in-kernel.
struct q4_s24_cuda_act {
    int8_t *      q;            // [ncols][k], column stride k bytes
    float *       d;            // [ncols][k/32]
    const float * x;            // fused variants: column c at x + c*x_col_stride
    int64_t       x_col_stride;
};

// Bytes of scratch q4_s24_cuda_act needs for ncols columns of k values (q and d, each 256-byte aligned).
size_t q4_s24_cuda_act_bytes(int64_t k, int ncols);
// Splits scratch (q4_s24_cuda_act_bytes big, 16-byte aligned) into the two arrays; x stays null.
q4_s24_cuda_act q4_s24_cuda_act_view(void * scratch, int64_t k, int ncols);

// x: ncols float columns of k values, column c at x + c*x_col_stride (elements). k % 256 == 0.
void q4_s24_cuda_quantize_act(const float * x, int64_t k, int64_t x_col_stride, int ncols,
                              q4_s24_cuda_act act, cudaStream_t stream);

// RMS norm times a weight row, then quantized (ggml's RMS_NORM + MUL ahead of a Q4_S24 mat-vec, in one launch):
// y[c*y_col_stride + e] = x_c[e] / sqrt(mean(x_c^2) + eps) * weight[e], and act holds y quantized as
// q4_s24_cuda_quantize_act would. k % 256 == 0. False (nothing launched) unless x is 16-byte aligned and
// x_col_stride % 4 == 0. weight_is_constant: no kernel writes weight (a model weight), so it is read before the wait
// for the kernel ahead.
bool q4_s24_cuda_rms_norm_quantize_act(const float * x, int64_t k, int64_t x_col_stride, int ncols,
                                       const float * weight, bool weight_is_constant, float eps, float * y,
                                       int64_t y_col_stride, q4_s24_cuda_act act, cudaStream_t stream);

// Decode matmul: y[c*y_col_stride + r] = dot(weight row r, x column c) for r < nrows, c < ncols (1..8).
// w: nrows rows of k/256 blocks, row r at w + r*w_row_bytes (w_row_bytes % 4 == 0). x: ncols float columns,
// column c at x + c*x_col_stride. scratch: q4_s24_cuda_act_bytes(k, ncols) bytes, 16-byte aligned. Picks the
// launch variant for the shape and quantizes x into scratch first unless that variant quantizes in-kernel.
// add (optional): y[c*y_col_stride + r] gets add[c*add_col_stride + r] added (a residual connection; add may be y).
void q4_s24_cuda_mul_mat_vec(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, const float * x,
                             int64_t x_col_stride, int ncols, float * y, int64_t y_col_stride, void * scratch,
                             cudaStream_t stream, const float * add = nullptr, int64_t add_col_stride = 0);

// The same decode matmul on activations already quantized by q4_s24_cuda_quantize_act into act (ggml reuses
// them across the matmuls that read one input: q/k/v). The launch shape is the default one's.
void q4_s24_cuda_mul_mat_vec_q(const void * w, int64_t nrows, int64_t k, size_t w_row_bytes, q4_s24_cuda_act act,
                               int ncols, float * y, int64_t y_col_stride, cudaStream_t stream,
                               const float * add = nullptr, int64_t add_col_stride = 0);

// Several matrices that read the same input (attention's q, k and v) in one launch: for each m < count,
// matrices[m].y[c*y_col_stride + r] = dot(row r of matrices[m].w, x column c). All have k columns and w_row_bytes per
// row; act holds x quantized by q4_s24_cuda_quantize_act (ncols 1..8). The launch shape is the default one for all the
// rows together; at batch 1 that computes every row bitwise as the matrices' own default launches do.
// With rope (not null), what llama.cpp does next to attention's q, k and v, in the same launch (its ROPE and SET_ROWS
// nodes): a matrix with rotate set has its rows rotated as ggml's ROPE in its normal mode rotates them (adjacent pairs
// of each head's rotated dimensions), stored at roped when that is not null; its cache (when not null) gets the rows,
// rotated or not, as f16 row cache_rows[c] (rows cache_row_stride halves apart) for column c. y may be null (nothing
// reads the plain rows) or roped (ggml's in-place rope); all rows counts and head_dim even.
#define Q4_S24_CUDA_MMV_MAX_GROUP 3
struct q4_s24_cuda_mmv_matrix {
    const void *    w;
    int64_t         nrows;
    float *         y;
    int64_t         y_col_stride;
    bool            rotate           = false;
    float *         roped            = nullptr;
    int64_t         roped_col_stride = 0;
    half *          cache            = nullptr;
    const int64_t * cache_rows       = nullptr;
    int64_t         cache_row_stride = 0;
};
// ggml's ROPE parameters (op_params, ggml_rope_yarn_corr_dims) and inputs: per column a position, per rotated pair
// an optional frequency factor. Dimensions n_offs .. n_offs + n_dims - 1 of each head_dim rows rotate.
struct q4_s24_cuda_rope {
    const int32_t * pos;
    const float *   freq_factors;
    float           theta_scale, freq_scale, ext_factor, attn_factor, corr_low, corr_high;
    int             head_dim, n_dims, n_offs;
};
void q4_s24_cuda_mul_mat_vec_group(const q4_s24_cuda_mmv_matrix * matrices, int count, int64_t k, size_t w_row_bytes,
                                   q4_s24_cuda_act act, int ncols, cudaStream_t stream,
                                   const q4_s24_cuda_rope * rope = nullptr);

// Feed-forward gate and up projections with SWIGLU in one launch: y[c*y_col_stride + r] =
// silu(dot(gate row r, x_c)) * dot(up row r, x_c). w_up and w_gate have the same shape and row bytes; act holds
// x quantized by q4_s24_cuda_quantize_act (ncols 1..8).
void q4_s24_cuda_mul_mat_vec_swiglu(const void * w_up, const void * w_gate, int64_t nrows, int64_t k,
                                    size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                    int64_t y_col_stride, cudaStream_t stream);
// Its launch shapes (R rows of each matrix per thread block, T threads, U sub-blocks in flight per thread), for the
// harness to time; then the staged shapes (R, T: the rows go through shared memory, as Q4_S24_MMV_STAGED_SHAPES).
#define Q4_S24_SWIGLU_SHAPES(X) X(1, 128, 1) X(2, 64, 1) X(4, 64, 1) X(2, 64, 2) X(4, 64, 2)
#define Q4_S24_SWIGLU_STAGED_SHAPES(X) X(2, 128) X(4, 128) X(4, 64) X(8, 128) X(4, 256)
enum q4_s24_cuda_swiglu_shape {
#define Q4_S24_SWIGLU_ENUM(R, T, U) Q4_S24_SWIGLU_R##R##_T##T##_U##U,
    Q4_S24_SWIGLU_SHAPES(Q4_S24_SWIGLU_ENUM)
#undef Q4_S24_SWIGLU_ENUM
#define Q4_S24_SWIGLU_ENUM(R, T) Q4_S24_SWIGLU_STAGED_R##R##_T##T,
    Q4_S24_SWIGLU_STAGED_SHAPES(Q4_S24_SWIGLU_ENUM)
#undef Q4_S24_SWIGLU_ENUM
    Q4_S24_SWIGLU_SHAPE_COUNT,
};
const char * q4_s24_cuda_swiglu_shape_name(q4_s24_cuda_swiglu_shape shape);
q4_s24_cuda_swiglu_shape q4_s24_cuda_swiglu_default_shape(int64_t nrows, int64_t k, int ncols);
void q4_s24_cuda_swiglu_variant(q4_s24_cuda_swiglu_shape shape, const void * w_up, const void * w_gate, int64_t nrows,
                                int64_t k, size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                int64_t y_col_stride, cudaStream_t stream);

// Mat-vec launch shapes: R weight rows per thread block, T threads per block, U sub-blocks whose loads a thread
// issues before computing. The harness times each; q4_s24_cuda_mmv_default_variant picks per shape from those timings.
// Staged shapes (R, T): the thread block copies its R rows whole into shared memory (cp.async) before it waits for the
// kernel ahead of it, then computes from there; rows 16-byte aligned, whole 16-byte copies, the block's rows and its
// reduction within 48 KiB (else the register kernel with 2 rows per block).
#define Q4_S24_MMV_SHAPES(X) X(2, 128, 1) X(4, 128, 1) X(4, 64, 1) X(4, 64, 2)
#define Q4_S24_MMV_STAGED_SHAPES(X) X(2, 128) X(4, 128) X(8, 128) X(4, 64) X(8, 64) X(4, 256) X(8, 256)
enum q4_s24_cuda_mmv_variant {
#define Q4_S24_MMV_ENUM(R, T, U) Q4_S24_MMV_R##R##_T##T##_U##U,
    Q4_S24_MMV_SHAPES(Q4_S24_MMV_ENUM)
#undef Q4_S24_MMV_ENUM
    Q4_S24_MMV_SHAPE_COUNT,
    // The same shapes, quantizing the float activations in-kernel (act.x), in the same order: fused variant i is
    // Q4_S24_MMV_SHAPE_COUNT + i (this placeholder makes the next enumerator equal the count).
    Q4_S24_MMV_FUSED_BEFORE_FIRST = Q4_S24_MMV_SHAPE_COUNT - 1,
#define Q4_S24_MMV_ENUM(R, T, U) Q4_S24_MMV_FUSED_R##R##_T##T##_U##U,
    Q4_S24_MMV_SHAPES(Q4_S24_MMV_ENUM)
#undef Q4_S24_MMV_ENUM
    Q4_S24_MMV_FUSED_END,
    Q4_S24_MMV_STAGED_BEFORE_FIRST = Q4_S24_MMV_FUSED_END - 1,
#define Q4_S24_MMV_ENUM(R, T) Q4_S24_MMV_STAGED_R##R##_T##T,
    Q4_S24_MMV_STAGED_SHAPES(Q4_S24_MMV_ENUM)
#undef Q4_S24_MMV_ENUM
    Q4_S24_MMV_VARIANT_COUNT,
};
q4_s24_cuda_mmv_variant q4_s24_cuda_mmv_default_variant(int64_t nrows, int64_t k, int ncols);
bool q4_s24_cuda_mmv_variant_is_fused(q4_s24_cuda_mmv_variant variant);
q4_s24_cuda_mmv_variant q4_s24_cuda_mmv_variant_unfused(q4_s24_cuda_mmv_variant variant); // same shape
const char * q4_s24_cuda_mmv_variant_name(q4_s24_cuda_mmv_variant variant);
void q4_s24_cuda_mul_mat_vec_variant(q4_s24_cuda_mmv_variant variant, const void * w, int64_t nrows, int64_t k,
                                     size_t w_row_bytes, q4_s24_cuda_act act, int ncols, float * y,
                                     int64_t y_col_stride, cudaStream_t stream, const float * add = nullptr,
                                     int64_t add_col_stride = 0);

// Contiguous rows of blocks to dense values: n values (a multiple of 256). The signature of
// ggml-cuda's to_fp16 / to_fp32 converters.
void q4_s24_cuda_dequantize_f16(const void * w, half * y, int64_t n, cudaStream_t stream);
void q4_s24_cuda_dequantize_f32(const void * w, float * y, int64_t n, cudaStream_t stream);

// GET_ROWS: dst row (i10, i11, i12) = dense row ids[i10, i11, i12] of matrix (i11, i12) of src.
// Strides in bytes; ids strides in bytes too. dst_is_f16 selects half output, else float.
void q4_s24_cuda_get_rows(const void * src, int64_t ne00, size_t nb01, size_t nb02, size_t nb03,
                          const int32_t * ids, int64_t ne10, int64_t ne11, int64_t ne12,
                          size_t nb10, size_t nb11, size_t nb12,
                          void * dst, bool dst_is_f16, size_t nb1, size_t nb2, size_t nb3,
                          cudaStream_t stream);
