#!/usr/bin/env bash
# The extension's own path on the GPU, on a Llama-3.1-8B-shaped model: node-llama-cpp built with CUDA from our tree,
# its decode against llama-bench's (issue #4 item 5), and the typing replay against llama-server (issue #6's GPU rows),
# Q4_S24 and Q4_0 side by side. One CUDA compile serves all three: node-llama-cpp's build also builds llama.cpp's
# tools (llama-bench, llama-server, llama-quantize) in the same CMake tree. Run from the project root on the GPU
# machine, in two steps (each fits the device tool's 10-minute limit; the second right after the first):
#
#   native-kernels/bench/gpu-engine-path.sh build   # unpack, CUDA build (~6 min), 8B-shaped F16 written meanwhile
#   native-kernels/bench/gpu-engine-path.sh bench   # quantize Q4_0 + Q4_S24, llama-bench, bench:decode, bench:typing
#   native-kernels/bench/gpu-engine-path.sh whole-model # after build (and bench or not): issue #4 item 3's table, F16,
#                                                   # Q4_K_M, Q4_0 and Q4_S24 side by side: llama-bench pp256/pp2048/
#                                                   # tg128/tg1024 into $OUT/whole-model.md, bench:decode of F16 and
#                                                   # Q4_K_M (WHOLE_DECODE_MODELS) through node-llama-cpp
#   native-kernels/bench/gpu-engine-path.sh profile # instead of bench: one decode token's kernels (Nsight Compute),
#                                                   # into $OUT/decode-profile-<type>.md (PROFILE_MODELS, PROFILE_TOKENS,
#                                                   # PROFILE_BYTES=1 adds DRAM and L2 bytes per kernel)
#   native-kernels/bench/gpu-engine-path.sh timeline # after build: the decode tokens' kernels as they overlap in
#                                                   # llama-bench (kernel_timeline.cpp, CUPTI), each charged the time it
#                                                   # adds to the token, into $OUT/timeline-<type>.md (PROFILE_MODELS)
#   native-kernels/bench/gpu-engine-path.sh prefill # after build: llama-bench pp512/pp2048 of F16, Q4_0 and Q4_S24 at
#                                                   # micro-batches of 512, 1024 and 2048 into $OUT/prefill.md, and a
#                                                   # 2048-token prompt's kernels (PREFILL_PROFILE_MODELS, default
#                                                   # "f16 Q4_S24") into $OUT/prefill-timeline-<type>.md;
#                                                   # PREFILL_SWITCHES="A=1 B=2+C=3" adds Q4_S24's pp512/pp2048 under each
#                                                   # assignment against the defaults and its feed-forward / MUL_MAT
#                                                   # checks, into $OUT/prefill-switches.md (micro-batches:
#                                                   # PREFILL_SWITCH_UB, default 512, e.g. "512,2048"; rounds:
#                                                   # PREFILL_ROUNDS, default 3); PREFILL_TABLE_UB narrows the
#                                                   # table's micro-batches (default "512,1024,2048");
#                                                   # PREFILL_NCU=1 Nsight Compute's sections (stall reasons
#                                                   # too) for the first layer's big products
#                                                   # (into $OUT/prefill-ncu-<type>.txt); PREFILL_HOST=1 the
#                                                   # host time between micro-batches by type, Q4_S24 with F16
#                                                   # token embeddings too (into $OUT/prefill-host.md)
#   native-kernels/bench/gpu-engine-path.sh switches # after build: llama-bench tg128 of Q4_S24 with each setting of
#                                                   # SWITCHES="A=1 B=2,C=1 Q4_0@D=1 arg:-ot,arg:X=CUDA0" against the
#                                                   # defaults (Q4_0@: on Q4_0; arg: a llama-bench argument), rounds (ROUNDS, 3)
#                                                   # alternating, and their test-backend-ops checks
#                                                   # (CHECK_SETTINGS; "" for none), into $OUT/switches.md (a
#                                                   # llama-bench past SWITCH_TIMEOUT s, default 240, marks its
#                                                   # setting hung: not run again, no checks; a check past
#                                                   # CHECK_TIMEOUT s, default 400, is cut off); GREEDY_RUNS=N
#                                                   # adds N greedy completions per setting (GREEDY_SETTINGS) and Q4_0,
#                                                   # each a fresh process: are they all the same; SANITIZE="initcheck"
#                                                   # runs compute-sanitizer's tools over a short Q4_S24 completion
#   (bench: DECODE_MODELS="Q4_S24" limits bench:decode to one model; DECODE_THREADS="1 4" adds runs with those threads;
#   SKIP="one-sequence sparse-mma perf typing typing-group-glu1 variants ppl agreement" leaves out the one-sequence decode run, the
#   sparse tensor-core prefill runs, test-backend-ops' timings, the typing replays (all, or the one with
#   Q4_S24_CUDA_GROUP_GLU=1), llama-bench with our fusions switched off one by one, the perplexity / greedy
#   comparisons of the fused paths, and the check that identical processes give the same greedy output (GREEDY_RUNS
#   per model, default 3, into logs-bench.tgz's greedy-agreement.md and the step's output).
#   EXTRA_ENVS="Q4_S24_CUDA_NO_STAGED=1 ..." adds llama-bench decode runs of Q4_S24 with each assignment;
#   build: HARNESS_SEED=N also runs the kernel harness, alongside the build, into $OUT/harness.log; HARNESS_MODE=decode
#   (or another run.sh mode) narrows it; HARNESS_TIMEOUT (s, default 480) bounds it, so a kernel that hangs costs the
#   harness, not the build)
#
# Inputs, made here (see native-kernels/README.md, "GPU machine"): .device-carry/ from
# native-kernels/bench/pack-gpu-carry.sh (node, npm, node_modules with the patched llama.cpp tree, the Llama 3
# vocabulary, dist/ as dist.tar.xz). GPU=false runs the same steps on the CPU with a small model (SHAPE="--layers 2 --embd 256 --ff 768 --heads 4 --kv-heads 2"), which is how this script is tested
# without a GPU. Outputs go to $OUT (the device tool's folder) or ./gpu-bench-out: logs-<step>.tgz (every log),
# typing.json / typing.md and typing-group-glu1.json / .md.
set -euo pipefail
step=${1:?usage: gpu-engine-path.sh build|bench|whole-model|profile|timeline|prefill|switches}
root=$(pwd)
GPU=${GPU:-cuda}
WORK=${WORK:-/tmp/engine-path}
OUT=${OUT:-$root/gpu-bench-out}
SHAPE=${SHAPE:-}
KEYSTROKES=${KEYSTROKES:-60}
mkdir -p "$WORK" "$OUT"
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
# The device tool returns at most 8 files: most logs go to one folder, packed into $OUT at exit (a failure included;
# not when the tool kills a step at its time limit, so the build log and the typing table are written to $OUT).
LOGS=$WORK/logs-$step
rm -rf "$LOGS" && mkdir -p "$LOGS"
trap 'tar czf "$OUT/logs-$step.tgz" -C "$LOGS" . 2>/dev/null || true' EXIT
tree=node_modules/node-llama-cpp/llama/llama.cpp
if [ "$GPU" = cuda ]; then build_dir=node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda; ngl=99; device=gpu
else build_dir=node_modules/node-llama-cpp/llama/localBuilds/linux-x64; ngl=0; device=cpu; fi
bin=$build_dir/bin

# test-backend-ops checks against the CPU backend, one line each: "PREFIX op filter: N/M tests passed; K FAIL lines",
# each under the environment in the array `assignments` (callers set it; empty for none). CHECK: "op filter".
q4_s24_checks=("MUL_MAT type_a=q4_s24" "MUL_MAT_VEC_FUSION type=q4_s24" "Q4_S24_MUL_MAT_GROUP k=" "Q4_S24_MUL_MAT_ADD k="
               "Q4_S24_RMS_NORM_MUL_MAT k=" "Q4_S24_QKV_ROPE k=" "Q4_S24_ATTENTION_O n_head=")
run_checks() { # PREFIX CHECK...
    local prefix=$1 check op filter log passed
    shift
    for check in "$@"; do
        read -r op filter <<< "$check"
        log="$LOGS/test-backend-ops-${prefix//[^A-Za-z0-9_]/_}$op-${filter//[^A-Za-z0-9_]/}.log"
        env "${assignments[@]}" timeout -k 10 "${CHECK_TIMEOUT:-400}" "$bin/test-backend-ops" test -b CUDA0 -o "$op" \
            -p "$filter" > "$log" 2>&1 || true
        passed=$(grep -E "tests passed" "$log" | tr -d '\n' || true)
        echo "$prefix$op $filter: ${passed:-no result (see $(basename "$log"))}; $(grep -c FAIL "$log" || true) FAIL lines"
    done
}

# Whether greedy output is the same from run to run: RUNS fresh llama-completion processes of $model under the
# environment in `assignments` and the arguments in `extra_args` (a ~300-token prompt, then 64 tokens; flash attention
# on, as llama-bench runs it), their outputs counted by hash, failed runs apart. Different outputs from identical
# processes mean a race or a read of memory nothing wrote, not rounding (session 20 found one this way).
greedy_agreement() { # LABEL RUNS
    local label=$1 runs=$2 run text
    [ "$runs" -gt 0 ] || return 0
    head -c 1200 "$tree/src/llama-model.cpp" > "$WORK/greedy-prompt.txt"
    for run in $(seq "$runs"); do
        text=$(env "${assignments[@]}" timeout 120 "$bin/llama-completion" -m "$WORK/model-$model.gguf" -ngl "$ngl" \
            -fa on "${extra_args[@]}" -f "$WORK/greedy-prompt.txt" -n 64 --temp 0 --seed 1 -no-cnv --no-display-prompt \
            2> "$LOGS/greedy-${label//[^A-Za-z0-9_]/_}-$run.log") && [ -n "$text" ] \
            && printf '%s' "$text" | md5sum | cut -c1-12 || echo FAILED
    done | sort | uniq -c | LABEL=$label RUNS=$runs awk '
        $2 == "FAILED" { failed = $1; next }
        { d++; c = c " " $1 "x" $2 }
        END { printf "greedy %s runs, %s: %d distinct output(s)%s:%s%s\n", ENVIRON["RUNS"], ENVIRON["LABEL"], d,
                     (d > 1 ? " (DIFFERENT)" : ""), c, (failed ? ", " failed " run(s) FAILED" : "") }'
}

if [ -f .device-carry/device-unpack.sh ]; then
    # shellcheck source=/dev/null
    source .device-carry/device-unpack.sh > "$LOGS/unpack.log"
fi
# The bundled CLIs as pack-gpu-carry.sh packed them, in every step (a warm machine keeps an older dist/).
[ -f .device-carry/dist.tar.xz ] && tar xJf .device-carry/dist.tar.xz

if [ "$step" = build ]; then
    stamp "F16 model (background) + build, gpu $GPU"
    [ -f .device-carry/vocab.gguf.xz ] && xz -dc .device-carry/vocab.gguf.xz > "$WORK/vocab.gguf" \
        || cp "$tree/models/ggml-vocab-llama-bpe.gguf" "$WORK/vocab.gguf"
    # shellcheck disable=SC2086
    (PYTHONPATH=$tree/gguf-py python3 native-kernels/bench/make_synthetic_llama.py "$WORK/vocab.gguf" "$WORK/model-f16.gguf" \
        $SHAPE > "$LOGS/generate.log" 2>&1; echo $? > "$WORK/generate.rc") &
    # HARNESS_SEED=N: the kernel harness (cuda-harness/run.sh) alongside the build, into $OUT/harness.log (one device
    # call for both; its compile competes with the build's for the CPU, its run with nothing).
    if [ -n "${HARNESS_SEED:-}" ] && [ "$GPU" = cuda ]; then
        # (bounded, so that a kernel that hangs costs the harness, not the build: rc 124)
        (timeout -k 30 "${HARNESS_TIMEOUT:-480}" bash native-kernels/cuda-harness/run.sh "$HARNESS_SEED" ${HARNESS_MODE:-} \
            > "$OUT/harness.log" 2>&1; echo "harness rc=$?" >> "$OUT/harness.log") &
    fi
    t0=$(date +%s)
    # The tools come from the same CMake tree as the addon (no second CUDA compile); no network: no web UI download,
    # no HTTPS; CPU code for this machine only (GGML_NATIVE, node-llama-cpp's default; the portable variants are for
    # the .vsix).
    export NODE_LLAMA_CPP_CMAKE_OPTION_LLAMA_BUILD_TOOLS=ON NODE_LLAMA_CPP_CMAKE_OPTION_LLAMA_BUILD_SERVER=ON \
        NODE_LLAMA_CPP_CMAKE_OPTION_LLAMA_HTTPLIB=ON NODE_LLAMA_CPP_CMAKE_OPTION_LLAMA_OPENSSL=OFF \
        NODE_LLAMA_CPP_CMAKE_OPTION_LLAMA_BUILD_UI=OFF NODE_LLAMA_CPP_CMAKE_OPTION_LLAMA_USE_PREBUILT_UI=OFF
    [ "$GPU" = cuda ] && export NODE_LLAMA_CPP_CMAKE_OPTION_CMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90a}
    # node-llama-cpp's build straight away (the carried tree is patched; build.mjs's git checks need the tree's real
    # .git), with the current kernel sources; the plain folder name lets getLlama() find it, as build.mjs arranges.
    cp native-kernels/src/*.c native-kernels/src/*.h native-kernels/src/*.cu native-kernels/src/*.cuh "$tree/ggml/src/ggml-q4-s24/"
    # One method each addon patch adds (inline decode, decode ahead, sampling in the decode).
    for method in SetInlineDecode SetDecodeAhead SetBackendGreedy; do
        grep -q "$method" node_modules/node-llama-cpp/llama/addon/AddonContext.cpp \
            || { echo "node-llama-cpp's addon lacks $method: run node native-kernels/build.mjs --prepare-only before packing" >&2; exit 1; }
    done
    # The tree travels patched (its .git does not travel), so a carry packed before a patch changed builds the old
    # patch silently: the llama.cpp patches as they are now must reverse-apply, last first (later ones touch the same
    # hunks), on a copy of the files they touch (GIT_DIR: plain patch mode, even inside the project's own repository).
    scratch=$(mktemp -d)
    for p in native-kernels/patches/llama.cpp-*.diff; do
        sed -n 's|^+++ b/||p' "$p" | while read -r f; do mkdir -p "$scratch/$(dirname "$f")"; cp "$tree/$f" "$scratch/$f"; done
    done
    for p in $(ls native-kernels/patches/llama.cpp-*.diff | sort -r); do
        (cd "$scratch" && GIT_DIR=/nonexistent git apply --reverse "$root/$p" 2> /dev/null) \
            || { echo "the carried llama.cpp tree lacks $p as it is now: run node native-kernels/build.mjs --prepare-only and ../shared/tools/device-pack.sh again" >&2; exit 1; }
    done
    rm -rf "$scratch"
    # Inside the device tool's 10 minutes, so that the log comes back when it does not finish.
    CI=true timeout "${BUILD_TIMEOUT:-520}" node node_modules/node-llama-cpp/dist/cli/cli.js source build --gpu "$GPU" \
        --noUsageExample --noCustomCmakeBuildOptionsInBinaryFolderName > "$OUT/build.log" 2>&1 \
        || { tail -40 "$OUT/build.log"; exit 1; }
    # llama.cpp leaves its tests out of cmake-js builds; test-backend-ops needs only ggml, so it links to this build's
    # (alongside the tools build; optional: the bench step runs it when it is there).
    (g++ -O2 -std=c++17 -I"$tree/ggml/include" "$tree/tests/test-backend-ops.cpp" "$bin"/libggml.*so "$bin"/libggml-base.so \
        -Wl,-rpath,'$ORIGIN' -pthread -o "$bin/test-backend-ops" > "$LOGS/build-test-backend-ops.log" 2>&1 \
        || echo "test-backend-ops did not build (see build-test-backend-ops.log); the bench step skips its checks") &
    # The tools: built by the default target already when the options took; otherwise this builds just these.
    cmake --build "$build_dir" -j "$(nproc)" --target llama-bench llama-server llama-quantize llama-perplexity llama-completion \
        > "$LOGS/build-tools.log" 2>&1 \
        || { tail -30 "$LOGS/build-tools.log"; exit 1; }
    stamp "build took $(( $(date +%s) - t0 )) s"
    wait
    [ "$(cat "$WORK/generate.rc")" = 0 ] || { cat "$LOGS/generate.log"; exit 1; }
    ls -la "$WORK"/*.gguf "$bin"/llama-bench "$bin"/llama-server "$bin"/llama-quantize "$bin"/test-backend-ops || true
    stamp "build step done"
    exit 0
fi

# The given types (default Q4_0 and Q4_S24) from the F16 model, in parallel, each unless already there. Written under
# a temporary name and renamed when complete, so that a quantization cut short is never reused.
quantize_models() {
    local types=("$@") t
    [ ${#types[@]} -gt 0 ] || types=(Q4_0 Q4_S24)
    stamp "quantize ${types[*]} in parallel"
    local threads=$(( $(nproc) / ${#types[@]} > 0 ? $(nproc) / ${#types[@]} : 1 ))
    for t in "${types[@]}"; do
        [ -f "$WORK/model-$t.gguf" ] || { "$bin/llama-quantize" "$WORK/model-f16.gguf" "$WORK/model-$t.gguf.part" "$t" "$threads" \
            > "$LOGS/quantize-$t.log" 2>&1 && mv "$WORK/model-$t.gguf.part" "$WORK/model-$t.gguf"; } &
    done
    wait
    for t in "${types[@]}"; do [ -f "$WORK/model-$t.gguf" ] || { tail -20 "$LOGS/quantize-$t.log"; exit 1; }; done
}

# bench:decode (llama-bench vs node-llama-cpp's loop vs the engine) of each given type's model, when dist/ is there.
decode_bench() {
    [ -f dist/decodeBenchCli.mjs ] || return 0
    local t
    for t in "$@"; do
        stamp "bench:decode $t: llama-bench vs node-llama-cpp's loop vs the engine"
        node dist/decodeBenchCli.mjs --model "$WORK/model-$t.gguf" --device "$device" --llama-bench "$bin/llama-bench" \
            2>&1 | tee "$LOGS/decode-$t.md" || true
    done
}

# llama-bench of model TYPE with ARGs, without the kernel tracer and then with it (CSV into $LOGS/NAME.csv), the rows
# of TEST (and the tracer's own line) into $OUT/NAME.md and to stderr; prints the us per UNITS tokens without the tracer.
traced_llama_bench() { # TYPE NAME TEST UNITS ARG...
    local t=$1 name=$2 test=$3 units=$4
    shift 4
    "$bin/llama-bench" -m "$WORK/model-$t.gguf" -ngl "$ngl" -fa 1 "$@" -o md 2>&1 | grep "$test" \
        | sed "s/^/without the tracer: /" | tee "$OUT/$name.md" >&2
    CUDA_INJECTION64_PATH="$WORK/libkernel_timeline.so" KERNEL_TIMELINE_OUT="$LOGS/$name.csv" \
        "$bin/llama-bench" -m "$WORK/model-$t.gguf" -ngl "$ngl" -fa 1 "$@" -o md 2>&1 \
        | grep -E "$test|kernel_timeline" | sed "s/^/with the tracer: /" | tee -a "$OUT/$name.md" >&2
    grep -oE '[0-9.]+ ± ' "$OUT/$name.md" | head -1 | awk -v units="$units" '{ if ($1 > 0) print units * 1e6 / $1 }'
}

if [ "$step" = whole-model ]; then
    # Issue #4 item 3: the four types side by side in one llama-bench run (prefill 256 and 2048 tokens, decode 128 and
    # 1024), then node-llama-cpp's decode of the two types the bench step does not cover (it runs Q4_0 and Q4_S24).
    export LD_LIBRARY_PATH="$root/$bin:${LD_LIBRARY_PATH:-}"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader
    quantize_models Q4_K_M Q4_0 Q4_S24
    ls -l "$WORK"/model-*.gguf | awk '{ print $5, $9 }'
    stamp "llama-bench: F16, Q4_K_M, Q4_0, Q4_S24"
    models=()
    for t in f16 Q4_K_M Q4_0 Q4_S24; do models+=(-m "$WORK/model-$t.gguf"); done
    "$bin/llama-bench" "${models[@]}" -ngl "$ngl" -fa 1 -p 256,2048 -n 128,1024 -r 3 -o md 2>&1 | tee "$OUT/whole-model.md"
    # shellcheck disable=SC2086
    decode_bench ${WHOLE_DECODE_MODELS:-f16 Q4_K_M}
    stamp "whole-model step done"
    exit 0
fi

if [ "$step" = profile ]; then
    # Where one decode token's GPU time goes, kernel by kernel (Nsight Compute, one duration per launch; boost clocks
    # and warm caches as in llama-bench), for both 4-bit types, against llama-bench's own ms/token outside ncu.
    export LD_LIBRARY_PATH="$root/$bin:${LD_LIBRARY_PATH:-}"
    quantize_models
    tokens=${PROFILE_TOKENS:-8}
    for t in ${PROFILE_MODELS:-Q4_S24 Q4_0}; do
        stamp "decode profile $t"
        ms=$("$bin/llama-bench" -m "$WORK/model-$t.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 -o csv 2>/dev/null \
            | python3 -c 'import csv, sys; print(1000 / float(next(csv.DictReader(sys.stdin))["avg_ts"]))' || true)
        # PROFILE_BYTES=1: also the bytes each kernel reads from DRAM and moves through the L2 (more replay passes).
        metrics=gpu__time_duration.sum,launch__grid_size
        [ "${PROFILE_BYTES:-0}" = 1 ] && metrics=$metrics,dram__bytes_read.sum,lts__t_bytes.sum
        ncu --csv --page raw --metrics "$metrics" --print-units base --cache-control none --clock-control none \
            "$bin/llama-bench" -m "$WORK/model-$t.gguf" -ngl "$ngl" -fa 1 -p 0 -n "$tokens" -r 1 --no-warmup \
            > "$LOGS/ncu-decode-$t.csv" 2> "$LOGS/ncu-decode-$t.log" || { tail -20 "$LOGS/ncu-decode-$t.log"; continue; }
        python3 native-kernels/bench/summarize_decode_profile.py "$LOGS/ncu-decode-$t.csv" "$tokens" "$ms" \
            | tee "$OUT/decode-profile-$t.md"
    done
    stamp "profile step done"
    exit 0
fi

if [ "$step" = timeline ]; then
    # Where a decode token's time goes with kernels overlapping as llama-bench runs them (CUDA graphs, programmatic
    # launch), which Nsight Compute's serialized profile above cannot show: every kernel's real start and end, then per
    # kernel the time it adds to the token. llama-bench without the tracer first, to show what the tracer costs.
    export LD_LIBRARY_PATH="$root/$bin:${LD_LIBRARY_PATH:-}"
    quantize_models
    bash native-kernels/bench/build-kernel-timeline.sh "$WORK/libkernel_timeline.so"
    for t in ${PROFILE_MODELS:-Q4_S24 Q4_0}; do
        stamp "kernel timeline $t"
        token_us=$(traced_llama_bench "$t" "timeline-$t" tg64 1 -p 0 -n 64 -r 2)
        python3 native-kernels/bench/summarize_kernel_timeline.py "$LOGS/timeline-$t.csv" ${token_us:+--token-us "$token_us"} \
            | tee -a "$OUT/timeline-$t.md"
    done
    stamp "timeline step done"
    exit 0
fi

if [ "$step" = prefill ]; then
    # Where sparse prefill stands against F16's (issue #4's last prefill target): llama-bench prompts of 512 and 2048
    # tokens at micro-batches of 512, 1024 and 2048 tokens (where ggml takes the dequantize + cuBLAS path, every
    # micro-batch dequantizes each weight matrix once, so the micro-batch decides how often), into $OUT/prefill.md;
    # then one 2048-token prompt of each of PREFILL_PROFILE_MODELS kernel by kernel (the timeline tracer), into
    # $OUT/prefill-timeline-<type>.md.
    export LD_LIBRARY_PATH="$root/$bin:${LD_LIBRARY_PATH:-}"
    quantize_models
    stamp "llama-bench prefill: F16, Q4_0, Q4_S24 by micro-batch"
    models=()
    for t in f16 Q4_0 Q4_S24; do models+=(-m "$WORK/model-$t.gguf"); done
    "$bin/llama-bench" "${models[@]}" -ngl "$ngl" -fa 1 -p 512,2048 -n 0 -b 2048 -ub "${PREFILL_TABLE_UB:-512,1024,2048}" \
        -r 3 -o md 2>&1 \
        | grep -v "^ggml_cuda_init\|^  Device" | tee "$OUT/prefill.md"
    # PREFILL_SWITCHES="A=1 B=2": Q4_S24's pp512 / pp2048 under each assignment against the defaults (three rounds,
    # alternating), then the fused feed-forward's and the MUL_MAT checks under each (test-backend-ops against the CPU
    # backend).
    if [ -n "${PREFILL_SWITCHES:-}" ]; then
        for round in $(seq "${PREFILL_ROUNDS:-3}"); do
            for setting in - $PREFILL_SWITCHES; do
                assignments=()
                [ "$setting" = - ] || IFS=+ read -ra assignments <<< "$setting" # "A=1+B=2": both at once
                timeout -k 10 180 env "${assignments[@]}" "$bin/llama-bench" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" \
                    -fa 1 -p 512,2048 -n 0 -b 2048 -ub "${PREFILL_SWITCH_UB:-512}" -r 3 -o md 2>&1 | grep -E "pp(512|2048)" \
                    | sed "s/^/round $round, $setting: /" \
                    | tee -a "$OUT/prefill-switches.md"
            done
        done
        for setting in $PREFILL_SWITCHES; do
            IFS=+ read -ra assignments <<< "$setting"
            run_checks "$setting: " "MUL_MAT_VEC_FUSION type=q4_s24" "MUL_MAT type_a=q4_s24" | tee -a "$OUT/prefill-switches.md"
        done
    fi
    # PREFILL_NCU=1: Nsight Compute's speed-of-light, memory, compute, scheduler and warp-state sections (stall reasons;
    # the L2 and the shared memory in flight were ruled out in session 22) for the first layer's big products of a
    # 512-token prompt (our sparse kernel and cuBLAS's on Q4_S24, cuBLAS's on F16), into $OUT/prefill-ncu-<type>.txt.
    if [ "${PREFILL_NCU:-0}" = 1 ]; then
        for t in Q4_S24 f16; do
            stamp "Nsight Compute, prefill $t"
            ncu --kernel-name "regex:mul_mat_sparse_wgmma|gemm" --launch-count 8 --clock-control none \
                --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
                --section LaunchStats --section SchedulerStats --section WarpStateStats \
                "$bin/llama-bench" -m "$WORK/model-$t.gguf" -ngl "$ngl" -fa 1 -p 512 -n 0 -r 1 --no-warmup \
                > "$OUT/prefill-ncu-$t.txt" 2> "$LOGS/prefill-ncu-$t.log" || tail -5 "$LOGS/prefill-ncu-$t.log"
        done
    fi
    # PREFILL_HOST=1: the host's time between a prompt's micro-batches, by type. The token embeddings are read on the
    # CPU (one row per prompt token); llama-quantize gives Q4_S24 models Q4_S24 embeddings. Q4_S24 with them and with
    # F16 embeddings, against F16 and Q4_0: pp2048 (micro-batch 512) in three alternating rounds, then each one's phase
    # times (llama.cpp-host-phase-times.diff: llama_decode's and the scheduler's splits), into $OUT/prefill-host.md.
    if [ "${PREFILL_HOST:-0}" = 1 ]; then
        stamp "prefill host time by type"
        embd_f16=$WORK/model-Q4_S24-embd-f16.gguf
        [ -f "$embd_f16" ] || { "$bin/llama-quantize" --token-embedding-type f16 "$WORK/model-f16.gguf" "$embd_f16.part" \
            Q4_S24 "$(nproc)" > "$LOGS/quantize-embd-f16.log" 2>&1 && mv "$embd_f16.part" "$embd_f16"; } \
            || { tail -20 "$LOGS/quantize-embd-f16.log"; exit 1; }
        for round in 1 2 3; do
            for t in f16 Q4_0 Q4_S24 Q4_S24-embd-f16; do
                "$bin/llama-bench" -m "$WORK/model-$t.gguf" -ngl "$ngl" -fa 1 -p 2048 -n 0 -r 3 -o md 2>&1 \
                    | grep pp2048 | sed "s/^/round $round, $t: /" | tee -a "$OUT/prefill-host.md"
            done
        done
        for t in f16 Q4_0 Q4_S24 Q4_S24-embd-f16; do
            LLAMA_PHASE_TIMES=1 GGML_PHASE_TIMES=1 "$bin/llama-bench" -m "$WORK/model-$t.gguf" -ngl "$ngl" -fa 1 \
                -p 2048 -n 0 -r 2 -o md 2>&1 | grep -E "phase times|pp2048" | sed "s/^/$t: /" | tee -a "$OUT/prefill-host.md"
        done
    fi
    # The prompt's kernels, per model of PREFILL_PROFILE_MODELS (set but empty: none).
    bash native-kernels/bench/build-kernel-timeline.sh "$WORK/libkernel_timeline.so"
    for t in ${PREFILL_PROFILE_MODELS-f16 Q4_S24}; do
        stamp "prefill timeline $t"
        prompt_us=$(traced_llama_bench "$t" "prefill-timeline-$t" pp2048 2048 -p 2048 -n 0 -r 3)
        # By grid too: cuBLAS runs one kernel name for several matrix shapes.
        python3 native-kernels/bench/summarize_prefill_timeline.py "$LOGS/prefill-timeline-$t.csv" --by-grid \
            ${prompt_us:+--prompt-us "$prompt_us"} | tee -a "$OUT/prefill-timeline-$t.md"
    done
    stamp "prefill step done"
    exit 0
fi

if [ "$step" = switches ]; then
    # Kernel switches measured against the defaults in one run, rounds alternating so that drift hits every setting
    # alike: llama-bench tg128 of Q4_S24 per setting of SWITCHES (space-separated; "-" is the defaults, a setting joins
    # items with commas, see parse_setting), Q4_0 once per round for the ratio. Then each setting's test-backend-ops
    # checks of the Q4_S24 paths against the CPU backend (the switches pick other kernels; CHECK_SETTINGS narrows them).
    export LD_LIBRARY_PATH="$root/$bin:${LD_LIBRARY_PATH:-}"
    quantize_models
    set -f # settings are split on spaces, never expanded as file names (arg:ffn_?=CPU)
    settings="- ${SWITCHES:-}"
    # A setting: "-" (the defaults), or items joined by commas, each NAME=VALUE (the environment) or arg:ARGUMENT (one
    # more llama-bench / llama-completion argument); "Q4_0@" first runs it on the Q4_0 model (host-side switches move
    # both types). Sets model, assignments and extra_args.
    parse_setting() {
        local rest=$1 item items
        model=Q4_S24; assignments=(); extra_args=()
        if [ "$rest" = Q4_0 ]; then model=Q4_0; return; fi
        [ "$rest" = - ] && return
        if [[ $rest == Q4_0@* ]]; then model=Q4_0; rest=${rest#Q4_0@}; fi
        IFS=, read -ra items <<< "$rest"
        for item in "${items[@]}"; do
            if [[ $item == arg:* ]]; then extra_args+=("${item#arg:}")
            elif [[ $item == [A-Za-z_]*=* ]]; then assignments+=("$item")
            else echo "switches: '$item' in '$1' is neither NAME=VALUE nor arg:ARGUMENT" >&2; exit 2; fi
        done
    }
    for setting in $settings ${CHECK_SETTINGS:-} ${GREEDY_SETTINGS:-}; do parse_setting "$setting"; done # all valid, first
    results=$LOGS/switches.tsv
    : > "$results"
    hung=" " # settings whose llama-bench ran out of time: "hung", not run again (session 29 lost a call to one)
    for round in $(seq "${ROUNDS:-3}"); do
        stamp "round $round"
        for setting in Q4_0 $settings; do
            parse_setting "$setting"
            if [[ $hung == *" $setting "* ]]; then continue; fi
            started=$SECONDS
            ts=$(env "${assignments[@]}" timeout -k 10 "${SWITCH_TIMEOUT:-240}" "$bin/llama-bench" \
                -m "$WORK/model-$model.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 \
                -r 3 "${extra_args[@]}" -o csv 2> "$LOGS/switch-$round-${setting//[^A-Za-z0-9_]/_}.log" \
                | python3 -c 'import csv, sys; print(next(csv.DictReader(sys.stdin))["avg_ts"])') || ts=failed
            if [ "$ts" = failed ] && [ $((SECONDS - started)) -ge "${SWITCH_TIMEOUT:-240}" ]; then
                ts=hung
                hung+="$setting "
            fi
            printf '%s\t%s\t%s\n' "$round" "$setting" "$ts" | tee -a "$results"
        done
    done
    HUNG="$hung" python3 - "$results" << 'PY' | tee "$OUT/switches.md"
import os, statistics, sys
hung = os.environ["HUNG"]
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
by_setting = {}
for rnd, setting, ts in rows:
    by_setting.setdefault(setting, {})[rnd] = float(ts) if ts not in ("failed", "hung") else None
print("| setting | tg128 t/s per round | mean | vs defaults, same round (mean) | vs Q4_0 (mean) |")
print("|---|---|---:|---:|---:|")
for setting, per_round in by_setting.items():
    ok = {r: v for r, v in per_round.items() if v is not None}
    if not ok:
        print(f"| {setting} | {'hung (SWITCH_TIMEOUT)' if ' ' + setting + ' ' in hung else 'failed'} | | | |")
        continue
    base = by_setting["Q4_0" if setting == "Q4_0" or setting.startswith("Q4_0@") else "-"]  # the same model's defaults
    vs_base = [v / base[r] for r, v in ok.items() if base.get(r)]
    vs_q4_0 = [v / by_setting["Q4_0"][r] for r, v in ok.items() if by_setting["Q4_0"].get(r)]
    ratio = lambda values: f"{statistics.mean(values):.3f}x" if values else "no baseline"
    print(f"| {setting} | {' / '.join(f'{v:.1f}' for v in ok.values())} | {statistics.mean(ok.values()):.1f} | "
          f"{ratio(vs_base)} | {ratio(vs_q4_0)} |")
PY
    for setting in ${CHECK_SETTINGS-$settings}; do
        parse_setting "$setting"
        [ "$model" = Q4_S24 ] || continue
        if [[ $hung == *" $setting "* ]]; then echo "$setting: checks not run (its llama-bench hung)"; continue; fi
        run_checks "$setting: " "${q4_s24_checks[@]}"
    done | tee -a "$OUT/switches.md"
    # GREEDY_RUNS=N: whether the greedy output is the same from run to run, each run a fresh process (a ~300-token
    # prompt, then 64 tokens), per setting of GREEDY_SETTINGS (default: the same settings) and for Q4_0: different
    # outputs from identical processes mean a race or a read of memory nothing wrote, not rounding.
    for setting in Q4_0 ${GREEDY_SETTINGS-$settings}; do
        [ "${GREEDY_RUNS:-0}" -gt 0 ] || break
        if [[ $hung == *" $setting "* ]]; then echo "$setting: greedy runs not made (its llama-bench hung)"; continue; fi
        parse_setting "$setting"
        greedy_agreement "$setting" "$GREEDY_RUNS"
    done | tee -a "$OUT/switches.md"
    # SANITIZE="initcheck memcheck ...": compute-sanitizer's tools over one short greedy completion of the Q4_S24 model
    # with the defaults (a ~60-token prompt, then SANITIZE_TOKENS tokens, default 4), each cut off after
    # SANITIZE_TIMEOUT seconds (default 200), SANITIZE_ARGS more llama-completion arguments ("-ub 1": the prompt
    # through the decode kernels): where a kernel reads device memory nothing wrote (initcheck), outside its
    # allocation (memcheck) or shared memory another thread writes unsynchronized (racecheck), with the first lines.
    head -c 240 "$tree/src/llama-model.cpp" > "$WORK/sanitize-prompt.txt"
    for tool in ${SANITIZE:-}; do
        log=$LOGS/sanitize-$tool.log
        rc=0
        timeout "${SANITIZE_TIMEOUT:-200}" compute-sanitizer --tool "$tool" --print-limit 20 --error-exitcode 9 \
            "$bin/llama-completion" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -f "$WORK/sanitize-prompt.txt" \
            -n "${SANITIZE_TOKENS:-4}" --temp 0 --seed 1 -no-cnv --no-display-prompt ${SANITIZE_ARGS:-} > "$log" 2>&1 \
            || rc=$?
        echo "sanitize $tool: exit status $rc (9: errors found; 124: cut off); $(grep -m1 "ERROR SUMMARY" "$log" || echo "no summary")"
        grep "^=========" "$log" | grep -v "ERROR SUMMARY" | head -40 | cut -c1-200 || true
    done | tee -a "$OUT/switches.md"
    stamp "switches step done"
    exit 0
fi

if [ "$step" = bench ]; then
    export LD_LIBRARY_PATH="$root/$bin:${LD_LIBRARY_PATH:-}"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader
    quantize_models

    if [ -x "$bin/test-backend-ops" ] && [ "$GPU" = cuda ]; then
        stamp "test-backend-ops: Q4_S24 matmuls and the gate/up fusion against the CPU backend, then their times"
        # (MUL_MAT type_a=q6_K: the batch-1 Q6_K mat-vec, every model's output matrix; ARGMAX: the greedy argmax.)
        assignments=()
        run_checks "" "${q4_s24_checks[@]}" "GET_ROWS type=q4_s24" "MUL_MAT type_a=q6_K" "ARGMAX type=f32"
        # The Q6_K mat-vec timed against ggml's on the 8B output matrix, same run.
        for off in 0 1; do
            Q4_S24_CUDA_NO_Q6_K=$off "$bin/test-backend-ops" perf -b CUDA0 -o MUL_MAT -p "type_a=q6_K,type_b=f32,m=128256,n=1," \
                2>&1 | grep "us/run" | sed "s/^/Q4_S24_CUDA_NO_Q6_K=$off: /" || true
        done
        # The greedy argmax against ggml's over Llama 3's vocabulary (the backend greedy sampler's one op), same run.
        for off in 0 1; do
            Q4_S24_CUDA_NO_ARGMAX=$off "$bin/test-backend-ops" perf -b CUDA0 -o ARGMAX -p "ne=\[128256,1,1,1\]" \
                2>&1 | grep "us/run" | sed "s/^/Q4_S24_CUDA_NO_ARGMAX=$off: /" || true
        done
        # By default a GLU's gate and up go to the gate/up + SWIGLU kernel; with this the q/k/v grouping takes them.
        assignments=(Q4_S24_CUDA_GROUP_GLU=1)
        run_checks "Q4_S24_CUDA_GROUP_GLU=1: " "MUL_MAT_VEC_FUSION type=q4_s24"
        # The default: ggml's attention combine launch quantizing the o-projection's input; checked without it too.
        assignments=(Q4_S24_CUDA_ATTENTION_QUANT=0)
        run_checks "Q4_S24_CUDA_ATTENTION_QUANT=0: " "Q4_S24_ATTENTION_O n_head="
        # ggml-cuda's debug line about CUDA graph warm-up splits a result line in two: joined back here.
        unsplit() { perl -0pe 's/ggml_backend_cuda_graph_compute: CUDA graph warmup \w+\n//g'; }
        [[ " ${SKIP:-} " == *" perf "* ]] || "$bin/test-backend-ops" perf -b CUDA0 -o MUL_MAT_VEC_FUSION -p "n=14336" 2>&1 | unsplit \
            | tee "$LOGS/perf-fusion.log" | grep "us/run" || true
        [[ " ${SKIP:-} " == *" perf "* ]] || "$bin/test-backend-ops" perf -b CUDA0 -o MUL_MAT -p "type_a=q4_(0|s24),type_b=f32,m=(1024|4096|14336),n=(1|2|4|8)," \
            2>&1 | unsplit | tee "$LOGS/perf-mul-mat.log" | grep "us/run" || true
    fi

    if [[ " ${SKIP:-} " != *" agreement "* ]]; then
        stamp "greedy output of identical processes, each model"
        for model in Q4_0 Q4_S24; do
            assignments=(); extra_args=()
            greedy_agreement "$model" "${GREEDY_RUNS:-3}"
        done | tee "$LOGS/greedy-agreement.md" # in logs-bench.tgz and this step's output (the tool returns 8 files)
    fi
    stamp "llama-bench decode (the reference for bench:decode); Q4_S24 again without its fusion, and without PDL"
    "$bin/llama-bench" -m "$WORK/model-Q4_0.gguf" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 -o md \
        2>&1 | tee "$LOGS/llama-bench.md"
    # EXTRA_ENVS="NAME=VALUE ...": Q4_S24 again with each assignment (a switch being measured), in the same run.
    for assignment in ${EXTRA_ENVS:-}; do
        env "$assignment" "$bin/llama-bench" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 -o md \
            2>&1 | tee "$LOGS/llama-bench-$assignment.md" | awk -v p="$assignment" '{ print p ": " $0 }' || true
    done
    if [[ " ${SKIP:-} " != *" variants "* ]]; then
        Q4_S24_CUDA_NO_FUSION=1 "$bin/llama-bench" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 -o md \
            2>&1 | tee "$LOGS/llama-bench-no-fusion.md"
        Q4_S24_CUDA_PDL=0 "$bin/llama-bench" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 -o md \
            2>&1 | tee "$LOGS/llama-bench-no-pdl.md"
        # The RMS norm + quantization launch alone off (ggml's norm kernel, then a quantization launch).
        Q4_S24_CUDA_NO_NORM_FUSION=1 "$bin/llama-bench" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 \
            -o md 2>&1 | tee "$LOGS/llama-bench-no-norm-fusion.md"

        # q, k and v in one launch: llama-bench without it, and with gate/up grouped too (Q4_S24_CUDA_GROUP_GLU=1) instead
        # of left to the gate/up + SWIGLU kernel; ggml's own alternative (GGML_CUDA_GRAPH_OPT=1: q, k and v on
        # concurrent streams, which turns the grouping off) for both types.
        stamp "q/k/v in one launch: llama-bench without it, gate/up grouped too, GGML_CUDA_GRAPH_OPT=1 instead"
        Q4_S24_CUDA_NO_GROUP=1 "$bin/llama-bench" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 -o md \
            2>&1 | tee "$LOGS/llama-bench-no-group.md" || true
        Q4_S24_CUDA_GROUP_GLU=1 "$bin/llama-bench" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 -o md \
            2>&1 | tee "$LOGS/llama-bench-group-glu1.md" || true
        GGML_CUDA_GRAPH_OPT=1 "$bin/llama-bench" -m "$WORK/model-Q4_0.gguf" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 \
            -p 0 -n 128 -r 3 -o md 2>&1 | tee "$LOGS/llama-bench-graph-opt.md" || true
    fi
    # Our fused paths against the plain one (Q4_S24_CUDA_NO_FUSION=1) through the whole model, in batches of 1 and 4
    # (the mat-vec paths): perplexity over the same text must agree to rounding, within 2e-3 (summing in another
    # order, as the SWIGLU kernel and the group at batch > 1 do, moved it by 0.7-1.1e-3 on the H200). The synthetic
    # model's random weights make greedy tokens flip on rounding alone, so tokens are compared only where the
    # computation is bitwise the same: Q4_S24_CUDA_GROUP_GLU=1 at batch 1, whose grouped launches sum every row as the
    # plain ones do (with ggml's norm kernel: the fused norm sums the squares in another order; and with ggml's rope:
    # the group's fused rotation rounds differently, so greedy tokens flipped from the first one in session 15, while
    # test-backend-ops' Q4_S24_QKV_ROPE cases check it against the CPU and the perplexity runs above bound its effect).
    # GGML_CUDA_GRAPH_OPT=1 (ggml's concurrent q/k/v streams, not used by the extension) measured 2.1% off at batch 1
    # in session 8: the runs with PDL off and with all our fusions off, and Q4_0's own comparison, say whose it is.
    ppl() { # type, name, batch, then environment assignments
        local type=$1 name=$2 batch=$3; shift 3
        env "$@" timeout 120 "$bin/llama-perplexity" -m "$WORK/model-$type.gguf" -ngl "$ngl" -f "$tree/src/llama-model.cpp" \
            -c 32 -b "$batch" -ub "$batch" --chunks 16 > "$LOGS/ppl-$type-$name-b$batch.log" 2>&1 || true
        sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$LOGS/ppl-$type-$name-b$batch.log"
    }
    compare() { # type, name, batch, plain perplexity, perplexity
        awk -v t="$1" -v n="$2" -v bt="$3" -v a="$4" -v b="$5" 'BEGIN {
            if (a == "" || b == "" || a + 0 <= 0) { printf "perplexity %s, batch %s, %s vs plain: MISSING or not a perplexity (ppl-*.log)\n", t, bt, n; exit }
            d = (a - b) / a; if (d < 0) d = -d
            printf "perplexity %s, batch %s, %s vs plain: %s vs %s, relative difference %.2e: %s\n", t, bt, n, b, a, d, d <= 2e-3 ? "agree" : "DIFFER" }'
    }
    if [[ " ${SKIP:-} " != *" ppl "* ]]; then
        [ -x "$bin/llama-perplexity" ] && [ -x "$bin/llama-completion" ] \
            || echo "llama-perplexity or llama-completion was not built: the comparisons below report MISSING"
        for batch in 1 4; do
            plain=$(ppl Q4_S24 plain "$batch" Q4_S24_CUDA_NO_FUSION=1)
            for run in "default Q4_S24_CUDA_NO_FUSION=0" "no-norm-fusion Q4_S24_CUDA_NO_NORM_FUSION=1" \
                       "no-rope-fusion Q4_S24_CUDA_NO_ROPE_FUSION=1" \
                       "no-group Q4_S24_CUDA_NO_GROUP=1" "group-glu1 Q4_S24_CUDA_GROUP_GLU=1" \
                       "graph-opt GGML_CUDA_GRAPH_OPT=1" "graph-opt-pdl0 GGML_CUDA_GRAPH_OPT=1 Q4_S24_CUDA_PDL=0" \
                       "graph-opt-no-fusion GGML_CUDA_GRAPH_OPT=1 Q4_S24_CUDA_NO_FUSION=1"; do
                set -- $run
                compare Q4_S24 "$1" "$batch" "$plain" "$(ppl Q4_S24 "$1" "$batch" "${@:2}")"
            done
            compare Q4_0 graph-opt "$batch" "$(ppl Q4_0 plain "$batch" GGML_CUDA_GRAPH_OPT=0)" "$(ppl Q4_0 graph-opt "$batch" GGML_CUDA_GRAPH_OPT=1)"
        done
        for name in plain group-glu1; do
            env Q4_S24_CUDA_NO_FUSION=$([ $name = plain ] && echo 1 || echo 0) Q4_S24_CUDA_GROUP_GLU=1 \
                Q4_S24_CUDA_NO_NORM_FUSION=1 Q4_S24_CUDA_NO_ROPE_FUSION=1 timeout 90 \
                "$bin/llama-completion" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -b 1 -ub 1 -p "int main(void) {" -n 96 \
                --temp 0 --seed 1 -no-cnv --no-display-prompt > "$LOGS/greedy-$name.txt" 2> "$LOGS/greedy-$name.log" || true
        done
        if [ -s "$LOGS/greedy-plain.txt" ] && cmp -s "$LOGS/greedy-plain.txt" "$LOGS/greedy-group-glu1.txt"; then
            echo "greedy 96 tokens, batch 1, Q4_S24_CUDA_GROUP_GLU=1 vs plain: identical"
        else
            echo "greedy 96 tokens, batch 1, Q4_S24_CUDA_GROUP_GLU=1 vs plain: DIFFERENT or missing (greedy-*.txt/log)"
        fi
    fi
    # Rounds alternating the two types (the ratio moves between runs; same-run rounds show how much).
    for round in 1 2 3; do
        "$bin/llama-bench" -m "$WORK/model-Q4_0.gguf" -m "$WORK/model-Q4_S24.gguf" -ngl "$ngl" -fa 1 -p 0 -n 128 -r 3 \
            -o md 2>&1 | grep -E "^\| llama" | sed "s/^/round $round: /" | tee -a "$LOGS/llama-bench-rounds.md" || true
    done

    if [ -x "$bin/test-backend-ops" ] && [ "$GPU" = cuda ] && [[ " ${SKIP:-} " != *" sparse-mma "* ]]; then
        # Prefill on sparse tensor cores for every shape: checked through ggml (1: the GPU's best kernel, wgmma.sp on
        # Hopper; 2: mma.sp), then timed against the default, dequantize + cuBLAS (0) and the F16 model, same run.
        stamp "prefill: sparse tensor cores (Q4_S24_CUDA_SPARSE_MMA=1, 2) against dequantize + cuBLAS and F16"
        for v in 1 2; do
            assignments=(Q4_S24_CUDA_SPARSE_MMA=$v)
            run_checks "Q4_S24_CUDA_SPARSE_MMA=$v: " "MUL_MAT type_a=q4_s24"
        done
        # default: the sparse kernels only where faster (feed-forward matrices at up to 512 tokens, Hopper); 0: never.
        for v in default 0 1 2; do
            env $([ $v = default ] || echo Q4_S24_CUDA_SPARSE_MMA=$v) "$bin/llama-bench" -m "$WORK/model-Q4_S24.gguf" \
                -ngl "$ngl" -fa 1 -p 512,2048 -n 0 -r 3 -o md 2>&1 | tee "$LOGS/llama-bench-prefill-sparse-mma-$v.md" || true
        done
        "$bin/llama-bench" -m "$WORK/model-f16.gguf" -ngl "$ngl" -fa 1 -p 512,2048 -n 0 -r 3 -o md 2>&1 \
            | tee "$LOGS/llama-bench-prefill-f16.md" || true
    fi

    if [ -f dist/decodeBenchCli.mjs ]; then
        # shellcheck disable=SC2086
        decode_bench ${DECODE_MODELS:-Q4_0 Q4_S24}
        # The same with one sequence per context (llama-bench's shape; the engine keeps 4, one per recent file): what the
        # sequence pool costs per token on the GPU (on the CPU: nothing measurable).
        if [[ " ${SKIP:-} " != *" one-sequence "* ]]; then
            stamp "bench:decode Q4_S24, one sequence per context"
            node dist/decodeBenchCli.mjs --model "$WORK/model-Q4_S24.gguf" --device "$device" --llama-bench "$bin/llama-bench" \
                --sequences 1 2>&1 | tee "$LOGS/decode-Q4_S24-1seq.md" || true
        fi
        # CPU threads of the contexts and llama-bench (default: all math cores; with the model on the GPU only the token
        # embedding's row lookup runs on the CPU, and a spinning thread team competes with JavaScript for the cores).
        for n in ${DECODE_THREADS:-}; do
            stamp "bench:decode Q4_S24, $n CPU thread(s)"
            node dist/decodeBenchCli.mjs --model "$WORK/model-Q4_S24.gguf" --device "$device" --llama-bench "$bin/llama-bench" \
                --threads "$n" 2>&1 | tee "$LOGS/decode-Q4_S24-threads$n.md" || true
        done
    fi

    [[ " ${SKIP:-} " == *" typing "* ]] && { stamp "bench step done"; exit 0; }
    stamp "bench:typing: engine vs llama-server, one by one, 64-token completions, 2k-token prompts"
    node dist/typingBenchCli.mjs --model "$WORK/model-Q4_S24.gguf" --model "$WORK/model-Q4_0.gguf" --device "$device" \
        --llama-server "$bin/llama-server" --pacing one-by-one --fixed-tokens 64 --context-tokens 2048 \
        --source "$tree/src/llama-model.cpp" --keystrokes "$KEYSTROKES" --out "$OUT/typing.json" 2>&1 | tee "$OUT/typing.md"
    # The same replay with gate/up grouped (then ggml's SWIGLU) instead of the gate/up + SWIGLU kernel: the engine
    # only, Q4_S24 only (llama-bench above measures the same switch).
    if [[ " ${SKIP:-} " != *" typing-group-glu1 "* ]]; then
        stamp "bench:typing, Q4_S24 engine only, Q4_S24_CUDA_GROUP_GLU=1"
        Q4_S24_CUDA_GROUP_GLU=1 node dist/typingBenchCli.mjs --model "$WORK/model-Q4_S24.gguf" --device "$device" \
            --pacing one-by-one --fixed-tokens 64 --context-tokens 2048 --source "$tree/src/llama-model.cpp" \
            --keystrokes "$KEYSTROKES" --out "$OUT/typing-group-glu1.json" 2>&1 | tee "$OUT/typing-group-glu1.md" || true
    fi
    stamp "bench step done"
    exit 0
fi
echo "unknown step $step" >&2
exit 2
