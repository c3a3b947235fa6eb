#!/usr/bin/env bash
# Writes the float GGUFs from the checkpoints in model-pipeline/work/ and checks each with
# node-llama-cpp on the CPU: FIM token wiring, logits equal to the numpy forward pass of the
# checkpoint, sample FIM / left-to-right completions (work/<variant>-samples.txt).
#   sparse-complete-coder-34m-{dense,sparse24}-f16.gguf           FIM-tuned twins (work/dense-fim, work/sparse-rec): the ones to ship
#                                                                 (sparse24 falls back to work/sparse-fim, the 1.5-min recovery, without recover-raw)
#   sparse-complete-coder-34m-pretrain-{dense,sparse24}-f16.gguf  pre-training result + 5-min recovery (work/dense, work/sparse)
set -euo pipefail
cd "$(dirname "$0")/.."
P=model-pipeline
W=$P/work
PY=${PYTHON:-python3}
NAME=sparse-complete-coder-34m
DESC="Small code-completion model (34M params, llama arch, 8 layers, dim 512, context 2048) trained from scratch with a fill-in-the-middle objective on permissively licensed npm and Debian registry code (not a fine-tune of any published model); deepseek-coder tokenizer."
# checkpoints saved with a frozen embedding get it back from the pre-trained dense model
if [ -d $W/fimtune-raw ]; then
    $PY $P/merge_embedding.py $W/fimtune-raw/ft dense $W/dense $W/dense-fim
    $PY $P/merge_embedding.py $W/fimtune-raw/sp sparse $W/dense $W/sparse-fim
fi
SPARSE=$W/sparse-fim
if [ -d $W/recover-raw/sp ]; then  # `run.sh recover`: the shipped sparse twin after the continued recovery
    # (EMB_BASE=model-pipeline/work/dense-gguf when the carry was built from the GGUFs: run.sh ckpt-from-gguf)
    $PY $P/merge_embedding.py $W/recover-raw/sp sparse ${EMB_BASE:-$W/dense} $W/sparse-rec
    SPARSE=$W/sparse-rec
fi
variants=(
  "dense:$W/dense-fim:dense:$NAME-dense:$DESC Dense twin; FIM-tuned with short middles."
  "sparse24:$SPARSE:sparse:$NAME-sparse24:$DESC Linear layers pruned to 2:4 with SparseGPT from the dense twin and recovered by distillation."
  "pretrain-dense:$W/dense:dense:$NAME-pretrain-dense:$DESC Pre-training checkpoint before FIM tuning."
  "pretrain-sparse24:$W/sparse:sparse:$NAME-pretrain-sparse24:$DESC 2:4 SparseGPT + 5-min distillation from the pre-training checkpoint."
)
for v in "${variants[@]}"; do
    [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" ${v%%:*} "* ]] && continue  # e.g. ONLY=sparse24
    IFS=: read -r tag dir stem name desc <<<"$v"
    [ -f "$dir/$stem.json" ] || { echo "skip $tag (no $dir/$stem.json)"; continue; }
    extra=(); [ "$stem" = sparse ] && extra=(--check-24)
    $PY $P/export_gguf.py --ckpt-dir "$dir" --stem $stem --out $W/$NAME-$tag-f16.gguf --name "$name" --description "$desc" "${extra[@]}"
    node $P/check-gguf.mjs $W/$NAME-$tag-f16.gguf $W/$tag-logits.json 2>&1 | grep --line-buffered -v '^\[node-llama-cpp\]\|^llama_model_load' > $W/$tag-samples.txt
    $PY $P/reference_logits.py --ckpt-dir "$dir" --stem $stem --compare $W/$tag-logits.json | tee -a $W/$tag-samples.txt | tail -1
done
sha256sum $W/$NAME-*-f16.gguf
