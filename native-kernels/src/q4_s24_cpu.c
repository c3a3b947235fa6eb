// Q4_S24 x Q8_0 dot product for ggml's CPU matmul: a portable version and an AVX2 version.
//
// Instead of expanding the weights to dense bytes, the AVX2 path gathers the activations that
// meet a kept weight (pshufb with the 2-bit positions as selectors), so it multiplies 64 pairs
// per 128 columns instead of 128. The block layout (FORMAT.md) is chosen so that the selectors
// and the weight bytes come out in the same order with a few shifts and unpacks.
#include "q4_s24.h"

#include <string.h>

#if defined(Q4_S24_AVX2)
#include <immintrin.h>
#endif

// The tile kernels are instantiated for 1x1 and 2x2 and must be inlined to keep their accumulators in registers.
#if defined(_MSC_VER) && !defined(__clang__)
#define Q4_S24_TILE static __forceinline
#else
#define Q4_S24_TILE static inline __attribute__((always_inline))
#endif

void ggml_vec_dot_q4_s24_q8_0_generic(int n, float * s, size_t bs, const void * vx, size_t bx,
                                      const void * vy, size_t by, int nrc) {
    if (nrc == 2) { // a 2x2 tile as ggml's matmul asks for with nrows = 2: s[row + col*bs]
        for (int c = 0; c < 2; c++) {
            for (int r = 0; r < 2; r++) {
                ggml_vec_dot_q4_s24_q8_0_generic(n, s + r + c*bs, 0, (const char *) vx + r*bx, 0, (const char *) vy + c*by, 0, 1);
            }
        }
        return;
    }
    (void) bs; (void) bx; (void) by;
    const block_q4_s24      * x = (const block_q4_s24 *) vx;
    const q4_s24_q8_0_block * y = (const q4_s24_q8_0_block *) vy;
    const int nb = n / QK_Q4_S24;

    float sumf = 0.0f;
    for (int b = 0; b < nb; b++) {
        for (int half = 0; half < 2; half++) {
            float sumh = 0.0f;
            for (int sj = 0; sj < 4; sj++) {
                const int s8 = 4*half + sj;
                const q4_s24_q8_0_block * a = &y[b*Q4_S24_SUBS + s8];
                int isum = 0;
                for (int kk = 0; kk < 16; kk++) {
                    const int u = (x[b].qs[8*s8 + (kk % 8)] >> (4*(kk / 8))) & 0xf;
                    const int p = (x[b].idx[4*s8 + (kk % 4)] >> (2*(kk / 4))) & 0x3;
                    isum += (u - 8) * a->qs[4*(kk / 2) + p];
                }
                sumh += q4_s24_fp16_to_fp32(a->d) * (float) isum;
            }
            sumf += q4_s24_fp16_to_fp32(x[b].d[half]) * sumh;
        }
    }
    *s = sumf;
}

#if defined(Q4_S24_AVX2)

static inline float q4_s24_h2f(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return q4_s24_fp16_to_fp32(h);
#endif
}

static inline __m256i q4_s24_join(__m128i lo, __m128i hi) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

// Scales of one block for the AVX2 loop: activation scale of sub-block s times the weight scale of its half.
static inline __m256 q4_s24_block_scales(const block_q4_s24 * xb, const q4_s24_q8_0_block * a) {
#if defined(__F16C__)
    __m128i h8 = _mm_cvtsi32_si128(a[0].d);
    h8 = _mm_insert_epi16(h8, a[1].d, 1); h8 = _mm_insert_epi16(h8, a[2].d, 2); h8 = _mm_insert_epi16(h8, a[3].d, 3);
    h8 = _mm_insert_epi16(h8, a[4].d, 4); h8 = _mm_insert_epi16(h8, a[5].d, 5); h8 = _mm_insert_epi16(h8, a[6].d, 6);
    h8 = _mm_insert_epi16(h8, a[7].d, 7);
    uint32_t dw2;
    memcpy(&dw2, xb->d, sizeof(dw2));
    const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128((int) dw2))),
                                               _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    return _mm256_mul_ps(_mm256_cvtph_ps(h8), dw);
#else
    const float d0 = q4_s24_fp16_to_fp32(xb->d[0]), d1 = q4_s24_fp16_to_fp32(xb->d[1]);
    return _mm256_setr_ps(q4_s24_h2f(a[0].d) * d0, q4_s24_h2f(a[1].d) * d0, q4_s24_h2f(a[2].d) * d0, q4_s24_h2f(a[3].d) * d0,
                          q4_s24_h2f(a[4].d) * d1, q4_s24_h2f(a[5].d) * d1, q4_s24_h2f(a[6].d) * d1, q4_s24_h2f(a[7].d) * d1);
#endif
}

// Pairs of (u - 8) * a as int16, u the stored nibble: maddubs wants its first operand unsigned.
static inline __m256i q4_s24_dot_pairs(__m256i u, __m256i a, __m256i eight) {
    return _mm256_sub_epi16(_mm256_maddubs_epi16(u, a), _mm256_maddubs_epi16(eight, a));
}

// nr x nc tile (1 or 2 weight rows times 1 or 2 activation columns), as for the AVX-512 kernel below.
Q4_S24_TILE void q4_s24_vec_dot_avx2_tile(
        int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by, const int nr, const int nc) {
    const int nb = n / QK_Q4_S24;

    const __m256i m3    = _mm256_set1_epi8(3);
    const __m256i m15   = _mm256_set1_epi8(15);
    const __m256i eight = _mm256_set1_epi8(8);
    const __m256i ones  = _mm256_set1_epi16(1);
    // Field shifts: lane 0 takes planes 0 and 1 (kept 0..7), lane 1 planes 2 and 3 (kept 8..15).
    const __m256i sh02 = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    const __m256i sh13 = _mm256_setr_epi32(2, 2, 2, 2, 6, 6, 6, 6);
    // Selector bases: byte p of a lane holds kept p of the first sub-block (p < 8) or kept p-8 of
    // the second; group p/2 starts at byte 4*(p/2) of the activation lane. 0x80 zeroes the byte.
    const __m256i base0 = _mm256_setr_epi8(
        0, 0, 4, 4, 8, 8, 12, 12, -128, -128, -128, -128, -128, -128, -128, -128,
        0, 0, 4, 4, 8, 8, 12, 12, -128, -128, -128, -128, -128, -128, -128, -128);
    const __m256i base1 = _mm256_setr_epi8(
        -128, -128, -128, -128, -128, -128, -128, -128, 0, 0, 4, 4, 8, 8, 12, 12,
        -128, -128, -128, -128, -128, -128, -128, -128, 0, 0, 4, 4, 8, 8, 12, 12);
    const __m256i half_scales[2] = { _mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3), _mm256_setr_epi32(4, 5, 6, 7, 4, 5, 6, 7) };

    __m256 acc[2][2] = { { _mm256_setzero_ps(), _mm256_setzero_ps() }, { _mm256_setzero_ps(), _mm256_setzero_ps() } };

    for (int b = 0; b < nb; b++) {
        const block_q4_s24 * xb[2];
        const q4_s24_q8_0_block * ab[2];
        for (int r = 0; r < nr; r++) xb[r] = (const block_q4_s24 *) ((const char *) vx + r*bx) + b;
        for (int c = 0; c < nc; c++) ab[c] = (const q4_s24_q8_0_block *) ((const char *) vy + c*by) + b*Q4_S24_SUBS;
        __m256 d8[2][2];
        for (int r = 0; r < nr; r++) for (int c = 0; c < nc; c++) d8[r][c] = q4_s24_block_scales(xb[r], ab[c]);

        for (int half = 0; half < 2; half++) {
            __m256i ia[2], ib[2], ua[2], ub[2];
            for (int r = 0; r < nr; r++) {
                // 2-bit positions of 4 sub-blocks -> one selector byte per kept value.
                const __m256i iw  = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) (xb[r]->idx + 16*half)));
                const __m256i p02 = _mm256_and_si256(_mm256_srlv_epi32(iw, sh02), m3);
                const __m256i p13 = _mm256_and_si256(_mm256_srlv_epi32(iw, sh13), m3);
                ia[r] = _mm256_unpacklo_epi32(p02, p13); // sub-blocks 0,1 of this half
                ib[r] = _mm256_unpackhi_epi32(p02, p13); // sub-blocks 2,3
                // Nibbles: low nibbles to lane 0 (kept 0..7), high nibbles to lane 1 (kept 8..15).
                const __m128i wq0 = _mm_loadu_si128((const __m128i *) (xb[r]->qs + 32*half));
                const __m128i wq1 = _mm_loadu_si128((const __m128i *) (xb[r]->qs + 32*half + 16));
                ua[r] = _mm256_and_si256(q4_s24_join(wq0, _mm_srli_epi16(wq0, 4)), m15);
                ub[r] = _mm256_and_si256(q4_s24_join(wq1, _mm_srli_epi16(wq1, 4)), m15);
            }
            for (int c = 0; c < nc; c++) {
                const q4_s24_q8_0_block * a = ab[c] + 4*half;
                const __m256i a0 = _mm256_loadu_si256((const __m256i *) a[0].qs);
                const __m256i a1 = _mm256_loadu_si256((const __m256i *) a[1].qs);
                const __m256i a2 = _mm256_loadu_si256((const __m256i *) a[2].qs);
                const __m256i a3 = _mm256_loadu_si256((const __m256i *) a[3].qs);
                for (int r = 0; r < nr; r++) {
                    const __m256i ga = _mm256_or_si256(_mm256_shuffle_epi8(a0, _mm256_or_si256(ia[r], base0)),
                                                       _mm256_shuffle_epi8(a1, _mm256_or_si256(ia[r], base1)));
                    const __m256i gb = _mm256_or_si256(_mm256_shuffle_epi8(a2, _mm256_or_si256(ib[r], base0)),
                                                       _mm256_shuffle_epi8(a3, _mm256_or_si256(ib[r], base1)));
                    // int16 pairs of ga: 0..3 sub-block 0, 4..7 sub-block 1 (per lane); of gb: sub-blocks 2, 3.
                    // hadd + madd -> int32 [s0 s1 s2 s3 | s0 s1 s2 s3] (lane 1: the high-nibble groups).
                    const __m256i sums = _mm256_madd_epi16(_mm256_hadd_epi16(q4_s24_dot_pairs(ua[r], ga, eight),
                                                                             q4_s24_dot_pairs(ub[r], gb, eight)), ones);
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_permutevar8x32_ps(d8[r][c], half_scales[half]), acc[r][c]);
                }
            }
        }
    }

    for (int r = 0; r < nr; r++) {
        for (int c = 0; c < nc; c++) {
            __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[r][c]), _mm256_extractf128_ps(acc[r][c], 1));
            v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            v = _mm_add_ss(v, _mm_movehdup_ps(v));
            s[r + c*bs] = _mm_cvtss_f32(v);
        }
    }
}

#endif // Q4_S24_AVX2

#if defined(Q4_S24_AVX512)

// AVX-512 VBMI path (Ice Lake, Zen 4 and later): one vpermi2b gathers the 64 activations that meet the
// 64 kept weights of a 128-column half out of its 128 activations, and vpmultishiftqb cuts the 2-bit
// positions out of the index words, so a half costs about 25 instructions instead of about 45.
// nr x nc tile (1 or 2 weight rows times 1 or 2 activation columns): with 2x2, ggml's matmul at batch > 1
// decodes each weight half once per two columns and loads each activation half once per two rows.
Q4_S24_TILE void q4_s24_vec_dot_avx512_tile(
        int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by, const int nr, const int nc) {
    const int nb = n / QK_Q4_S24;

    // Register byte i holds kept value k of sub-block sb: i < 32: sb = i/8, k = i%8 (low nibbles);
    // i >= 32: sb = (i-32)/8, k = i%8 + 8 (high nibbles). Its position field sits in index byte k%4 of
    // the sub-block's word, at bit 2*(k/4); qword q of the multishift source holds word q%4.
    static const uint8_t shift_bytes[64] = {
        0, 8, 16, 24, 2, 10, 18, 26,  0, 8, 16, 24, 2, 10, 18, 26,  0, 8, 16, 24, 2, 10, 18, 26,  0, 8, 16, 24, 2, 10, 18, 26,
        4, 12, 20, 28, 6, 14, 22, 30, 4, 12, 20, 28, 6, 14, 22, 30, 4, 12, 20, 28, 6, 14, 22, 30, 4, 12, 20, 28, 6, 14, 22, 30 };
    // activation byte of the kept value's group in the 128-byte table of 4 sub-blocks: 32*sb + 4*(k/2)
    static const uint8_t base_bytes[64] = {
        0, 0, 4, 4, 8, 8, 12, 12,  32, 32, 36, 36, 40, 40, 44, 44,  64, 64, 68, 68, 72, 72, 76, 76,  96, 96, 100, 100, 104, 104, 108, 108,
        16, 16, 20, 20, 24, 24, 28, 28,  48, 48, 52, 52, 56, 56, 60, 60,  80, 80, 84, 84, 88, 88, 92, 92,  112, 112, 116, 116, 120, 120, 124, 124 };
    const __m512i shifts = _mm512_loadu_si512(shift_bytes);
    const __m512i bases  = _mm512_loadu_si512(base_bytes);
    const __m512i m3     = _mm512_set1_epi8(3);
    const __m512i m15    = _mm512_set1_epi8(15);
    const __m512i eight  = _mm512_set1_epi8(8);
    // int32 lane j covers register bytes 4j..4j+3, i.e. sub-block (j/2)%4 of the half.
    const __m512i scale_pattern[2] = {
        _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 1, 2, 2, 3, 3),
        _mm512_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7, 4, 4, 5, 5, 6, 6, 7, 7) };
    const __m256i dw_pattern = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);

    __m512 acc[2][2] = { { _mm512_setzero_ps(), _mm512_setzero_ps() }, { _mm512_setzero_ps(), _mm512_setzero_ps() } };

    for (int b = 0; b < nb; b++) {
        const block_q4_s24 * xb[2];
        const q4_s24_q8_0_block * a[2];
        __m256 dw[2], da[2];
        for (int r = 0; r < nr; r++) {
            xb[r] = (const block_q4_s24 *) ((const char *) vx + r*bx) + b;
            uint32_t dw2;
            memcpy(&dw2, xb[r]->d, sizeof(dw2));
            dw[r] = _mm256_permutexvar_ps(dw_pattern, _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128((int) dw2))));
        }
        for (int c = 0; c < nc; c++) {
            a[c] = (const q4_s24_q8_0_block *) ((const char *) vy + c*by) + b*Q4_S24_SUBS;
            __m128i h8 = _mm_cvtsi32_si128(a[c][0].d);
            h8 = _mm_insert_epi16(h8, a[c][1].d, 1); h8 = _mm_insert_epi16(h8, a[c][2].d, 2); h8 = _mm_insert_epi16(h8, a[c][3].d, 3);
            h8 = _mm_insert_epi16(h8, a[c][4].d, 4); h8 = _mm_insert_epi16(h8, a[c][5].d, 5); h8 = _mm_insert_epi16(h8, a[c][6].d, 6);
            h8 = _mm_insert_epi16(h8, a[c][7].d, 7);
            da[c] = _mm256_cvtph_ps(h8);
        }

        for (int half = 0; half < 2; half++) {
            __m512i sel[2], w[2], t0[2], t1[2];
            for (int r = 0; r < nr; r++) {
                const __m512i iw = _mm512_cvtepu32_epi64(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) (xb[r]->idx + 16*half))));
                sel[r] = _mm512_or_si512(_mm512_and_si512(_mm512_multishift_epi64_epi8(shifts, iw), m3), bases);
                const __m256i wq = _mm256_loadu_si256((const __m256i *) (xb[r]->qs + 32*half));
                w[r] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(wq), _mm256_srli_epi16(wq, 4), 1), m15);
            }
            for (int c = 0; c < nc; c++) {
                const q4_s24_q8_0_block * ah = a[c] + 4*half;
                t0[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *) ah[0].qs)),
                                           _mm256_loadu_si256((const __m256i *) ah[1].qs), 1);
                t1[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *) ah[2].qs)),
                                           _mm256_loadu_si256((const __m256i *) ah[3].qs), 1);
            }
            for (int r = 0; r < nr; r++) {
                for (int c = 0; c < nc; c++) {
                    const __m512i g = _mm512_permutex2var_epi8(t0[c], sel[r], t1[c]);
                    // sum (u - 8) * a = sum u * a - 8 * sum a, with u = stored nibble (unsigned, as vpdpbusd wants)
                    const __m512i dot = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w[r], g),
                                                         _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, g));
                    const __m512 d8 = _mm512_castps256_ps512(_mm256_mul_ps(da[c], dw[r]));
                    acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(scale_pattern[half], d8), acc[r][c]);
                }
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        for (int c = 0; c < nc; c++) {
            s[r + c*bs] = _mm512_reduce_add_ps(acc[r][c]);
        }
    }
}
#endif // Q4_S24_AVX512

void ggml_vec_dot_q4_s24_q8_0(int n, float * s, size_t bs, const void * vx, size_t bx,
                              const void * vy, size_t by, int nrc) {
#if defined(Q4_S24_AVX512)
    if (nrc == 2) {
        q4_s24_vec_dot_avx512_tile(n, s, bs, vx, bx, vy, by, 2, 2);
    } else {
        q4_s24_vec_dot_avx512_tile(n, s, bs, vx, bx, vy, by, 1, 1);
    }
#elif defined(Q4_S24_AVX2)
    if (nrc == 2) {
        q4_s24_vec_dot_avx2_tile(n, s, bs, vx, bx, vy, by, 2, 2);
    } else {
        q4_s24_vec_dot_avx2_tile(n, s, bs, vx, bx, vy, by, 1, 1);
    }
#else
    ggml_vec_dot_q4_s24_q8_0_generic(n, s, bs, vx, bx, vy, by, nrc);
#endif
}

const char * q4_s24_cpu_kernel_name(void) {
#if defined(Q4_S24_AVX512)
    return "avx512vbmi+vnni";
#elif defined(Q4_S24_AVX2)
#if defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__))
    return "avx2+vnni";
#else
    return "avx2";
#endif
#else
    return "generic";
#endif
}
