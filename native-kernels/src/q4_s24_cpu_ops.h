// Which CPU-backend ops accept a Q4_S24 tensor (used by ggml_backend_cpu_device_supports_op).
// Only built inside the llama.cpp tree: it needs ggml's tensor and op definitions.
#pragma once

#include "ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

// false when op reads or writes a Q4_S24 tensor in a way the CPU kernels do not implement;
// true for every op that involves no Q4_S24 tensor (the caller's own checks then decide).
bool ggml_cpu_q4_s24_supports_op(const struct ggml_tensor * op);

#ifdef __cplusplus
}
#endif
