"""Writes a trained checkpoint (ckpt_io format) as a GGUF for llama.cpp's `llama` architecture,
with the complete deepseek-coder tokenizer copied from llama.cpp's vocab file plus explicit FIM
token ids. Pure numpy + llama.cpp's gguf-py (found in node-llama-cpp's bundled llama.cpp).

  python3 model-pipeline/export_gguf.py --ckpt-dir model-pipeline/work/dense --stem dense \
      --out model-pipeline/work/sparse-complete-coder-34m-dense-f16.gguf --name sparse-complete-coder-34m-dense
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA_CPP = os.path.join(HERE, "..", "node_modules", "node-llama-cpp", "llama", "llama.cpp")
sys.path.insert(0, os.path.join(LLAMA_CPP, "gguf-py"))
sys.path.insert(0, HERE)
import gguf  # noqa: E402
import ckpt_io  # noqa: E402

VOCAB_GGUF = os.path.join(LLAMA_CPP, "models", "ggml-vocab-deepseek-coder.gguf")
FIM_HOLE, FIM_BEGIN, FIM_END = 32015, 32016, 32017


# Checkpoint name -> llama.cpp tensor name: the tensors outside the layers, then each layer's modules
# (gguf_to_ckpt.py inverts both tables).
GLOBAL_TENSORS = {"tok.weight": "token_embd.weight", "norm.weight": "output_norm.weight"}
LAYER_TENSORS = {"attn_norm": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
                 "ffn_norm": "ffn_norm", "w1": "ffn_gate", "w3": "ffn_up", "w2": "ffn_down"}


def gguf_name(name: str) -> str:
    if name in GLOBAL_TENSORS:
        return GLOBAL_TENSORS[name]
    _, i, mod, _ = name.split(".")
    return f"blk.{i}.{LAYER_TENSORS[mod]}.weight"


def field(reader, key):
    return reader.fields[key].contents()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-dir", required=True)
    ap.add_argument("--stem", default="dense")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--f32", action="store_true", help="store matrices as F32 instead of F16")
    ap.add_argument("--check-24", action="store_true", help="fail unless every linear weight is exactly 2:4 sparse")
    args = ap.parse_args()

    meta, weights = ckpt_io.load(args.ckpt_dir, args.stem)
    cfg = meta["config"]
    vocab = gguf.GGUFReader(VOCAB_GGUF)
    tokens = field(vocab, "tokenizer.ggml.tokens")
    types = [int(t) for t in field(vocab, "tokenizer.ggml.token_type")]
    for t in (FIM_HOLE, FIM_BEGIN, FIM_END):
        types[t] = int(gguf.TokenType.CONTROL)  # the vocab file marks them user-defined; llama.cpp wants control
    assert len(tokens) == cfg["vocab"], (len(tokens), cfg["vocab"])

    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name(args.name)
    if args.description:
        w.add_description(args.description)
    w.add_context_length(cfg["ctx"])
    w.add_embedding_length(cfg["dim"])
    w.add_block_count(cfg["n_layers"])
    w.add_feed_forward_length(cfg["ffn"])
    w.add_head_count(cfg["n_heads"])
    w.add_head_count_kv(cfg["n_kv_heads"])
    w.add_rope_dimension_count(cfg["dim"] // cfg["n_heads"])
    w.add_rope_freq_base(cfg["rope_base"])
    w.add_layer_norm_rms_eps(cfg["norm_eps"])
    w.add_vocab_size(cfg["vocab"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if args.f32 else gguf.LlamaFileType.MOSTLY_F16)

    w.add_tokenizer_model(str(field(vocab, "tokenizer.ggml.model")))
    w.add_tokenizer_pre(str(field(vocab, "tokenizer.ggml.pre")))
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(field(vocab, "tokenizer.ggml.merges"))
    w.add_bos_token_id(int(field(vocab, "tokenizer.ggml.bos_token_id")))
    w.add_eos_token_id(int(field(vocab, "tokenizer.ggml.eos_token_id")))
    w.add_pad_token_id(int(field(vocab, "tokenizer.ggml.padding_token_id")))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_uint32(gguf.Keys.Tokenizer.FIM_PRE_ID, FIM_BEGIN)
    w.add_uint32(gguf.Keys.Tokenizer.FIM_SUF_ID, FIM_HOLE)
    w.add_uint32(gguf.Keys.Tokenizer.FIM_MID_ID, FIM_END)

    order = ["tok.weight"] + sorted((n for n in weights if n.startswith("layers.")),
                                    key=lambda n: (int(n.split(".")[1]), n)) + ["norm.weight"]
    assert set(order) == set(weights), set(weights) ^ set(order)
    for n in order:
        a = weights[n]
        a = a.astype(np.float32) if (a.ndim == 1 or args.f32) else a.astype(np.float16)
        if args.check_24 and n.startswith("layers.") and a.ndim == 2:
            # at most 2 nonzeros in every group of 4 consecutive input columns, as stored
            nz = (a.reshape(a.shape[0], -1, 4) != 0).sum(-1)
            assert nz.max() <= 2, f"{n} is not 2:4 sparse"
        w.add_tensor(gguf_name(n), a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if args.check_24:
        print("all linear weights are 2:4 sparse (<= 2 nonzeros per 4 input columns)")
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
