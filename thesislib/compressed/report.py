"""The chapter-5 tables, figures and claim records of notebook ``06_linear_substitutions``.

What the notebook shows of the experiment of :mod:`thesislib.compressed.experiment`, kept here so the
page only calls it:

- :data:`METHOD_NAMES` and :data:`METHOD_COLOURS` — the six substitutes of §5.2.3 as the figures
  label and colour them;
- :func:`format_budget_hit` — one cell of the table of budgets hit by each method (§5.2.4);
- :func:`print_run_result` — the line printed as each student of the experiment finishes (§5.3.3);
- :func:`ablation_over_seeds`, :func:`ablation_means` and :func:`ablation_record` — the with/without
  tables of the CRS (§5.3.5, Fig. 5.13) and AT (§5.3.6, Fig. 5.16) ablations, per seed, averaged
  over seeds, and in the glued form;
- :func:`pooled_claim_record` and :func:`per_method_claim_records` — the same ablations as per-seed
  claim records of the ledger (:func:`thesislib.claims.seed_record`);
- :func:`benefit_bars` — the bars of Figs. 5.13 and 5.16 (error without minus error with).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import holoviews as hv
import pandas as pd

from thesislib.claims import seed_record
from thesislib.compressed.experiment import ablation
from thesislib.cost import FAMILY_COLOURS

__all__ = [
    "ABLATION_COLUMNS",
    "METHOD_COLOURS",
    "METHOD_NAMES",
    "ablation_means",
    "ablation_over_seeds",
    "ablation_record",
    "benefit_bars",
    "format_budget_hit",
    "per_method_claim_records",
    "pooled_claim_record",
    "print_run_result",
]

METHOD_NAMES: dict[str, str] = {
    "rf": "RF",
    "acdc": "ACDC",
    "hashed": "HashedNet",
    "tt": "Tensor-Train",
    "tucker": "Tucker",
    "shufflenet": "ShuffleNet",
}
"""The display name of each substitute of §5.2.3, in the order of Fig. 5.5's legend."""

METHOD_COLOURS: dict[str, str] = {method: FAMILY_COLOURS[method] for method in METHOD_NAMES}
"""One colour per substitute, the same in every figure of the chapter (Figs. 5.5 and 5.7; :data:`thesislib.cost.FAMILY_COLOURS`)."""

ABLATION_COLUMNS: tuple[str, ...] = ("method", "budget", "parameters", "with", "without", "benefit", "seed")
"""The columns of :func:`ablation_over_seeds`."""

_MEANS = ["parameters", "with", "without", "benefit"]


def format_budget_hit(hit: Any) -> str:
    """How closely a method's setting hits a budget (§5.2.4): ``"+0.41% (2.390M)"`` or ``"unsupported"``.

    ``hit`` is a :class:`~thesislib.compressed.budget.BudgetHit` or a row of
    :func:`thesislib.compressed.networks.budget_grid` (its ``parameters``, ``relative_error`` and
    ``supported`` are read).

    The relative error ``parameters / budget − 1`` in percent and the parameters reached in millions;
    ``"unsupported"`` where the budget lies outside the method's tuning range (as for ACDC at
    WRN-28-10's two larger budgets, which is why Fig. 5.7 shows ACDC at the smallest only).
    """
    if not hit.supported:
        return "unsupported"
    return f"{100 * hit.relative_error:+.2f}% ({hit.parameters / 1e6:.3f}M)"


def print_run_result(row: Mapping[str, Any], names: Mapping[str, str] = METHOD_NAMES) -> None:
    """Print one trained student of the experiment (§5.3.3): method, budget, arm, test error, size, time.

    ``row`` is what :func:`~thesislib.compressed.experiment.run_experiment` passes to its
    ``on_result`` hook; this function is meant to be that hook.
    """
    print(
        f"{names.get(row['method'], row['method']):>12} {row['budget']} {row['arm']:>26}: "
        f"{row['test_error']:5.1f}% ({row['parameters']:,} params, {row['seconds']:.0f} s)"
    )


def ablation_over_seeds(
    results: pd.DataFrame, switch: str, decay: str = "base", seeds: Iterable[Any] | None = None
) -> pd.DataFrame:
    """One ablation's with/without table for every seed, stacked (Fig. 5.13 for ``"crs"``, 5.16 for ``"at"``).

    ``results`` are the runs of every seed (a ``seed`` column added to
    :func:`~thesislib.compressed.experiment.run_experiment`'s table); each seed's runs are paired by
    :func:`~thesislib.compressed.experiment.ablation` (``benefit = without − with``, in percentage
    points; ``decay`` as there). ``seeds`` defaults to those of ``results`` in order of appearance.
    Columns: :data:`ABLATION_COLUMNS`, one row per (seed, method, budget); no rows without seeds.
    """
    if seeds is None:
        seeds = dict.fromkeys(results["seed"]) if "seed" in results else []
    tables = [ablation(results[results["seed"] == s], switch, decay).assign(seed=s) for s in seeds]
    if not tables:
        return pd.DataFrame(columns=list(ABLATION_COLUMNS))
    return pd.concat(tables).reset_index()


def ablation_means(frame: pd.DataFrame) -> pd.DataFrame:
    """The mean over seeds of an :func:`ablation_over_seeds` table, per (method, budget).

    Columns ``parameters, with, without, benefit``: the numbers Figs. 5.13 and 5.16 plot (the thesis
    shows one run per method; here the benefit is averaged over the seeds).
    """
    return frame.groupby(["method", "budget"])[_MEANS].mean()


def ablation_record(frame: pd.DataFrame, with_name: str, without_name: str) -> dict[str, dict[str, Any]]:
    """The glued form of one ablation: per method its budget, mean errors, mean benefit and seed count.

    ``{"tt": {"budget": "B1", with_name: 12.3, without_name: 14.1, "benefit": 1.8, "seeds": 3}}``, the
    means of :func:`ablation_means` (errors in %, benefit in points; Figs. 5.13 and 5.16) and
    ``seeds`` the number of seeds averaged. One entry per method: with several ablation budgets the
    one sorted last wins.
    """
    seeds = frame.groupby(["method", "budget"])["seed"].nunique()
    return {
        method: {
            "budget": budget,
            with_name: float(row["with"]),
            without_name: float(row["without"]),
            "benefit": float(row["benefit"]),
            "seeds": int(seeds[method, budget]),
        }
        for (method, budget), row in ablation_means(frame).iterrows()
    }


def pooled_claim_record(
    frame: pd.DataFrame,
    with_arm: str,
    without_arm: str,
    exclude: Iterable[str] = (),
    unit: str = "% error",
) -> dict[str, Any]:
    """One claim record pooling every method of an ablation: one pair per (method, seed).

    The thesis' claims are about all substitutes together: CRS weight decay helps every method but
    HashedNet (§5.3.5, Fig. 5.13; pass ``exclude=("hashed",)``) and AT helps every method (§5.3.6,
    Fig. 5.16). ``frame`` is an :func:`ablation_over_seeds` table; the record's seeds are labelled
    ``"method/seed"`` and its arms ``with_arm`` (the ``with`` errors) and ``without_arm``.
    """
    part = frame[~frame["method"].isin(list(exclude))]
    labels = [f"{m}/{s}" for m, s in zip(part["method"], part["seed"], strict=True)]
    return seed_record(
        labels, unit=unit, **{with_arm: part["with"].tolist(), without_arm: part["without"].tolist()}
    )


def per_method_claim_records(
    frame: pd.DataFrame, with_arm: str, without_arm: str, stem: str, unit: str = "% error"
) -> dict[str, dict[str, Any]]:
    """One claim record per method of an ablation (Figs. 5.13 and 5.16 read method by method).

    Keys ``f"{stem}_{method}"`` in the order the methods first appear in ``frame`` (an
    :func:`ablation_over_seeds` table); each record pairs the ``with`` (arm ``with_arm``) and
    ``without`` (arm ``without_arm``) errors by seed.
    """
    records = {}
    for method in dict.fromkeys(frame["method"]):
        part = frame[frame["method"] == method]
        records[f"{stem}_{method}"] = seed_record(
            part["seed"].tolist(),
            unit=unit,
            **{with_arm: part["with"].tolist(), without_arm: part["without"].tolist()},
        )
    return records


def benefit_bars(table: pd.DataFrame, title: str, names: Mapping[str, str] = METHOD_NAMES) -> hv.Bars:
    """The bars of Fig. 5.13 or 5.16: per method, error without minus error with (positive: it helps).

    ``table`` is an :func:`ablation_means` table; hovering a bar shows both errors.
    """
    frame = table.reset_index()
    frame["name"] = [names.get(m, m) for m in frame["method"]]
    return hv.Bars(frame, "name", ["benefit", "with", "without"]).opts(
        width=460,
        height=360,
        tools=["hover"],
        xlabel="substitute",
        ylabel="error without - error with (points)",
        title=title,
        color="#4c72b0",
    )
