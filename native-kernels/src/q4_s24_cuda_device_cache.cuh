// A yes/no question about the current CUDA device, answered once per device (kernel attributes, shared-memory limits:
// driver calls too slow to repeat on every launch). Used by both CUDA kernel files.
#pragma once

#include <cuda_runtime.h>

#include <atomic>

// cache: one entry per device, zero-initialized (0 unknown, 1 no, 2 yes). ask() runs on the current device the first
// time; devices past the cache's size, or when the current device cannot be read, get false.
template <int N, typename Ask> bool q4_s24_cuda_ask_once_per_device(std::atomic<int> (&cache)[N], Ask ask) {
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= N) {
        (void) cudaGetLastError();
        return false;
    }
    int state = cache[device].load(std::memory_order_relaxed);
    if (state == 0) {
        state = ask(device) ? 2 : 1;
        (void) cudaGetLastError(); // a failed query is an answer (no), not a launch error
        cache[device].store(state, std::memory_order_relaxed);
    }
    return state == 2;
}
