// Q4_S24 through the built ggml (CPU backend): type traits, row validation, MUL_MAT against the
// dequantized F32 weight and against a float64 reference, GET_ROWS, CPY both ways, supports_op.
// Built by native-kernels/test/run-ggml-test.mjs against the node-llama-cpp local build's libraries.
// Usage: q4_s24_ggml_test [seed]; exit status 0 when all checks pass.
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define Q4_S24_TYPE ((enum ggml_type) 100)

static int g_failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { g_failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)

static uint64_t g_rng;
static uint32_t rnd_u32(void) {
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return (uint32_t) ((g_rng * 2685821657736338717ull) >> 32);
}
static float rnd_normal(void) {
    const float u1 = ((rnd_u32() >> 8) + 1) * (1.0f / 16777217.0f), u2 = (rnd_u32() >> 8) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

static struct ggml_context * new_ctx(size_t mb) {
    struct ggml_init_params p = { mb * 1024 * 1024, NULL, false };
    return ggml_init(p);
}

static void test_traits(void) {
    CHECK(strcmp(ggml_type_name(Q4_S24_TYPE), "q4_s24") == 0, "type name %s", ggml_type_name(Q4_S24_TYPE));
    CHECK(ggml_blck_size(Q4_S24_TYPE) == 256, "block size %lld", (long long) ggml_blck_size(Q4_S24_TYPE));
    CHECK(ggml_type_size(Q4_S24_TYPE) == 100, "type size %zu", ggml_type_size(Q4_S24_TYPE));
    CHECK(ggml_is_quantized(Q4_S24_TYPE), "not quantized");
    CHECK(ggml_row_size(Q4_S24_TYPE, 4096) == 1600, "row size");
    CHECK(ggml_get_type_traits_cpu(Q4_S24_TYPE)->vec_dot_type == GGML_TYPE_Q8_0, "vec_dot_type");
    CHECK(ggml_get_type_traits(Q4_S24_TYPE)->to_float != NULL, "to_float");
    printf("traits: q4_s24 id 100, block 256 columns in 100 bytes (%.3f bits/weight), vec_dot_type q8_0\n",
           8.0 * ggml_type_size(Q4_S24_TYPE) / ggml_blck_size(Q4_S24_TYPE));

    float x[512];
    for (int i = 0; i < 512; i++) x[i] = rnd_normal();
    uint8_t q[200];
    ggml_quantize_chunk(Q4_S24_TYPE, x, q, 0, 1, 512, NULL);
    CHECK(ggml_validate_row_data(Q4_S24_TYPE, q, sizeof(q)), "valid row refused");
    q[101] = 0x7c; q[100] = 0x01; // NaN scale in block 1
    CHECK(!ggml_validate_row_data(Q4_S24_TYPE, q, sizeof(q)), "NaN scale accepted");
    CHECK(!ggml_validate_row_data(Q4_S24_TYPE, q, 150), "partial block accepted");
    printf("validation: ggml_validate_row_data refuses NaN scales and partial blocks\n");
}

// y = W x for W (n_out x k) in Q4_S24 and in dequantized F32, checked against float64.
static void test_mul_mat(int k, int n_out, int n_batch, int n_threads) {
    struct ggml_context * ctx = new_ctx(64 + (size_t) k * n_out * 12 / (1024 * 1024) + (size_t) k * n_batch * 8 / (1024 * 1024));
    struct ggml_tensor * wq = ggml_new_tensor_2d(ctx, Q4_S24_TYPE, k, n_out);
    struct ggml_tensor * wf = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, n_out);
    struct ggml_tensor * x  = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, n_batch);

    float * w = malloc(sizeof(float) * k * n_out);
    for (int i = 0; i < k * n_out; i++) w[i] = rnd_normal();
    ggml_quantize_chunk(Q4_S24_TYPE, w, wq->data, 0, n_out, k, NULL);
    for (int r = 0; r < n_out; r++) {
        ggml_get_type_traits(Q4_S24_TYPE)->to_float((char *) wq->data + r * wq->nb[1], (float *) wf->data + (size_t) r * k, k);
    }
    for (int i = 0; i < k * n_batch; i++) ((float *) x->data)[i] = rnd_normal();

    struct ggml_tensor * yq = ggml_mul_mat(ctx, wq, x);
    struct ggml_tensor * yf = ggml_mul_mat(ctx, wf, x);
    struct ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, yq);
    ggml_build_forward_expand(gf, yf);
    CHECK(ggml_graph_compute_with_ctx(ctx, gf, n_threads) == GGML_STATUS_SUCCESS, "compute failed");

    // float64 reference on the operands the kernel really multiplies: dequantized W, Q8_0 x.
    const struct ggml_type_traits_cpu * q8 = ggml_get_type_traits_cpu(GGML_TYPE_Q8_0);
    void * xq = malloc(ggml_row_size(GGML_TYPE_Q8_0, k));
    float * xd = malloc(sizeof(float) * k);
    double err_ref = 0.0, err_f32 = 0.0;
    for (int c = 0; c < n_batch; c++) {
        q8->from_float((float *) x->data + (size_t) c * k, xq, k);
        ggml_get_type_traits(GGML_TYPE_Q8_0)->to_float(xq, xd, k);
        for (int r = 0; r < n_out; r++) {
            const float * wr = (const float *) wf->data + (size_t) r * k;
            const float * xc = (const float *) x->data + (size_t) c * k;
            double ref = 0.0, mag = 0.0, mag_f32 = 0.0;
            for (int i = 0; i < k; i++) {
                ref += (double) wr[i] * xd[i]; mag += fabs((double) wr[i] * xd[i]); mag_f32 += fabs((double) wr[i] * xc[i]);
            }
            const double got = ((float *) yq->data)[(size_t) c * n_out + r];
            const double f32 = ((float *) yf->data)[(size_t) c * n_out + r];
            err_ref = fmax(err_ref, fabs(got - ref) / (mag + 1e-30));
            err_f32 = fmax(err_f32, fabs(got - f32) / (mag_f32 + 1e-30)); // only the Q8_0 rounding of x differs
        }
    }
    printf("mul_mat k=%d n_out=%d batch=%d threads=%d: max error %.2e of sum|terms| vs float64, %.2e vs the F32 weight\n",
           k, n_out, n_batch, n_threads, err_ref, err_f32);
    CHECK(err_ref < 2e-6, "mul_mat vs float64 %.3e", err_ref);
    CHECK(err_f32 < 2e-2, "mul_mat vs dequantized F32 weight %.3e", err_f32);

    // GET_ROWS dequantizes whole rows; CPY to F32 dequantizes block by block: both exact.
    struct ggml_tensor * ids = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, 3);
    ((int32_t *) ids->data)[0] = n_out - 1; ((int32_t *) ids->data)[1] = 0; ((int32_t *) ids->data)[2] = n_out / 2;
    struct ggml_tensor * rows = ggml_get_rows(ctx, wq, ids);
    struct ggml_tensor * wcopy = ggml_cpy(ctx, wq, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, n_out));
    struct ggml_tensor * requant = ggml_cpy(ctx, wf, ggml_new_tensor_2d(ctx, Q4_S24_TYPE, k, n_out));
    struct ggml_cgraph * g2 = ggml_new_graph(ctx);
    ggml_build_forward_expand(g2, rows);
    ggml_build_forward_expand(g2, wcopy);
    ggml_build_forward_expand(g2, requant);
    CHECK(ggml_graph_compute_with_ctx(ctx, g2, n_threads) == GGML_STATUS_SUCCESS, "compute failed");
    int bad_rows = 0;
    for (int j = 0; j < 3; j++) {
        const int r = ((int32_t *) ids->data)[j];
        if (memcmp((float *) rows->data + (size_t) j * k, (float *) wf->data + (size_t) r * k, sizeof(float) * k) != 0) bad_rows++;
    }
    const int bad_copy = memcmp(wcopy->data, wf->data, ggml_nbytes(wf)) != 0;
    // Re-quantizing values that are already 2:4 on the 4-bit grid must give back the same dequantized weights.
    float * back = malloc(sizeof(float) * k);
    int bad_requant = 0;
    for (int r = 0; r < n_out; r++) {
        ggml_get_type_traits(Q4_S24_TYPE)->to_float((char *) requant->data + r * requant->nb[1], back, k);
        if (memcmp(back, (float *) wf->data + (size_t) r * k, sizeof(float) * k) != 0) bad_requant++;
    }
    printf("get_rows, cpy q4_s24->f32, cpy f32->q4_s24: %d, %d, %d mismatching rows\n", bad_rows, bad_copy, bad_requant);
    CHECK(bad_rows == 0 && bad_copy == 0 && bad_requant == 0, "get_rows/cpy mismatch");

    free(back); free(w); free(xq); free(xd);
    ggml_free(ctx);
}

// MUL_MAT_ID (mixture-of-experts matmul) with Q4_S24 experts against the same op on F32 experts.
static void test_mul_mat_id(int k, int n_out, int n_expert, int n_used, int n_tokens, int n_threads) {
    struct ggml_context * ctx = new_ctx(64 + (size_t) k * n_out * n_expert * 6 / (1024 * 1024));
    struct ggml_tensor * wq = ggml_new_tensor_3d(ctx, Q4_S24_TYPE, k, n_out, n_expert);
    struct ggml_tensor * wf = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, k, n_out, n_expert);
    struct ggml_tensor * x  = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, k, n_used, n_tokens);
    struct ggml_tensor * ids = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, n_used, n_tokens);
    float * w = malloc(sizeof(float) * k * n_out * n_expert);
    for (int i = 0; i < k * n_out * n_expert; i++) w[i] = rnd_normal();
    ggml_quantize_chunk(Q4_S24_TYPE, w, wq->data, 0, (int64_t) n_out * n_expert, k, NULL);
    for (int r = 0; r < n_out * n_expert; r++) {
        ggml_get_type_traits(Q4_S24_TYPE)->to_float((char *) wq->data + r * wq->nb[1], (float *) wf->data + (size_t) r * k, k);
    }
    for (int i = 0; i < k * n_used * n_tokens; i++) ((float *) x->data)[i] = rnd_normal();
    for (int t = 0; t < n_tokens; t++) {
        for (int u = 0; u < n_used; u++) ((int32_t *) ids->data)[t * n_used + u] = (t + 3 * u) % n_expert;
    }
    struct ggml_tensor * yq = ggml_mul_mat_id(ctx, wq, x, ids);
    struct ggml_tensor * yf = ggml_mul_mat_id(ctx, wf, x, ids);
    struct ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, yq);
    ggml_build_forward_expand(gf, yf);
    CHECK(ggml_graph_compute_with_ctx(ctx, gf, n_threads) == GGML_STATUS_SUCCESS, "compute failed");
    double diff = 0.0, sq = 0.0;
    for (int64_t i = 0; i < ggml_nelements(yf); i++) {
        const double a = ((float *) yq->data)[i], b = ((float *) yf->data)[i];
        diff += (a - b) * (a - b); sq += b * b;
    }
    const double rel = sqrt(diff / (sq + 1e-30));
    printf("mul_mat_id k=%d n_out=%d experts=%d used=%d tokens=%d: relative RMS %.2e vs F32 experts\n", k, n_out, n_expert, n_used, n_tokens, rel);
    CHECK(rel < 2e-2, "mul_mat_id vs F32 experts %.3e", rel);
    free(w);
    ggml_free(ctx);
}

// The CPU backend declares what it can do with a Q4_S24 tensor instead of aborting mid-graph.
static void test_supports_op(void) {
    ggml_backend_t cpu = ggml_backend_cpu_init();
    struct ggml_init_params p = { 16 * 1024 * 1024, NULL, true };
    struct ggml_context * ctx = ggml_init(p);
    struct ggml_tensor * wq = ggml_new_tensor_2d(ctx, Q4_S24_TYPE, 512, 8);
    struct ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 512, 4);
    struct ggml_tensor * ids = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, 2);
    struct { const char * name; struct ggml_tensor * op; bool expect; } cases[] = {
        { "mul_mat",          ggml_mul_mat(ctx, wq, x), true },
        { "get_rows",         ggml_get_rows(ctx, wq, ids), true },
        { "cpy to f32",       ggml_cpy(ctx, wq, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 512, 8)), true },
        { "cpy from f32",     ggml_cpy(ctx, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 512, 8), ggml_new_tensor_2d(ctx, Q4_S24_TYPE, 512, 8)), true },
        { "mul_mat (f32 src0)", ggml_mul_mat(ctx, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 512, 8), x), true },
        { "add",              ggml_add(ctx, wq, wq), false },
        { "scale",            ggml_scale(ctx, wq, 2.0f), false },
        { "out_prod",         ggml_out_prod(ctx, wq, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 4, 8)), false },
        { "mul_mat (q4_s24 as src1)", ggml_mul_mat(ctx, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 512, 8), wq), false },
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const bool got = ggml_backend_supports_op(cpu, cases[i].op);
        if (got != cases[i].expect) { bad++; fprintf(stderr, "supports_op %s: got %d\n", cases[i].name, got); }
    }
    printf("supports_op: %d of %zu cases as declared (mul_mat, get_rows, cpy accepted; add, scale, out_prod refused)\n",
           (int) (sizeof(cases) / sizeof(cases[0])) - bad, sizeof(cases) / sizeof(cases[0]));
    CHECK(bad == 0, "supports_op mismatches: %d", bad);
    ggml_free(ctx);
    ggml_backend_free(cpu);
}

#ifdef Q4S24_CPU_VARIANT
// Each CPU library of a portable (GGML_BACKEND_DL) build exports its score: 0 when this CPU lacks its features.
int ggml_backend_score(void);
#endif

int main(int argc, char ** argv) {
#ifdef Q4S24_CPU_VARIANT
    if (ggml_backend_score() == 0) {
        printf("CPU variant %s: this CPU lacks its features, not run\n", Q4S24_CPU_VARIANT);
        return 77; // runNativeChecks.mjs: VARIANT_UNSUPPORTED_STATUS
    }
    printf("CPU variant %s (score %d)\n", Q4S24_CPU_VARIANT, ggml_backend_score());
#endif
    g_rng = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t) time(NULL) * 2654435761ull + (uint64_t) clock();
    if (g_rng == 0) g_rng = 1;
    printf("seed %llu\n", (unsigned long long) g_rng);
    ggml_cpu_init();

    test_traits();
    test_supports_op();
    const int shapes[][4] = { {768, 37, 1, 2}, {1280, 13, 3, 2}, {3328, 61, 16, 3}, {4864, 9, 5, 1}, {256, 1, 1, 2} };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        test_mul_mat(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
    }

    test_mul_mat_id(512, 24, 4, 2, 5, 2);

    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
