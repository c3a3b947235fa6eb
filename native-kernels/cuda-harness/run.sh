#!/usr/bin/env bash
# Builds and runs the Q4_S24 CUDA harness (on a machine with an NVIDIA GPU and the CUDA toolkit).
#   native-kernels/cuda-harness/run.sh [seed]        check + benchmark, then compute-sanitizer memcheck (quick mode)
#   ARCH=sm_86 native-kernels/cuda-harness/run.sh    another architecture (default: sm_90a on compute capability 9.0)
#   native-kernels/cuda-harness/run.sh SEED profile  Nsight Compute details of the decode kernels (needs ncu)
#   native-kernels/cuda-harness/run.sh SEED prefill  the prefill checks and timings alone
#   native-kernels/cuda-harness/run.sh SEED decode   everything but the prefill (decode kernels, norm, get_rows)
#   native-kernels/cuda-harness/run.sh SEED profile-prefill  Nsight Compute on the sparse tensor-core prefill kernels
#                                                    (8B feed-forward shapes; per-instruction stall samples)
#   native-kernels/cuda-harness/run.sh SEED q6k      the batch-1 Q6_K mat-vec alone (q6_k_cuda_harness.cu; the default
#                                                    and decode modes run it too)
#   native-kernels/cuda-harness/run.sh SEED ffchain  a decode layer's feed-forward half as the model chains it (CUDA
#                                                    graph): per-layer us for every down-projection and gate/up shape
#                                                    (FFCHAIN_SETTINGS="- A=1,B=2": once per environment setting)
#   native-kernels/cuda-harness/run.sh SEED boundprobe  Hopper: what the feed-forward half's kernel boundaries cost in
#                                                    memory traffic alone (kernel_boundary_probe.cu), alone
#   native-kernels/cuda-harness/run.sh SEED l2probe  Hopper: whether weights prefetched into the L2 survive other
#                                                    weights streaming through (l2_residency_probe.cu), alone
#   HARNESS_NVCC_FLAGS=-DQ4_S24_MMA_STAGED_PAD=1 HARNESS_OUT=/tmp/hpad native-kernels/cuda-harness/run.sh SEED prefill
#                                                    a kernel variant (extra nvcc flags for the GPU build; also
#                                                    -DQ4_S24_MMA_MAX_STAGES=2, and -DQ4_S24_WGMMA_EXPERIMENT=1|2|3:
#                                                    the wgmma kernel without weight reads | activation reads | wgmma,
#                                                    timings only, its checks then fail; HARNESS_SPARSE_KERNEL=NAME
#                                                    runs only the prefill lines of the kernels whose names start
#                                                    with NAME, e.g. "wgmma.sp warp-specialized": its three forms;
#                                                    -DQ4_S24_MMV_EXPERIMENT_NO_MATH: the staged decode mat-vecs
#                                                    without their dot products, for ffchain's timings only)
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
    # One nvcc per architecture and file, as many at a time as there are cores (each is single-threaded).
    compile_one() {
        nvcc "${common[@]}" -gencode=arch=compute_$1,code=sm_$1 -c "$src/$2.cu" -o "$out/${2}_sm$1.o" \
            > "$out/${2}_sm$1.log" 2>&1 || { cat "$out/${2}_sm$1.log" >&2; return 1; }
        echo "compiled $2.cu for sm_$1"
    }
    export -f compile_one
    export src out
    export common_flags="${common[*]}"
    for a in 75 80 86 89 90a 120a; do
        for f in q4_s24_cuda q4_s24_cuda_sparse_mma q6_k_cuda; do echo "$a $f"; done
    done | xargs -P "$(nproc)" -n 2 bash -c 'common=($common_flags); compile_one "$0" "$1"' 
    # ptxas's only sign that it serialized the wgmma kernel's pipeline (a branch, or an accumulator written, between a
    # wgmma and its wait): an info line C7513 / C7515, which would cost the kernel its overlap without failing anything.
    if grep -E "C751[0-9]" "$out/q4_s24_cuda_sparse_mma_sm90a.log"; then
        echo "ptxas serialized the wgmma pipeline (see above)" >&2
        exit 1
    fi
    echo "wgmma pipeline not serialized (sm_90a)"
    nvcc "${common[@]}" -DQ4_S24_CUDA_NO_DP4A -gencode=arch=compute_75,code=sm_75 -c "$src/q4_s24_cuda.cu" \
        -o "$out/q4_s24_cuda_nodp4a.o"
    echo "compiled q4_s24_cuda.cu without dp4a"
    # The greedy argmax has no architecture-specific code: the oldest and the Hopper target are enough.
    for a in 75 90a; do
        nvcc "${common[@]}" -gencode=arch=compute_$a,code=sm_$a -c "$src/greedy_argmax_cuda.cu" -o "$out/greedy_argmax_cuda_sm$a.o"
    done
    echo "compiled greedy_argmax_cuda.cu for sm_75 and sm_90a"
    nvcc "${common[@]}" -I"$here/stub-cublas" -DQ4_S24_HARNESS_CUBLAS -gencode=arch=compute_90a,code=sm_90a \
        -c "$here/q4_s24_cuda_harness.cu" -o "$out/harness.o"
    echo "compiled the harness (cuBLAS stand-in)"
    nvcc "${common[@]}" -gencode=arch=compute_90a,code=sm_90a -c "$here/q6_k_cuda_harness.cu" -o "$out/q6_k_harness.o"
    echo "compiled the Q6_K harness"
    nvcc "${common[@]}" -gencode=arch=compute_90a,code=sm_90a "$here/mma_peak.cu" -o "$out/mma_peak"
    echo "compiled mma_peak.cu"
    nvcc "${common[@]}" -gencode=arch=compute_90a,code=sm_90a "$here/l2_residency_probe.cu" -o "$out/l2_residency_probe"
    echo "compiled l2_residency_probe.cu"
    nvcc "${common[@]}" -gencode=arch=compute_90a,code=sm_90a "$here/kernel_boundary_probe.cu" -o "$out/kernel_boundary_probe"
    echo "compiled kernel_boundary_probe.cu"
    # The decode timeline's CUPTI tracer (bench/kernel_timeline.cpp), against this toolkit's CUPTI headers.
    bash "$here/../bench/build-kernel-timeline.sh" --check
    # The sparse tensor-core prefill's operands, replayed on the CPU (runs without a GPU).
    nvcc -std=c++17 -O2 "$here/sparse_mma_layout_check.cu" "$src/q4_s24_ref.c" -o "$out/sparse_mma_layout_check"
    for seed in 1 2 3; do "$out/sparse_mma_layout_check" "$seed"; done
    # The ggml glue, ggml-cuda.cu and test-backend-ops.cpp as the patches leave them, in node-llama-cpp's llama.cpp
    # tree when it is there and patched (npm install, or node native-kernels/build.mjs --prepare-only, copies the
    # kernel sources in), with a stand-in for cuBLAS's header.
    tree="$here/../../node_modules/node-llama-cpp/llama/llama.cpp"
    if [ -f "$tree/ggml/src/ggml-q4-s24/q4_s24_ggml_cuda.cu" ]; then
        inc=(-I"$here/stub-cublas" -I"$tree/ggml/include" -I"$tree/ggml/src" -I"$tree/ggml/src/ggml-cuda" -DGGML_USE_CUDA)
        for f in "$src/q4_s24_ggml_cuda.cu" "$src/q6_k_ggml_cuda.cu" "$src/greedy_argmax_ggml_cuda.cu" \
                 "$tree/ggml/src/ggml-cuda/ggml-cuda.cu" "$tree/ggml/src/ggml-cuda/argmax.cu"; do
            nvcc -std=c++17 "${inc[@]}" -gencode=arch=compute_90a,code=sm_90a -c "$f" -o "$out/$(basename "$f" .cu).o"
            echo "compiled $(basename "$f") (patched tree, cuBLAS stand-in)"
        done
        g++ -std=c++17 -fsyntax-only -I"$tree/ggml/include" -I"$tree/include" -I"$tree/common" "$tree/tests/test-backend-ops.cpp"
        echo "compiled test-backend-ops.cpp (syntax only)"
        # ggml's decode attention must read q with coherent loads (llama.cpp-fattn-vec-coherent-q.diff): our q/k/v launch
        # writes q, and attention's wait orders only plain loads after those stores. Its PTX must hold no ld.global.nc.
        nvcc -std=c++17 -O3 "${inc[@]}" -gencode=arch=compute_90a,code=sm_90a -ptx \
            "$tree/ggml/src/ggml-cuda/template-instances/fattn-vec-instance-f16-f16.cu" -o "$out/fattn-vec-f16.ptx"
        nc=$(awk '/\.entry / { vec = ($0 ~ /flash_attn_ext_vec/) } vec && /ld\.global\.nc/ { n++ } END { print n + 0 }' \
            "$out/fattn-vec-f16.ptx")
        [ "$nc" = 0 ] || { echo "flash_attn_ext_vec loads through ld.global.nc ($nc loads): q may be read stale" >&2; exit 1; }
        echo "flash_attn_ext_vec (f16 K/V, sm_90a): no non-coherent loads"
    else
        echo "no patched llama.cpp tree: the ggml glue was not compiled"
    fi
    exit 0
fi
arch=${ARCH:-sm_90a}
seed=${1:-$RANDOM}
mode=${2:-}
if [ "$mode" = boundprobe ]; then
    nvcc "${common[@]}" -gencode=arch=compute_${arch#sm_},code=$arch "$here/kernel_boundary_probe.cu" \
        -o "$out/kernel_boundary_probe"
    "$out/kernel_boundary_probe" "${BOUNDPROBE_REPEATS:-7}"
    exit 0
fi
if [ "$mode" = l2probe ]; then
    nvcc "${common[@]}" -gencode=arch=compute_${arch#sm_},code=$arch "$here/l2_residency_probe.cu" \
        -o "$out/l2_residency_probe"
    "$out/l2_residency_probe" "${L2PROBE_REPEATS:-15}"
    exit 0
fi
# The Q6_K mat-vec's harness (small: built and run first, in the default, decode and q6k modes), then its memcheck.
if [ "$mode" = "" ] || [ "$mode" = decode ] || [ "$mode" = q6k ]; then
    nvcc "${common[@]}" -gencode=arch=compute_${arch#sm_},code=$arch "$here/q6_k_cuda_harness.cu" "$src/q6_k_cuda.cu" \
        "$src/q4_s24_cuda.cu" -o "$out/q6_k_cuda_harness"
    "$out/q6_k_cuda_harness" "$seed"
    if command -v compute-sanitizer >/dev/null; then
        compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 "$out/q6_k_cuda_harness" \
            "$((seed + 1))" quick | tail -n 4
    fi
    if [ "$mode" = q6k ]; then exit 0; fi
fi
nvcc "${common[@]}" ${HARNESS_NVCC_FLAGS:-} -gencode=arch=compute_${arch#sm_},code=$arch -DQ4_S24_HARNESS_CUBLAS \
    "$here/q4_s24_cuda_harness.cu" "$src/q4_s24_cuda.cu" "$src/q4_s24_cuda_sparse_mma.cu" "$src/q4_s24_ref.c" -lcublas \
    -o "$out/q4_s24_cuda_harness"
if [ "$mode" = "profile-prefill" ]; then
    # Nsight Compute on the sparse tensor-core prefill: one launch of each kernel on the 8B feed-forward shapes at
    # PROFILE_TOKENS tokens (default 512; the harness's profile-prefill launches), full set with the source counters.
    # Writes $out/prefill-profile.ncu-rep, its details page (prefill-details.txt), raw metrics (prefill-raw.csv) and
    # the per-instruction SASS page with stall samples (prefill-source-N.csv, one per profiled launch).
    # PROFILE_KERNELS (an ncu kernel-name regex, default every sparse wgmma kernel) narrows it; NCU_METRICS (ncu's
    # --metrics list) replaces the full set.
    what=(--set full --import-source yes)
    if [ -n "${NCU_METRICS:-}" ]; then what=(--metrics "$NCU_METRICS"); fi
    ncu "${what[@]}" --kernel-name "regex:${PROFILE_KERNELS:-mul_mat_sparse_wgmma}" -f -o "$out/prefill-profile" \
        "$out/q4_s24_cuda_harness" "$seed" profile-prefill
    ncu -i "$out/prefill-profile.ncu-rep" --print-details all > "$out/prefill-details.txt"
    ncu -i "$out/prefill-profile.ncu-rep" --page raw --csv > "$out/prefill-raw.csv"
    n=$(ncu -i "$out/prefill-profile.ncu-rep" --page raw --csv | tail -n +3 | wc -l)
    for ((i = 0; i < n; i++)); do
        ncu -i "$out/prefill-profile.ncu-rep" --page source --csv --print-source sass --launch-skip "$i" \
            --launch-count 1 > "$out/prefill-source-$i.csv" || echo "no source page for launch $i"
    done
    grep -E "^  [a-z_]+.*\(|Duration|Warp Cycles Per Issued|Issue Slots Busy|No Eligible|Active Warps Per|Stall|L2 Cache Throughput|Compute \(SM\) Throughput" \
        "$out/prefill-details.txt" | head -n 200
    exit 0
fi
if [ "$mode" = ffchain ]; then
    # The feed-forward chain's timings alone, once per setting of FFCHAIN_SETTINGS (space-separated; "-" the defaults,
    # else NAME=VALUE items joined by commas, e.g. "- Q4_S24_CUDA_STAGED_T256=0").
    read -ra settings <<< "${FFCHAIN_SETTINGS:--}"
    [ "${#settings[@]}" -gt 0 ] || settings=(-)
    for setting in "${settings[@]}"; do
        assignments=()
        [ "$setting" = - ] || IFS=, read -ra assignments <<< "$setting"
        for a in "${assignments[@]}"; do
            [[ $a == [A-Za-z_]*=* ]] || { echo "ffchain: '$a' in '$setting' is not NAME=VALUE" >&2; exit 2; }
        done
        echo "== ffchain: $setting"
        env "${assignments[@]}" "$out/q4_s24_cuda_harness" "$seed" ffchain
    done
    exit 0
fi
if [ "$mode" = "profile" ]; then
    # Nsight Compute on one launch of each decode kernel (batch 1, Llama-3-8B shapes): where the time goes.
    ncu --set full --kernel-name regex:'mul_mat_vec_(staged_)?kernel' "$out/q4_s24_cuda_harness" "$seed" profile
    exit 0
fi
# "prefill": the prefill checks and timings alone (dequantize + cuBLAS, sparse tensor cores), then their memcheck;
# "decode": everything but the prefill.
"$out/q4_s24_cuda_harness" "$seed" $mode
# On Hopper: the peak rate of the prefill's tensor-core instructions (dense mma.sync and wgmma against their sparse
# forms), to read the prefill timings against.
if [ "$arch" = sm_90a ] && [ "$mode" != decode ]; then
    nvcc "${common[@]}" -gencode=arch=compute_90a,code=sm_90a "$here/mma_peak.cu" -o "$out/mma_peak" && "$out/mma_peak"
fi
# HARNESS_SANITIZERS: compute-sanitizer's tools to run over the quick checks (default memcheck; also racecheck for
# shared-memory hazards, synccheck for barriers, initcheck for reads of device memory nothing wrote), each cut off
# after HARNESS_SANITIZER_TIMEOUT seconds (default 300).
if command -v compute-sanitizer >/dev/null; then
    case "$mode" in prefill) checks=prefill-quick ;; decode) checks=decode-quick ;; *) checks=quick ;; esac
    found=0
    for tool in ${HARNESS_SANITIZERS:-memcheck}; do
        extra=()
        [ "$tool" = memcheck ] && extra=(--leak-check full)
        echo "compute-sanitizer --tool $tool ($checks):"
        status=0
        timeout "${HARNESS_SANITIZER_TIMEOUT:-300}" compute-sanitizer --tool "$tool" "${extra[@]}" --print-limit 20 \
            --error-exitcode 9 "$out/q4_s24_cuda_harness" "$((seed + 1))" "$checks" 2>&1 | tail -n 12 \
            || status=${PIPESTATUS[0]}
        if [ "$status" = 124 ]; then
            echo "$tool: cut off after ${HARNESS_SANITIZER_TIMEOUT:-300} s"
        elif [ "$status" != 0 ]; then
            echo "$tool: exit status $status"
            found=1
        fi
    done
    [ "$found" = 0 ] || exit 9 # a tool found errors (or failed): the run fails, as memcheck's alone did
fi
