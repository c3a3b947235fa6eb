#!/usr/bin/env bash
# One entry point per stage of the bundled-model pipeline (see docs/model.md).
#   model-pipeline/run.sh corpus      fetch + filter + dedup registry code   (here, ~6 min; --pin to re-resolve versions)
#   model-pipeline/run.sh tokenize    llama.cpp tokenization -> work/carry/*.xz (here, ~4 min on 2 cores)
#   model-pipeline/run.sh train       dense FIM training                     (GPU machine; see below)
#   model-pipeline/run.sh prune-carry stage the dense checkpoint + data subset for the prune call
#   model-pipeline/run.sh prune       SparseGPT 2:4 + SquareHead recovery    (GPU machine; see below)
#   model-pipeline/run.sh fim-tune    FIM-dense tuning of the dense model, then SparseGPT + short recovery
#                                     from the tuned model, in one call (GPU machine; uses work/carry-prune)
#   model-pipeline/run.sh ckpt-from-gguf  fresh clone without work/*-fim: float checkpoints work/dense-gguf (teacher)
#                                     and work/sparse-gguf (student, exact 2:4 mask) from the committed GGUFs (here)
#   model-pipeline/run.sh recover-carry  stage the shipped sparse model, the dense teacher and data for `recover`
#                                     (after ckpt-from-gguf: STUDENT=model-pipeline/work/sparse-gguf
#                                     TEACHER=model-pipeline/work/dense-gguf; CARRY_MIB=58 caps the carry folder alone;
#                                     SKIP_DOCS=N takes documents from position N of the subsets' fixed order on)
#   model-pipeline/run.sh recover     continued fixed-mask distillation of the shipped sparse model (GPU machine)
#   model-pipeline/run.sh export      write float GGUFs + verify them with node-llama-cpp (here)
#   model-pipeline/run.sh quantize    the bundled files: converter round to nearest as template, then GPTQ 4-bit
#                                     (q4_s24 sparse, q4_0 dense), Q8_0 eval references, models/manifest.json (here,
#                                     CPU); SPARSE_QUANT=rtn ships the converter's round to nearest instead of GPTQ
#                                     (for a sparse twin from `recover --qat`)
#   model-pipeline/run.sh smoke       tiny CPU run of train/prune/export on random tokens (needs python3-torch)
#
# GPU stages go through the device tool's `run` from the repo root, e.g.
#   run(command="bash model-pipeline/run.sh train", carry=["model-pipeline/work/carry"], timeout_s=600)
#   run(command="bash model-pipeline/run.sh prune", carry=["model-pipeline/work/carry-prune"], timeout_s=600)
#   run(command="bash model-pipeline/run.sh fim-tune", carry=["model-pipeline/work/carry-prune"], timeout_s=420)
#   run(command="STOP_BY=225 MINUTES=3 timeout 250 bash model-pipeline/run.sh recover 2>&1 | grep -v Warning",
#       carry=["model-pipeline/work/carry-recover"], timeout_s=265)
# and their $OUT files are copied back into model-pipeline/work/dense/, work/sparse/, work/fimtune-raw/
# and work/recover-raw/ (the committed models/*.gguf must be moved aside for a call: they are 130 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
P=model-pipeline
W=$P/work
PY=${PYTHON:-python3}
stage=${1:?stage: corpus|tokenize|train|prune-carry|prune|fim-tune|ckpt-from-gguf|recover-carry|recover|export|quantize|smoke}
shift || true

case "$stage" in
corpus)
    node $P/corpus/fetch-corpus.mjs "$@" 2>&1 | tee $W/fetch.log ;;
tokenize)
    node $P/tokenize-corpus.mjs --workers "$(nproc)" ;;
train)
    # On the GPU machine: $OUT is the folder whose files come back.
    export PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    $PY $P/train.py --data $W/carry --out "${OUT:-$W/dense}" --minutes "${MINUTES:-7.5}" "$@" ;;
prune-carry)
    # The dense checkpoint plus as much training data as fits the 64 MiB carry limit.
    rm -rf $W/carry-prune && mkdir -p $W/carry-prune/dense $W/carry-prune/data
    cp $W/dense/dense.* $W/carry-prune/dense/
    cp $W/carry/val.* $W/carry-prune/data/
    $PY $P/subset_tokens.py --src $W/tokens --carry-full $W/carry --dst $W/carry-prune/data ;;
prune)
    export PYTHONUNBUFFERED=1
    $PY $P/prune_sparsegpt.py --dense-dir $W/carry-prune/dense --data $W/carry-prune/data \
        --out "${OUT:-$W/sparse}" --minutes "${MINUTES:-4}" "$@" ;;
fim-tune)
    # Denser FIM examples with editor-sized middles; the embedding stays frozen so that both
    # results fit in one call's returned files (merge_embedding.py restores it here).
    export PYTHONUNBUFFERED=1
    C=$W/carry-prune O=${OUT:-$W/fimtune-raw}
    F="--fim-rate 0.6 --fim-chunk 32:512 --short-middle 0.5 --freeze-embedding --log $O/log.jsonl"
    mkdir -p $O/ft $O/sp
    $PY $P/train.py --data $C/data --init-dir $C/dense --out $O/ft --minutes "${FT_MINUTES:-2}" --lr 3e-4 --warmup 20 --eval-every 40 $F
    $PY $P/prune_sparsegpt.py --dense-dir $O/ft --embedding-from $C/dense --data $C/data --out $O/sp --minutes "${MINUTES:-1.5}" $F ;;
ckpt-from-gguf)
    # The float checkpoints rebuilt from the committed files (docs/model.md, "Continued recovery from a fresh clone"):
    # Q8_0 dequantized and rounded to bf16; the sparse twin's 2:4 keep-masks from the Q4_S24 file's kept positions
    # (written as work/sparse-gguf/sparse.keep.npz, used by recover_carry.py); both share the Q8_0 embedding.
    N=sparse-complete-coder-34m
    $PY $P/gguf_to_ckpt.py --gguf models/$N-dense-q8_0.gguf --stem dense --out $W/dense-gguf
    $PY $P/gguf_to_ckpt.py --gguf models/$N-sparse24-q8_0.gguf --mask-from models/$N-sparse-q4_s24.gguf \
        --embedding-from models/$N-dense-q8_0.gguf --stem sparse --out $W/sparse-gguf ;;
recover-carry)
    # Student (shipped sparse-fim, exact) + teacher (dense-fim, matrices as Q8_0-style int8) + the shared
    # embedding once, then validation and a training subset filling the 64 MiB call (62 MiB by default,
    # counting the working tree; CARRY_MIB=58: the carry folder alone at most 58 MiB). SKIP_DOCS=N starts the subset
    # N documents into its fixed random order: documents an earlier recovery call did not see.
    rm -rf $W/carry-recover && mkdir -p $W/carry-recover/model $W/carry-recover/data
    TPY=${PYTHON:-/usr/bin/python3}  # numpy only: PYTHON=python3 where Debian's python3 has no numpy
    $TPY $P/recover_carry.py --student ${STUDENT:-$W/sparse-fim} --teacher ${TEACHER:-$W/dense-fim} --dst $W/carry-recover/model
    cp $W/carry/val.* $W/carry-recover/data/
    $TPY $P/subset_tokens.py --src $W/tokens --carry-full $W/carry --dst $W/carry-recover/data \
        ${CARRY_MIB:+--limit-mib $CARRY_MIB --no-tree} ${SKIP_DOCS:+--skip-docs $SKIP_DOCS} ;;
recover)
    # Continues the fixed-mask SquareHead distillation of the shipped sparse twin with the same FIM options
    # as fim-tune; training stops STOP_BY seconds after start at the latest so eval + save always finish.
    export PYTHONUNBUFFERED=1
    O=${OUT:-$W/recover-raw}
    mkdir -p $O/sp
    $PY $P/recover.py --carry $W/carry-recover --out $O/sp --log $O/log.jsonl --minutes "${MINUTES:-3}" \
        --stop-by "${STOP_BY:-205}" --fim-rate 0.6 --fim-chunk 32:512 --short-middle 0.5 "$@" ;;
export)
    PYTHON=$PY bash $P/export-and-check.sh ;;
quantize)
    # GPTQ needs numpy with an optimized BLAS: the python3 on PATH (GPTQ_PYTHON), not Debian's /usr/bin/python3.
    # ONLY=sparse (or ONLY=dense) re-makes one twin's 4-bit + Q8_0 files and leaves the other's committed files as they
    # are (e.g. after `recover`: the dense float model did not change); the manifest is always rewritten for all four.
    GPY=${GPTQ_PYTHON:-python3} N=sparse-complete-coder-34m
    for twin in sparse dense; do
        [ -n "${ONLY:-}" ] && [ "$ONLY" != $twin ] && continue
        if [ $twin = sparse ]; then
            npm run convert -- $W/$N-sparse24-f16.gguf $W/rtn-sparse-q4_s24.gguf --sparse24 --embeddings q8_0
            if [ "${SPARSE_QUANT:-gptq}" = rtn ]; then
                # after `recover --qat`: the model was trained through exactly this rounding (fake_quant.py)
                cp $W/rtn-sparse-q4_s24.gguf models/$N-sparse-q4_s24.gguf
            else
                $GPY $P/gptq_quant.py --format q4_s24 --f16 $W/$N-sparse24-f16.gguf --template $W/rtn-sparse-q4_s24.gguf \
                    --out models/$N-sparse-q4_s24.gguf --log $W/gptq-sparse-log.jsonl
            fi
            npm run convert -- $W/$N-sparse24-f16.gguf models/$N-sparse24-q8_0.gguf --dense q8_0 --embeddings q8_0
        else
            npm run convert -- $W/$N-dense-f16.gguf $W/rtn-dense-q4_0.gguf --dense q4_0 --embeddings q8_0
            $GPY $P/gptq_quant.py --format q4_0 --f16 $W/$N-dense-f16.gguf --template $W/rtn-dense-q4_0.gguf \
                --out models/$N-dense-q4_0.gguf --log $W/gptq-dense-log.jsonl
            npm run convert -- $W/$N-dense-f16.gguf models/$N-dense-q8_0.gguf --dense q8_0 --embeddings q8_0
        fi
    done
    node scripts/writeModelManifest.mjs $N-sparse-q4_s24.gguf $N-dense-q4_0.gguf \
        --dense-8bit $N-dense-q8_0.gguf --sparse-8bit $N-sparse24-q8_0.gguf ;;
smoke)
    T=$(mktemp -d)
    $PY - "$T" <<'EOF'
import sys, numpy as np
d = sys.argv[1]; r = np.random.default_rng(0)
for s, n in (("train", 300), ("val", 20)):
    lens = r.integers(10, 400, size=n).astype(np.uint32)
    r.integers(0, 32000, size=int(lens.sum())).astype(np.uint16).tofile(f"{d}/{s}.tok.u16"); lens.tofile(f"{d}/{s}.len.u32")
EOF
    PY=${PYTHON:-/usr/bin/python3}  # Debian's python3-torch lives there
    $PY $P/train.py --smoke --data "$T" --out "$T/dense"
    $PY $P/prune_sparsegpt.py --smoke --dense-dir "$T/dense" --data "$T" --out "$T/sparse"
    python3 $P/export_gguf.py --ckpt-dir "$T/dense" --stem dense --out "$T/smoke.gguf" --name smoke
    node $P/check-gguf.mjs "$T/smoke.gguf" "$T/logits.json"
    python3 $P/reference_logits.py --ckpt-dir "$T/dense" --stem dense --compare "$T/logits.json" ;;
*)
    echo "unknown stage $stage" >&2; exit 2 ;;
esac
