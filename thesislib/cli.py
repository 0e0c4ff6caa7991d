"""The ``thesislib`` command line.

Sub-commands::

    thesislib data list|verify|fetch [NAME]      the real data sets (thesislib.data)
    thesislib run NOTEBOOK... --profile P        execute notebooks with papermill (thesislib.runs)
    thesislib batch GRID.yml [--workers N | --scheduler tcp://HOST:PORT | --cluster slurm|pbs ...]
                                                 a grid of papermill runs on Dask distributed
    thesislib results [DIR] [--db FILE]          collect glued results into pandas + SQLite
    thesislib claims [DIR] [--json]              the claims ledger: every thesis claim's verdict from runs
    thesislib book [--profile P | --from DIR]    execute (cached) and build the Jupyter Book
    thesislib experiments [list|settings NAME|run NAME [--nproc N]]
                                                 every GPU-scale experiment of chapters 4, 5 and SECL
    thesislib count MODEL [--block SPEC] [--classes N] [--input CxHxW] [--json]
                                                 parameters and mult-adds (thesislib.counting)
    thesislib count MODEL --substitute METHOD (--setting X | --params-budget P) [--linear] [--json]
                                                 chapter 5: separable convs with substituted pointwise

A mistake (a missing file, a bad parameter value, an unreadable folder) prints one line
naming what is wrong and exits non-zero; ``thesislib --debug COMMAND`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import traceback
from pathlib import Path

PROFILES = ("smoke", "cpu", "paper")


def _parser(words: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``words`` (the command line) decide whether claims' options are imported."""
    parser = argparse.ArgumentParser(prog="thesislib", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="list, verify or fetch the real data sets")
    data.add_argument("action", choices=("list", "verify", "fetch"))
    data.add_argument("name", nargs="?", help="one data set (default: all)")

    run = commands.add_parser("run", help="execute notebooks with papermill in a profile")
    run.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    run.add_argument("--profile", choices=PROFILES, default="cpu")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override one parameter (VALUE is read as YAML: 3, 0.1, true, [1, 2], text)",
    )
    run.add_argument("--out", type=Path, help="output folder (default: runs/<profile>/)")
    run.add_argument("--force", action="store_true", help="execute even when a cached result is current")

    batch = commands.add_parser(
        "batch",
        help="execute a grid of notebook runs on Dask distributed",
        description="Run a grid on a local Dask cluster (default), an existing scheduler, or SLURM/PBS.",
    )
    batch.add_argument("grid", type=Path, metavar="GRID.yml")
    batch.add_argument("--out", type=Path, help="output folder (default: runs/batch/<grid name>/)")
    batch.add_argument("--db", type=Path, help="results store (default: <out>/results.sqlite)")
    batch.add_argument("--profile", choices=PROFILES, help="override the grid file's profile")
    batch.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times a run is retried when its worker dies (killed, out of memory) before it is "
        "reported failed (default: 2)",
    )
    where = batch.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, help="worker processes of the local cluster")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="join an existing Dask cluster")
    where.add_argument("--cluster", choices=("slurm", "pbs"), help="submit workers as batch jobs")
    jobs = batch.add_argument_group(
        "batch jobs (--cluster)", "one Dask worker per job, one notebook at a time"
    )
    jobs.add_argument("--jobs", type=int, default=1, help="number of jobs (workers) to start")
    jobs.add_argument("--queue", help="partition (SLURM) or queue (PBS)")
    jobs.add_argument("--account", help="account to charge")
    jobs.add_argument("--cores", type=int, default=1, help="CPU cores per job")
    jobs.add_argument("--memory", default="8GB", help="memory per job, e.g. 16GB")
    jobs.add_argument("--walltime", default="01:00:00", help="time limit per job, HH:MM:SS")
    jobs.add_argument("--gpus", type=int, default=0, help="GPUs per job")

    results = commands.add_parser("results", help="collect the glued results of executed notebooks")
    results.add_argument("directory", nargs="?", type=Path, default=Path("runs"), metavar="DIR")
    results.add_argument("--db", type=Path, help="also write an SQLite database (table 'results')")
    results.add_argument("--csv", type=Path, help="also write the table as CSV")

    claims = commands.add_parser(
        "claims", help="the claims ledger: verdicts of every thesis claim from a folder of runs"
    )
    if _wants("claims", words):
        from thesislib.claims.cli import add_arguments

        add_arguments(claims)
    else:  # the real options come from thesislib.claims.cli, imported only when the command runs
        claims.add_argument("directory", nargs="?", type=Path, metavar="DIR")
        claims.add_argument("--json", action="store_true")

    experiments = commands.add_parser(
        "experiments", help="list, inspect or run the thesis-scale experiments (GPU; torchrun for --nproc N)"
    )
    from thesislib.experiments.cli import add_arguments as experiment_arguments

    experiment_arguments(experiments)

    book = commands.add_parser("book", help="execute the notebooks (cached) and build the HTML book")
    source = book.add_mutually_exclusive_group()
    source.add_argument("--profile", choices=PROFILES, default="cpu")
    source.add_argument("--from", dest="from_dir", type=Path, help="use notebooks already executed in DIR")

    count = commands.add_parser("count", help="count the parameters and mult-adds of a model")
    count.add_argument(
        "model", metavar="MODEL", help="e.g. wrn-40-2, wrn-16-1, resnet34, resnet18-0.5, erfnet"
    )
    count.add_argument(
        "--block", default="S", metavar="SPEC", help="block spec: S, S-2x2, G(4), G(N/4), B(2), BG(2,M/8)"
    )
    count.add_argument(
        "--classes", type=int, metavar="N", help="number of classes (default: the model's data set)"
    )
    count.add_argument(
        "--input", metavar="CxHxW", help="input shape (default: the size the thesis counts at)"
    )
    count.add_argument("--json", action="store_true", help="print JSON instead of text")
    count.add_argument("--rows", action="store_true", help="also print one row per counted module")
    chapter5 = count.add_argument_group(
        "chapter 5", "the networks of thesislib.compressed.networks (wrn-28-10, wrn-40-2, darts, wrn-50-2)"
    )
    chapter5.add_argument(
        "--substitute",
        metavar="METHOD",
        help="make every 3×3 conv separable with this pointwise substitute: rf, acdc, hashed, tt, tucker, "
        "shufflenet (or conv1x1 for a dense pointwise conv)",
    )
    tuning = chapter5.add_mutually_exclusive_group()
    tuning.add_argument(
        "--setting", type=float, metavar="X", help="the substitute's network-wide tuning value"
    )
    tuning.add_argument(
        "--params-budget",
        metavar="P",
        help="solve the setting for this many parameters: a number or K/M suffix (600000, 600K, 1.2M)",
    )
    chapter5.add_argument(
        "--linear",
        action="store_true",
        help='also substitute the final linear layer (Table 5.1\'s "+Linear")',
    )
    return parser


def _input_shape(text: str) -> tuple[int, ...]:
    parts = text.lower().replace("×", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--input must be CxHxW with positive integers, e.g. 3x32x32, not {text!r}")
    return shape


def cli_count(
    model: str, block: str, classes: int | None, input_text: str | None, as_json: bool, rows: bool
) -> int:
    """``thesislib count``: build ``model`` with ``block`` and print its parameters and mult-adds."""
    import json

    import torch

    from thesislib.counting import count
    from thesislib.moonshine.models import build_model, default_input_shape

    shape = _input_shape(input_text) if input_text else default_input_shape(model)
    try:  # shapes are all counting needs: build and run on the meta device (no memory, no arithmetic)
        with torch.device("meta"):
            network = build_model(model, block=block, num_classes=classes)
        counts = count(network, shape)
    except (NotImplementedError, RuntimeError):  # an operation without meta support: count on the CPU
        network = build_model(model, block=block, num_classes=classes)
        counts = count(network, shape)
    if as_json:
        record = {
            "model": network.name,
            "block": network.block_spec,
            "num_classes": getattr(network, "num_classes", classes),
            **counts.to_dict(),
        }
        if rows:
            record["rows"] = counts.frame().to_dict(orient="records")
        print(json.dumps(record))
        return 0
    print(f"{network.name} block {network.block_spec}, input {'x'.join(map(str, shape))}")
    print(
        f"parameters  {counts.parameters:>15,}  ({counts.parameters / 1e3:,.1f}K = {counts.parameters / 1e6:.2f}M)"
    )
    print(
        f"mult-adds   {counts.mult_adds:>15,}  ({counts.mult_adds / 1e6:,.1f}M = {counts.mult_adds / 1e9:.3f}G)"
    )
    for kind, ops in counts.by_kind.items():
        print(f"  {kind:<10}{ops:>15,}")
    if rows:
        print(counts.frame().to_string(index=False))
    return 0


CHAPTER5_ONLY = ("darts", "wrn-50-2")


def cli_count_network(
    model: str,
    substitute: str | None,
    setting: float | None,
    params_budget: str | None,
    linear: bool,
    as_json: bool,
    rows: bool,
) -> int:
    """``thesislib count MODEL --substitute METHOD ...``: a chapter-5 network's test-time counts."""
    import json

    from thesislib.compressed.networks import count_record, format_record

    record = count_record(model, substitute, setting, params_budget=params_budget, linear=linear, rows=rows)
    if as_json:
        print(json.dumps(record))
        return 0
    print(format_record(record))
    if rows:
        import pandas as pd

        print(pd.DataFrame(record["rows"]).to_string(index=False))
    return 0


def _count(args: argparse.Namespace) -> int:
    """Route ``thesislib count`` to chapter 4's models or chapter 5's substituted networks."""
    chapter5 = args.substitute is not None or args.setting is not None or args.params_budget is not None
    chapter5 = chapter5 or args.linear or args.model.strip().lower() in CHAPTER5_ONLY
    if not chapter5:
        return cli_count(args.model, args.block, args.classes, args.input, args.json, args.rows)
    if args.block != "S" or args.classes is not None or args.input is not None:
        raise ValueError(
            "--block, --classes and --input are chapter 4 options; chapter 5's networks take "
            "--substitute METHOD with --setting X or --params-budget P (and --linear)"
        )
    if args.substitute is None and (
        args.setting is not None or args.params_budget is not None or args.linear
    ):
        raise ValueError("--setting, --params-budget and --linear need --substitute METHOD")
    return cli_count_network(
        args.model, args.substitute, args.setting, args.params_budget, args.linear, args.json, args.rows
    )


def _wants(command: str, words: list[str] | None) -> bool:
    """True if the command line ``words`` asks for sub-command ``command`` (imported lazily)."""
    return command in [word for word in (words or []) if not word.startswith("-")][:1]


def _dispatch(args: argparse.Namespace, words: list[str] | None = None) -> int:
    if args.command == "data":
        from thesislib.data import cli_data

        return cli_data(args.action, args.name)
    if args.command == "run":
        from thesislib.runs import cli_run

        return cli_run(args.notebooks, args.profile, args.parameter, args.out, args.force)
    if args.command == "batch":
        from thesislib.runs import ClusterOptions, cli_batch

        cluster = None
        if args.cluster:
            cluster = ClusterOptions(
                args.cluster,
                jobs=args.jobs,
                queue=args.queue,
                cores=args.cores,
                memory=args.memory,
                walltime=args.walltime,
                gpus=args.gpus,
                account=args.account,
            )
        return cli_batch(
            args.grid, args.workers, args.out, args.scheduler, cluster, args.retries, args.db, args.profile
        )
    if args.command == "results":
        from thesislib.runs import cli_results

        return cli_results(args.directory, args.db, args.csv)
    if args.command == "claims":
        from thesislib.claims.cli import run

        return run(args)
    if args.command == "experiments":
        from thesislib.experiments.cli import run as run_experiments

        return run_experiments(args, words)
    if args.command == "book":
        from thesislib.runs import cli_book

        return cli_book(args.profile, args.from_dir)
    if args.command == "count":
        return _count(args)
    raise AssertionError(f"unhandled command {args.command}")


def _one_line(error: BaseException) -> str:
    """What went wrong, for a user: the message (the messages name what is wrong and what is valid)."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    if isinstance(error, KeyError):  # KeyError's str() is the repr of the key
        return f"unknown {error.args[0]}" if error.args else "KeyError"
    text = str(error).strip()
    return text or type(error).__name__


# Errors that mean "the input or the machine is not as needed": reported in one line.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    RuntimeError,
    KeyError,
    LookupError,
    sqlite3.Error,
)


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = _parser(words).parse_args(words)
    try:
        return _dispatch(args, words)
    except KeyboardInterrupt:
        print(f"thesislib {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.debug:
            traceback.print_exc()
        print(f"thesislib {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug: still no traceback unless asked for
        if args.debug:
            traceback.print_exc()
        print(
            f"thesislib {args.command}: internal error: {type(error).__name__}: {_one_line(error)} "
            "(run with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
