"""The ``thesislib`` command line.

Sub-commands::

    thesislib data list|verify|fetch [NAME]      the real data sets (thesislib.data)
    thesislib run NOTEBOOK... --profile P        execute notebooks with papermill (thesislib.runs)
    thesislib batch GRID.yml [--workers N]       a grid of papermill runs in parallel
    thesislib results [DIR] [--db FILE]          collect glued results into pandas + SQLite
    thesislib book [--profile P | --from DIR]    execute (cached) and build the Jupyter Book
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROFILES = ("smoke", "cpu", "paper")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thesislib", description=__doc__.split("\n\n")[0])
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

    batch = commands.add_parser("batch", help="execute a grid of notebook runs in parallel")
    batch.add_argument("grid", type=Path, metavar="GRID.yml")
    batch.add_argument("--workers", type=int, default=1)
    batch.add_argument("--out", type=Path, help="output folder (default: runs/batch/<grid name>/)")

    results = commands.add_parser("results", help="collect the glued results of executed notebooks")
    results.add_argument("directory", nargs="?", type=Path, default=Path("runs"), metavar="DIR")
    results.add_argument("--db", type=Path, help="also write an SQLite database (table 'results')")
    results.add_argument("--csv", type=Path, help="also write the table as CSV")

    book = commands.add_parser("book", help="execute the notebooks (cached) and build the HTML book")
    source = book.add_mutually_exclusive_group()
    source.add_argument("--profile", choices=PROFILES, default="cpu")
    source.add_argument("--from", dest="from_dir", type=Path, help="use notebooks already executed in DIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "data":
            from thesislib.data import cli_data

            return cli_data(args.action, args.name)
        if args.command == "run":
            from thesislib.runs import cli_run

            return cli_run(args.notebooks, args.profile, args.parameter, args.out, args.force)
        if args.command == "batch":
            from thesislib.runs import cli_batch

            return cli_batch(args.grid, args.workers, args.out)
        if args.command == "results":
            from thesislib.runs import cli_results

            return cli_results(args.directory, args.db, args.csv)
        if args.command == "book":
            from thesislib.runs import cli_book

            return cli_book(args.profile, args.from_dir)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"thesislib {args.command}: error: {error}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
