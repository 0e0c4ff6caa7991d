"""Grids of notebook runs: a notebook × parameter lists → their cartesian product.

A grid file (YAML)::

    profile: cpu                  # the profile every run starts from (default: cpu)
    runs:
      - notebook: notebooks/00_data.ipynb
        parameters:               # every value is a list of values to sweep;
          seed: [0, 1, 2]         # a scalar is shorthand for a one-value list
          device: cpu             # (a list-valued parameter is written [[1, 2, 3]])

Paths are relative to the grid file. Each run's output notebook is named by its
parameters (``00_data__device=cpu__seed=1.ipynb``) in ``runs/batch/<grid name>/``.
Runs execute in parallel worker processes; a failed run is reported and does not
stop the others; a rerun skips every run whose cached execution is current.
"""

from __future__ import annotations

import itertools
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from thesislib.runs.profiles import check_profile, resolve_parameters
from thesislib.runs.runner import RUNS_DIR, NotebookFailed, run_notebook


@dataclass(frozen=True)
class GridRun:
    """One run of a grid: a notebook, a profile, its parameter overrides and its output path."""

    notebook: Path
    profile: str
    overrides: dict[str, Any]
    output: Path


@dataclass(frozen=True)
class GridOutcome:
    run: GridRun
    status: str  # "executed", "cached" or "failed"
    seconds: float
    error: str = ""


def _slug(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "empty"


def output_name(notebook: Path, overrides: dict[str, Any]) -> str:
    """The output file name of a run: the notebook stem then ``key=value`` pairs in name order."""
    parts = [notebook.stem] + [f"{key}={_slug(overrides[key])}" for key in sorted(overrides)]
    return "__".join(parts) + ".ipynb"


def expand_grid(grid_file: str | Path, out_dir: str | Path | None = None) -> list[GridRun]:
    """Read a grid file and list its runs; every parameter name is validated before anything runs."""
    grid_file = Path(grid_file)
    if not grid_file.is_file():
        raise FileNotFoundError(f"no grid file at {grid_file}")
    spec = yaml.safe_load(grid_file.read_text(encoding="utf-8")) or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list) or not spec["runs"]:
        raise ValueError(f"{grid_file}: a grid needs a non-empty 'runs' list (see thesislib.runs.batch)")
    unknown = set(spec) - {"profile", "runs"}
    if unknown:
        raise ValueError(f"{grid_file}: unknown top-level key(s) {sorted(unknown)}; valid: profile, runs")
    profile = check_profile(spec.get("profile", "cpu"))
    out_dir = Path(out_dir) if out_dir else RUNS_DIR / "batch" / grid_file.stem
    runs: list[GridRun] = []
    for entry in spec["runs"]:
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise ValueError(f"{grid_file}: every entry of 'runs' needs a 'notebook' key, got {entry!r}")
        notebook = (grid_file.parent / entry["notebook"]).resolve()
        sweep = entry.get("parameters") or {}
        names = sorted(sweep)
        values = [sweep[name] if isinstance(sweep[name], list) else [sweep[name]] for name in names]
        for combination in itertools.product(*values):
            overrides = dict(zip(names, combination, strict=True))
            resolve_parameters(notebook, profile, overrides)  # fail early on unknown names
            runs.append(GridRun(notebook, profile, overrides, out_dir / output_name(notebook, overrides)))
    outputs = [run.output for run in runs]
    if len(set(outputs)) != len(outputs):
        raise ValueError(f"{grid_file}: two runs would write the same output notebook")
    return runs


def _execute(run: GridRun) -> GridOutcome:
    try:
        result = run_notebook(run.notebook, run.profile, run.overrides, run.output, progress=False)
    except (NotebookFailed, ValueError, OSError) as error:
        return GridOutcome(run, "failed", 0.0, str(error))
    return GridOutcome(run, "executed" if result.executed else "cached", result.seconds)


def run_grid(grid_file: str | Path, workers: int = 1, out_dir: str | Path | None = None) -> list[GridOutcome]:
    """Execute every run of a grid with ``workers`` parallel processes; return one outcome per run."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    runs = expand_grid(grid_file, out_dir)
    outcomes: dict[int, GridOutcome] = {}
    with tqdm(total=len(runs), desc=Path(grid_file).stem, unit="run") as bar:
        if workers == 1:
            for index, run in enumerate(runs):
                outcomes[index] = _execute(run)
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(_execute, run): index for index, run in enumerate(runs)}
                for future in as_completed(futures):
                    outcomes[futures[future]] = future.result()
                    bar.update()
    return [outcomes[index] for index in range(len(runs))]
