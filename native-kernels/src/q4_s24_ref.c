// Q4_S24 reference code: fp16 conversion, quantize, dequantize, row validation.
// Every float step is a single IEEE operation (no a*b+c), so the TypeScript quantizer in
// src/convert/sparse24Quantizer.ts reproduces the bytes exactly.
#include "q4_s24.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

uint16_t q4_s24_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax   = x & 0x7fffffffu;

    if (ax >= 0x7f800000u) { // inf stays inf, NaN stays a quiet NaN
        return (uint16_t) (sign | 0x7c00u | (ax > 0x7f800000u ? 0x0200u : 0u));
    }
    if (ax >= 0x47800000u) { // >= 65536: past the largest finite half after rounding
        return (uint16_t) (sign | 0x7c00u);
    }
    const uint32_t e = ax >> 23;
    if (e < 113) { // below 2^-14: half subnormal (or zero), unit 2^-24
        if (e < 102) {
            return (uint16_t) sign; // below 2^-25 (ties at 2^-25 go to even zero)
        }
        const uint32_t m     = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e; // 14..24
        uint32_t h           = m >> shift;
        const uint32_t rem   = m & ((1u << shift) - 1);
        const uint32_t half  = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) {
            h++;
        }
        return (uint16_t) (sign | h);
    }
    uint32_t h         = ((e - 112) << 10) | ((ax >> 13) & 0x3ffu);
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) {
        h++; // a carry out of the mantissa bumps the exponent, up to inf: that is the right result
    }
    return (uint16_t) (sign | h);
}

float q4_s24_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = ((uint32_t) h & 0x8000u) << 16;
    const uint32_t e    = (h >> 10) & 0x1fu;
    const uint32_t m    = h & 0x3ffu;
    uint32_t x;
    if (e == 0) {
        const float f = (float) m * 5.9604644775390625e-8f; // m * 2^-24, exact
        memcpy(&x, &f, sizeof(x));
        x |= sign;
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, sizeof(f));
    return f;
}

// Positions of the two kept weights of one group of 4: the two largest scores, ties to the lower
// position, returned in increasing order.
static void q4_s24_pick_pair(const float score[4], int * p0, int * p1) {
    int best = 0;
    for (int i = 1; i < 4; i++) {
        if (score[i] > score[best]) {
            best = i;
        }
    }
    int second = best == 0 ? 1 : 0;
    for (int i = 0; i < 4; i++) {
        if (i != best && score[i] > score[second]) {
            second = i;
        }
    }
    *p0 = best < second ? best : second;
    *p1 = best < second ? second : best;
}

// One scale group: 128 dense columns -> 64 kept values into sub-blocks [4*half, 4*half+4) of blk.
static void q4_s24_quantize_group(const float * x, const float * imp, block_q4_s24 * blk, int half) {
    float kept[64];
    int   pos[64];
    for (int g = 0; g < 32; g++) {
        float score[4];
        for (int i = 0; i < 4; i++) {
            const float v = x[4*g + i];
            score[i] = imp ? imp[4*g + i] * (v * v) : fabsf(v);
        }
        int p0, p1;
        q4_s24_pick_pair(score, &p0, &p1);
        kept[2*g + 0] = x[4*g + p0];
        kept[2*g + 1] = x[4*g + p1];
        pos[2*g + 0]  = p0;
        pos[2*g + 1]  = p1;
    }

    // Signed value of largest magnitude maps to -8, using the whole [-8, 7] range.
    float amax = 0.0f;
    float vmax = 0.0f;
    for (int k = 0; k < 64; k++) {
        const float a = fabsf(kept[k]);
        if (a > amax) {
            amax = a;
            vmax = kept[k];
        }
    }
    const float    d   = vmax / -8.0f;
    const uint16_t d16 = q4_s24_fp32_to_fp16(d);
    const float    dr  = q4_s24_fp16_to_fp32(d16); // quantize against the scale actually stored
    const float    id  = dr != 0.0f ? 1.0f / dr : 0.0f;
    blk->d[half] = d16;

    for (int k = 0; k < 64; k++) {
        float t = kept[k] * id;
        if (t != t) {
            t = 0.0f;
        }
        if (t < -8.0f) {
            t = -8.0f;
        }
        if (t > 7.0f) {
            t = 7.0f;
        }
        const int q  = (int) nearbyintf(t); // round half to even (default rounding mode)
        const int s  = 4*half + k/16;       // sub-block
        const int kk = k % 16;              // kept index inside the sub-block
        blk->qs[8*s + (kk % 8)]  |= (uint8_t) ((q + 8) << (4*(kk / 8)));
        blk->idx[4*s + (kk % 4)] |= (uint8_t) (pos[k] << (2*(kk / 4)));
    }
}

static void q4_s24_quantize_row(const float * x, const float * imp, void * vy, int64_t k) {
    block_q4_s24 * y = (block_q4_s24 *) vy;
    const int64_t nb = k / QK_Q4_S24;
    for (int64_t b = 0; b < nb; b++) {
        memset(&y[b], 0, sizeof(y[b]));
        for (int half = 0; half < 2; half++) {
            const int64_t off = b*QK_Q4_S24 + half*Q4_S24_GROUP;
            q4_s24_quantize_group(x + off, imp ? imp + half*Q4_S24_GROUP + (b*QK_Q4_S24) : NULL, &y[b], half);
        }
    }
}

void quantize_row_q4_s24_ref(const float * x, void * y, int64_t k) {
    q4_s24_quantize_row(x, NULL, y, k);
}

size_t quantize_q4_s24(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix) {
    const size_t row_size = (size_t) (n_per_row / QK_Q4_S24) * sizeof(block_q4_s24);
    for (int64_t r = 0; r < nrows; r++) {
        q4_s24_quantize_row(src + r*n_per_row, imatrix, (char *) dst + r*row_size, n_per_row);
    }
    return (size_t) nrows * row_size;
}

// Only stores, no read-modify-write of the output: per group of 4 dense columns, zeros, then each kept value at its
// position, taken from a table of 0 + d * (u - 8) per nibble u (the reference's "zeros, then add each kept value", with
// the same float operations, so signed zeros come out the same); equal positions (data that validation refuses) still
// add the two values up. ggml's CPU get_rows dequantizes a prompt's token embeddings with it, in ggml-base (built
// without -march), on the host between a prompt's micro-batches: its speed shows in prefill (session 28).
void dequantize_row_q4_s24(const void * vx, float * y, int64_t k) {
    const block_q4_s24 * x = (const block_q4_s24 *) vx;
    const int64_t nb = k / QK_Q4_S24;
    for (int64_t b = 0; b < nb; b++) {
        for (int h = 0; h < 2; h++) {
            const float d = q4_s24_fp16_to_fp32(x[b].d[h]);
            float value[16];
            for (int u = 0; u < 16; u++) {
                value[u] = 0.0f + d * (float) (u - 8);
            }
            for (int s = 4*h; s < 4*h + 4; s++) {
                uint64_t nibbles;   // byte i: kept values i (low nibble) and 8 + i (high); little-endian hosts
                                    // (ggml's and this format's byte order)
                uint32_t positions; // byte i, field j: kept value 4j + i
                memcpy(&nibbles, x[b].qs + 8*s, sizeof(nibbles));
                memcpy(&positions, x[b].idx + 4*s, sizeof(positions));
                float * o = y + b*QK_Q4_S24 + s*Q4_S24_SUB;
                for (int g = 0; g < 8; g++) {
                    // kept values 2g and 2g + 1: nibbles in bytes (2g) % 8 and (2g + 1) % 8 (low for g < 4), positions
                    // in bytes (2g) % 4 and (2g + 1) % 4, field (2g) / 4 (constant shifts once the loop is unrolled)
                    const int shift = g < 4 ? 0 : 4;
                    const int u0    = (int) (nibbles >> (8*((2*g) % 8) + shift)) & 0xf;
                    const int u1    = (int) (nibbles >> (8*((2*g + 1) % 8) + shift)) & 0xf;
                    const int p0    = (int) (positions >> (8*((2*g) % 4) + 2*((2*g) / 4))) & 0x3;
                    const int p1    = (int) (positions >> (8*((2*g + 1) % 4) + 2*((2*g) / 4))) & 0x3;
                    float   * og    = o + 4*g;
                    og[0] = og[1] = og[2] = og[3] = 0.0f;
                    if (p0 != p1) {
                        og[p0] = value[u0];
                        og[p1] = value[u1];
                    } else {
                        og[p0] = value[u0] + d * (float) (u1 - 8);
                    }
                }
            }
        }
    }
}

bool q4_s24_validate_row_data(const void * data, size_t nbytes) {
    const block_q4_s24 * x = (const block_q4_s24 *) data;
    if (nbytes % sizeof(block_q4_s24) != 0) {
        fprintf(stderr, "q4_s24_validate_row_data: size %zu is not a multiple of %zu\n", nbytes, sizeof(block_q4_s24));
        return false;
    }
    const size_t nb = nbytes / sizeof(block_q4_s24);
    for (size_t b = 0; b < nb; b++) {
        for (int h = 0; h < 2; h++) {
            if ((x[b].d[h] & 0x7c00u) == 0x7c00u) {
                fprintf(stderr, "q4_s24_validate_row_data: %s scale at block %zu\n",
                        (x[b].d[h] & 0x3ffu) ? "NaN" : "infinite", b);
                return false;
            }
        }
        // Kept values 2g and 2g+1 sit in bytes b and b+1 (b even) of a sub-block's index word,
        // in the same 2-bit field j: the first position must be below the second.
        for (int s = 0; s < Q4_S24_SUBS; s++) {
            const uint8_t * w = x[b].idx + 4*s;
            for (int pair = 0; pair < 2; pair++) {
                const unsigned lo = w[2*pair], hi = w[2*pair + 1];
                for (int j = 0; j < 4; j++) {
                    const unsigned p0 = (lo >> (2*j)) & 3u, p1 = (hi >> (2*j)) & 3u;
                    if (p0 >= p1) {
                        fprintf(stderr, "q4_s24_validate_row_data: group with positions %u,%u (must increase) at block %zu\n",
                                p0, p1, b);
                        return false;
                    }
                }
            }
        }
    }
    return true;
}
