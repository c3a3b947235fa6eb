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


# ---- compact one-way packs for the carry to the GPU machine (no 16 MiB per-file limit there) ----
# kinds: "bf16" exact bfloat16 bits; "sparse24" a 2:4 weight as its keep-mask (exactly 2 of every 4
# input columns) plus the bf16 values at kept positions; "q8" int8 codes with an fp16 scale per 32
# consecutive input columns (Q8_0's layout; used for the distillation teacher only).
# Checkpoints rebuilt from Q8_0 GGUFs (gguf_to_ckpt.py) hold bf16(q * d) values; for them "q8x" (dense) and
# "sparse24q8x" (2:4: mask + the codes at kept positions) store the Q8_0 codes and fp16 scales instead, and the
# loader returns bf16(q * d) again: exact, and smaller than bf16 bits (q8_exact finds (q, d) or says it cannot).
def _bf16_bits(a):
    return (np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def _bf16_rne(x):
    """float32 -> nearest bfloat16 (ties to even), returned as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


def q8_exact(a):
    """(int8 codes, fp16 scales per 32 consecutive columns) with bf16(code * scale) == a exactly, or None.
    Tries the fp16 scales within a few ulps of max|a| / 127 for every 32-column block."""
    g = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, 32)
    base = (np.abs(g).max(-1) / np.float32(127)).astype(np.float16)
    q_out = np.zeros(g.shape, np.int8)
    d_out = np.zeros(len(g), np.float16)
    todo = np.ones(len(g), bool)
    for k in (0, 1, -1, 2, -2, 3, -3, 4, -4):
        cand = (base.view(np.uint16).astype(np.int32) + k).clip(0, 0x7BFF).astype(np.uint16).view(np.float16)
        d = cand.astype(np.float32)[:, None]
        q = np.clip(np.rint(np.where(d > 0, g / np.where(d > 0, d, 1), 0)), -127, 127)
        ok = todo & (_bf16_rne(q * d) == g).all(-1)
        q_out[ok], d_out[ok] = q[ok].astype(np.int8), cand[ok]
        todo &= ~ok
        if not todo.any():
            return q_out.reshape(a.shape), d_out
    return None


def keep_mask_24(w):
    """Keep-mask with exactly 2 of every 4 input columns: the nonzeros, topped up with the first zero
    positions where a group has fewer than 2 (so such a weight may grow back during recovery)."""
    g = (w.reshape(w.shape[0], -1, 4) != 0)
    assert int(g.sum(-1).max()) <= 2, "not 2:4"
    for _ in range(2):
        short = g.sum(-1) < 2
        first_zero = np.argmax(~g, axis=-1)
        rows, grp = np.nonzero(short)
        g[rows, grp, first_zero[rows, grp]] = True
    return g.reshape(w.shape)


def _sparse_keep(name, a, given):
    """The 2:4 keep-mask of a sparse entry: the one given with it (checked), else keep_mask_24's."""
    if not given or given[0] is None:
        return keep_mask_24(a)
    keep = np.asarray(given[0], dtype=bool)
    assert keep.shape == a.shape and (keep.reshape(a.shape[0], -1, 4).sum(-1) == 2).all(), name
    assert not ((a != 0) & ~keep).any(), f"{name}: nonzeros outside the given mask"
    return keep


def save_pack(entries: dict, out_dir: str, stem: str, meta: dict) -> dict:
    """entries: name -> (kind, float32 array) or, for "sparse24", (kind, array, keep-mask) with an explicit mask
    (exactly 2 of every 4 input columns, holding all nonzeros) instead of the one keep_mask_24 derives."""
    import lzma
    os.makedirs(out_dir, exist_ok=True)
    hi, lo, mask, codes, scales, index = [], [], [], [], [], []
    for name, (kind, a, *given) in entries.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        rec = {"name": name, "kind": kind, "shape": list(a.shape)}
        if kind == "bf16":
            bits = _bf16_bits(a).reshape(-1)
        elif kind == "sparse24":
            keep = _sparse_keep(name, a, given)
            mask.append(np.packbits(keep.reshape(-1)))
            bits = _bf16_bits(a[keep])
        elif kind in ("q8x", "sparse24q8x"):
            if kind == "sparse24q8x":
                keep = _sparse_keep(name, a, given)
                mask.append(np.packbits(keep.reshape(-1)))
            enc = q8_exact(a)
            assert enc is not None, f"{name}: not bf16 of Q8_0 values"
            q, d = enc
            codes.append(q[keep] if kind == "sparse24q8x" else q.reshape(-1))
            scales.append(d.reshape(-1))
            bits = np.zeros(0, np.uint16)
        elif kind == "q8":
            g = a.reshape(a.shape[0], -1, 32)
            d = (np.abs(g).max(-1, keepdims=True) / 127.0).astype(np.float16)
            df = d.astype(np.float32)
            q = np.where(df > 0, np.round(g / np.where(df > 0, df, 1)), 0).astype(np.int8)
            codes.append(q.reshape(-1))
            scales.append(d.reshape(-1))
            bits = np.zeros(0, np.uint16)
        else:
            raise ValueError(kind)
        rec["count"] = int(bits.size)
        hi.append((bits >> 8).astype(np.uint8))
        lo.append((bits & 0xFF).astype(np.uint8))
        index.append(rec)
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)
    streams = {"hi": lzma.compress(cat(hi, np.uint8).tobytes(), preset=6),
               "lo": zlib.compress(cat(lo, np.uint8).tobytes(), 1),
               "mask": lzma.compress(cat(mask, np.uint8).tobytes(), preset=6),
               "codes": lzma.compress(cat(codes, np.int8).tobytes(), preset=6),
               "scales": zlib.compress(cat(scales, np.float16).tobytes(), 6)}
    for k, v in streams.items():
        with open(os.path.join(out_dir, f"{stem}.{k}"), "wb") as f:
            f.write(v)
    head = {"meta": meta, "tensors": index}
    with open(os.path.join(out_dir, f"{stem}.pack.json"), "w") as f:
        json.dump(head, f)
    return head


def _check_keep(name, keep):
    """A stored keep-mask must hold exactly 2 of every 4 input columns (save_pack writes no other); anything else
    is a corrupted pack, whose values would otherwise land at wrong positions."""
    if keep.ndim != 2 or keep.shape[1] % 4 or not (keep.reshape(keep.shape[0], -1, 4).sum(-1) == 2).all():
        raise ValueError(f"{name}: corrupted pack, keep-mask is not exactly 2 of every 4")
    return keep


def load_pack(in_dir: str, stem: str):
    """Returns (meta, name -> float32 array, name -> bool keep-mask for the sparse24 entries)."""
    import lzma
    with open(os.path.join(in_dir, f"{stem}.pack.json")) as f:
        head = json.load(f)
    raw = lambda k: open(os.path.join(in_dir, f"{stem}.{k}"), "rb").read()
    hi = np.frombuffer(lzma.decompress(raw("hi")), np.uint8)
    lo = np.frombuffer(zlib.decompress(raw("lo")), np.uint8)
    mask = np.frombuffer(lzma.decompress(raw("mask")), np.uint8)
    codes = np.frombuffer(lzma.decompress(raw("codes")), np.int8)
    scales = np.frombuffer(zlib.decompress(raw("scales")), np.float16)
    vals = ((hi.astype(np.uint32) << 24) | (lo.astype(np.uint32) << 16)).view(np.float32)
    out, masks = {}, {}
    off = moff = coff = soff = 0
    for t in head["tensors"]:
        shape, n = t["shape"], int(np.prod(t["shape"]))
        if t["kind"] == "bf16":
            out[t["name"]] = vals[off:off + t["count"]].reshape(shape).copy()
        elif t["kind"] == "sparse24":
            nb = (n + 7) // 8
            keep = _check_keep(t["name"], np.unpackbits(mask[moff:moff + nb])[:n].astype(bool).reshape(shape))
            moff += nb
            w = np.zeros(shape, np.float32)
            w[keep] = vals[off:off + t["count"]]
            out[t["name"]], masks[t["name"]] = w, keep
        elif t["kind"] in ("q8x", "sparse24q8x"):
            d = np.repeat(scales[soff:soff + n // 32].astype(np.float32), 32)
            q = np.zeros(n, np.float32)
            if t["kind"] == "sparse24q8x":
                nb = (n + 7) // 8
                keep = _check_keep(t["name"], np.unpackbits(mask[moff:moff + nb])[:n].astype(bool).reshape(shape)).reshape(-1)
                moff += nb
                cnt = int(keep.sum())
                q[keep] = codes[coff:coff + cnt]
                masks[t["name"]] = keep.reshape(shape)
            else:
                cnt = n
                q[:] = codes[coff:coff + n]
            out[t["name"]] = _bf16_rne(q * d).reshape(shape)
            coff, soff = coff + cnt, soff + n // 32
        else:  # q8
            q = codes[coff:coff + n].astype(np.float32).reshape(shape[0], -1, 32)
            d = scales[soff:soff + n // 32].astype(np.float32).reshape(shape[0], -1, 1)
            out[t["name"]] = (q * d).reshape(shape)
            coff, soff = coff + n, soff + n // 32
        off += t["count"]
    return head["meta"], out, masks
