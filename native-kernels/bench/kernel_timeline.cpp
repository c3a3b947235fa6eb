// Kernel timeline of a CUDA program: when each kernel really started and ended on the GPU, CUDA graphs included, so
// that a decode token's time can be split by kernel while kernels overlap under programmatic dependent launch. A CUPTI
// injection library: the CUDA driver loads it (CUDA_INJECTION64_PATH) and calls InitializeInjection; it records every
// kernel (CUPTI's concurrent-kernel activity, which does not serialize them) and writes a CSV at exit.
// Why not the NVIDIA tools: Nsight Compute serializes kernels (the overlap is what is in question), and Nsight Systems
// cannot write its report on the GPU machine (the device tool's notes: its nsys leaves a .qdstrm file, no report).
//   native-kernels/bench/build-kernel-timeline.sh libkernel_timeline.so
//   CUDA_INJECTION64_PATH=$PWD/libkernel_timeline.so KERNEL_TIMELINE_OUT=timeline.csv llama-bench ...
// Then native-kernels/bench/summarize_kernel_timeline.py timeline.csv (gpu-engine-path.sh's timeline step does both).
#include <cupti.h>

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct kernel_record {
    uint64_t    start, end; // GPU timestamps, ns
    uint32_t    stream, graph, grid, block, cluster;
    std::string name;
};

std::mutex                 records_mutex;
std::vector<kernel_record> records;
size_t                     dropped = 0;

constexpr size_t kBufferBytes = 8u << 20;

void CUPTIAPI buffer_requested(uint8_t ** buffer, size_t * size, size_t * max_records) {
    *buffer      = static_cast<uint8_t *>(aligned_alloc(8, kBufferBytes));
    *size        = *buffer != nullptr ? kBufferBytes : 0;
    *max_records = 0; // as many as fit
}

std::string readable_name(const char * mangled) {
    if (mangled == nullptr) {
        return "?";
    }
    int          status    = 0;
    char *       demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    std::string  name      = status == 0 && demangled != nullptr ? demangled : mangled;
    free(demangled);
    return name;
}

void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t * buffer, size_t, size_t valid_bytes) {
    {
        std::lock_guard<std::mutex> lock(records_mutex);
        CUpti_Activity *            record = nullptr;
        while (cuptiActivityGetNextRecord(buffer, valid_bytes, &record) == CUPTI_SUCCESS) {
            if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
                continue;
            }
            const auto * k = reinterpret_cast<const CUpti_ActivityKernel10 *>(record);
            records.push_back({ k->start, k->end, k->streamId, k->graphId,
                                (uint32_t) (k->gridX * k->gridY * k->gridZ),
                                (uint32_t) (k->blockX * k->blockY * k->blockZ),
                                (uint32_t) (k->clusterX * k->clusterY * k->clusterZ), readable_name(k->name) });
        }
        size_t lost = 0;
        if (cuptiActivityGetNumDroppedRecords(context, stream, &lost) == CUPTI_SUCCESS) {
            dropped += lost;
        }
    }
    free(buffer);
}

void write_timeline() {
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    const char * path = getenv("KERNEL_TIMELINE_OUT");
    path              = path != nullptr ? path : "kernel-timeline.csv";
    FILE * out        = fopen(path, "w");
    if (out == nullptr) {
        fprintf(stderr, "kernel_timeline: cannot write %s\n", path);
        return;
    }
    std::lock_guard<std::mutex> lock(records_mutex);
    fprintf(out, "start_ns,end_ns,stream,graph,grid,block,cluster,name\n");
    for (const kernel_record & r : records) {
        std::string quoted;
        for (char c : r.name) {
            quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
        }
        fprintf(out, "%llu,%llu,%u,%u,%u,%u,%u,\"%s\"\n", (unsigned long long) r.start, (unsigned long long) r.end,
                r.stream, r.graph, r.grid, r.block, r.cluster, quoted.c_str());
    }
    fclose(out);
    fprintf(stderr, "kernel_timeline: %zu kernels written to %s (%zu records dropped)\n", records.size(), path, dropped);
}

} // namespace

extern "C" int InitializeInjection(void) {
    if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
        fprintf(stderr, "kernel_timeline: CUPTI did not start; no timeline\n");
        return 0;
    }
    atexit(write_timeline);
    return 1;
}
