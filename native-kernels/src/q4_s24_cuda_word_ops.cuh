// 32-bit word helpers shared by the mat-vec kernel files (q4_s24_cuda.cu, q6_k_cuda.cu).
#pragma once

#include <stdint.h>

namespace {

// prmt with a selector computed at run time. __byte_perm masks every selector nibble to 3 bits first (one more
// instruction); the selectors built here never have bit 3 of a nibble set, so plain prmt gives the same bytes.
__device__ __forceinline__ uint32_t select_bytes(uint32_t lo, uint32_t hi, uint32_t selector) {
    uint32_t r;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(lo), "r"(hi), "r"(selector));
    return r;
}

// (a & b) | c and (a & b) ^ c as one lop3 each: with two constant operands the compiler otherwise emits two
// instructions (one immediate per instruction); here one constant stays in a register for the whole kernel.
// Lookup tables from PTX's operand bytes a = 0xF0, b = 0xCC, c = 0xAA: (0xF0 & 0xCC) | 0xAA = 0xEA, ^ 0xAA = 0x6A.
__device__ __forceinline__ uint32_t and_or(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

__device__ __forceinline__ uint32_t and_xor(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0x6A;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, off);
    }
    return v;
}

} // namespace
