"""Stages the continued-recovery call's carry (model-pipeline/work/carry-recover/model/):
the shared frozen embedding once (exact bf16), the shipped sparse checkpoint (exact: 2:4 masks +
bf16 values) and the FIM-tuned dense teacher's other tensors (matrices Q8_0-style, norms bf16).
Checkpoints rebuilt from the Q8_0 GGUFs (gguf_to_ckpt.py, run.sh ckpt-from-gguf) travel as their Q8_0
codes + scales instead (pack kinds q8x / sparse24q8x; exact, smaller), the student's masks from STEM.keep.npz.
run.sh recover-carry then adds the validation split and as much training data as fits.

  python3 model-pipeline/recover_carry.py --student work/sparse-fim --teacher work/dense-fim --dst work/carry-recover/model
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_io  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True, help="sparse checkpoint dir (stem sparse), with its embedding")
    ap.add_argument("--teacher", required=True, help="dense checkpoint dir (stem dense), with its embedding")
    ap.add_argument("--dst", required=True)
    args = ap.parse_args()
    smeta, S = ckpt_io.load(args.student, "sparse")
    tmeta, T = ckpt_io.load(args.teacher, "dense")
    assert smeta["config"] == tmeta["config"]
    assert np.array_equal(S["tok.weight"], T["tok.weight"]), "student and teacher must share the frozen embedding"
    cfg = {"config": smeta["config"]}
    # exact keep-masks written by gguf_to_ckpt.py --mask-from (kept weights that are 0 in the values stay kept);
    # otherwise save_pack derives them from the nonzeros
    kpath = os.path.join(args.student, "sparse.keep.npz")
    given = {}
    if os.path.exists(kpath):
        with np.load(kpath) as z:
            given = {k: np.unpackbits(z[k])[:S[k].size].astype(bool).reshape(S[k].shape) for k in z.files}
        print(f"keep-masks from {kpath} ({len(given)} tensors)")
    # checkpoints rebuilt from Q8_0 GGUFs (gguf_to_ckpt.py) are bf16(q * d): then their Q8_0 codes travel, exactly
    q8x = lambda v: v.ndim == 2 and ckpt_io.q8_exact(v) is not None
    kinds = {"emb": "q8x" if q8x(S["tok.weight"]) else "bf16",
             "student": "sparse24q8x" if all(q8x(v) for k, v in S.items() if v.ndim == 2 and k != "tok.weight") else "sparse24",
             "teacher": "q8x" if all(q8x(v) for k, v in T.items() if v.ndim == 2 and k != "tok.weight") else "q8"}
    print("pack kinds:", kinds)
    ckpt_io.save_pack({"tok.weight": (kinds["emb"], S["tok.weight"])}, args.dst, "emb", cfg)
    ckpt_io.save_pack({k: (kinds["student"], v, given.get(k)) if v.ndim == 2 else ("bf16", v) for k, v in S.items() if k != "tok.weight"},
                      args.dst, "student", {**cfg, "from": os.path.abspath(args.student)})
    ckpt_io.save_pack({k: (kinds["teacher"] if v.ndim == 2 else "bf16", v) for k, v in T.items() if k != "tok.weight"},
                      args.dst, "teacher", {**cfg, "from": os.path.abspath(args.teacher)})
    # exactness of the student round trip; teacher error relative to its weights
    _, S2, keep = ckpt_io.load_pack(args.dst, "student")
    _, T2, _ = ckpt_io.load_pack(args.dst, "teacher")
    _, E2, _ = ckpt_io.load_pack(args.dst, "emb")
    assert np.array_equal(E2["tok.weight"], S["tok.weight"]), "embedding round trip"
    for k, v in S2.items():
        assert np.array_equal(v, S[k]), k
        if k in given:
            assert np.array_equal(keep[k], given[k]), k
    rel = max(float(np.linalg.norm(T2[k] - T[k]) / np.linalg.norm(T[k])) for k in T2)
    grow = sum(int(keep[k].sum() - (S[k] != 0).sum()) for k in keep)
    size = sum(os.path.getsize(os.path.join(args.dst, f)) for f in os.listdir(args.dst))
    print(f"packs: {size / 1e6:.1f} MB; student exact ({grow} kept positions at zero); teacher max rel. error {rel:.2e}")


if __name__ == "__main__":
    main()
