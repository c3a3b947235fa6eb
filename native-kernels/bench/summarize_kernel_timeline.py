#!/usr/bin/env python3
"""Where a decode token's time goes, from a kernel timeline (kernel_timeline.cpp's CSV).

    summarize_kernel_timeline.py TIMELINE.csv [--gap-us 10] [--layer-kernels 40] [--token-us US]

Kernels overlap under programmatic dependent launch, so a kernel's duration is not what it costs the token. Along the
token's timeline each kernel either extends the busy span past everything launched before it (its "exposed" time) or
finishes inside it; and the GPU may sit idle before a kernel starts (its "gap"). The exposed times and the gaps of a
token add up to its wall time exactly: the table says which kernels the token waits for.

Tokens are the runs of kernels between idle gaps longer than --gap-us (llama-bench's host work between two tokens);
only tokens with the most common kernel count are kept (the decode steps; not warm-up, prompt or odd ones).
--token-us: the time per token measured without the tracer (llama-bench's); what it has beyond the GPU's busy span is
the time between tokens (host work, copies, launch), which the tracer itself lengthens and so cannot show (a lower
bound: the tracer can only lengthen the busy span too).
"""
import argparse
import csv
import re
import statistics
import sys
from collections import defaultdict


def short_name(name):
    """The kernel's own name with its template arguments, without namespaces, return type or parameter list."""
    name = re.sub(r"^void\s+", "", name.strip())
    depth, cut = 0, len(name)
    for i, c in enumerate(name):  # the parameter list: the first '(' outside template brackets
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "(" and depth == 0 and not name.startswith("(anonymous", i):
            cut = i
            break
    name = name[:cut]
    name = re.sub(r"\(anonymous namespace\)::", "", name)
    head, sep, args = name.partition("<")
    head = head.split("::")[-1]
    return (head + sep + re.sub(r"\s+", "", args))[:90]


def read_kernels(path):
    with open(path, newline="") as f:
        rows = [(int(r["start_ns"]), int(r["end_ns"]), short_name(r["name"]), int(r["grid"])) for r in csv.DictReader(f)]
    rows.sort()
    return rows


def split_tokens(kernels, gap_ns):
    tokens, current, busy_until = [], [], 0
    for k in kernels:
        if current and k[0] - busy_until > gap_ns:
            tokens.append(current)
            current = []
        if not current:
            busy_until = k[1]
        current.append(k)
        busy_until = max(busy_until, k[1])
    if current:
        tokens.append(current)
    return tokens


def walk(token):
    """Per kernel of one token: (key, duration, gap before it, exposed time, overlap with what ran before it)."""
    out, busy_until = [], token[0][0]
    for start, end, name, grid in token:
        gap = max(0, start - busy_until)
        exposed = max(0, end - max(start, busy_until))
        overlap = max(0, busy_until - start)
        out.append(((name, grid), end - start, gap, exposed, overlap))
        busy_until = max(busy_until, end)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("timeline")
    parser.add_argument("--gap-us", type=float, default=10.0, help="idle time that separates two tokens")
    parser.add_argument("--layer-kernels", type=int, default=40, help="kernels of the median token listed in order")
    parser.add_argument("--token-us", type=float, help="us per token measured without the tracer")
    args = parser.parse_args()

    kernels = read_kernels(args.timeline)
    if not kernels:
        sys.exit(f"{args.timeline}: no kernels")
    tokens = split_tokens(kernels, args.gap_us * 1000)
    counts = defaultdict(int)
    for t in tokens:
        counts[len(t)] += 1
    per_token = max(counts, key=lambda n: (counts[n], n))
    kept = [t for t in tokens if len(t) == per_token]
    walls = [max(k[1] for k in t) - t[0][0] for t in kept]
    print(f"{args.timeline}: {len(kernels)} kernels, {len(tokens)} runs split at idle gaps > {args.gap_us:g} us; "
          f"{len(kept)} tokens of {per_token} kernels kept")
    print(f"token wall time (first kernel start to last kernel end): median {statistics.median(walls) / 1000:.1f} us, "
          f"min {min(walls) / 1000:.1f}, max {max(walls) / 1000:.1f}")
    if args.token_us is not None:
        between = args.token_us - statistics.median(walls) / 1000
        print(f"per token without the tracer: {args.token_us:.1f} us, so at least {between:.1f} us "
              f"({between / args.token_us:.1%}) between tokens with the GPU idle (host work, copies, launch)")
    print()

    stats = defaultdict(lambda: {"launches": 0, "durations": [], "gap": [], "exposed": [], "overlap": []})
    for t in kept:
        sums = defaultdict(lambda: [0, 0, 0])
        for key, duration, gap, exposed, overlap in walk(t):
            s = stats[key]
            s["durations"].append(duration)
            s["overlap"].append(overlap)
            sums[key][0] += gap
            sums[key][1] += exposed
            sums[key][2] += 1
        for key, (gap, exposed, n) in sums.items():
            stats[key]["gap"].append(gap)
            stats[key]["exposed"].append(exposed)
            stats[key]["launches"] = n
    wall = statistics.median(walls)
    rows = sorted(stats.items(), key=lambda kv: -statistics.median(kv[1]["exposed"]))
    print("| kernel | grid | launches per token | median duration us | median overlap with earlier kernels us "
          "| exposed us per token | idle before it us per token | share of the token |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total_exposed = total_gap = 0.0
    for (name, grid), s in rows:
        exposed = statistics.median(s["exposed"])
        gap = statistics.median(s["gap"])
        total_exposed += exposed
        total_gap += gap
        print(f"| `{name}` | {grid} | {s['launches']} | {statistics.median(s['durations']) / 1000:.2f} | "
              f"{statistics.median(s['overlap']) / 1000:.2f} | {exposed / 1000:.1f} | {gap / 1000:.1f} | "
              f"{(exposed + gap) / wall:.1%} |")
    print(f"| all | | {per_token} | | | {total_exposed / 1000:.1f} | {total_gap / 1000:.1f} | "
          f"{(total_exposed + total_gap) / wall:.1%} |\n")

    median_token = sorted(kept, key=lambda t: max(k[1] for k in t) - t[0][0])[len(kept) // 2]
    print(f"The median token's first {args.layer_kernels} kernels in order (us from the token's first start):")
    print("| # | kernel | grid | start | duration | idle before | overlap with earlier | exposed |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    t0 = median_token[0][0]
    for i, ((start, end, name, grid), (_, duration, gap, exposed, overlap)) in enumerate(
            zip(median_token, walk(median_token))):
        if i >= args.layer_kernels:
            break
        print(f"| {i} | `{name}` | {grid} | {(start - t0) / 1000:.2f} | {duration / 1000:.2f} | {gap / 1000:.2f} | "
              f"{overlap / 1000:.2f} | {exposed / 1000:.2f} |")


if __name__ == "__main__":
    main()
