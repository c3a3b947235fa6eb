// Byte layout of a Q4_S24 block for the CUDA kernels, taken from the block struct in q4_s24.h (FORMAT.md): block =
// 256 dense columns, 100 bytes: d[2] fp16 at 0, qs at 4 (8 bytes per 32-column sub-block), idx at 68 (4 bytes per
// sub-block). Every field is 4-byte aligned.
#pragma once

#include "q4_s24.h"

#include <stddef.h>

constexpr int kBlockBytes   = (int) sizeof(block_q4_s24);
constexpr int kQsOffset     = (int) offsetof(block_q4_s24, qs);
constexpr int kIdxOffset    = (int) offsetof(block_q4_s24, idx);
constexpr int kSubCols      = Q4_S24_SUB;
constexpr int kSubsPerBlock = Q4_S24_SUBS;

static_assert(kBlockBytes == 100 && kQsOffset == 4 && kIdxOffset == 68, "the kernels assume FORMAT.md's block layout");
