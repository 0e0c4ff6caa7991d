"""Running the notebooks: profiles, the papermill runner, grids, the results store and the book.

- :mod:`~thesislib.runs.profiles` — smoke / cpu / paper parameters, validated against each notebook.
- :mod:`~thesislib.runs.runner` — ``run_notebook``: cached papermill execution into ``runs/<profile>/``.
- :mod:`~thesislib.runs.batch` — ``run_grid``: cartesian grids of runs on Dask (local, a scheduler, SLURM/PBS).
- :mod:`~thesislib.runs.results` — ``collect_results``: glued values → pandas and SQLite.
- :mod:`~thesislib.runs.book` — ``build_book``: executed notebooks → HTML Jupyter Book.
"""

from __future__ import annotations

import sys
from pathlib import Path

from thesislib.runs.batch import (
    DATABASE_NAME,
    DEFAULT_RETRIES,
    ClusterOptions,
    GridOutcome,
    GridRun,
    expand_grid,
    run_grid,
)
from thesislib.runs.book import build_book
from thesislib.runs.profiles import (
    PROFILES,
    check_parameter,
    load_profiles,
    notebook_parameters,
    notebook_schema,
    parse_parameter,
    parse_value,
    resolve_parameters,
)
from thesislib.runs.results import collect_results, read_sqlite, store_notebook, write_sqlite
from thesislib.runs.runner import NotebookFailed, RunResult, check_output_folder, run_notebook

__all__ = [
    "PROFILES",
    "ClusterOptions",
    "GridOutcome",
    "GridRun",
    "NotebookFailed",
    "RunResult",
    "build_book",
    "check_parameter",
    "collect_results",
    "expand_grid",
    "load_profiles",
    "notebook_parameters",
    "notebook_schema",
    "parse_parameter",
    "parse_value",
    "read_sqlite",
    "resolve_parameters",
    "run_grid",
    "run_notebook",
    "store_notebook",
    "write_sqlite",
]


def cli_run(
    notebooks: list[Path], profile: str, parameters: list[list[str]], out: Path | None, force: bool
) -> int:
    """``thesislib run``: execute each notebook; non-zero exit if any fails.

    Every notebook's parameters are read by their declared types and checked before the first
    kernel starts; a failing notebook (a cell raised, the kernel died) is reported by name and the
    next one still runs.
    """
    if out is not None:
        check_output_folder(out)
    planned = []
    for notebook in notebooks:
        if not notebook.is_file():
            raise ValueError(f"no notebook at {notebook}")
        overrides = {key: parse_parameter(notebook, key, value) for key, value in parameters}
        resolve_parameters(notebook, profile, overrides)
        planned.append((notebook, overrides))
    failures = 0
    for notebook, overrides in planned:
        output = out / notebook.name if out else None
        try:
            result = run_notebook(notebook, profile, overrides, output, force=force)
        except NotebookFailed as error:
            failures += 1
            print(f"FAILED {error}", file=sys.stderr)
            continue
        state = f"executed in {result.seconds:.1f} s" if result.executed else "up to date (cached)"
        print(f"{notebook.name} [{profile}] {state} -> {result.output}")
    if len(planned) > 1:
        print(f"{len(planned) - failures} of {len(planned)} notebooks completed, {failures} failed")
    return 1 if failures else 0


def cli_batch(
    grid: Path,
    workers: int,
    out: Path | None,
    scheduler: str | None = None,
    cluster: ClusterOptions | None = None,
    retries: int = DEFAULT_RETRIES,
    database: Path | None = None,
    profile: str | None = None,
) -> int:
    """``thesislib batch``: run a grid on Dask; report every run; non-zero exit if any failed."""
    outcomes = run_grid(
        grid,
        workers,
        out,
        scheduler=scheduler,
        cluster=cluster,
        retries=retries,
        database=database,
        profile=profile,
    )
    for outcome in outcomes:
        print(f"{outcome.status:>8}  {outcome.seconds:7.1f} s  {outcome.run.output}")
        if outcome.error:
            print("          " + outcome.error.replace("\n", "\n          "), file=sys.stderr)
    failed = sum(outcome.status == "failed" for outcome in outcomes)
    where = database or outcomes[0].run.output.parent / DATABASE_NAME
    print(f"{len(outcomes) - failed} of {len(outcomes)} runs completed, {failed} failed; results in {where}")
    return 1 if failed else 0


def cli_results(directory: Path, database: Path | None, csv: Path | None) -> int:
    """``thesislib results``: print the collected table; optionally write SQLite and CSV."""
    if database is not None and database.is_dir():
        raise ValueError(f"--db {database} is a folder; give a database file name")
    if csv is not None and csv.is_dir():
        raise ValueError(f"--csv {csv} is a folder; give a file name")
    table = collect_results(directory, on_skip=lambda text: print(f"warning: {text}", file=sys.stderr))
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
