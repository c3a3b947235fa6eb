#!/usr/bin/env bash
# Whole-model GPU benchmark of the patched llama.cpp (Q4_S24 CUDA kernels) on a Llama-3.1-8B-shaped model:
# F16, Q4_K_M, Q4_0 and Q4_S24 side by side. Run on the GPU machine from the project root, in two steps
# (each fits the device tool's 10-minute limit; run the second right after the first, files live in $WORK):
#
#   native-kernels/bench/gpu-whole-model.sh build   # extract + build (CUDA, sm_90a), write F16, quantize the others
#   native-kernels/bench/gpu-whole-model.sh bench   # test-backend-ops (correctness + MUL_MAT perf), llama-bench
#
# Inputs (made on the dev machine, carried in .device-carry/):
#   lcpp.tar.xz    the patched llama.cpp tree (node_modules/node-llama-cpp/llama/llama.cpp after
#                  `node native-kernels/build.mjs --prepare-only`) without .git, models, docs and unused backends
#   vocab.gguf.xz  models/ggml-vocab-llama-bpe.gguf from the same tree (the real Llama 3 tokenizer)
# Outputs go to $OUT (the device tool's folder) or ./gpu-bench-out.
set -euo pipefail
step=${1:?usage: gpu-whole-model.sh build|bench}
root=$(pwd)
WORK=${WORK:-/tmp/q4s24-gpu}
OUT=${OUT:-$root/gpu-bench-out}
mkdir -p "$WORK" "$OUT"
bin=$WORK/build/bin
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }

if [ "$step" = build ]; then
    stamp "extract"
    rm -rf "$WORK/lcpp" && mkdir -p "$WORK/lcpp/ggml/src/ggml-q4-s24"
    tar -xJf .device-carry/lcpp.tar.xz -C "$WORK/lcpp"
    cp native-kernels/src/*.c native-kernels/src/*.h native-kernels/src/*.cu native-kernels/src/*.cuh \
        "$WORK/lcpp/ggml/src/ggml-q4-s24/"
    xz -dc .device-carry/vocab.gguf.xz > "$WORK/vocab.gguf"

    stamp "F16 model (background) + build"
    (PYTHONPATH=$WORK/lcpp/gguf-py python3 native-kernels/bench/make_synthetic_llama.py "$WORK/vocab.gguf" \
        "$WORK/llama8b-f16.gguf" > "$OUT/generate.log" 2>&1; echo $? > "$WORK/generate.rc") &
    t0=$(date +%s)
    cmake -S "$WORK/lcpp" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90a -DLLAMA_CURL=OFF -DLLAMA_BUILD_EXAMPLES=OFF > "$OUT/cmake.log" 2>&1 \
        || { tail -30 "$OUT/cmake.log"; exit 1; }
    ninja -C "$WORK/build" -j16 -k 0 llama-bench llama-quantize test-backend-ops llama-server > "$OUT/build.log" 2>&1 \
        || { grep -E "error|FAILED" "$OUT/build.log" | head -30; }
    stamp "build took $(( $(date +%s) - t0 )) s"
    for b in llama-bench llama-quantize test-backend-ops; do
        [ -x "$bin/$b" ] || { echo "missing $b"; tail -30 "$OUT/build.log"; exit 1; }
    done
    [ -x "$bin/llama-server" ] || echo "note: llama-server did not build"

    wait
    [ "$(cat "$WORK/generate.rc")" = 0 ] || { cat "$OUT/generate.log"; exit 1; }
    stamp "quantize Q4_0, Q4_K_M, Q4_S24 in parallel"
    for t in Q4_0 Q4_K_M Q4_S24; do
        "$bin/llama-quantize" "$WORK/llama8b-f16.gguf" "$WORK/llama8b-$t.gguf" "$t" 5 > "$OUT/quantize-$t.log" 2>&1 &
    done
    wait
    for t in Q4_0 Q4_K_M Q4_S24; do
        grep -E "model size|quant size" "$OUT/quantize-$t.log" | sed "s/^/$t: /" || true
    done
    ls -la "$WORK"/*.gguf
    stamp "build step done"
    exit 0
fi

if [ "$step" = bench ]; then
    set +e +o pipefail # a grep that finds nothing must not end the run
    nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw --format=csv,noheader
    stamp "test-backend-ops: Q4_S24 against the CPU backend"
    "$bin/test-backend-ops" test -b CUDA0 -o MUL_MAT -p type_a=q4_s24 > "$OUT/tbo-test-mul_mat.log" 2>&1 || true
    "$bin/test-backend-ops" test -b CUDA0 -o GET_ROWS -p type=q4_s24 > "$OUT/tbo-test-get_rows.log" 2>&1 || true
    grep -cE "OK$" "$OUT/tbo-test-mul_mat.log" | sed 's/^/MUL_MAT cases OK: /'
    grep -E "FAIL|not supported|tests passed|Backend CUDA0" "$OUT/tbo-test-mul_mat.log" | head -20
    grep -E "FAIL|OK$|tests passed" "$OUT/tbo-test-get_rows.log" | head -10

    stamp "test-backend-ops perf: MUL_MAT Q4_S24 and Q4_0"
    for t in q4_s24 q4_0; do
        "$bin/test-backend-ops" perf -b CUDA0 -o MUL_MAT -p "type_a=$t,type_b=f32,m=" > "$OUT/tbo-perf-$t.log" 2>&1 || true
        grep -E "MUL_MAT\(type_a=$t,type_b=f32,m=(4096|14336|1024),n=[0-9]+,k=(4096|14336),bs=\[1,1\],nr=\[1,1\]," \
            "$OUT/tbo-perf-$t.log" | sed -E 's/ +/ /g' || true
    done

    stamp "llama-bench"
    models=""
    for t in f16 Q4_K_M Q4_0 Q4_S24; do models="$models -m $WORK/llama8b-$t.gguf"; done
    "$bin/llama-bench" $models -ngl 99 -fa 1 -p 256,2048 -n 128,1024 -r 3 -o md 2>&1 | tee "$OUT/llama-bench.md"
    stamp "bench step done"
    exit 0
fi
echo "unknown step $step" >&2
exit 2
