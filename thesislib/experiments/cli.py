"""``thesislib experiments``: list the experiments, show one's settings, run one (on N processes)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

from thesislib.paths import JOB_PROFILES

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``thesislib experiments``."""
    parser.add_argument(
        "action", nargs="?", default="list", choices=("list", "run", "settings"),
        help="list (default): every experiment; settings NAME: its values and their provenance; run NAME",
    )  # fmt: skip
    parser.add_argument("name", nargs="?", metavar="NAME", help="an experiment (run, settings)")
    parser.add_argument("--chapter", choices=("4", "5", "secl"), help="list only this chapter's experiments")
    parser.add_argument("--match", metavar="GLOB", help="list only names matching, e.g. 't43-c100-*-at'")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--profile", choices=JOB_PROFILES, default="paper")
    parser.add_argument("--out", type=Path, default=Path("runs/experiments"), help="run folders go here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nproc", type=int, default=1, help="processes (GPUs) on this machine, via torchrun")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (one process)")
    parser.add_argument("--epochs", type=int, help="override the number of epochs (per stage)")
    parser.add_argument("--teacher-dir", type=Path, help="where teachers' run folders are (default: --out)")
    parser.add_argument("--workers", type=int, help="DataLoader workers per process (default 8; smoke 0)")
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    parser.add_argument(
        "--sync-bn", action="store_true", help="batch norm over the global batch with --nproc N (CUDA only)"
    )


def _listing(args: argparse.Namespace) -> int:
    from thesislib.experiments.spec import EXPERIMENTS

    rows = []
    for experiment in EXPERIMENTS.values():
        if args.chapter and experiment.chapter != args.chapter:
            continue
        if args.match and not fnmatch.fnmatch(experiment.name, args.match):
            continue
        rows.append(
            {
                "name": experiment.name,
                "thesis": experiment.location,
                "data": experiment.dataset,
                "model": experiment.model.label,
                "method": experiment.method,
                "teacher": experiment.teacher or "",
                "recipe": experiment.recipe_label,
                "epochs": experiment.epochs,
                "gpu_hours": round(experiment.gpu_hours, 2),
                "blocked": experiment.blocked,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        print("no experiments match")
        return 0
    frame["blocked"] = frame["blocked"].map(lambda text: "BLOCKED" if text else "")
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 48, "display.width", 250):
        print(frame.to_string(index=False))
    print(
        f"\n{len(frame)} experiments, {frame['gpu_hours'].sum():,.0f} estimated GPU-hours in all (arithmetic "
        "estimate, see thesislib.experiments.spec.gpu_hours); `thesislib experiments settings NAME` shows "
        "each value's provenance"
    )
    return 0


def _settings(name: str, as_json: bool) -> int:
    from thesislib.experiments.spec import get_experiment

    experiment = get_experiment(name)
    rows = experiment.provenance()
    if as_json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    print(
        f"{experiment.name}: {experiment.location}; {experiment.model.label} on {experiment.dataset}, {experiment.method}"
    )
    for row in rows:
        print(f"  {row['setting']:<16} {row['value']!s:<28} {row['source']:<9} {row['where']}")
    if experiment.blocked:
        print(f"  BLOCKED: {experiment.blocked}")
    return 0


def _launch(args: argparse.Namespace, words: list[str]) -> int:
    """Re-run this command under torchrun with ``--nproc`` processes (one per GPU, or Gloo on CPU)."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={args.nproc}",
    ]
    forwarded, skip = [], False
    for word in words:  # torchrun would read --nproc as its own --nproc-per-node: the workers do not need it
        if skip or word.startswith("--nproc="):
            skip = False
            continue
        if word == "--nproc":
            skip = True
            continue
        forwarded.append(word)
    command += ["-m", "thesislib", *forwarded]
    return subprocess.run(command, check=False).returncode


def run(args: argparse.Namespace, words: list[str] | None = None) -> int:
    """Dispatch ``thesislib experiments``."""
    if args.action == "list":
        return _listing(args)
    if args.name is None:
        raise ValueError(f"`thesislib experiments {args.action}` needs an experiment NAME")
    if args.action == "settings":
        return _settings(args.name, args.json)
    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    from thesislib.experiments.spec import get_experiment

    get_experiment(args.name)  # a clear error before any process starts
    if args.nproc > 1 and "LOCAL_RANK" not in os.environ:
        return _launch(args, list(words or sys.argv[1:]))
    from thesislib.experiments.runner import run_experiment

    output = run_experiment(
        args.name,
        args.out,
        profile=args.profile,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        epochs=args.epochs,
        teacher_dir=args.teacher_dir,
        workers=args.workers,
        sync_batchnorm=args.sync_bn,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in output.metrics.items())
        print(f"{output.experiment}: {shown} -> {output.record}")
    return 0
