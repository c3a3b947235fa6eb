// Quantizes a raw little-endian float32 file with the C reference quantizer, so the TypeScript
// quantizer's bytes can be compared with it. Usage: q4_s24_quantize_file IN.f32 OUT.bin ROWS COLUMNS
#include "q4_s24.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char ** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s IN.f32 OUT.bin ROWS COLUMNS\n", argv[0]);
        return 2;
    }
    const long rows = atol(argv[3]), cols = atol(argv[4]);
    if (rows <= 0 || cols <= 0 || cols % QK_Q4_S24 != 0) {
        fprintf(stderr, "COLUMNS must be a positive multiple of %d\n", QK_Q4_S24);
        return 2;
    }
    float * x = malloc(sizeof(float) * rows * cols);
    const size_t out_size = (size_t) rows * (cols / QK_Q4_S24) * sizeof(block_q4_s24);
    void * y = malloc(out_size);
    FILE * in = fopen(argv[1], "rb");
    if (!in || fread(x, sizeof(float), rows * cols, in) != (size_t) (rows * cols)) {
        fprintf(stderr, "cannot read %ld floats from %s\n", rows * cols, argv[1]);
        return 1;
    }
    fclose(in);
    quantize_q4_s24(x, y, rows, cols, NULL);
    FILE * out = fopen(argv[2], "wb");
    if (!out || fwrite(y, 1, out_size, out) != out_size) {
        fprintf(stderr, "cannot write %s\n", argv[2]);
        return 1;
    }
    fclose(out);
    free(x); free(y);
    return 0;
}
