// Peak rate of the tensor-core instructions the sparse prefill can use, on the GPU at hand: dense mma.sync m16n8k16
// and sparse mma.sp m16n8k32 (f16 inputs, f32 accumulation), register operands only (no memory traffic), 8 independent
// accumulators per warp; and on Hopper with sm_90a code the warpgroup instructions the wgmma kernel uses, sparse
// wgmma.mma_async.sp m64n256k32 against dense m64n256k16, A from registers and B from shared memory through the
// kernel's own descriptor, as the kernel issues them (one group per sub-block, waited on one group later) but with
// constant A registers. What it answers: how fast a kernel built on each could be at best, before any data movement
// and operand building. The sparse instructions are the prefill kernels' own (mma_sp_16x8x32, wgmma_sp_m64k32,
// included from their source as the CPU layout check does).
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a native-kernels/cuda-harness/mma_peak.cu -o /tmp/mma_peak
//   /tmp/mma_peak
#include "../src/q4_s24_cuda_sparse_mma.cu"

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

constexpr int kAcc   = 8;
constexpr int kIters = 4096;

template <bool SPARSE> __global__ void __launch_bounds__(256) mma_loop(float * out, uint32_t seed) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    // Small positive halves (0x3c00 = 1.0 scaled down) so that nothing overflows; values do not change the rate.
    const uint32_t a0 = 0x20002000u ^ (seed & 0x00010001u), a1 = a0, a2 = a0, a3 = a0;
    const uint32_t b0 = 0x20002000u, b1 = b0;
    const uint32_t a[4] = { a0, a1, a2, a3 }, b[4] = { b0, b0, b0, b0 };
    const uint32_t metadata = 0x44444444u; // every group keeps positions 0 and 1 (ordered)
    float          acc[kAcc][4] = {};
    for (int it = 0; it < kIters; ++it) {
#pragma unroll
        for (int j = 0; j < kAcc; ++j) {
            if constexpr (SPARSE) {
                mma_sp_16x8x32(acc[j], a, b, metadata);
            } else {
                asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                             "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                             : "+f"(acc[j][0]), "+f"(acc[j][1]), "+f"(acc[j][2]), "+f"(acc[j][3])
                             : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
            }
        }
    }
    float s = 0;
#pragma unroll
    for (int j = 0; j < kAcc; ++j) {
        s += acc[j][0] + acc[j][1] + acc[j][2] + acc[j][3];
    }
    if (s == 12345.0f) { // never true; keeps the loop alive
        out[threadIdx.x] = s;
    }
#else
    (void) out; (void) seed;
#endif
}

// Dense m64n256k16 with A from registers (the sparse kernel's counterpart for the comparison).
__device__ __forceinline__ void wgmma_dense_m64n256k16(float (&d)[128], const uint32_t (&a)[4], uint64_t desc) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 " Q4_S24_WGMMA_ACC128_TEXT ", "
                 "{%128, %129, %130, %131}, %132, p, 1, 1, 0;\n}\n"
                 : Q4_S24_WGMMA_ACC128_OPERANDS(d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(1));
#else
    (void) d; (void) a; (void) desc;
#endif
}

// Two warpgroups per block, each issuing kIters x 4 wgmma (the wgmma kernel's four sub-blocks per step) on one
// accumulator tile, B a zeroed activation stage.
template <bool SPARSE> __global__ void __launch_bounds__(256, 1) wgmma_loop(float * out, uint32_t seed) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ __align__(16) uint8_t smem_raw[];
    uint8_t * stage = smem_raw + ((1024u - ((uint32_t) __cvta_generic_to_shared(smem_raw) & 1023u)) & 1023u);
    for (int i = threadIdx.x; i < kWgXStageBytes / 4; i += blockDim.x) {
        reinterpret_cast<uint32_t *>(stage)[i] = 0;
    }
    fence_proxy_async();
    __syncthreads();
    const uint32_t a[4]     = { 0x20002000u ^ (seed & 0x00010001u), 0x20002000u, 0x20002000u, 0x20002000u };
    const uint32_t metadata = 0x44444444u; // every group keeps positions 0 and 1 (ordered)
    const uint32_t base     = (uint32_t) __cvta_generic_to_shared(stage);
    float          acc[kWgTokens / 2];
#    pragma unroll
    for (int j = 0; j < kWgTokens / 2; ++j) {
        acc[j] = 0.0f;
    }
    wgmma_fence_operands(acc);
    for (int it = 0; it < kIters / 16; ++it) {
#    pragma unroll
        for (int sub = 0; sub < kStepSubs; ++sub) {
            wgmma_fence();
            if constexpr (SPARSE) {
                wgmma_sp_m64k32(acc, a, wgmma_x_descriptor(base, sub), metadata);
            } else {
                wgmma_dense_m64n256k16(acc, a, wgmma_x_descriptor(base, sub));
            }
            wgmma_commit();
            wgmma_wait<1>();
        }
    }
    wgmma_wait<0>();
    wgmma_fence_operands(acc);
    float s = 0;
#    pragma unroll
    for (int j = 0; j < kWgTokens / 2; ++j) {
        s += acc[j];
    }
    if (s == 12345.0f) { // never true; keeps the loop alive
        out[threadIdx.x] = s;
    }
#else
    (void) out; (void) seed;
#endif
}

// Milliseconds of the second of two back-to-back launches (the first warms up).
template <typename Launch> static float second_launch_ms(Launch launch) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    launch(1);
    cudaEventRecord(start);
    launch(2);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms;
}

template <bool SPARSE> static double wgmma_tflops(int blocks, float * out) {
    const int smem = kWgXStageBytes + 1024;
    if (cudaFuncSetAttribute(wgmma_loop<SPARSE>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess) {
        return 0;
    }
    const float ms = second_launch_ms([&](uint32_t seed) { wgmma_loop<SPARSE><<<blocks, 256, smem>>>(out, seed); });
    // Per warpgroup and instruction 64 x 256 x K multiply-adds, K = 32 (sparse, dense-equivalent) or 16.
    const double macs = (double) blocks * 2 * (kIters / 16) * kStepSubs * 64 * kWgTokens * (SPARSE ? 32 : 16);
    return 2 * macs / (ms * 1e-3) / 1e12;
}

template <bool SPARSE> static double tflops(int blocks, float * out) {
    const float ms = second_launch_ms([&](uint32_t seed) { mma_loop<SPARSE><<<blocks, 256>>>(out, seed); });
    // Dense-equivalent work: m16n8k16 = 16*8*16 multiply-adds; m16n8k32 sparse covers a 16x32 A, so 16*8*32.
    const double macs = (double) blocks * 8 * kIters * kAcc * 16 * 8 * (SPARSE ? 32 : 16);
    return 2 * macs / (ms * 1e-3) / 1e12;
}

int main() {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess || prop.major < 8) {
        printf("mma_peak: needs a GPU of compute capability 8.0 or newer\n");
        return 1;
    }
    float * out;
    cudaMalloc(&out, 256 * sizeof(float));
    printf("%s, %d SMs\n", prop.name, prop.multiProcessorCount);
    for (int per_sm : { 1, 2, 4 }) {
        const int blocks = per_sm * prop.multiProcessorCount;
        const double dense = tflops<false>(blocks, out), sparse = tflops<true>(blocks, out);
        printf("%d x 8 warps per SM: mma.sync m16n8k16 %.0f TFLOPS, mma.sp m16n8k32 %.0f TFLOPS dense-equivalent (%.2fx)\n",
               per_sm, dense, sparse, sparse / dense);
    }
    if (device_has_wgmma()) {
        const int    blocks = prop.multiProcessorCount;
        const double dense = wgmma_tflops<false>(blocks, out), sparse = wgmma_tflops<true>(blocks, out);
        printf("2 warpgroups per SM: wgmma m64n256k16 %.0f TFLOPS, wgmma.sp m64n256k32 %.0f TFLOPS dense-equivalent "
               "(%.2fx), A from registers\n", dense, sparse, sparse / dense);
    } else {
        printf("wgmma: not measured (needs compute capability 9.0 and sm_90a code)\n");
    }
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        printf("mma_peak: %s\n", cudaGetErrorString(err));
        return 1;
    }
    return 0;
}
