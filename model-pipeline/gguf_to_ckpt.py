"""Rebuilds a float checkpoint (ckpt_io format, bf16) from one of the committed GGUFs, for when the
float checkpoints of model-pipeline/work/ are not at hand (a fresh clone): the inverse of
export_gguf.py (same tensor names and config; no Q/K permutation, the model uses llama.cpp's
interleaved RoPE layout). Quantized tensors are dequantized with gguf-py (Q8_0 -> float32), then
rounded to bf16 (round to nearest even), which is what ckpt_io stores.

For the 2:4 sparse twin, --mask-from takes the keep-mask from the Q4_S24 file (its stored kept
positions, native-kernels/FORMAT.md): a kept weight may round to 0 in Q8_0, so the Q8_0 file's
nonzeros alone do not give the mask. The mask is checked (exactly 2 of every 4 input columns, the
values' nonzeros inside it) and written next to the checkpoint as STEM.keep.npz (packed bits per
tensor), which recover_carry.py uses instead of re-deriving the mask from the nonzeros.

  python3 model-pipeline/gguf_to_ckpt.py --gguf models/sparse-complete-coder-34m-dense-q8_0.gguf \
      --stem dense --out model-pipeline/work/dense-gguf
  python3 model-pipeline/gguf_to_ckpt.py --gguf models/sparse-complete-coder-34m-sparse24-q8_0.gguf \
      --mask-from models/sparse-complete-coder-34m-sparse-q4_s24.gguf --stem sparse --out model-pipeline/work/sparse-gguf
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "node_modules", "node-llama-cpp", "llama", "llama.cpp", "gguf-py"))
sys.path.insert(0, HERE)
import gguf  # noqa: E402
from gguf import quants  # noqa: E402
import ckpt_io  # noqa: E402
from export_gguf import GLOBAL_TENSORS, LAYER_TENSORS  # noqa: E402

CKPT_GLOBALS = {gguf: ckpt for ckpt, gguf in GLOBAL_TENSORS.items()}
CKPT_MODULES = {gguf_mod: ckpt_mod for ckpt_mod, gguf_mod in LAYER_TENSORS.items()}

GGML_Q4_S24 = 100


def ckpt_name(gname: str) -> str:
    """Inverse of export_gguf.gguf_name."""
    if gname in CKPT_GLOBALS:
        return CKPT_GLOBALS[gname]
    _, i, mod, _ = gname.split(".")
    return f"layers.{i}.{CKPT_MODULES[mod]}.weight"


def bf16_bits(a):
    """float32 -> bfloat16 bits, round to nearest even (as torch's .to(torch.bfloat16))."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def read_gguf(path):
    """-> (config dict, name -> float32 array in ckpt layout (out, in), name -> raw bytes of token_embd etc.)"""
    r = gguf.GGUFReader(path)
    f = lambda k: r.fields[k].contents()
    assert f("general.architecture") == "llama"
    cfg = {"vocab": int(f("llama.vocab_size")), "dim": int(f("llama.embedding_length")),
           "n_layers": int(f("llama.block_count")), "n_heads": int(f("llama.attention.head_count")),
           "n_kv_heads": int(f("llama.attention.head_count_kv")), "ffn": int(f("llama.feed_forward_length")),
           # stored as float32 in the GGUF: back to the decimal the model config had (1e-05, 10000.0)
           "rope_base": float(f"{float(f('llama.rope.freq_base')):.7g}"),
           "norm_eps": float(f"{float(f('llama.attention.layer_norm_rms_epsilon')):.7g}"),
           "ctx": int(f("llama.context_length"))}
    assert int(f("llama.rope.dimension_count")) == cfg["dim"] // cfg["n_heads"]
    W, raw = {}, {}
    for t in r.tensors:
        a = quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        a = a.reshape([int(x) for x in reversed(t.shape.tolist())])
        W[ckpt_name(t.name)] = a
        raw[ckpt_name(t.name)] = (int(t.tensor_type), bytes(np.ascontiguousarray(t.data).view(np.uint8)))
    return cfg, W, raw, f("general.name")


def q4_s24_keep(path):
    """Keep-masks (name -> bool (out, in)) from a Q4_S24 GGUF's stored positions (FORMAT.md)."""
    from gptq_quant import read_gguf as read_table, tensor_bytes  # handles ggml type 100 (gguf-py does not)
    table, _ = read_table(path)
    out = {}
    for gname, info in table.items():
        if info["type"] != GGML_Q4_S24:
            continue
        C, R = info["dims"]
        nb = C // 256
        b = np.frombuffer(tensor_bytes(path, info), np.uint8).reshape(R, nb, 100)
        idx = b[..., 68:100].reshape(R, nb, 8, 4)                                    # sub-block s, byte b
        p = np.stack([(idx >> (2 * j)) & 3 for j in range(4)], -2).reshape(R, nb, 8, 8, 2)  # kept k = 4j+b -> group k//2, slot k%2
        assert (p[..., 0] < p[..., 1]).all(), f"{gname}: positions not strictly increasing"
        keep = np.zeros((R, nb, 8, 8, 4), bool)
        np.put_along_axis(keep, p.astype(np.int64), True, -1)
        out[ckpt_name(gname)] = keep.reshape(R, C)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--stem", required=True, help="dense | sparse")
    ap.add_argument("--out", required=True)
    ap.add_argument("--mask-from", default=None, help="Q4_S24 GGUF of the same sparse model: the exact 2:4 keep-masks")
    ap.add_argument("--embedding-from", default=None,
                    help="GGUF whose token_embd replaces this file's (only if they differ; reported)")
    args = ap.parse_args()

    cfg, W, raw, gname = read_gguf(args.gguf)
    meta = {"config": cfg, "from_gguf": os.path.abspath(args.gguf), "gguf_name": gname}
    if args.embedding_from:
        _, W2, raw2, _ = read_gguf(args.embedding_from)
        same = raw2["tok.weight"] == raw["tok.weight"]
        print(f"token_embd bytes identical to {os.path.basename(args.embedding_from)}: {same}")
        if not same:
            W["tok.weight"] = W2["tok.weight"]
            meta["embedding_from"] = os.path.abspath(args.embedding_from)
    bits = {k: bf16_bits(v) for k, v in W.items()}
    back = {k: (b.astype(np.uint32) << 16).view(np.float32) for k, b in bits.items()}
    rel = max(float(np.linalg.norm(back[k] - W[k]) / max(np.linalg.norm(W[k]), 1e-30)) for k in W)
    exact = [k for k in W if np.array_equal(back[k], W[k])]
    print(f"{os.path.basename(args.gguf)}: {len(W)} tensors, types {sorted({t for t, _ in raw.values()})}; "
          f"bf16 rounding: max rel. error {rel:.2e}, exact for {len(exact)} tensors")

    if args.mask_from:
        keeps = q4_s24_keep(args.mask_from)
        lin = sorted(k for k in W if k.startswith("layers.") and W[k].ndim == 2)
        assert sorted(keeps) == lin, (sorted(keeps), lin)
        zero_kept = total = 0
        for k in lin:
            keep = keeps[k]
            assert keep.shape == W[k].shape, k
            assert (keep.reshape(keep.shape[0], -1, 4).sum(-1) == 2).all(), f"{k}: not exactly 2 of 4 kept"
            nz = back[k] != 0
            assert not (nz & ~keep).any(), f"{k}: nonzeros outside the Q4_S24 mask"
            zero_kept += int((keep & ~nz).sum())
            total += int(keep.sum())
        os.makedirs(args.out, exist_ok=True)
        np.savez_compressed(os.path.join(args.out, f"{args.stem}.keep.npz"), **{k: np.packbits(keeps[k].reshape(-1)) for k in lin})
        meta["keep_from"] = os.path.abspath(args.mask_from)
        print(f"mask from {os.path.basename(args.mask_from)}: exactly 2 of 4 in all {len(lin)} linear weights, "
              f"values' nonzeros inside it; {zero_kept} of {total} kept positions are 0 in the values")

    ckpt_io.save(bits, args.out, args.stem, meta)
    print(f"wrote {args.out}/{args.stem}.* ({sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out)) / 1e6:.1f} MB)")
    print(json.dumps(cfg))


if __name__ == "__main__":
    main()
