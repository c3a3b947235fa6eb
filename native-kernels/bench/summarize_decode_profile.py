#!/usr/bin/env python3
"""Per-token GPU time of one-token decode, by kernel, from Nsight Compute's CSV.

Input: `ncu --csv --page raw --metrics gpu__time_duration.sum,launch__grid_size[,dram__bytes_read.sum,lts__t_bytes.sum]
... llama-bench -p 0 -n TOKENS --no-warmup` (stdout, other lines ignored); with the two byte counts, the table also
gives each kernel's DRAM read rate and its L2 traffic per DRAM byte (how much it re-reads through the L2). Every kernel launch of the run is one decode token's, so dividing
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
from typing import NamedTuple, Optional


TIME_UNITS_US = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
BYTE_UNITS = {"byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}
DRAM_READ = "dram__bytes_read.sum"  # optional metrics: bytes each launch read from DRAM, and moved through the L2
L2_BYTES = "lts__t_bytes.sum"


class Launch(NamedTuple):
    name: str
    duration_us: float
    grid: str
    dram_bytes: Optional[float]
    l2_bytes: Optional[float]


def read_launches(path):
    rows = [line for line in open(path, encoding="utf-8", errors="replace") if line.startswith('"')]
    table = list(csv.reader(rows))
    if not table:
        raise SystemExit(f"{path}: no CSV rows (did ncu profile anything?)")
    header = table[0]
    name_col = header.index("Kernel Name")
    time_col = header.index("gpu__time_duration.sum")
    optional = {metric: header.index(metric) for metric in ("launch__grid_size", DRAM_READ, L2_BYTES) if metric in header}
    # ncu's units row (right after the header) names each column's unit; without one, its base units.
    scale = {time_col: 1e-3, **{col: 1.0 for col in optional.values()}}
    launches = []
    for row in table[1:]:
        if len(row) != len(header):
            continue  # cut short
        if not re.match(r"^[0-9.,]+$", row[time_col]):
            if row[time_col] in TIME_UNITS_US:  # the units row
                scale[time_col] = TIME_UNITS_US[row[time_col]]
                for col in optional.values():
                    scale[col] = BYTE_UNITS.get(row[col], 1.0)
            continue

        def value(metric):
            col = optional.get(metric)
            if col is None or not re.match(r"^[0-9.,]+$", row[col]):
                return None  # not asked for, or "n/a"
            return float(row[col].replace(",", "")) * scale[col]

        grid = row[optional["launch__grid_size"]] if "launch__grid_size" in optional else ""
        launches.append(Launch(short_name(row[name_col]), float(row[time_col].replace(",", "")) * scale[time_col], grid,
                               value(DRAM_READ), value(L2_BYTES)))
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
    by_name = defaultdict(list)
    for launch in launches:
        by_name[launch.name].append(launch)
    total_us = sum(launch.duration_us for launch in launches)
    print(f"{len(launches)} kernel launches over {tokens} tokens: {len(launches) / tokens:.1f} launches and "
          f"{total_us / tokens:.1f} us of kernel time per token")
    if ms_per_token and ms_per_token != float("inf"):
        print(f"llama-bench outside ncu: {ms_per_token * 1000.0:.1f} us per token (kernels overlapping, graph launches)")
    with_bytes = all(launch.dram_bytes is not None and launch.l2_bytes is not None for launch in launches)
    print()
    if with_bytes:  # GB/s of DRAM reads while the kernel ran; L2 traffic per byte read from DRAM (reuse through L2)
        print("| kernel | launches per token | us per token | share | us per launch | DRAM read GB/s | L2 bytes per DRAM byte |")
        print("|---|---:|---:|---:|---:|---:|---:|")
    else:
        print("| kernel | launches per token | us per token | share | us per launch |")
        print("|---|---:|---:|---:|---:|")
    for name, group in sorted(by_name.items(), key=lambda item: -sum(launch.duration_us for launch in item[1])):
        time_us = sum(launch.duration_us for launch in group)
        line = f"| {name} | {len(group) / tokens:.1f} | {time_us / tokens:.1f} | {time_us / total_us:.1%} | {time_us / len(group):.2f} |"
        if with_bytes:
            dram = sum(launch.dram_bytes for launch in group)
            l2 = sum(launch.l2_bytes for launch in group)
            line += f" {dram / (time_us * 1e3):.0f} | {l2 / dram:.2f} |" if dram > 0 else " 0 | - |"
        print(line)
    per_token = len(launches) // tokens
    print()
    print(f"The last token's {per_token} launches in order (name, us, grid):")
    for launch in launches[-per_token:]:
        print(f"  {launch.name}  {launch.duration_us:.2f}  {launch.grid}")


if __name__ == "__main__":
    main()
