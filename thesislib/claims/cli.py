"""``thesislib claims [DIR] [--json] [--profile P]``: the claims ledger from any folder of runs."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from thesislib.claims.registry import CLAIMS_DIR, PROFILES, ClaimsError

SHOWN = ["id", "verdict", "effect", "interval", "n", "unit"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``claims`` sub-command's arguments to ``parser``."""
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of executed notebooks (default: runs/<profile>/)",
    )
    parser.add_argument(
        "--profile", choices=PROFILES, help="whose runs to read (default: the runs' own, else cpu)"
    )
    parser.add_argument("--json", action="store_true", help="print the ledger as JSON (one object per claim)")
    parser.add_argument(
        "--claims", type=Path, default=CLAIMS_DIR, metavar="FOLDER", help="the claims registry"
    )


def _number(value: object) -> str:
    return "" if value is None or value != value else f"{value:.3g}"  # None and NaN print blank


def run(args: argparse.Namespace) -> int:
    """Print the ledger (text table or JSON); exit 0, or 2 when the registry or the folder is unusable."""
    from thesislib.claims.ledger import ledger, ledger_records, verdict_counts
    from thesislib.runs.runner import RUNS_DIR

    directory = args.directory if args.directory is not None else RUNS_DIR / (args.profile or "cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = ledger(directory, args.profile, args.claims)
        except (ClaimsError, ValueError, FileNotFoundError) as error:
            print(f"thesislib claims: {error}", file=sys.stderr)
            return 2
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "profile": table.attrs["profile"],
                    "directory": str(directory),
                    "claims": ledger_records(table),
                    "verdict_counts": verdict_counts(table),
                },
                indent=1,
            )
        )
        return 0
    shown = table[SHOWN].copy()
    shown["effect"] = shown["effect"].map(_number)
    shown["interval"] = shown["interval"].map(
        lambda i: "" if not i or i[0] is None else f"[{i[0]:.3g}, {i[1]:.3g}]"
    )
    print(f"claims ledger: {len(table)} claims, {table.attrs['profile']} runs in {directory}")
    print(shown.to_string(index=False) if len(table) else "the registry holds no claims")
    counts = verdict_counts(table)
    print("; ".join(f"{count} {verdict}" for verdict, count in counts.items()))
    return 0
