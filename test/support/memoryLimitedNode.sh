#!/usr/bin/env bash
# Runs node with its data segment (heap and private mappings) limited to ENGINE_DATA_LIMIT_KB, so that large
# allocations in llama.cpp really fail. (A virtual-memory limit cannot be used: V8 reserves far more address space.)
# ENGINE_NODE: the node binary to run (the tests pass their own, process.execPath).
ulimit -d "${ENGINE_DATA_LIMIT_KB:?}"
exec "${ENGINE_NODE:-node}" "$@"
