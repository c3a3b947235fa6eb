// The environment switches of our ggml glue (Q4_S24_CUDA_NO_FUSION=1 and the like): read once per process by each
// caller's static, so a graph's many launches never call getenv.
#pragma once

#include <stdlib.h>

// Environment variable name as a number (0 if not a number), fallback when unset or empty.
inline int q4_s24_cuda_env_int(const char * name, int fallback) {
    const char * env = getenv(name);
    return env != nullptr && *env != '\0' ? atoi(env) : fallback;
}

// Whether environment variable name is set to a nonzero number.
inline bool q4_s24_cuda_env_flag(const char * name) {
    return q4_s24_cuda_env_int(name, 0) != 0;
}
