"""Training windows from llama.cpp-tokenized documents, with fill-in-the-middle (PSM order).

Each document is cut into segments that fit one window; each segment becomes, with probability
`fim_rate`, a FIM example laid out exactly as node-llama-cpp builds an infill prompt
    BOS <fim_begin> prefix <fim_hole> suffix <fim_end> middle EOS
(two uniform random split points on token boundaries), otherwise plain left-to-right text
    BOS text EOS.
Examples are shuffled and packed back to back into windows of seq+1 tokens.
"""
import lzma
import os

import numpy as np

BOS, EOS = 32013, 32014
FIM_HOLE, FIM_BEGIN, FIM_END = 32015, 32016, 32017


def load_split(data_dir: str, split: str):
    def read(name, dtype):
        p = os.path.join(data_dir, name)
        if os.path.exists(p + ".xz"):
            with lzma.open(p + ".xz") as f:
                return np.frombuffer(f.read(), dtype=dtype)
        return np.fromfile(p, dtype=dtype)
    toks = read(f"{split}.tok.u16", np.uint16)
    lens = read(f"{split}.len.u32", np.uint32).astype(np.int64)
    assert lens.sum() == toks.size, "token/length files disagree"
    return toks, lens


def segments(lens: np.ndarray, max_seg: int):
    """(start, end) token ranges: every document cut into pieces of at most max_seg tokens."""
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    out = []
    for s, n in zip(starts.tolist(), lens.tolist()):
        for a in range(0, n, max_seg):
            out.append((s + a, s + min(n, a + max_seg)))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def build_windows(toks, segs, seq: int, rng: np.random.Generator, fim_rate: float, max_windows=None,
                  fim_chunk=None, short_middle=0.0, short_max=64):
    """fim_chunk=(lo, hi): cut every FIM segment into pieces of lo..hi tokens, so a window holds many
    FIM examples (the run of 2026-11-28 used None: about one FIM example per 2048-token window).
    short_middle: fraction of FIM examples whose middle is at most short_max tokens, like an
    editor completion, instead of a span between two uniform split points."""
    order = rng.permutation(len(segs))
    fim = rng.random(len(segs)) < fim_rate
    parts, total = [], 0
    limit = None if max_windows is None else max_windows * (seq + 1)
    b, e, f, h = (np.array([x], dtype=np.uint16) for x in (BOS, EOS, FIM_BEGIN, FIM_HOLE))
    m = np.array([FIM_END], dtype=np.uint16)
    for k in order.tolist():
        s, t = segs[k]
        if fim[k]:
            pieces = [(s, t)]
            if fim_chunk is not None:
                pieces, a = [], s
                while a < t:
                    n = int(rng.integers(fim_chunk[0], fim_chunk[1] + 1))
                    pieces.append((a, min(t, a + n)))
                    a += n
            for a, z in pieces:
                doc = toks[a:z]
                if rng.random() < short_middle:
                    i = int(rng.integers(0, len(doc) + 1))
                    j = min(len(doc), i + int(rng.integers(0, short_max + 1)))
                else:
                    i, j = np.sort(rng.integers(0, len(doc) + 1, size=2))
                ex = (b, f, doc[:i], h, doc[j:], m, doc[i:j], e)
                parts.extend(ex)
                total += sum(len(x) for x in ex)
        else:
            ex = (b, toks[s:t], e)
            parts.extend(ex)
            total += sum(len(x) for x in ex)
        if limit is not None and total >= limit:
            break
    stream = np.concatenate(parts)
    n = len(stream) // (seq + 1)
    if max_windows is not None:
        n = min(n, max_windows)
    return stream[: n * (seq + 1)].reshape(n, seq + 1)
