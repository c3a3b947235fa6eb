#!/usr/bin/env python3
"""Where a prompt's (prefill's) GPU time goes, from a kernel timeline (kernel_timeline.cpp's CSV).

    summarize_prefill_timeline.py TIMELINE.csv [--gap-us 2000] [--prompt-us US] [--by-grid]

Prompts are the runs of kernels between idle gaps longer than --gap-us (llama-bench's host work between repetitions);
only the runs with the longest kernel count seen twice or more are kept (the measured prompts). Per kernel:
its summed duration per prompt and its share of the prompt's busy time. Prefill kernels run for tens to hundreds of us
each and barely overlap, so durations add up (unlike decode's, see summarize_kernel_timeline.py); the table also says
how far they fall short of the prompt's wall time (idle between kernels). --prompt-us: the time per prompt without the
tracer (llama-bench's), for comparison. --by-grid: one row per kernel and grid size, which tells apart the matrix
shapes a library kernel (cuBLAS's) runs for.
"""
import argparse
import statistics
from collections import defaultdict

from summarize_kernel_timeline import read_kernels, split_tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--gap-us", type=float, default=2000.0)
    parser.add_argument("--prompt-us", type=float)
    parser.add_argument("--by-grid", action="store_true")
    args = parser.parse_args()
    runs = split_tokens(read_kernels(args.csv), args.gap_us * 1000)
    if not runs:
        raise SystemExit(f"{args.csv}: no kernels")
    counts = defaultdict(int)
    for run in runs:
        counts[len(run)] += 1
    # The longest kernel count seen at least twice: the measured prompts (short runs are llama-bench's set-up, and a
    # prompt cut by a long host pause comes out as two runs of other counts).
    repeated = [n for n in counts if counts[n] > 1]
    kept_count = max(repeated or counts)
    prompts = [run for run in runs if len(run) == kept_count]
    print(f"{args.csv}: {len(runs)} runs split at idle gaps > {args.gap_us:g} us; {len(prompts)} prompts of "
          f"{kept_count} kernels kept")
    longest = max(counts)
    if kept_count < longest // 2:
        print(f"warning: the kept runs have {kept_count} kernels, the longest run {longest}: the prompts may not have "
              f"come out alike (llama-bench -r 2 or more; another --gap-us)")
    # Every run, so that a split that merged or cut prompts shows (the CSV can be summarized again with another gap).
    print("runs (kernels, us from first start to last end): " + ", ".join(
        f"{len(run)} / {(max(k[1] for k in run) - run[0][0]) / 1000:.0f}" for run in runs[:24]))

    walls = [max(k[1] for k in run) - run[0][0] for run in prompts]
    busy = [sum(k[1] - k[0] for k in run) for run in prompts]
    wall_us = statistics.median(walls) / 1000
    busy_us = statistics.median(busy) / 1000
    print(f"prompt wall time on the GPU (first kernel start to last kernel end): median {wall_us:.1f} us; kernels' "
          f"summed durations {busy_us:.1f} us ({100 * busy_us / wall_us:.1f}% of it)")
    if args.prompt_us:
        print(f"per prompt without the tracer: {args.prompt_us:.1f} us")

    per_kernel = defaultdict(list)
    launches = defaultdict(int)
    for run in prompts:
        totals = defaultdict(int)
        for start, end, name, grid in run:
            key = (name, grid if args.by_grid else None)
            totals[key] += end - start
            launches[key] += 1
        for key, total in totals.items():
            per_kernel[key].append(total)
    rows = sorted(((statistics.median(v) / 1000, key) for key, v in per_kernel.items()), reverse=True)
    print()
    grid_head, grid_rule = ("grid | ", "---: | ") if args.by_grid else ("", "")
    print(f"| kernel | {grid_head}launches per prompt | us per prompt (median) | us per launch | share of the kernels' time |")
    print(f"|---| {grid_rule}---:|---:|---:|---:|")
    for us, key in rows:
        name, grid = key
        per_prompt = launches[key] / len(prompts)
        grid_cell = f"{grid} | " if args.by_grid else ""
        print(f"| `{name}` | {grid_cell}{per_prompt:g} | {us:.1f} | {us / per_prompt:.1f} | {100 * us / busy_us:.1f}% |")

if __name__ == "__main__":
    main()
