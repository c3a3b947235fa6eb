// Peak rate of the warp-level tensor-core instructions the sparse prefill can use, on the GPU at hand: dense
// mma.sync m16n8k16 and sparse mma.sp m16n8k32 (f16 inputs, f32 accumulation), register operands only (no memory
// traffic), 8 independent accumulators per warp. What it answers: how fast a kernel built on mma.sp could be at best
// against dense cuBLAS (which on Hopper uses the warpgroup instructions, wgmma) before any data movement. The sparse
// instruction is the prefill kernel's own (mma_sp_16x8x32, included from its source as the CPU layout check does).
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

template <bool SPARSE> static double tflops(int blocks, float * out) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    mma_loop<SPARSE><<<blocks, 256>>>(out, 1); // warm-up
    cudaEventRecord(start);
    mma_loop<SPARSE><<<blocks, 256>>>(out, 2);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
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
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        printf("mma_peak: %s\n", cudaGetErrorString(err));
        return 1;
    }
    return 0;
}
