"""Validation losses of local checkpoints on CPU or GPU (PyTorch): plain text, FIM layout, and the
FIM middle alone, the latter also with editor-sized middles (short_middle=1, fim_chunk 32:512).

  python3 model-pipeline/eval_val.py --data model-pipeline/work/carry --windows 16 work/dense:dense work/sparse:sparse ...
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fim_data import build_windows, load_split, segments  # noqa: E402
from prune_sparsegpt import load_model  # noqa: E402
from train import evaluate  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--windows", type=int, default=16)
ap.add_argument("--seq", type=int, default=2048)
ap.add_argument("ckpts", nargs="+", help="DIR:STEM")
args = ap.parse_args()
torch.set_num_threads(os.cpu_count())
device = "cuda" if torch.cuda.is_available() else "cpu"
autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device == "cuda" else (lambda: torch.autocast("cpu", enabled=False))
vt, vl = load_split(args.data, "val")
vs = segments(vl, args.seq - 6)
sets = {
    "l2r": build_windows(vt, vs, args.seq, np.random.default_rng(1234), 0.0, args.windows),
    "fim_uniform": build_windows(vt, vs, args.seq, np.random.default_rng(1235), 1.0, args.windows),
    "fim_short": build_windows(vt, vs, args.seq, np.random.default_rng(1236), 1.0, args.windows, fim_chunk=(32, 512), short_middle=1.0),
}
for spec in args.ckpts:
    d, stem = spec.split(":")
    model, _, _ = load_model(d, stem, device)
    model.eval()
    res = {"ckpt": spec,
           "l2r": evaluate(model, sets["l2r"], 4, device, autocast),
           "fim_uniform_middle": evaluate(model, sets["fim_uniform"], 4, device, autocast, True),
           "fim_short_middle": evaluate(model, sets["fim_short"], 4, device, autocast, True)}
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}), flush=True)
