// CPU check of the sparse tensor-core prefill's operands (no GPU needed): for random Q4_S24 rows and activations,
// every lane's A registers and metadata (the kernel's own weight_operands) and B registers (the kernel's loads) are
// placed where the mma.sp.m16n8k32 operand layout says they belong, the instruction is replayed in double precision,
// and the 16 x 8 result must equal the dense product of the dequantized rows (f16-rounded) and the activations.
// What this proves: the kernel reads FORMAT.md's fields into the layout as documented in q4_s24_cuda_sparse_mma.cu.
// Second, the wgmma kernel's activation staging: every thread's copies land where wgmma_x_offset says, cover the stage
// once, and the tensor cores' reads through the kernel's own matrix descriptor (replayed with PTX's 128-byte swizzle
// of K-major operands: address bits 4-6 XOR bits 7-9) find activation (token n, column 32 s + kk) for every sub-block.
// What it cannot: that the hardware's layout is the documented one (the GPU harness checks that).
//   nvcc -std=c++17 -o /tmp/layout_check native-kernels/cuda-harness/sparse_mma_layout_check.cu native-kernels/src/q4_s24_ref.c
#include "../src/q4_s24_cuda_sparse_mma.cu"

#include "../src/q4_s24.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

static float half_bits_to_float(uint16_t bits) {
    half h;
    memcpy(&h, &bits, 2);
    return __half2float(h);
}

// The wgmma kernel's activation stage for one step of 256 tokens x 128 columns, staged as the kernel's threads copy
// it and read back as the tensor cores would through wgmma_x_descriptor. Returns the number of mismatches.
static int check_wgmma_activation_stage(std::mt19937 & rng) {
    std::uniform_int_distribution<int> bits(0, 0xFFFF);
    std::vector<uint16_t>              x((size_t) kWgTokens * kStepCols); // token-major, like the kernel's f16 input
    for (auto & v : x) {
        v = (uint16_t) bits(rng);
    }
    std::vector<uint8_t> stage(kWgXStageBytes);
    std::vector<int>     writes(kWgXStageBytes / 16);
    int                  failures = 0;
    for (int tid = 0; tid < kThreads; ++tid) {
        const int chunk = tid % kXChunks;
        for (int c = 0; c < kWgXCopies; ++c) {
            const int      tok = tid / kXChunks + 16 * c;
            const uint32_t dst = wgmma_x_offset(tid / kXChunks, chunk) + kWgXCopyStride * c; // the kernel's
            if (dst != wgmma_x_offset(tok, chunk)) {
                printf("wgmma: thread %d copy %d lands at %u, token %d chunk %d belongs at %u\n", tid, c, dst, tok,
                       chunk, wgmma_x_offset(tok, chunk));
                ++failures;
            }
            memcpy(&stage[dst], &x[(size_t) tok * kStepCols + 8 * chunk], 16);
            ++writes[dst / 16];
        }
    }
    for (size_t i = 0; i < writes.size(); ++i) {
        if (writes[i] != 1) {
            printf("wgmma: stage chunk %zu written %d times\n", i, writes[i]);
            ++failures;
        }
    }
    const uint32_t base = 0x8000; // any 1024-byte-aligned shared address
    for (int sub = 0; sub < kStepSubs; ++sub) {
        const uint64_t desc  = wgmma_x_descriptor(base, sub);
        const uint32_t start = (uint32_t) (desc & 0x3FFF) << 4;
        const uint32_t sbo   = (uint32_t) ((desc >> 32) & 0x3FFF) << 4;
        if ((desc >> 62) != 1) {
            printf("wgmma: descriptor swizzle mode %llu, not 128-byte\n", (unsigned long long) (desc >> 62));
            return failures + 1;
        }
        for (int n = 0; n < kWgTokens; ++n) {
            for (int kk = 0; kk < kSubCols; ++kk) {
                const uint32_t linear = start + (n / 8) * sbo + (n % 8) * 128 + 2 * kk;
                const uint32_t at     = (linear ^ (((linear >> 7) & 7u) << 4)) - base;
                uint16_t       got;
                memcpy(&got, &stage[at], 2);
                const uint16_t want = x[(size_t) n * kStepCols + kSubCols * sub + kk];
                if (got != want && failures++ < 10) {
                    printf("wgmma sub-block %d token %d column %d: read %04x, activation %04x\n", sub, n, kk,
                           got, want);
                }
            }
        }
    }
    return failures;
}

int main(int argc, char ** argv) {
    const unsigned seed = argc > 1 ? (unsigned) atoi(argv[1]) : 1u;
    std::mt19937   rng(seed);
    std::normal_distribution<float> wd(0.0f, 0.02f), xd(0.0f, 1.0f);
    const int64_t k = 512, rows = 16, tokens = 8; // two blocks: both halves of each
    const size_t  row_bytes = (size_t) (k / QK_Q4_S24) * sizeof(block_q4_s24);

    std::vector<uint8_t> w(row_bytes * rows);
    std::vector<float>   dense((size_t) rows * k), row(k);
    for (int64_t r = 0; r < rows; ++r) {
        for (auto & v : row) {
            v = wd(rng);
        }
        quantize_row_q4_s24_ref(row.data(), w.data() + r * row_bytes, k);
        dequantize_row_q4_s24(w.data() + r * row_bytes, dense.data() + r * k, k);
    }
    std::vector<half> x((size_t) tokens * k);
    for (auto & v : x) {
        v = __float2half(xd(rng));
    }

    int    failures = 0;
    double worst    = 0;
    // Each row's half blocks staged as the kernel's load_stage copies them (staged_byte_source).
    const int            steps = (int) (k / kStepCols);
    std::vector<uint8_t> staged((size_t) rows * steps * kStagedBytes);
    for (int64_t r = 0; r < rows; ++r) {
        for (int step = 0; step < steps; ++step) {
            for (int wd = 0; wd < kStagedWords; ++wd) {
                memcpy(&staged[((size_t) r * steps + step) * kStagedBytes + 4 * wd],
                       &w[r * row_bytes + (size_t) (step / 2) * kBlockBytes + staged_byte_source(step & 1, wd)], 4);
            }
        }
    }
    const auto staged_row = [&](int r, int s) { return &staged[((size_t) r * steps + s / kStepSubs) * kStagedBytes]; };
    const auto operands   = [&](int g, int s, int t, uint32_t(&a)[4], uint32_t & metadata) {
        const int half = (s / kStepSubs) & 1;
        weight_operands(staged_row(g, s), staged_row(g + 8, s), s % kStepSubs, t, staged_scale(staged_row(g, s), half),
                        staged_scale(staged_row(g + 8, s), half), a, metadata);
    };
    for (int s = 0; s < (int) (k / kSubCols); ++s) {
        // The operands as the instruction would see them: dense A (16 x 32), B (32 x 8).
        double a_dense[16][32] = {};
        double b_dense[32][8]  = {};
        bool   a_set[16][32]   = {};
        for (int lane = 0; lane < 32; ++lane) {
            const int g = lane / 4, t = lane % 4;
            uint32_t  a[4], metadata;
            operands(g, s, t, a, metadata);
            // compressed A: register r, half h -> row g + 8 (r & 1), compressed column 2t + 8 (r >> 1) + h
            double compressed[2][4]; // [row g / g + 8][compressed columns 2t, 2t+1, 2t+8, 2t+9]
            for (int r = 0; r < 4; ++r) {
                for (int h = 0; h < 2; ++h) {
                    compressed[r & 1][2 * (r >> 1) + h] = half_bits_to_float((uint16_t) (a[r] >> (16 * h)));
                }
            }
            // The metadata lanes (t = 0, 1 with selector 0) say where every compressed column of their groups goes.
            // Compressed columns 2G and 2G+1 belong to group G; lane t = G / 4 (for G in its 16 columns) holds the
            // nibble. Here each lane places its own compressed values using the nibbles of the lane that owns them.
            for (int half_row = 0; half_row < 2; ++half_row) {
                const int row = g + 8 * half_row;
                for (int slot = 0; slot < 4; ++slot) {
                    const int c     = 2 * t + 8 * (slot >> 1) + (slot & 1); // compressed column
                    const int group = c / 2;
                    const int owner = group / 4; // metadata lane t' of this quad
                    uint32_t  a_owner[4], meta_owner;
                    operands(g, s, owner, a_owner, meta_owner);
                    const uint32_t nibble = (meta_owner >> (16 * half_row + 4 * (group % 4))) & 15u;
                    const int      pos    = (int) ((nibble >> (2 * (c % 2))) & 3u);
                    const int      col    = 4 * group + pos;
                    if (a_set[row][col]) {
                        printf("sub-block %d: row %d column %d placed twice\n", s, row, col);
                        ++failures;
                    }
                    a_set[row][col]   = true;
                    a_dense[row][col] = compressed[half_row][slot];
                }
            }
            // B register r, half h -> k = 2t + 8r + h, token g (activation_operands: the documented layout)
            uint32_t b[4];
            activation_operands(&x[(size_t) g * k + (size_t) s * kSubCols], t, b);
            // The kernel loads B with ldmatrix.x4 instead: lane L gives the address of row L % 8 of matrix L / 8
            // (ldmatrix_b_row), and lane i receives in register j the halves at columns 2 (i % 4), + 1 of row i / 4
            // of matrix j. Both must give this lane the same registers.
            for (int j = 0; j < 4; ++j) {
                const int row_lane = 8 * j + g; // the lane whose address is row g of matrix j
                int       token, col;
                ldmatrix_b_row(row_lane, token, col);
                const half * row_at = &x[(size_t) token * k + (size_t) s * kSubCols + col];
                uint16_t     lo, hi;
                memcpy(&lo, &row_at[2 * t], 2);
                memcpy(&hi, &row_at[2 * t + 1], 2);
                const uint32_t loaded = (uint32_t) lo | ((uint32_t) hi << 16);
                if (loaded != b[j]) {
                    printf("sub-block %d lane %d register %d: ldmatrix gives %08x, the layout %08x\n", s, lane, j, loaded,
                           b[j]);
                    ++failures;
                }
            }
            for (int r = 0; r < 4; ++r) {
                for (int h = 0; h < 2; ++h) {
                    b_dense[2 * t + 8 * r + h][g] = half_bits_to_float((uint16_t) (b[r] >> (16 * h)));
                }
            }
            // ordered metadata: the two positions of a group increase
            if (t < 2) {
                for (int i = 0; i < 8; ++i) {
                    const uint32_t nibble = (metadata >> (4 * i)) & 15u;
                    if ((nibble & 3u) >= (nibble >> 2)) {
                        printf("sub-block %d lane %d: group nibble %x is not increasing\n", s, lane, nibble);
                        ++failures;
                    }
                }
            }
        }
        // Replay D = A B and compare with the dense sub-block product.
        for (int row = 0; row < 16; ++row) {
            for (int n = 0; n < 8; ++n) {
                double got = 0, want = 0;
                for (int c = 0; c < 32; ++c) {
                    got += a_dense[row][c] * b_dense[c][n];
                    const float wv = half_bits_to_float(q4_s24_fp32_to_fp16(dense[(size_t) row * k + s * kSubCols + c]));
                    want += (double) wv * (double) __half2float(x[(size_t) n * k + s * kSubCols + c]);
                }
                const double err = std::fabs(got - want);
                worst = err > worst ? err : worst;
                if (err > 1e-9) {
                    if (failures < 10) {
                        printf("sub-block %d row %d token %d: replayed %.9g, dense %.9g\n", s, row, n, got, want);
                    }
                    ++failures;
                }
            }
        }
    }
    failures += check_wgmma_activation_stage(rng);
    printf("%s: %d mismatch(es), largest difference %.3g (seed %u)\n", failures ? "FAILED" : "OK", failures, worst, seed);
    return failures ? 1 : 0;
}
