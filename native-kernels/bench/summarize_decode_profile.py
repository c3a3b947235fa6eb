#!/usr/bin/env python3
"""Per-token GPU time of one-token decode, by kernel, from Nsight Compute's CSV.

Input: `ncu --csv --page raw --metrics gpu__time_duration.sum,launch__grid_size ... llama-bench -p 0 -n TOKENS
--no-warmup` (stdout, other lines ignored). Every kernel launch of the run is one decode token's, so dividing
by TOKENS gives the average token. Prints: kernels and GPU time per token, grouped by kernel name (sorted by time), and
one whole token's launches in order (the last one), so that what runs between two matmuls is visible.

ncu serializes kernels (no overlap from programmatic dependent launch, no CUDA-graph launch batching), so the sum of
durations is the GPU's busy time without overlap, which can exceed llama-bench's ms/token outside ncu (kernels that
overlap there); the two are printed side by side, not subtracted.
usage: summarize_decode_profile.py NCU_CSV TOKENS [MS_PER_TOKEN]
"""
import csv
import re
import sys
from collections import defaultdict


def read_launches(path):
    rows = [line for line in open(path, encoding="utf-8", errors="replace") if line.startswith('"')]
    table = list(csv.reader(rows))
    if not table:
        raise SystemExit(f"{path}: no CSV rows (did ncu profile anything?)")
    header = table[0]
    name_col = header.index("Kernel Name")
    time_col = header.index("gpu__time_duration.sum")
    grid_col = header.index("launch__grid_size") if "launch__grid_size" in header else None
    to_us = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
    scale = 1e-3  # nanoseconds, ncu's base unit, unless its units row says otherwise
    launches = []
    for row in table[1:]:
        if len(row) == len(header) and row[time_col] in to_us:
            scale = to_us[row[time_col]]
        if len(row) != len(header) or not re.match(r"^[0-9.,]+$", row[time_col]):
            continue  # the units row, and anything cut short
        duration_us = float(row[time_col].replace(",", "")) * scale
        grid = row[grid_col] if grid_col is not None else ""
        launches.append((short_name(row[name_col]), duration_us, grid))
    return launches


def short_name(kernel):
    """A kernel's name without "void", its template arguments and its parameter list (they make every instance
    unique); an anonymous namespace (ncu writes "<unnamed>", demanglers "(anonymous namespace)") as "anonymous"."""
    name = kernel.replace("(anonymous namespace)", "anonymous").replace("<unnamed>", "anonymous")
    depth, out = 0, []
    for ch in name:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0:
            if ch == "(":
                break  # the parameter list
            out.append(ch)
    return re.sub(r"^void ", "", "".join(out).strip())


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    launches = read_launches(sys.argv[1])
    tokens = int(sys.argv[2])
    ms_per_token = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None  # "inf" when llama-bench failed
    by_name = defaultdict(lambda: [0, 0.0])
    for name, duration_us, _ in launches:
        by_name[name][0] += 1
        by_name[name][1] += duration_us
    total_us = sum(d for _, d, _ in launches)
    print(f"{len(launches)} kernel launches over {tokens} tokens: {len(launches) / tokens:.1f} launches and "
          f"{total_us / tokens:.1f} us of kernel time per token")
    if ms_per_token and ms_per_token != float("inf"):
        print(f"llama-bench outside ncu: {ms_per_token * 1000.0:.1f} us per token (kernels overlapping, graph launches)")
    print()
    print("| kernel | launches per token | us per token | share | us per launch |")
    print("|---|---:|---:|---:|---:|")
    for name, (count, time_us) in sorted(by_name.items(), key=lambda item: -item[1][1]):
        print(f"| {name} | {count / tokens:.1f} | {time_us / tokens:.1f} | {time_us / total_us:.1%} | {time_us / count:.2f} |")
    per_token = len(launches) // tokens
    print()
    print(f"The last token's {per_token} launches in order (name, us, grid):")
    for name, duration_us, grid in launches[-per_token:]:
        print(f"  {name}  {duration_us:.2f}  {grid}")


if __name__ == "__main__":
    main()
