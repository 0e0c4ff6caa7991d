"""Measured against counted cost: every Table 4.3 network and every chapter-5 substitute (issue 15).

    .venv/bin/python benchmarks/bench_blocks.py [--chapter 4 5] [--batch-sizes 1 128] [--train-batch 128]
                                                [--repeats 5] [--min-run-time 0.2] [--threads 2]
                                                [--device cpu] [--rows "wrn-40-2 S" ...] [--csv out.csv]

Chapter 4: the 26 networks of Table 4.3 (WRN-40-2 with each Table 4.1 block and the shrunk standard
WRNs) at 32×32. Chapter 5: each substitute at its WRN-28-10 setting for the 0.6M budget (§5.2.4),
as the 640 → 640 pointwise layer of WRN-28-10's last group (8×8), beside the dense 1×1 conv.
For each: parameters, mult-adds, inference latency (median and quartiles of repeated
``torch.utils.benchmark`` runs) at each batch size, and training images/s; then per chapter the
Spearman rank correlation of latency against mult-adds and the entries whose latency contradicts
their mult-add ranking (slower, beyond both spreads, than one with more mult-adds). ``--device cuda``
runs the same code on a GPU.

The full default run (26 networks at batch 128, forward and training) takes tens of minutes on two
CPU cores; a machine shared with other jobs inflates every time, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os

import pandas as pd
import torch

from thesislib import cost
from thesislib.compressed.networks import budget_grid


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chapter", type=int, nargs="+", default=[4, 5], choices=[4, 5])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 128])
    parser.add_argument("--train-batch", type=int, default=128, help="0 skips the training throughput")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--rows", nargs="+", default=None, help="Table 4.3 rows (default: all 26)")
    parser.add_argument("--budget", type=float, default=0.6e6, help="WRN-28-10 parameter budget (chapter 5)")
    parser.add_argument("--csv", default=None, help="also write the table here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, {torch.get_num_threads()} torch threads, load average {os.getloadavg()}")
    frames = []
    for chapter in args.chapter:
        if chapter == 4:
            candidates = cost.table43_candidates(args.rows)
        else:
            grid = budget_grid("wrn-28-10", budgets=[args.budget])
            candidates = cost.chapter5_candidates(dict(zip(grid["method"], grid["tuning"], strict=True)))
        frame = cost.cost_table(
            candidates,
            batch_sizes=args.batch_sizes,
            train_batch=args.train_batch or None,
            repeats=args.repeats,
            min_run_time=args.min_run_time,
            device=args.device,
        )
        frames.append(frame)
        shown = ["family", "params", "mult_adds", *(f"latency_b{b}_ms" for b in args.batch_sizes)]
        if args.train_batch:
            shown.append("train_images_per_s")
        with pd.option_context(
            "display.width", 250, "display.max_rows", 100, "display.max_columns", 20, "display.precision", 3
        ):
            print(f"\nchapter {chapter}\n{frame[shown]}")
        for b in args.batch_sizes:
            agreement = cost.rank_agreement(frame, f"latency_b{b}_ms")
            print(
                f"latency at batch {b} vs mult-adds: Spearman {agreement['spearman']:.3f} "
                f"(p {agreement['p_value']:.2g}, n {agreement['n']})"
            )
            for label, faster in agreement["contradictions"].items():
                print(f"  {label} is slower than {len(faster)} with more mult-adds: {', '.join(faster)}")
    if args.csv:
        from thesislib.atomic import atomic_path

        with atomic_path(args.csv) as tmp:
            pd.concat(frames).to_csv(tmp)


if __name__ == "__main__":
    main()
