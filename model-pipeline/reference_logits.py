"""Numpy forward pass of a checkpoint (same math as model.py), used to check that llama.cpp runs
the exported GGUF identically: compares against the logits check-gguf.mjs wrote.

  python3 model-pipeline/reference_logits.py --ckpt-dir DIR --stem dense --compare llama-logits.json
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_io  # noqa: E402


def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def forward(meta, W, ids):
    c = meta["config"]
    hd = c["dim"] // c["n_heads"]
    T = len(ids)
    x = W["tok.weight"][ids].astype(np.float64)
    inv = 1.0 / (c["rope_base"] ** (np.arange(0, hd, 2) / hd))
    ang = np.outer(np.arange(T), inv)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rope(v):  # (T, H, hd), adjacent pairs
        a, b = v[..., 0::2], v[..., 1::2]
        out = np.empty_like(v)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out

    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(c["n_layers"]):
        p = lambda n: W[f"layers.{i}.{n}.weight"].astype(np.float64)
        h = rms(x, p("attn_norm"), c["norm_eps"])
        q = rope((h @ p("wq").T).reshape(T, c["n_heads"], hd))
        k = rope((h @ p("wk").T).reshape(T, c["n_kv_heads"], hd))
        v = (h @ p("wv").T).reshape(T, c["n_kv_heads"], hd)
        rep = c["n_heads"] // c["n_kv_heads"]
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", att, v).reshape(T, -1)
        x = x + o @ p("wo").T
        h = rms(x, p("ffn_norm"), c["norm_eps"])
        g = h @ p("w1").T
        x = x + ((g / (1 + np.exp(-g))) * (h @ p("w3").T)) @ p("w2").T
    x = rms(x, W["norm.weight"].astype(np.float64), c["norm_eps"])
    return x @ W["tok.weight"].astype(np.float64).T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-dir", required=True)
    ap.add_argument("--stem", default="dense")
    ap.add_argument("--compare", required=True, help="JSON from check-gguf.mjs: {tokens, logits: {pos: [...]}}")
    args = ap.parse_args()
    meta, W = ckpt_io.load(args.ckpt_dir, args.stem)
    ref = json.load(open(args.compare))
    ours = forward(meta, W, np.array(ref["tokens"]))
    worst, agree, n = 0.0, 0, 0
    for pos, lg in ref["logits"].items():
        a, b = ours[int(pos)], np.array(lg, dtype=np.float64)
        worst = max(worst, float(np.abs(a - b).max()))
        agree += int(a.argmax() == b.argmax())
        n += 1
        print(f"pos {pos}: max|diff| {np.abs(a - b).max():.4f}  ref top {a.argmax()} llama.cpp top {b.argmax()}  logit range {a.min():.2f}..{a.max():.2f}")
    ok = worst < 0.05 * max(1.0, float(np.abs(ours).max())) and agree == n
    print(json.dumps({"positions": n, "argmax_agree": agree, "max_abs_diff": round(worst, 5), "match": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
