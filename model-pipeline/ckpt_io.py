"""Checkpoint files that fit the GPU machine's transfer limits (16 MiB a file, 64 MiB a call).

Weights are stored as bfloat16 split into byte planes: the high bytes (sign + exponent +
1 mantissa bit) are highly redundant and compress well with zlib; the low bytes barely compress
for dense weights but do for 2:4-sparse ones (half zeros). Both streams are cut into parts of at most PART bytes. numpy only, so the
CPU-side exporter can read checkpoints without PyTorch.
"""
import json
import os
import zlib

import numpy as np

PART = (16 << 20) - (64 << 10)  # device limit: 16 MiB a returned file


def _write_parts(stream: bytes, out_dir: str, stem: str) -> list:
    names = []
    for i in range(0, max(len(stream), 1), PART):
        name = f"{stem}.{len(names):02d}"
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(stream[i:i + PART])
        names.append(name)
    return names


def save(tensors: dict, out_dir: str, stem: str, meta: dict) -> dict:
    """tensors: name -> numpy uint16 array holding bfloat16 bits."""
    os.makedirs(out_dir, exist_ok=True)
    index, hi, lo, off = [], [], [], 0
    for name, bits in tensors.items():
        bits = np.ascontiguousarray(bits, dtype=np.uint16)
        index.append({"name": name, "shape": list(bits.shape), "offset": off, "count": int(bits.size)})
        hi.append((bits >> 8).astype(np.uint8).tobytes())
        lo.append((bits & 0xFF).astype(np.uint8).tobytes())
        off += int(bits.size)
    hi_z = zlib.compress(b"".join(hi), 6)
    # Low bytes are near-random for dense weights (level 1 costs little) but zeros in a 2:4 model shrink well.
    lo_z = zlib.compress(b"".join(lo), 1)
    head = {"meta": meta, "tensors": index, "total": off,
            "hi_parts": _write_parts(hi_z, out_dir, f"{stem}.hi"),
            "lo_parts": _write_parts(lo_z, out_dir, f"{stem}.lo")}
    with open(os.path.join(out_dir, f"{stem}.json"), "w") as f:
        json.dump(head, f)
    return head


def load(in_dir: str, stem: str):
    """Returns (meta, name -> float32 numpy array)."""
    with open(os.path.join(in_dir, f"{stem}.json")) as f:
        head = json.load(f)
    read = lambda parts: b"".join(open(os.path.join(in_dir, p), "rb").read() for p in parts)
    hi = np.frombuffer(zlib.decompress(read(head["hi_parts"])), dtype=np.uint8)
    lo = np.frombuffer(zlib.decompress(read(head["lo_parts"])), dtype=np.uint8)
    bits = (hi.astype(np.uint32) << 24) | (lo.astype(np.uint32) << 16)
    allf = bits.view(np.float32)
    out = {}
    for t in head["tensors"]:
        out[t["name"]] = allf[t["offset"]:t["offset"] + t["count"]].reshape(t["shape"])
    return head["meta"], out
