#!/usr/bin/env bash
# Builds the CUPTI tracer (kernel_timeline.cpp) against this machine's CUDA toolkit:
#   native-kernels/bench/build-kernel-timeline.sh OUT.so   the injection library (gpu-engine-path.sh's timeline step)
#   native-kernels/bench/build-kernel-timeline.sh --check  syntax only, no CUPTI library needed (run.sh --compile-only);
#                                                          a toolkit without CUPTI headers is reported, not an error
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:?usage: build-kernel-timeline.sh OUT.so | --check}
# The toolkit's folder (nvcc on the PATH may be a wrapper script elsewhere, as on the CI machine).
cuda=$(for d in "${CUDA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v nvcc || echo /nonexistent)")")")" \
           /usr/local/cuda /usr/local/cuda-*; do
    [ -n "$d" ] && [ -f "$d/include/cuda_runtime.h" ] && { echo "$d"; break; }
done)
if [ -z "$cuda" ] || { [ ! -f "$cuda/include/cupti.h" ] && [ ! -f "$cuda/extras/CUPTI/include/cupti.h" ]; }; then
    echo "no CUDA toolkit with CUPTI headers found${cuda:+ (in $cuda)}: kernel_timeline.cpp not built"
    [ "$target" = --check ] && exit 0
    exit 1
fi
includes=(-I"$cuda/include" -I"$cuda/extras/CUPTI/include")
if [ "$target" = --check ]; then
    g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only "${includes[@]}" "$here/kernel_timeline.cpp"
    echo "compiled kernel_timeline.cpp (syntax only, CUPTI headers of $cuda)"
    exit 0
fi
lib=$(find "$cuda"/ -name 'libcupti.so' -print -quit)
[ -n "$lib" ] || { echo "no libcupti.so under $cuda" >&2; exit 1; }
g++ -O2 -std=c++17 -shared -fPIC "${includes[@]}" "$here/kernel_timeline.cpp" -L"$(dirname "$lib")" -lcupti \
    -Wl,-rpath,"$(dirname "$lib")" -o "$target"
