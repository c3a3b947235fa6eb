"""Completes a checkpoint saved with --freeze-embedding by adding the (unchanged) embedding of
the checkpoint it started from, so the exporter and tools see a full model.

  python3 model-pipeline/merge_embedding.py SRC_DIR STEM BASE_DIR OUT_DIR
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_io  # noqa: E402

src, stem, base, out = sys.argv[1:5]
meta, W = ckpt_io.load(src, stem)
if "tok.weight" not in W:
    W["tok.weight"] = ckpt_io.load(base, "dense")[1]["tok.weight"]
order = ["tok.weight"] + [k for k in W if k != "tok.weight"]
bits = {k: (np.ascontiguousarray(W[k], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16) for k in order}
meta["embedding_from"] = os.path.abspath(base)
ckpt_io.save(bits, out, stem, meta)
print(f"wrote {out}/{stem}.* ({len(bits)} tensors)")
