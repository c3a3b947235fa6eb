#!/usr/bin/env bash
# Packs what gpu-whole-model.sh needs on the GPU machine into .device-carry/ (ignored by git), from the project root:
#   lcpp.tar.xz    the patched llama.cpp tree without .git, models, docs and backends the CUDA build does not use
#                  (~7 MB; native-kernels/src is copied in on the GPU machine, so it is left out here)
#   vocab.gguf.xz  the Llama 3 tokenizer (models/ggml-vocab-llama-bpe.gguf of the same tree)
# Run `node native-kernels/build.mjs --prepare-only` first if the tree is not patched yet.
set -euo pipefail
tree=node_modules/node-llama-cpp/llama/llama.cpp
[ -f "$tree/ggml/src/ggml-q4-s24/q4_s24.h" ] || { echo "the tree is not prepared: node native-kernels/build.mjs --prepare-only" >&2; exit 1; }
mkdir -p .device-carry
excludes=(--exclude=./.git --exclude='./models/*' --exclude=./docs --exclude=./media --exclude='./build*'
          --exclude=./ggml/src/ggml-q4-s24)
for backend in vulkan sycl opencl metal hexagon cann webgpu openvino et; do excludes+=(--exclude=./ggml/src/ggml-$backend); done
tar -C "$tree" -cJf .device-carry/lcpp.tar.xz "${excludes[@]}" .
xz -T2 -c "$tree/models/ggml-vocab-llama-bpe.gguf" > .device-carry/vocab.gguf.xz
du -sh .device-carry/lcpp.tar.xz .device-carry/vocab.gguf.xz
