#!/usr/bin/env bash
# Builds and runs the Q4_S24 CUDA harness (on a machine with an NVIDIA GPU and the CUDA toolkit).
#   native-kernels/cuda-harness/run.sh [seed]        check + benchmark, then compute-sanitizer memcheck (quick mode)
#   ARCH=sm_86 native-kernels/cuda-harness/run.sh    another architecture (default: sm_90a on compute capability 9.0)
#   native-kernels/cuda-harness/run.sh SEED profile  Nsight Compute details of the decode kernels (needs ncu)
# Compile-check the architectures ggml builds for, and replay the sparse tensor-core prefill's operand layout on the
# CPU, without a GPU: native-kernels/cuda-harness/run.sh --compile-only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../src"
out=${HARNESS_OUT:-/tmp/q4_s24_cuda_harness}
mkdir -p "$out"
common=(-O3 -std=c++17 -lineinfo -Xptxas -warn-spills)
if [ "${1:-}" = "--compile-only" ]; then
    # ggml's default CUDA architectures with CUDA 13 (75, 80, 86, 89, 90, 120a) plus Hopper's 90a, and the plain
    # path older ones (CUDA 12 builds also target 5.0-7.0) get instead of dp4a.
    for a in 75 80 86 89 90a 120a; do
        for f in q4_s24_cuda q4_s24_cuda_sparse_mma; do
            nvcc "${common[@]}" -gencode=arch=compute_$a,code=sm_$a -c "$src/$f.cu" -o "$out/${f}_sm$a.o"
            echo "compiled $f.cu for sm_$a"
        done
    done
    nvcc "${common[@]}" -DQ4_S24_CUDA_NO_DP4A -gencode=arch=compute_75,code=sm_75 -c "$src/q4_s24_cuda.cu" \
        -o "$out/q4_s24_cuda_nodp4a.o"
    echo "compiled q4_s24_cuda.cu without dp4a"
    nvcc "${common[@]}" -gencode=arch=compute_90a,code=sm_90a -c "$here/q4_s24_cuda_harness.cu" -o "$out/harness.o"
    echo "compiled the harness (without cuBLAS)"
    # The sparse tensor-core prefill's operands, replayed on the CPU (runs without a GPU).
    nvcc -std=c++17 -O2 "$here/sparse_mma_layout_check.cu" "$src/q4_s24_ref.c" -o "$out/sparse_mma_layout_check"
    for seed in 1 2 3; do "$out/sparse_mma_layout_check" "$seed"; done
    exit 0
fi
arch=${ARCH:-sm_90a}
nvcc "${common[@]}" -gencode=arch=compute_${arch#sm_},code=$arch -DQ4_S24_HARNESS_CUBLAS \
    "$here/q4_s24_cuda_harness.cu" "$src/q4_s24_cuda.cu" "$src/q4_s24_cuda_sparse_mma.cu" "$src/q4_s24_ref.c" -lcublas \
    -o "$out/q4_s24_cuda_harness"
seed=${1:-$RANDOM}
if [ "${2:-}" = "profile" ]; then
    # Nsight Compute on one launch of each decode kernel (batch 1, Llama-3-8B shapes): where the time goes.
    ncu --set full --kernel-name regex:mul_mat_vec_kernel "$out/q4_s24_cuda_harness" "$seed" profile
    exit 0
fi
"$out/q4_s24_cuda_harness" "$seed"
if command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 "$out/q4_s24_cuda_harness" "$((seed + 1))" quick \
        | tail -n 6
fi
