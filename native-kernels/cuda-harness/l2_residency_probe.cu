// L2 residency probe (Hopper): can weights brought into the L2 ahead of their mat-vec (a bulk prefetch issued while
// the memory idles, e.g. during a layer's attention) still be there when the mat-vec reads them, after other weights
// have streamed through? Session 14's prefetch from the q/k/v launch gained nothing and 40 MiB of it lost 8%; this
// measures the mechanism alone, without a model around it, to tell "the bytes were evicted" from "the prefetch cost
// what it saved".
//
// For regions X of a few sizes (22.9 MB is the 8B model's down projection), each case flushes the L2, prepares it, and
// times one read of X (median of the repeats, CUDA events):
//   cold              nothing in L2
//   warm              X read once just before (the L2's best case)
//   warm, stream S    X read, then S MB of other data streamed (normal or evict_first loads), then X timed
//   prefetch          cp.async.bulk.prefetch.L2 of X, a pause for it to land, then X timed
//   prefetch, stream  the same with S MB streamed between (prefetch evict_normal or evict_last, stream normal or
//                     evict_first)
//   warm, rotated   X read by other thread blocks than the timed read's (other SMs: does the L2 partition matter?)
//   prefetch chunks the bulk prefetch in 1 KB, 4 KB and 64 KB pieces; line prefetch: prefetch.global.L2 per 32 or 128 B
// and, after the evict_last cases, whether X survives the flush itself (lines kept at evict_last would pollute the L2
// for everything after them). Usage: l2_residency_probe [repeats]
// On the H200 (session 27, docs/benchmarks.md): 22.9 MB cold 9.5 us, warm 6.6 (also when warmed by other blocks, and
// after 46 MB streamed at evict_first; normal streaming evicts it); every prefetch form 8.6-9.0 us.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda_check.cuh"

namespace {

enum evict_policy { kEvictNormal = 0, kEvictFirst = 1, kEvictLast = 2 };

const char * policy_name(evict_policy p) {
    return p == kEvictFirst ? "evict_first" : p == kEvictLast ? "evict_last" : "normal";
}

__device__ __forceinline__ uint64_t l2_policy(evict_policy p) {
    uint64_t pol = 0;
    if (p == kEvictFirst) {
        asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
    } else if (p == kEvictLast) {
        asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(pol));
    } else {
        asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(pol));
    }
    return pol;
}

// Reads every 16 bytes of p once (grid-stride), with the policy's eviction priority; the xor keeps the loads alive.
// rotate: block b reads what block (b + rotate) % gridDim.x reads unrotated (another SM, most likely).
__global__ void read_kernel(const uint4 * p, size_t n, evict_policy policy, unsigned * sink, unsigned rotate = 0) {
    const uint64_t pol = l2_policy(policy);
    uint32_t       acc = 0;
    const size_t   blk = (blockIdx.x + rotate) % gridDim.x;
    for (size_t i = blk * blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x) {
        uint32_t a, b, c, d;
        asm volatile("ld.global.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
                     : "=r"(a), "=r"(b), "=r"(c), "=r"(d)
                     : "l"(p + i), "l"(pol));
        acc ^= a ^ b ^ c ^ d;
    }
    if (acc == 0x9e3779b9u) {
        atomicAdd(sink, 1u);
    }
}

// One bulk L2 prefetch per chunk (fire and forget: the kernel ends before the bytes land).
__global__ void prefetch_kernel(const char * p, size_t bytes, unsigned chunk, evict_policy policy) {
    const uint64_t pol = l2_policy(policy);
    for (size_t off = ((size_t) blockIdx.x * blockDim.x + threadIdx.x) * chunk; off < bytes;
         off += (size_t) gridDim.x * blockDim.x * chunk) {
        const unsigned n = (unsigned) (bytes - off < chunk ? bytes - off : chunk);
        asm volatile("cp.async.bulk.prefetch.L2.global.L2::cache_hint [%0], %1, %2;" ::"l"(p + off), "r"(n), "l"(pol)
                     : "memory");
    }
}

// One prefetch.global.L2 per `stride` bytes (the per-thread prefetch instruction, not the bulk one).
__global__ void line_prefetch_kernel(const char * p, size_t bytes, unsigned stride) {
    for (size_t off = ((size_t) blockIdx.x * blockDim.x + threadIdx.x) * stride; off < bytes;
         off += (size_t) gridDim.x * blockDim.x * stride) {
        asm volatile("prefetch.global.L2 [%0];" ::"l"(p + off) : "memory");
    }
}

// Waits about `ns` nanoseconds on the GPU (lets queued prefetches land before the next kernel).
__global__ void pause_kernel(unsigned ns) {
    for (unsigned waited = 0; waited < ns; waited += 1000) {
        __nanosleep(1000);
    }
}

struct probe {
    int        sms     = 0;
    unsigned * sink    = nullptr;
    char *     flush   = nullptr;
    size_t     flush_n = 0;
    cudaEvent_t start{}, stop{};

    void read(const char * p, size_t bytes, evict_policy policy, unsigned rotate = 0) {
        read_kernel<<<sms * 8, 256>>>(reinterpret_cast<const uint4 *>(p), bytes / 16, policy, sink, rotate);
    }

    // Evicts everything: evict_last lines back to normal first, then a stream many times the L2's size.
    void flush_l2() {
        CUDA_CHECK(cudaCtxResetPersistingL2Cache());
        read(flush, flush_n, kEvictNormal);
    }

    float timed_read(const char * p, size_t bytes) {
        CUDA_CHECK(cudaEventRecord(start));
        read(p, bytes, kEvictNormal);
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        return ms * 1000.0f;
    }
};

} // namespace

int main(int argc, char ** argv) {
    const int repeats = argc > 1 ? std::max(3, atoi(argv[1])) : 15;
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("device %s, %d SMs, L2 %.1f MB, persisting L2 max %.1f MB\n", prop.name, prop.multiProcessorCount,
           prop.l2CacheSize / 1e6, prop.persistingL2CacheMaxSize / 1e6);
    if (prop.major < 9) {
        printf("needs compute capability 9.0 (cp.async.bulk.prefetch.L2)\n");
        return 0;
    }
    probe pr;
    pr.sms     = prop.multiProcessorCount;
    pr.flush_n = (size_t) 512 << 20;
    const size_t region_max = (size_t) 64 << 20, stream_max = (size_t) 96 << 20;
    char *       region = nullptr, *stream = nullptr;
    CUDA_CHECK(cudaMalloc(&pr.sink, sizeof(unsigned)));
    CUDA_CHECK(cudaMalloc(&pr.flush, pr.flush_n));
    CUDA_CHECK(cudaMalloc(&region, region_max));
    CUDA_CHECK(cudaMalloc(&stream, stream_max));
    CUDA_CHECK(cudaMemset(pr.flush, 1, pr.flush_n));
    CUDA_CHECK(cudaMemset(region, 2, region_max));
    CUDA_CHECK(cudaMemset(stream, 3, stream_max));
    CUDA_CHECK(cudaEventCreate(&pr.start));
    CUDA_CHECK(cudaEventCreate(&pr.stop));

    const unsigned chunk     = 16384;
    const unsigned pause_ns  = 40000;
    const auto     prefetch  = [&](const char * p, size_t bytes, evict_policy policy) {
        const size_t chunks = (bytes + chunk - 1) / chunk;
        prefetch_kernel<<<(unsigned) ((chunks + 255) / 256), 256>>>(p, bytes, chunk, policy);
        pause_kernel<<<1, 1>>>(pause_ns);
    };
    const auto median = [&](auto && prepare_and_time) {
        std::vector<float> us;
        for (int r = 0; r < repeats; ++r) {
            pr.flush_l2();
            us.push_back(prepare_and_time());
        }
        std::sort(us.begin(), us.end());
        return us[us.size() / 2];
    };

    printf("| region MB | case | read us | GB/s |\n|---:|---|---:|---:|\n");
    for (const double mb : { 6.5, 12.0, 22.9, 34.0 }) {
        const size_t x     = (size_t) (mb * 1e6) / 16 * 16;
        const auto   row   = [&](const char * name, float us) {
            printf("| %.1f | %s | %.2f | %.0f |\n", mb, name, us, x / (us * 1e3));
        };
        row("cold", median([&] { return pr.timed_read(region, x); }));
        row("warm", median([&] {
                pr.read(region, x, kEvictNormal);
                return pr.timed_read(region, x);
            }));
        // Warmed by other thread blocks than the ones that read it timed: the L2 is two partitions, each caching for
        // the SMs next to it; does warming on other SMs help less (as a prefetch from other blocks would)?
        for (const unsigned rotate : { 1u, 7u, (unsigned) pr.sms * 4u }) {
            char name[96];
            snprintf(name, sizeof(name), "warm, read by blocks rotated by %u", rotate);
            row(name, median([&] {
                    pr.read(region, x, kEvictNormal, rotate);
                    return pr.timed_read(region, x);
                }));
        }
        for (const double smb : { 23.0, 46.0 }) {
            const size_t s = (size_t) (smb * 1e6) / 16 * 16;
            for (const evict_policy sp : { kEvictNormal, kEvictFirst }) {
                char name[96];
                snprintf(name, sizeof(name), "warm, then %.0f MB streamed (%s)", smb, policy_name(sp));
                row(name, median([&] {
                        pr.read(region, x, kEvictNormal);
                        pr.read(stream, s, sp);
                        return pr.timed_read(region, x);
                    }));
            }
        }
        for (const evict_policy pp : { kEvictNormal, kEvictLast }) {
            char name[96];
            snprintf(name, sizeof(name), "bulk prefetch (%s)", policy_name(pp));
            row(name, median([&] {
                    prefetch(region, x, pp);
                    return pr.timed_read(region, x);
                }));
            for (const double smb : { 23.0, 46.0 }) {
                const size_t s = (size_t) (smb * 1e6) / 16 * 16;
                for (const evict_policy sp : { kEvictNormal, kEvictFirst }) {
                    snprintf(name, sizeof(name), "bulk prefetch (%s), then %.0f MB streamed (%s)", policy_name(pp),
                             smb, policy_name(sp));
                    row(name, median([&] {
                            prefetch(region, x, pp);
                            pr.read(stream, s, sp);
                            return pr.timed_read(region, x);
                        }));
                }
            }
        }
        for (const unsigned c : { 1024u, 4096u, 65536u }) {
            char name[96];
            snprintf(name, sizeof(name), "bulk prefetch (normal) in chunks of %u bytes", c);
            row(name, median([&] {
                    const size_t chunks = (x + c - 1) / c;
                    prefetch_kernel<<<(unsigned) ((chunks + 255) / 256), 256>>>(region, x, c, kEvictNormal);
                    pause_kernel<<<1, 1>>>(pause_ns);
                    return pr.timed_read(region, x);
                }));
        }
        row("line prefetch (prefetch.global.L2 per 32 bytes)", median([&] {
                line_prefetch_kernel<<<pr.sms * 8, 256>>>(region, x, 32);
                pause_kernel<<<1, 1>>>(pause_ns);
                return pr.timed_read(region, x);
            }));
        row("line prefetch (prefetch.global.L2 per 128 bytes)", median([&] {
                line_prefetch_kernel<<<pr.sms * 8, 256>>>(region, x, 128);
                pause_kernel<<<1, 1>>>(pause_ns);
                return pr.timed_read(region, x);
            }));
        row("line prefetch per 128 bytes, then 46 MB streamed (evict_first)", median([&] {
                line_prefetch_kernel<<<pr.sms * 8, 256>>>(region, x, 128);
                pause_kernel<<<1, 1>>>(pause_ns);
                pr.read(stream, (size_t) 46000000, kEvictFirst);
                return pr.timed_read(region, x);
            }));
        // Do evict_last lines outlive a plain stream of 512 MB (the flush without its reset)?
        row("bulk prefetch (evict_last), 512 MB streamed (normal), no reset", median([&] {
                prefetch(region, x, kEvictLast);
                pr.read(pr.flush, pr.flush_n, kEvictNormal);
                return pr.timed_read(region, x);
            }));
    }
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
}
