#!/usr/bin/env bash
# Packs what gpu-engine-path.sh needs on the GPU machine into .device-carry/ (ignored by git), from the project root:
#   node, npm and node_modules with the patched llama.cpp tree (../shared/tools/device-pack.sh: the tree is patched
#                  and our sources copied in first, by build.mjs --prepare-only)
#   vocab.gguf.xz  the Llama 3 tokenizer (models/ggml-vocab-llama-bpe.gguf of the same tree)
#   dist.tar.xz    the bundled CLIs (npm run build; dist/ is ignored by git, and a carried folder would be one of the
#                  device tool's eight carry paths), unpacked by gpu-engine-path.sh
# The working tree travels too: move the bundled models aside first (see native-kernels/README.md, "GPU machine").
set -euo pipefail
tree=node_modules/node-llama-cpp/llama/llama.cpp
node native-kernels/build.mjs --prepare-only
npm run build --silent
bash ../shared/tools/device-pack.sh
xz -T2 -c "$tree/models/ggml-vocab-llama-bpe.gguf" > .device-carry/vocab.gguf.xz
tar cJf .device-carry/dist.tar.xz dist
du -cb .device-carry | tail -1 | awk '{ printf "carry: %.1f MiB (with the working tree under 64 MiB)\n", $1 / 1048576 }'
