// Q4_S24: 2:4 semi-structured sparse weights with symmetric 4-bit values and an fp16 scale
// per 128 dense input columns. Byte layout: native-kernels/FORMAT.md.
//
// This header and q4_s24_ref.c / q4_s24_cpu.c depend on nothing from ggml, so the standalone
// test (native-kernels/test) builds them with a plain C compiler. Inside the llama.cpp tree
// the build defines Q4S24_IN_GGML so the reference entry points (compiled into ggml-base) are
// exported like other ggml symbols.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef Q4S24_API
#    if defined(Q4S24_IN_GGML)
#        include "ggml.h"
#        define Q4S24_API GGML_API
#    else
#        define Q4S24_API extern
#    endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

// ggml type id and llama file type id: far above upstream's ids so upstream can keep appending.
#define Q4_S24_GGML_TYPE_ID 100
#define Q4_S24_LLAMA_FTYPE_ID 100

#define QK_Q4_S24        256 // dense columns per block
#define Q4_S24_GROUP     128 // dense columns per fp16 scale (64 kept values)
#define Q4_S24_SUB        32 // dense columns per sub-block: one Q8_0 activation block, 16 kept values
#define Q4_S24_SUBS        8 // sub-blocks per block

// One block: 256 dense columns of one row, 100 bytes (3.125 bits per dense weight).
// Fields are 4-byte aligned inside the block and the block size is a multiple of 4, so every
// block of a row is 4-byte aligned (32-bit loads on the GPU).
typedef struct {
    uint16_t d[2];   // fp16 scales: d[0] for columns [0,128), d[1] for [128,256)
    uint8_t  qs[64]; // sub-block s at qs[8s..8s+8): byte b = u(kept b) | u(kept b+8) << 4, u = q + 8
    uint8_t  idx[32];// sub-block s at idx[4s..4s+4): byte b, bits [2j,2j+2) = position of kept 4j+b
} block_q4_s24;

#if defined(__cplusplus)
static_assert(sizeof(block_q4_s24) == 100, "wrong q4_s24 block size");
#else
_Static_assert(sizeof(block_q4_s24) == 100, "wrong q4_s24 block size");
#endif

// Activation block the CPU dot product reads: same bytes as ggml's block_q8_0.
typedef struct {
    uint16_t d;      // fp16 scale
    int8_t   qs[32];
} q4_s24_q8_0_block;

#if defined(__cplusplus)
static_assert(sizeof(q4_s24_q8_0_block) == 34, "wrong q8_0 block size");
#else
_Static_assert(sizeof(q4_s24_q8_0_block) == 34, "wrong q8_0 block size");
#endif

// fp16 <-> fp32, round to nearest even (the TS quantizer mirrors these bit for bit).
Q4S24_API uint16_t q4_s24_fp32_to_fp16(float f);
Q4S24_API float    q4_s24_fp16_to_fp32(uint16_t h);

// Reference quantizer: prunes each group of 4 to its 2 largest magnitudes (a group that is already
// 2:4 keeps its nonzeros), then 4-bit symmetric per 128 columns. k must be a multiple of 256.
Q4S24_API void quantize_row_q4_s24_ref(const float * x, void * y, int64_t k);

// ggml_quantize_chunk entry: imatrix (n_per_row importances, may be NULL) weights the pruning
// choice by importance * x^2. Returns bytes written.
Q4S24_API size_t quantize_q4_s24(const float * src, void * dst, int64_t nrows, int64_t n_per_row,
                                 const float * imatrix);

// Dense float row from blocks; k must be a multiple of 256. Equal positions in a group add up
// (the dot product agrees), although validation refuses them.
Q4S24_API void dequantize_row_q4_s24(const void * x, float * y, int64_t k);

// Row data check used at model load (ggml_validate_row_data): scales finite, and in every group
// the two positions strictly increasing. nbytes must be a multiple of sizeof(block_q4_s24).
Q4S24_API bool q4_s24_validate_row_data(const void * data, size_t nbytes);

// Which CPU kernel this compilation gets; the CPU traits (ggml-cpu.c) and q4_s24_cpu.c see the same flags.
#if defined(__AVX2__) && defined(__FMA__)
#    define Q4_S24_AVX2 1
#    if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI__) && defined(__AVX512VNNI__)
#        define Q4_S24_AVX512 1
#    endif
#endif

// Rows (and activation columns) per vec_dot call that ggml's matmul may ask for (ggml_type_traits_cpu.nrows):
// the SIMD kernels compute a 2x2 tile when the batch is even, reusing decoded weights across columns.
#if defined(Q4_S24_AVX2)
#    define Q4_S24_CPU_NROWS 2
#else
#    define Q4_S24_CPU_NROWS 1
#endif

// CPU kernels (q4_s24_cpu.c): compiled into ggml's CPU backend, not exported from ggml-base.
// s[0] = dot(row of n weights, n activations as Q8_0 blocks). ggml_vec_dot_t signature. With nrc == 2, a 2x2
// tile: s[r + c*bs] = dot(row r at vx + r*bx, column c at vy + c*by).
extern void ggml_vec_dot_q4_s24_q8_0(int n, float * s, size_t bs, const void * vx, size_t bx,
                                        const void * vy, size_t by, int nrc);
// Portable version of the same, also used by the tests to check the SIMD path.
extern void ggml_vec_dot_q4_s24_q8_0_generic(int n, float * s, size_t bs, const void * vx, size_t bx,
                                                const void * vy, size_t by, int nrc);
// Which implementation ggml_vec_dot_q4_s24_q8_0 compiled to ("avx2", "generic", ...).
extern const char * q4_s24_cpu_kernel_name(void);

#ifdef __cplusplus
}
#endif
