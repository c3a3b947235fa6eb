#!/usr/bin/env bash
# One entry point per stage of the bundled-model pipeline (see docs/model.md).
#   model-pipeline/run.sh corpus      fetch + filter + dedup registry code   (here, ~6 min; --pin to re-resolve versions)
#   model-pipeline/run.sh tokenize    llama.cpp tokenization -> work/carry/*.xz (here, ~4 min on 2 cores)
#   model-pipeline/run.sh train       dense FIM training                     (GPU machine; see below)
#   model-pipeline/run.sh prune-carry stage the dense checkpoint + data subset for the prune call
#   model-pipeline/run.sh prune       SparseGPT 2:4 + SquareHead recovery    (GPU machine; see below)
#   model-pipeline/run.sh fim-tune    FIM-dense tuning of the dense model, then SparseGPT + short recovery
#                                     from the tuned model, in one call (GPU machine; uses work/carry-prune)
#   model-pipeline/run.sh export      write float GGUFs + verify them with node-llama-cpp (here)
#   model-pipeline/run.sh smoke       tiny CPU run of train/prune/export on random tokens (needs python3-torch)
#
# GPU stages go through the device tool's `run` from the repo root, e.g.
#   run(command="bash model-pipeline/run.sh train", carry=["model-pipeline/work/carry"], timeout_s=600)
#   run(command="bash model-pipeline/run.sh prune", carry=["model-pipeline/work/carry-prune"], timeout_s=600)
#   run(command="bash model-pipeline/run.sh fim-tune", carry=["model-pipeline/work/carry-prune"], timeout_s=420)
# and their $OUT files are copied back into model-pipeline/work/dense/, work/sparse/ and work/fimtune-raw/.
set -euo pipefail
cd "$(dirname "$0")/.."
P=model-pipeline
W=$P/work
PY=${PYTHON:-python3}
stage=${1:?stage: corpus|tokenize|train|prune-carry|prune|fim-tune|export|smoke}
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
export)
    PYTHON=$PY bash $P/export-and-check.sh ;;
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
