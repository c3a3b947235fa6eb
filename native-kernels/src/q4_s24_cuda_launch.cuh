// Kernel launches with programmatic dependent launch (Hopper on), shared by the CUDA kernel files: a kernel launched
// with it (launch_kernel) may start before the kernel ahead of it in the stream has finished, as ggml-cuda's own kernels
// do since this llama.cpp.
#pragma once

#include "q4_s24_cuda_device_cache.cuh"
#include "q4_s24_cuda_env_flag.cuh"

#include <cuda_runtime.h>

#include <atomic>

namespace {

// A kernel launched with it must wait before it touches memory the previous kernel writes or reads; allow_next_kernel
// lets the kernel after it start early in turn. Activations come from the previous kernel, so they are read with plain
// loads after the wait (no __restrict__ or __ldg, which would let the compiler move them above it); the weights never
// change and keep the read-only path.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether the device runs code compiled for compute capability 9.0 or newer (PTX version >= 90) by CUDA 12 or newer:
// where griddepcontrol exists (older code must not use it). The PTX version is the same for all kernels of one build on
// one device: one cached answer per device and source file, asked of the first probe kernel.
bool device_code_is_sm90(const void * probe) {
#if CUDART_VERSION >= 12000
    static std::atomic<int> cached[64];
    return q4_s24_cuda_ask_once_per_device(cached, [probe](int) {
        cudaFuncAttributes attr = {};
        return cudaFuncGetAttributes(&attr, probe) == cudaSuccess && attr.ptxVersion >= 90;
    });
#else
    (void) probe;
    return false;
#endif
}

// Whether launch_kernel uses programmatic dependent launch: the runtime supports it (CUDA 12.3 on, as ggml-cuda
// requires), neither Q4_S24_CUDA_PDL=0 nor ggml's GGML_CUDA_PDL=0 turns it off, and device_code_is_sm90.
bool pdl_enabled(const void * probe) {
#if CUDART_VERSION >= 12030
    static const bool env_allows = q4_s24_cuda_env_int("Q4_S24_CUDA_PDL", 1) != 0 &&
                                   q4_s24_cuda_env_int("GGML_CUDA_PDL", 1) != 0;
    return env_allows && device_code_is_sm90(probe);
#else
    (void) probe;
    return false;
#endif
}

template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                   Args... args) {
#if CUDART_VERSION >= 12030
    if (pdl_enabled(reinterpret_cast<const void *>(kernel))) {
        cudaLaunchAttribute attr;
        attr.id                                         = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr.val.programmaticStreamSerializationAllowed = 1;
        cudaLaunchConfig_t config                       = {};
        config.gridDim                                  = grid;
        config.blockDim                                 = block;
        config.dynamicSmemBytes                         = shared_bytes;
        config.stream                                   = stream;
        config.attrs                                    = &attr;
        config.numAttrs                                 = 1;
        cudaLaunchKernelEx(&config, kernel, args...); // a failure shows in cudaGetLastError, as with <<<>>>
        return;
    }
#endif
    kernel<<<grid, block, shared_bytes, stream>>>(args...);
}

} // namespace
