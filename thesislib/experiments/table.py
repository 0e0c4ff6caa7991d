"""The book's view of the GPU-scale experiments: the thesis' number beside ours, or how to get ours.

:func:`chapter_table` lists a chapter's experiments with the value the thesis reports
(``data/reference``), this project's paper-profile value where a results folder holds one (runs made
elsewhere and copied back, read through the results store), and otherwise the exact command and its
estimated cost. Nothing is filled in that was not measured: a missing run stays missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from thesislib.experiments.spec import EXPERIMENTS, Experiment

__all__ = ["CHAPTERS", "chapter_table", "command", "paper_results", "status_summary"]

CHAPTERS = ("4", "5", "secl")


def command(experiment: Experiment, nproc: int = 1) -> str:
    """The command that runs ``experiment`` in the paper profile (``--nproc`` for several GPUs)."""
    extra = f" --nproc {nproc}" if nproc > 1 else ""
    return f"thesislib experiments run {experiment.name} --profile paper{extra}"


def paper_results(results_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """Paper-profile experiment records below ``results_dirs``: one row per (experiment, seed) with its metric."""
    from thesislib.runs.results import collect_results

    rows = []
    for folder in results_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        table = collect_results(folder, on_skip=lambda _text: None)
        table = table[(table["profile"] == "paper") & table["notebook"].isin(list(EXPERIMENTS))]
        for (name, parameters), group in table.groupby(["notebook", "parameters"]):
            values = dict(zip(group["name"], group["value"], strict=True))
            metric = EXPERIMENTS[name].metric
            if metric in values:
                rows.append({"experiment": name, "parameters": parameters, "value": float(values[metric])})
    return pd.DataFrame(rows, columns=["experiment", "parameters", "value"])


def _thesis_value(experiment: Experiment) -> float | None:
    from thesislib import reference

    if experiment.reference is None:
        return None
    table, row, column = experiment.reference
    value = reference.table(table).loc[row, column]
    return None if pd.isna(value) else float(value)


def chapter_table(chapter: str | Sequence[str], results_dirs: Iterable[str | Path] = ()) -> pd.DataFrame:
    """A chapter's (``"4"``, ``"5"`` or ``"secl"``) paper-scale experiments, one row each.

    ``chapter`` may also be several chapters (e.g. ``("5", "secl")``): their rows one after another.

    Columns: ``experiment``, ``thesis location``, ``data``, ``model``, ``method``, ``metric``, ``thesis``
    (the reported value, empty where the thesis reports it only in a figure), ``this project``
    (mean over the seeds found), ``seeds``, and ``status``: ``"ran (n seeds)"``, or the command to
    run with its estimated GPU-hours, or why the job cannot run yet.
    """
    chapters = (chapter,) if isinstance(chapter, str) else tuple(chapter)
    for name in chapters:
        if name not in CHAPTERS:
            raise ValueError(f"unknown chapter {name!r}; valid: {', '.join(CHAPTERS)}")
    found = paper_results(results_dirs)
    rows = []
    for experiment in (e for name in chapters for e in EXPERIMENTS.values() if e.chapter == name):
        mine = found[found["experiment"] == experiment.name]
        if len(mine):
            status = f"ran ({len(mine)} seed{'s' if len(mine) > 1 else ''})"
        elif experiment.blocked:
            status = f"cannot run yet: {experiment.blocked}"
        else:
            status = (
                f"not run here: `{command(experiment)}` (~{experiment.gpu_hours:,.1f} GPU-hours estimated)"
            )
        rows.append(
            {
                "experiment": experiment.name,
                "thesis location": experiment.location,
                "data": experiment.dataset,
                "model": experiment.model.label,
                "method": experiment.method,
                "metric": experiment.metric,
                "thesis": _thesis_value(experiment),
                "this project": float(mine["value"].mean()) if len(mine) else None,
                "seeds": len(mine),
                "status": status,
            }
        )
    return pd.DataFrame(rows)


def status_summary(table: pd.DataFrame) -> str:
    """One line on a :func:`chapter_table`: how many jobs, how many ran here, how many cannot run yet."""
    ran = int((table["seeds"] > 0).sum())
    blocked = int(table["status"].str.startswith("cannot run").sum())
    return f"{len(table)} jobs: {ran} with paper-profile runs here, {blocked} cannot run yet"
