// median_graph_launch_us: how the harness programs time a captured CUDA graph: one warm-up launch, then `launches`
// back-to-back launches between two events, `repeats` times; the median, in microseconds per launch divided by `per`
// (e.g. the graph's layers). Destroys the graph and its instance.
#pragma once

#include "cuda_check.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

inline float median_graph_launch_us(cudaGraph_t graph, cudaStream_t stream, int launches, int repeats, int per) {
    cudaGraphExec_t exec;
    cudaEvent_t     a, b;
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    std::vector<float> t;
    for (int r = 0; r < repeats; ++r) {
        CUDA_CHECK(cudaGraphLaunch(exec, stream));
        CUDA_CHECK(cudaEventRecord(a, stream));
        for (int i = 0; i < launches; ++i) {
            CUDA_CHECK(cudaGraphLaunch(exec, stream));
        }
        CUDA_CHECK(cudaEventRecord(b, stream));
        CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms * 1000.0f / (launches * per));
    }
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
    CUDA_CHECK(cudaGraphExecDestroy(exec));
    CUDA_CHECK(cudaGraphDestroy(graph));
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}
