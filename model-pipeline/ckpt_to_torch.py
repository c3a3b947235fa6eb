"""Converts a ckpt_io checkpoint into a plain PyTorch state_dict file (bf16 tensors + config),
loadable with `Transformer(Config(**d["config"])).load_state_dict(d["state_dict"])`.

  python3 model-pipeline/ckpt_to_torch.py model-pipeline/work/dense dense model-pipeline/work/dense/dense.pt
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_io  # noqa: E402

src, stem, out = sys.argv[1:4]
meta, W = ckpt_io.load(src, stem)
sd = {k: torch.from_numpy(np.array(v)).to(torch.bfloat16) for k, v in W.items()}
torch.save({"config": meta["config"], "meta": {k: v for k, v in meta.items() if k != "config"}, "state_dict": sd}, out)
print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB, {sum(t.numel() for t in sd.values())} params)")
