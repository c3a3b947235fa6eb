// CPU matmul benchmark through ggml's CPU backend: Llama-3.1-8B linear shapes, batch 1 and 16,
// F16 / Q4_0 / Q4_K / Q4_S24 weights, all measured in the same run so ratios are comparable.
// Then the token embedding lookup of a 512-token micro-batch (GET_ROWS, which ggml's CPU backend runs on one thread
// with the type's to_float): llama.cpp keeps token_embd on the CPU even when every layer is on a GPU, so a prompt pays
// it on the host between micro-batches (session 28 found Q4_S24's costing 4.5 ms of an 8B prompt's 512-token step).
// Q4_0 and Q4_K are also measured from the CPU "repack" buffer, which llama.cpp uses for them
// when it loads a model on an AVX2 machine (Q4_S24 has no repacked layout).
//
// Usage: q4_s24_bench [--threads N] [--reps N] [--json] [--quick]
// Text output: one line per (shape, batch, type); --json: one JSON document on stdout.
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q4_S24_TYPE ((enum ggml_type) 100)

typedef struct {
    const char * label;
    enum ggml_type type;
    bool repack;
} bench_type;

typedef struct {
    const char * op; // "mul_mat" or "get_rows"
    int m, k;      // weight rows (outputs, or table rows) and columns (inputs)
    int batch;     // activation columns, or rows looked up
    const char * label;
    double us;     // median microseconds per matmul
} bench_result;

static void quiet_log(enum ggml_log_level level, const char * text, void * user_data) {
    (void) user_data;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr); // drop the repack buffer's per-tensor info lines
}

static int cmp_double(const void * a, const void * b) {
    const double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd_u64(void) { // xorshift64*
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}
static float rnd_normal(void) {
    const uint64_t r = rnd_u64();
    const float u1 = ((uint32_t) (r >> 40) + 1) * (1.0f / 16777217.0f), u2 = (uint32_t) ((r >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

static ggml_backend_buffer_type_t find_repack_buft(ggml_backend_t backend) {
    ggml_backend_dev_t dev = ggml_backend_get_device(backend);
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
    ggml_backend_dev_get_extra_bufts_t get_extra =
        (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
    if (get_extra == NULL) return NULL;
    for (ggml_backend_buffer_type_t * b = get_extra(dev); b && *b; b++) {
        if (strstr(ggml_backend_buft_name(*b), "REPACK") != NULL) return *b;
    }
    return NULL;
}

// Weight bytes for one type from shared random floats (row-parallel quantization is not needed: once per shape).
static void * make_weight(enum ggml_type type, const float * src, int m, int k) {
    const size_t row = ggml_row_size(type, k);
    void * data = malloc(row * (size_t) m);
    if (type == GGML_TYPE_F16) {
        ggml_fp32_to_fp16_row(src, data, (int64_t) m * k);
    } else {
        ggml_quantize_chunk(type, src, data, 0, m, k, NULL);
    }
    return data;
}

// One prepared matmul (input: batch float columns) or row lookup (input: batch int32 row indices): weight in its
// buffer (plain or repacked), input, graph.
typedef struct {
    struct ggml_context * wctx, * gctx;
    ggml_backend_buffer_t wbuf, gbuf;
    struct ggml_cgraph * gf;
    double * times;
} bench_case;

static bool prepare_case(bench_case * c, ggml_backend_t backend, ggml_backend_buffer_type_t weight_buft, enum ggml_type type,
                         const void * weight, int m, int k, int batch, bool get_rows, const void * input, int reps) {
    struct ggml_init_params wp = { ggml_tensor_overhead() * 4, NULL, true };
    c->wctx = ggml_init(wp);
    struct ggml_tensor * w = ggml_new_tensor_2d(c->wctx, type, k, m);
    c->wbuf = ggml_backend_alloc_ctx_tensors_from_buft(c->wctx, weight_buft);
    if (c->wbuf == NULL) { ggml_free(c->wctx); return false; }
    ggml_backend_tensor_set(w, weight, 0, ggml_nbytes(w)); // repack buffers rearrange here

    struct ggml_init_params gp = { ggml_tensor_overhead() * 8 + ggml_graph_overhead(), NULL, true };
    c->gctx = ggml_init(gp);
    struct ggml_tensor * x = get_rows ? ggml_new_tensor_1d(c->gctx, GGML_TYPE_I32, batch)
                                      : ggml_new_tensor_2d(c->gctx, GGML_TYPE_F32, k, batch);
    struct ggml_tensor * y = get_rows ? ggml_get_rows(c->gctx, w, x) : ggml_mul_mat(c->gctx, w, x);
    c->gf = ggml_new_graph(c->gctx);
    ggml_build_forward_expand(c->gf, y);
    c->gbuf = ggml_backend_alloc_ctx_tensors(c->gctx, backend);
    ggml_backend_tensor_set(x, input, 0, ggml_nbytes(x));
    c->times = malloc(sizeof(double) * reps);
    return true;
}

static void free_case(bench_case * c) {
    free(c->times);
    ggml_backend_buffer_free(c->gbuf);
    ggml_backend_buffer_free(c->wbuf);
    ggml_free(c->gctx);
    ggml_free(c->wctx);
}

static double run_once(ggml_backend_t backend, bench_case * c) {
    const int64_t t0 = ggml_time_us();
    ggml_backend_graph_compute(backend, c->gf);
    return (double) (ggml_time_us() - t0);
}

int main(int argc, char ** argv) {
    int n_threads = 2, reps = 0;
    bool json = false, quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else { fprintf(stderr, "usage: %s [--threads N] [--reps N] [--json] [--quick]\n", argv[0]); return 2; }
    }
    ggml_time_init();
    ggml_log_set(quiet_log, NULL);
    ggml_cpu_init();

    const int shapes[][2] = { {4096, 4096}, {1024, 4096}, {14336, 4096}, {4096, 14336} };
    const int n_shapes = quick ? 2 : 4;
    const int batches[] = { 1, 16 };
    const bench_type types[] = {
        { "f16",           GGML_TYPE_F16,  false },
        { "q4_0",          GGML_TYPE_Q4_0, false },
        { "q4_K",          GGML_TYPE_Q4_K, false },
        { "q4_s24",        Q4_S24_TYPE,    false },
        { "q4_0 repacked", GGML_TYPE_Q4_0, true },
        { "q4_K repacked", GGML_TYPE_Q4_K, true },
    };
    const int n_types = sizeof(types) / sizeof(types[0]);

    ggml_backend_t backend = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(backend, n_threads);
    ggml_backend_buffer_type_t cpu_buft = ggml_backend_get_default_buffer_type(backend);
    ggml_backend_buffer_type_t repack_buft = find_repack_buft(backend);

    bench_result * results = calloc(n_shapes * 2 * n_types + 3, sizeof(bench_result));
    int n_results = 0;
    if (!json) {
        printf("ggml CPU backend, %d threads, repack buffer: %s\n", n_threads, repack_buft ? ggml_backend_buft_name(repack_buft) : "none");
        printf("%-12s %5s %-14s %10s %8s %11s\n", "m x k", "batch", "type", "us (median)", "weight GB/s", "q4_0/this");
    }
    for (int s = 0; s < n_shapes; s++) {
        const int m = shapes[s][0], k = shapes[s][1];
        float * src = malloc(sizeof(float) * (size_t) m * k);
        for (size_t i = 0; i < (size_t) m * k; i++) src[i] = rnd_normal();
        void * weights[8] = { 0 };
        for (int t = 0; t < n_types; t++) {
            int same = -1;
            for (int u = 0; u < t; u++) if (types[u].type == types[t].type) same = u;
            weights[t] = same >= 0 ? weights[same] : make_weight(types[t].type, src, m, k);
        }
        for (int bi = 0; bi < 2; bi++) {
            const int batch = batches[bi];
            const int r = reps > 0 ? reps : (batch == 1 ? 40 : 10);
            float * xs = malloc(sizeof(float) * k * batch);
            for (int i = 0; i < k * batch; i++) xs[i] = rnd_normal();
            bench_case cases[8];
            bool ok[8] = { false };
            for (int t = 0; t < n_types; t++) {
                if (types[t].repack && repack_buft == NULL) continue;
                ok[t] = prepare_case(&cases[t], backend, types[t].repack ? repack_buft : cpu_buft, types[t].type, weights[t], m, k, batch, false, xs, r);
                if (ok[t]) for (int i = 0; i < 2; i++) run_once(backend, &cases[t]); // warm up
            }
            // Round robin over the types, so that load from other processes hits all of them alike.
            for (int i = 0; i < r; i++) {
                for (int t = 0; t < n_types; t++) {
                    if (ok[t]) cases[t].times[i] = run_once(backend, &cases[t]);
                }
            }
            double us[8] = { 0 }, q4_0_us = 0.0;
            for (int t = 0; t < n_types; t++) {
                if (!ok[t]) continue;
                qsort(cases[t].times, r, sizeof(double), cmp_double);
                us[t] = cases[t].times[r / 2];
                if (types[t].type == GGML_TYPE_Q4_0 && !types[t].repack) q4_0_us = us[t];
            }
            for (int t = 0; t < n_types; t++) {
                if (!ok[t]) continue;
                results[n_results++] = (bench_result) { "mul_mat", m, k, batch, types[t].label, us[t] };
                if (!json) {
                    const double gbs = (double) ggml_row_size(types[t].type, k) * m / (us[t] * 1e3);
                    printf("%5dx%-6d %5d %-14s %10.1f %8.1f %10.2fx\n", m, k, batch, types[t].label, us[t], gbs,
                           q4_0_us > 0 ? q4_0_us / us[t] : 0.0);
                }
                free_case(&cases[t]);
            }
            if (!json) fflush(stdout);
            free(xs);
        }
        for (int t = 0; t < n_types; t++) {
            int same = -1;
            for (int u = 0; u < t; u++) if (types[u].type == types[t].type) same = u;
            if (same < 0) free(weights[t]);
        }
        free(src);
    }

    // The token embedding lookup: 512 random rows of a (vocab x 4096) table, F16 / Q4_0 / Q4_S24, round robin. The same
    // rows every repetition, so what is timed is each type's conversion to floats (what differs by type), not where the
    // rows come from (DRAM, or page faults on an mmapped file or a VM's reclaimed memory: machine-dependent; fresh rows
    // per repetition measured F16 at 6-7.7 ms here, 10x its cached time, from memory stalls alone).
    {
        const int vocab = quick ? 8192 : 32768, k = 4096, rows = 512, r = reps > 0 ? reps : 20;
        const bench_type lookup_types[] = { types[0], types[1], types[3] }; // f16, q4_0, q4_s24
        float * src = malloc(sizeof(float) * (size_t) vocab * k);
        for (size_t i = 0; i < (size_t) vocab * k; i++) src[i] = rnd_normal();
        int32_t * ids = malloc(sizeof(int32_t) * rows);
        for (int i = 0; i < rows; i++) ids[i] = (int32_t) ((rnd_u64() >> 16) % (uint64_t) vocab);
        bench_case cases[3];
        for (int t = 0; t < 3; t++) {
            void * table = make_weight(lookup_types[t].type, src, vocab, k);
            const bool ok = prepare_case(&cases[t], backend, cpu_buft, lookup_types[t].type, table, vocab, k, rows, true, ids, r);
            free(table); // the backend buffer holds its copy
            if (!ok) {
                fprintf(stderr, "get_rows: could not allocate the %s table\n", lookup_types[t].label);
                return 1;
            }
            run_once(backend, &cases[t]);
        }
        free(src);
        for (int i = 0; i < r; i++) {
            for (int t = 0; t < 3; t++) cases[t].times[i] = run_once(backend, &cases[t]);
        }
        double us[3];
        for (int t = 0; t < 3; t++) {
            qsort(cases[t].times, r, sizeof(double), cmp_double);
            us[t] = cases[t].times[r / 2];
        }
        if (!json) {
            printf("\ntoken embedding lookup (GET_ROWS, one thread as ggml runs it): %d of %d rows x %d columns\n", rows, vocab, k);
            printf("%-14s %10s %12s %9s\n", "type", "us (median)", "ns per value", "f16/this");
        }
        for (int t = 0; t < 3; t++) {
            results[n_results++] = (bench_result) { "get_rows", vocab, k, rows, lookup_types[t].label, us[t] };
            if (!json) {
                printf("%-14s %10.1f %12.2f %8.2fx\n", lookup_types[t].label, us[t], us[t] * 1e3 / ((double) rows * k),
                       us[0] / us[t]);
            }
            free_case(&cases[t]);
        }
        free(ids);
    }

    if (json) {
        printf("{\"threads\":%d,\"repackBuffer\":%s,\"results\":[", n_threads, repack_buft ? "true" : "false");
        for (int i = 0; i < n_results; i++) {
            printf("%s{\"op\":\"%s\",\"m\":%d,\"k\":%d,\"batch\":%d,\"type\":\"%s\",\"us\":%.1f}", i ? "," : "",
                   results[i].op, results[i].m, results[i].k, results[i].batch, results[i].label, results[i].us);
        }
        printf("]}\n");
    }
    free(results);
    ggml_backend_free(backend);
    return 0;
}
