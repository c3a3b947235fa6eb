#!/usr/bin/env python3
"""Writes a Llama-3.1-8B-shaped GGUF (F16 linear weights, F32 norms) with synthetic 2:4-sparse weights and the
real Llama 3 tokenizer copied from llama.cpp's vocab-only GGUF. For speed benchmarks: kernel speed does not depend
on weight values, but every linear weight already has the 2:4 pattern (two zeros in every group of 4 input
columns), so Q4_S24 keeps exactly the values the dense types see. llama-quantize then makes Q4_0 / Q4_K_M / Q4_S24.

Usage: make_synthetic_llama.py VOCAB.gguf OUT.gguf [--layers 32 --embd 4096 --ff 14336 --heads 32 --kv-heads 8]
Needs numpy and llama.cpp's gguf-py (PYTHONPATH=<llama.cpp>/gguf-py).
"""
import argparse

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter


def copy_tokenizer(reader: GGUFReader, writer: GGUFWriter) -> int:
    """Copies every tokenizer.* key; returns the vocabulary size."""
    n_vocab = 0
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        value = field.contents()
        if vtype == GGUFValueType.ARRAY:
            writer.add_key_value(name, value, vtype, sub_type=field.types[-1])
            if name == "tokenizer.ggml.tokens":
                n_vocab = len(value)
        else:
            writer.add_key_value(name, value, vtype)
    if n_vocab == 0:
        raise SystemExit("the vocab file has no tokenizer.ggml.tokens")
    return n_vocab


def sparse_pool(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random fp16 values where each group of 4 consecutive values has exactly 2 zeros at random positions."""
    values = rng.standard_normal(size, dtype=np.float32).reshape(-1, 4) * 0.02
    keep_rank = np.argsort(rng.random(values.shape), axis=1)  # a random permutation per group
    values[keep_rank >= 2] = 0.0                               # the 2 positions ranked 2 and 3 are zeroed
    return values.reshape(-1).astype(np.float16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vocab")
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--embd", type=int, default=4096)
    ap.add_argument("--ff", type=int, default=14336)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    writer = GGUFWriter(args.out, "llama")
    n_vocab = copy_tokenizer(GGUFReader(args.vocab), writer)
    head_dim = args.embd // args.heads
    writer.add_name("synthetic-llama-3.1-8b-shape-2of4")
    writer.add_context_length(131072)
    writer.add_embedding_length(args.embd)
    writer.add_block_count(args.layers)
    writer.add_feed_forward_length(args.ff)
    writer.add_head_count(args.heads)
    writer.add_head_count_kv(args.kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(500000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(1)  # mostly F16

    # One random pool (a multiple of 4 long) tiled over every tensor: fast, non-constant, 2:4 in every row
    # because every row length is a multiple of 4.
    pool = sparse_pool(np.random.default_rng(args.seed), 1 << 24)

    def weight(rows: int, cols: int, offset: int) -> np.ndarray:
        n = rows * cols
        start = (offset * 4096) % pool.size  # different tensors start at different places of the pool
        reps = -(-(start + n) // pool.size)
        return np.tile(pool, reps)[start:start + n].reshape(rows, cols)

    ones = np.ones(args.embd, dtype=np.float32)
    kv = args.kv_heads * head_dim
    writer.add_tensor("token_embd.weight", weight(n_vocab, args.embd, 1))
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", weight(n_vocab, args.embd, 2))
    for i in range(args.layers):
        p = f"blk.{i}."
        o = 16 * (i + 1)
        writer.add_tensor(p + "attn_norm.weight", ones)
        writer.add_tensor(p + "attn_q.weight", weight(args.embd, args.embd, o + 1))
        writer.add_tensor(p + "attn_k.weight", weight(kv, args.embd, o + 2))
        writer.add_tensor(p + "attn_v.weight", weight(kv, args.embd, o + 3))
        writer.add_tensor(p + "attn_output.weight", weight(args.embd, args.embd, o + 4))
        writer.add_tensor(p + "ffn_norm.weight", ones)
        writer.add_tensor(p + "ffn_gate.weight", weight(args.ff, args.embd, o + 5))
        writer.add_tensor(p + "ffn_up.weight", weight(args.ff, args.embd, o + 6))
        writer.add_tensor(p + "ffn_down.weight", weight(args.embd, args.ff, o + 7))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
