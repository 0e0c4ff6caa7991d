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
    thesislib count MODEL [--block SPEC] [--substitute METHOD (--setting X | --params-budget P) [--linear]]
                          [--classes N] [--input CxHxW] [--json] [--rows]
                                                 parameters and mult-adds of any model (thesislib.models)

A mistake (a missing file, a bad parameter value, an unreadable folder) prints one line
naming what is wrong and exits non-zero; ``thesislib --debug COMMAND`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import traceback
from pathlib import Path

from thesislib.paths import PROFILES


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

    count = commands.add_parser(
        "count",
        help="count the parameters and mult-adds of any model of the thesis (thesislib.models)",
        description="Build MODEL with a Table 4.1 block and/or a chapter-5 substitute on the meta device "
        "and count it at the input size the thesis counts at. Every model takes the same flags; a "
        "combination a model cannot take is refused with the reason.",
    )
    count.add_argument(
        "model",
        metavar="MODEL",
        help="e.g. wrn-40-2, wrn-16-1, resnet34, resnet18-0.5, erfnet, darts, wrn-50-2 (wrn-D-K for any D = 6n+4)",
    )
    count.add_argument(
        "--block", metavar="SPEC", help="Table 4.1 block: S (default), S-2x2, G(4), G(N/4), B(2), BG(2,M/8)"
    )
    count.add_argument(
        "--substitute",
        metavar="METHOD",
        help="chapter 5: make the 3×3 convs separable (block S) or the block's 1×1 convs (G, B, BG) "
        "this substitute: rf, acdc, hashed, tt, tucker, shufflenet, or conv1x1 (dense pointwise)",
    )
    tuning = count.add_mutually_exclusive_group()
    tuning.add_argument(
        "--setting", type=float, metavar="X", help="the substitute's network-wide tuning value"
    )
    tuning.add_argument(
        "--params-budget",
        metavar="P",
        help="solve the setting for this many parameters: a number or K/M suffix (600000, 600K, 1.2M)",
    )
    count.add_argument(
        "--linear",
        action="store_true",
        help='also substitute the final linear layer (Table 5.1\'s "+Linear")',
    )
    count.add_argument(
        "--classes", type=int, metavar="N", help="number of classes (default: the model's data set)"
    )
    count.add_argument(
        "--input", metavar="CxHxW", help="input shape (default: the size the thesis counts at)"
    )
    count.add_argument("--json", action="store_true", help="print JSON instead of text")
    count.add_argument("--rows", action="store_true", help="also print one row per counted module")
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


def count_record(args: argparse.Namespace) -> dict:
    """What ``thesislib count`` reports, as a JSON-able record (one code path for every model)."""
    from thesislib.compressed.networks import substitute_spec
    from thesislib.models import count_model, default_input_shape, model_family, solve_setting
    from thesislib.moonshine.blocks import parse_block

    if args.substitute is None and (
        args.setting is not None or args.params_budget is not None or args.linear
    ):
        raise ValueError("--setting, --params-budget and --linear need --substitute METHOD")
    shape = _input_shape(args.input) if args.input else default_input_shape(args.model)
    setting, hit = args.setting, None
    if args.params_budget is not None:
        hit = solve_setting(
            args.model,
            args.substitute,
            args.params_budget,
            args.block,
            num_classes=args.classes,
            linear=args.linear,
        )
        setting = hit.tuning
    counts = count_model(
        args.model,
        args.block,
        substitute=args.substitute,
        setting=setting,
        num_classes=args.classes,
        linear=args.linear,
        input_shape=shape,
    )
    family, match = model_family(args.model)
    spec = substitute_spec(args.substitute, setting)
    record = {
        "model": match.group(0),
        "block": str(parse_block(args.block or "S")) if family.block_kinds else None,
        "substitute": None if spec is None else spec.method,
        "setting": None if spec is None else spec.tuning,
        "linear": args.linear,
        "num_classes": family.num_classes if args.classes is None else args.classes,
        **counts.to_dict(),
    }
    if hit is not None:
        record["params_budget"] = hit.target
        record["budget_hit"] = {
            "tuning": hit.tuning,
            "normalised": hit.normalised,
            "parameters": hit.parameters,
            "relative_error": hit.relative_error,
            "supported": hit.supported,
        }
    if args.rows:
        record["rows"] = counts.frame().to_dict(orient="records")
    return record


def format_record(record: dict) -> str:
    """The text form of :func:`count_record` (what ``thesislib count`` prints without ``--json``)."""
    shape = "x".join(map(str, record["input_shape"]))
    substitute = ""
    if record["substitute"]:
        setting = "" if record["setting"] is None else f":{record['setting']:.6g}"
        substitute = f", substitute {record['substitute']}{setting}"
    linear = " +Linear" if record["linear"] else ""
    block = f" block {record['block']}" if record["block"] else ""
    lines = [f"{record['model']}{block}{substitute}{linear}, input {shape}"]
    if "budget_hit" in record:
        hit = record["budget_hit"]
        support = "" if hit["supported"] else " (outside the method's tuning range)"
        lines.append(
            f"budget      {record['params_budget']:>15,}  -> setting {hit['tuning']:.6g} "
            f"({hit['relative_error']:+.2%}){support}"
        )
    parameters, mult_adds = record["parameters"], record["mult_adds"]
    lines.append(f"parameters  {parameters:>15,}  ({parameters / 1e3:,.1f}K = {parameters / 1e6:.3f}M)")
    lines.append(f"mult-adds   {mult_adds:>15,}  ({mult_adds / 1e6:,.1f}M = {mult_adds / 1e9:.3f}G)")
    lines.extend(f"  {kind:<10}{ops:>15,}" for kind, ops in record["by_kind"].items())
    return "\n".join(lines)


def _count(args: argparse.Namespace) -> int:
    """``thesislib count``: one registry and one set of flags for every model (no chapter guessing)."""
    import json

    record = count_record(args)
    if args.json:
        print(json.dumps(record))
        return 0
    print(format_record(record))
    if args.rows:
        import pandas as pd

        print(pd.DataFrame(record["rows"]).to_string(index=False))
    return 0


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
