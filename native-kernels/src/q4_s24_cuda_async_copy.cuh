// Global-to-shared copies that do not go through registers, used by the decode mat-vec (q4_s24_cuda.cu) and the
// tensor-core prefill kernels (q4_s24_cuda_sparse_mma.cu): cp.async (compute capability 8.0 on; code compiled for older
// devices, ggml's PTX for 5.0, gets plain synchronous copies, so the decode kernels that use them still run there;
// the prefill kernels never launch there).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

namespace {

// BYTES (4 or 16) from global to shared memory; 16-byte copies bypass L1 (.cg, which only exists for 16), smaller
// ones cannot (.ca).
template <int BYTES> __device__ __forceinline__ void cp_async(void * dst, const void * src) {
    static_assert(BYTES == 4 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes; these kernels use 4 and 16");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const uint32_t to = (uint32_t) __cvta_generic_to_shared(dst);
    if constexpr (BYTES == 16) {
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(to), "l"(src));
    } else {
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(to), "l"(src));
    }
#else
    if constexpr (BYTES == 16) {
        *static_cast<uint4 *>(dst) = *static_cast<const uint4 *>(src);
    } else {
        *static_cast<uint32_t *>(dst) = *static_cast<const uint32_t *>(src);
    }
#endif
}

// The same, copying only when `copy` holds and writing zeros otherwise (the source is not read): no branch, so the
// wgmma kernel's pipeline stays unbroken around it.
template <int BYTES> __device__ __forceinline__ void cp_async_if(void * dst, const void * src, bool copy) {
    static_assert(BYTES == 4 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes; these kernels use 4 and 16");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const uint32_t to = (uint32_t) __cvta_generic_to_shared(dst);
    const uint32_t n  = copy ? BYTES : 0;
    if constexpr (BYTES == 16) {
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(to), "l"(src), "r"(n));
    } else {
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(to), "l"(src), "r"(n));
    }
#else
    if constexpr (BYTES == 16) {
        *static_cast<uint4 *>(dst) = copy ? *static_cast<const uint4 *>(src) : make_uint4(0, 0, 0, 0);
    } else {
        *static_cast<uint32_t *>(dst) = copy ? *static_cast<const uint32_t *>(src) : 0u;
    }
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

// Waits until at most PENDING of this thread's committed copy groups are still in flight.
template <int PENDING> __device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(PENDING) : "memory");
#endif
}

} // namespace
