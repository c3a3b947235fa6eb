"""Picks a deterministic random subset of the tokenized training documents that, xz-compressed,
fits what is left of the device call's 64 MiB carry limit next to the dense checkpoint
(the prune/recovery call needs both). Writes train.tok.u16.xz and train.len.u32.xz into --dst.
By default the budget is --limit-mib minus the carry folder so far minus the git working tree (which
counts the committed models/*.gguf unless they are moved aside); --no-tree budgets the carry folder alone.
"""
import argparse
import os
import subprocess

import numpy as np


def tree_bytes(repo):
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, capture_output=True, check=True).stdout
    return sum(os.path.getsize(os.path.join(repo, f)) for f in out.decode().split("\0") if f and os.path.isfile(os.path.join(repo, f)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, help="work/tokens (raw train.tok.u16 / train.len.u32)")
    ap.add_argument("--carry-full", required=True, help="work/carry (full xz files, to estimate the ratio)")
    ap.add_argument("--dst", required=True)
    ap.add_argument("--limit-mib", type=float, default=62.0)
    ap.add_argument("--skip-docs", type=int, default=0,
                    help="start this many documents into the fixed random order: a later recovery call gets documents "
                         "the earlier subsets (which start at 0) did not hold")
    ap.add_argument("--no-tree", action="store_true",
                    help="budget the carry folder alone (--limit-mib for it), not carry + the git working tree")
    args = ap.parse_args()
    repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, check=True, text=True).stdout.strip()
    carry_root = os.path.dirname(os.path.abspath(args.dst))
    used = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(carry_root) for f in fs)
    used += 0 if args.no_tree else tree_bytes(repo)
    budget = args.limit_mib * (1 << 20) - used
    toks = np.fromfile(os.path.join(args.src, "train.tok.u16"), dtype=np.uint16)
    lens = np.fromfile(os.path.join(args.src, "train.len.u32"), dtype=np.uint32).astype(np.int64)
    ratio = os.path.getsize(os.path.join(args.carry_full, "train.tok.u16.xz")) / toks.nbytes
    want = int(budget * 0.97 / ratio / 2)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    if args.skip_docs < 0:
        raise SystemExit("--skip-docs must be 0 or more")
    order = np.random.default_rng(3).permutation(len(lens))[args.skip_docs:]
    if len(order) == 0:
        raise SystemExit(f"--skip-docs {args.skip_docs} leaves no documents (there are {len(lens)})")
    os.makedirs(args.dst, exist_ok=True)
    for attempt in range(5):
        # a random subset compresses somewhat worse than the whole split: shrink until both files fit
        pick = np.sort(order[: int(np.searchsorted(np.cumsum(lens[order]), want))])
        sub = np.concatenate([toks[starts[i]:starts[i] + lens[i]] for i in pick])
        for name, arr in (("train.tok.u16", sub), ("train.len.u32", lens[pick].astype(np.uint32))):
            raw = os.path.join(args.dst, name)
            arr.tofile(raw)
            subprocess.run(["xz", f"-T{os.cpu_count()}", "-6", "-f", raw], check=True)
        got = os.path.getsize(os.path.join(args.dst, "train.tok.u16.xz"))
        total = got + os.path.getsize(os.path.join(args.dst, "train.len.u32.xz"))
        if total <= budget - (64 << 10):  # slack for directory entries (du -sb counts them)
            break
        want = int(want * (budget - (64 << 10)) / total * 0.99)
    else:
        raise SystemExit(f"subset does not fit: {total} bytes for a budget of {budget:.0f}")
    print(f"subset: {len(pick)} docs from position {args.skip_docs} of the order, {sub.size} tokens, {got / 1e6:.1f} MB xz (budget {budget / 1e6:.1f} MB, tree+carry so far {used / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
