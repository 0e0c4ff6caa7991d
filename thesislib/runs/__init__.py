"""Running the notebooks: profiles, the papermill runner, grids, the results store and the book.

- :mod:`~thesislib.runs.profiles` — smoke / cpu / paper parameters, validated against each notebook.
- :mod:`~thesislib.runs.runner` — ``run_notebook``: cached papermill execution into ``runs/<profile>/``.
- :mod:`~thesislib.runs.batch` — ``run_grid``: cartesian grids of runs in parallel processes.
- :mod:`~thesislib.runs.results` — ``collect_results``: glued values → pandas and SQLite.
- :mod:`~thesislib.runs.book` — ``build_book``: executed notebooks → HTML Jupyter Book.
"""

from __future__ import annotations

import sys
from pathlib import Path

from thesislib.runs.batch import expand_grid, run_grid
from thesislib.runs.book import build_book
from thesislib.runs.profiles import (
    PROFILES,
    load_profiles,
    notebook_parameters,
    parse_value,
    resolve_parameters,
)
from thesislib.runs.results import collect_results, read_sqlite, write_sqlite
from thesislib.runs.runner import NotebookFailed, RunResult, run_notebook

__all__ = [
    "PROFILES",
    "NotebookFailed",
    "RunResult",
    "build_book",
    "collect_results",
    "expand_grid",
    "load_profiles",
    "notebook_parameters",
    "read_sqlite",
    "resolve_parameters",
    "run_grid",
    "run_notebook",
    "write_sqlite",
]


def cli_run(
    notebooks: list[Path], profile: str, parameters: list[list[str]], out: Path | None, force: bool
) -> int:
    """``thesislib run``: execute each notebook; non-zero exit if any fails."""
    overrides = {key: parse_value(value) for key, value in parameters}
    failures = 0
    for notebook in notebooks:
        output = out / notebook.name if out else None
        try:
            result = run_notebook(notebook, profile, overrides, output, force=force)
        except NotebookFailed as error:
            failures += 1
            print(f"FAILED {error}", file=sys.stderr)
            continue
        state = f"executed in {result.seconds:.1f} s" if result.executed else "up to date (cached)"
        print(f"{notebook.name} [{profile}] {state} -> {result.output}")
    return 1 if failures else 0


def cli_batch(grid: Path, workers: int, out: Path | None) -> int:
    """``thesislib batch``: run a grid; report every run; non-zero exit if any failed."""
    outcomes = run_grid(grid, workers, out)
    for outcome in outcomes:
        print(f"{outcome.status:>8}  {outcome.seconds:7.1f} s  {outcome.run.output}")
        if outcome.error:
            print(f"          {outcome.error}", file=sys.stderr)
    failed = sum(outcome.status == "failed" for outcome in outcomes)
    print(f"{len(outcomes) - failed} of {len(outcomes)} runs completed, {failed} failed")
    return 1 if failed else 0


def cli_results(directory: Path, database: Path | None, csv: Path | None) -> int:
    """``thesislib results``: print the collected table; optionally write SQLite and CSV."""
    table = collect_results(directory)
    shown = table.drop(columns="path").assign(value=table["value"].map(_short))
    print(shown.to_string(index=False) if len(table) else "no glued results found")
    if database:
        print(f"wrote {len(table)} rows to {write_sqlite(table, database)} (table 'results')")
    if csv:
        from thesislib.atomic import atomic_open

        with atomic_open(csv, "w", encoding="utf-8", newline="") as handle:
            table.to_csv(handle, index=False)
        print(f"wrote {csv}")
    return 0


def _short(value: object, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def cli_book(profile: str | None, from_dir: Path | None) -> int:
    """``thesislib book``: execute (cached) and build the book."""
    html = build_book(profile, from_dir)
    print(f"book built: {html / 'index.html'}")
    return 0
