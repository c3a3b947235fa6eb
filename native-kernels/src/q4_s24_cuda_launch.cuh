// Kernel launches with programmatic dependent launch (Hopper on), shared by the CUDA kernel files: a kernel launched
// with it (launch_kernel) may start before the kernel ahead of it in the stream has finished, as ggml-cuda's own kernels
// do since this llama.cpp.
#pragma once

#include "q4_s24_cuda_device_cache.cuh"
#include "q4_s24_cuda_env_flag.cuh"

#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

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

// Hopper's thread-block clusters (a launch with launch_kernel_in_clusters): a barrier over every thread of the
// cluster's blocks (the non-.aligned form: a warp's threads need not be at the same instruction) that orders their
// shared-memory writes before it for the reads after it, and a float read from the shared memory of another block of
// the cluster (local: the address of the same variable in this block, as __cvta_generic_to_shared gives it).
__device__ __forceinline__ void cluster_barrier() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.release;\n\tbarrier.cluster.wait.acquire;" ::: "memory");
#endif
}

__device__ __forceinline__ float load_shared_of_cluster_block(uint32_t local, int block) {
    float v = 0.0f;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uint32_t remote;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(block));
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(remote) : "memory");
#else
    (void) local, (void) block;
#endif
    return v;
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

// cluster_blocks > 1: thread-block clusters of that many consecutive blocks (Hopper; the grid a multiple of it), with or
// without programmatic launch.
template <typename... Params, typename... Args>
void launch_kernel_in_clusters(unsigned cluster_blocks, void (*kernel)(Params...), dim3 grid, dim3 block,
                               size_t shared_bytes, cudaStream_t stream, Args... args) {
#if CUDART_VERSION >= 12030
    const bool pdl = pdl_enabled(reinterpret_cast<const void *>(kernel));
    if (pdl || cluster_blocks > 1) {
        cudaLaunchAttribute attrs[2];
        unsigned            n = 0;
        if (pdl) {
            attrs[n].id                                         = cudaLaunchAttributeProgrammaticStreamSerialization;
            attrs[n].val.programmaticStreamSerializationAllowed = 1;
            ++n;
        }
        if (cluster_blocks > 1) {
            attrs[n].id               = cudaLaunchAttributeClusterDimension;
            attrs[n].val.clusterDim.x = cluster_blocks;
            attrs[n].val.clusterDim.y = 1;
            attrs[n].val.clusterDim.z = 1;
            ++n;
        }
        cudaLaunchConfig_t config = {};
        config.gridDim            = grid;
        config.blockDim           = block;
        config.dynamicSmemBytes   = shared_bytes;
        config.stream             = stream;
        config.attrs              = attrs;
        config.numAttrs           = n;
        cudaLaunchKernelEx(&config, kernel, args...); // a failure shows in cudaGetLastError, as with <<<>>>
        return;
    }
#endif
    if (cluster_blocks > 1) { // callers ask for clusters only where the runtime has cudaLaunchKernelEx's attributes
        fprintf(stderr, "launch_kernel_in_clusters: clusters need CUDA 12.3 or newer\n");
        abort();
    }
    kernel<<<grid, block, shared_bytes, stream>>>(args...);
}

template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                   Args... args) {
    launch_kernel_in_clusters(1, kernel, grid, block, shared_bytes, stream, args...);
}

} // namespace
