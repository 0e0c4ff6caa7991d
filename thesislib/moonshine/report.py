"""The chapter-4 page's tables and figures: students beside the thesis (Table 4.3, Figs. 4.4–4.6).

What ``notebooks/05_moonshine.ipynb`` computes from its trained runs, kept here so the page only calls it:

- :class:`StudentRuns`: the students of §4.4, each trained once per (network, method, seed) from
  scratch, with knowledge distillation (Eq. 4.1) or with attention transfer (Eq. 4.2) from one teacher;
- :func:`seed_errors`: one arm's test errors over paired seeds, for the claims' records;
- :func:`thesis_analogue`: the Table 4.3 row shown beside a network of this run;
- :func:`last_epoch_terms` and :func:`at_term_gap`: the loss terms of Eq. 4.2 over the last epoch;
- :func:`error_vs_size`: Fig. 4.4, the thesis' AT errors against parameters and mult-adds with this
  run's students overlaid;
- :func:`loss_terms_figure`: Figs. 4.5 and 4.6, each AT term and the cross entropy during training.

Runs are :class:`~thesislib.training.TrainedModel` objects, keyed ``(network label, method, seed)``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from typing import Any

import holoviews as hv
import pandas as pd

from thesislib import reference
from thesislib.cost import FAMILY_COLOURS, block_family
from thesislib.data.cifar import CifarData
from thesislib.moonshine.blocks import parse_block
from thesislib.moonshine.distillation import DistillationSettings
from thesislib.training import ModelSpec, Recipe, TrainedModel, train

__all__ = [
    "AT_TERMS",
    "RunKey",
    "StudentRuns",
    "at_term_gap",
    "error_vs_size",
    "last_epoch_terms",
    "loss_terms_figure",
    "seed_errors",
    "thesis_analogue",
]

RunKey = tuple[str, str, int]
"""A student run's key: ``(network label, method, seed)``, e.g. ``("wrn-10-2 B(2)", "at", 1)``."""

AT_TERMS: Mapping[str, str] = {
    "ce": "cross entropy",
    "at1": "AT, group 1 (conv2)",
    "at2": "AT, group 2 (conv3)",
    "at3": "AT, group 3 (conv4)",
}
"""The logged terms of Eq. 4.2 (``at1..at3`` are β d_i) and their legend labels in Figs. 4.5–4.6."""

_TERM_COLOURS = {"ce": "black", "at1": "#1f77b4", "at2": "#2ca02c", "at3": "#d62728"}


# ----------------------------------------------------------------------------------------------------------
# Training the students


@dataclasses.dataclass
class StudentRuns:
    """The students of one teacher (§4.4), each trained once per ``(network label, method, seed)``.

    Args:
        data: the training and test images every student sees.
        recipe: the students' recipe (the teacher's own in the thesis).
        teacher: the trained teacher that ``kd`` (Eq. 4.1) and ``at`` (Eq. 4.2) students distil from.
        settings: the distillation settings of each method, ``{"scratch": ..., "kd": ..., "at": ...}``.
        options: further keyword arguments of :func:`~thesislib.training.train`
            (``device``, ``checkpoint_dir``, ``channels_last``, ...).
        runs: the trained students so far; :meth:`train` adds to it and reuses what it holds.
    """

    data: CifarData
    recipe: Recipe
    teacher: TrainedModel
    settings: Mapping[str, DistillationSettings]
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    runs: dict[RunKey, TrainedModel] = dataclasses.field(default_factory=dict)

    def train(self, spec: ModelSpec, method: str, seed: int, label: str | None = None) -> TrainedModel:
        """The student ``spec`` trained with ``method`` and ``seed``, unless :attr:`runs` holds it already.

        ``label`` (default ``spec.label``) names the run, e.g. ``"wrn-10-2 S (same structure)"`` for a
        student with the teacher's own structure. Arms with the same seed share initial weights, data
        order, crops and flips, so their differences are paired.
        """
        key = (label or spec.label, method, seed)
        if key not in self.runs:
            tick = time.perf_counter()
            self.runs[key] = train(
                spec,
                self.data,
                self.recipe,
                distillation=self.settings[method],
                teacher=None if method == "scratch" else self.teacher,
                seed=seed,
                **self.options,
            )
            print(
                f"{key[0]:>22} {method:>7} seed {seed}: test error {self.runs[key].test_error:5.2f}% "
                f"({time.perf_counter() - tick:.0f} s)"
            )
        return self.runs[key]


def seed_errors(
    runs: Mapping[RunKey, TrainedModel], label: str, method: str, seeds: Iterable[int]
) -> list[float]:
    """Test errors (%) of network ``label`` trained with ``method``, one per seed in ``seeds``, in order.

    The arms of a claim's :func:`~thesislib.claims.seed_record` (e.g. AT against scratch, Table 4.3's
    columns) are paired by seed.
    """
    return [runs[label, method, seed].test_error for seed in seeds]


# ----------------------------------------------------------------------------------------------------------
# This run beside Table 4.3


def thesis_analogue(
    name: str, block: str, is_teacher: bool = False, table: pd.DataFrame | None = None
) -> str | None:
    """The row of Table 4.3 to show beside network ``name`` with ``block`` of this run (``None``: no row).

    The teacher is shown beside the thesis' teacher (WRN-40-2 S). A student is shown beside the row of
    the same network if Table 4.3 has it as a student, else, with cheap blocks, beside the WRN-40-2
    student with the same block: the thesis' cheap students all keep the teacher's WRN-40-2
    architecture. ``table`` is ``reference.table("ch4_table43")`` unless given.
    """
    table = reference.table("ch4_table43") if table is None else table
    if is_teacher:
        return table.index[table["role"] == "teacher"][0]
    candidates = [f"{name} {block}"] + ([f"wrn-40-2 {block}"] if parse_block(block).kind != "S" else [])
    return next(
        (key for key in candidates if key in table.index and table.loc[key, "role"] == "student"),
        None,
    )


def error_vs_size(table: pd.DataFrame, comparison: pd.DataFrame, run_label: str) -> hv.Layout:
    """Fig. 4.4: CIFAR-10 test error of the AT students against parameters and mult-adds (log scale).

    Args:
        table: Table 4.3 (``reference.table("ch4_table43")``): one curve per block family of its AT
            students, coloured as in the thesis (shrunk standard networks red, G green, B blue, BG cyan).
        comparison: this run's networks, indexed by name with the teacher first, with columns
            ``"params (K)"``, ``"mult-adds (M)"``, ``"scratch"`` and (if any AT student ran) ``"at"``
            (errors in %); its AT students are overlaid as stars and its teacher as a diamond.
        run_label: this run's name in the legend, e.g. ``"this run (cpu profile)"``.

    Returns two panels, parameters (Fig. 4.4a) above mult-adds (Fig. 4.4b).
    """
    points = table.reset_index().rename(columns={"name": "network", "c10_at": "at"})
    points = points[points["at"].notna()]
    points = points.assign(
        family=[block_family(block) for block in points["block"]],
        params=points["params_k"] * 1e3,
        madds=points["madds_m"] * 1e6,
    )
    mine = comparison.reset_index().assign(
        params=lambda f: f["params (K)"] * 1e3, madds=lambda f: f["mult-adds (M)"] * 1e6
    )
    panels = []
    for x, xlabel in (("params", "parameters"), ("madds", "mult-adds")):
        layers = []
        for name, colour in FAMILY_COLOURS.items():
            part = points[points["family"] == name].sort_values(x)
            if part.empty:
                continue
            layers.append(hv.Curve(part, x, "at", label=f"thesis {name}").opts(color=colour))
            layers.append(
                hv.Scatter(part, x, ["at", "network"], label=f"thesis {name}").opts(color=colour, size=7)
            )
        if "at" in mine:
            ours = mine[mine["at"].notna()]  # counted at this run's resolution
            layers.append(
                hv.Scatter(ours, x, ["at", "network"], label=f"{run_label}, AT").opts(
                    color="black", marker="star", size=14
                )
            )
        layers.append(
            hv.Scatter(mine.iloc[:1], x, ["scratch", "network"], label=f"{run_label}, teacher").opts(
                color="orange", marker="diamond", size=12
            )
        )
        panels.append(
            hv.Overlay(layers).opts(
                logx=True,
                xlabel=f"{xlabel} (log scale)",
                ylabel="CIFAR-10 test error (%)",
                title=f"Fig. 4.4{'a' if x == 'params' else 'b'}: error vs {xlabel}",
                legend_position="right",
                width=620,
                height=420,
                legend_opts={"click_policy": "hide"},
            )
        )
    return hv.Layout(panels).cols(1).opts(shared_axes=False)


# ----------------------------------------------------------------------------------------------------------
# The loss terms of Eq. 4.2 (Figs. 4.5 and 4.6)


def last_epoch_terms(run: TrainedModel) -> dict[str, float]:
    """Mean loss terms of ``run`` over its last epoch: ``ce`` and, for AT, ``at1..at3`` (β d_i, Eq. 4.2)."""
    last = run.history.iloc[-1]
    return {term: float(last[term]) for term in AT_TERMS if term in last}


def at_term_gap(run: TrainedModel) -> float:
    """The third group's AT term minus the first group's, β (d_3 − d_1) of Eq. 4.2, over the last epoch.

    Positive when the first group's term has been minimised further than the third's, as the thesis
    describes for Figs. 4.5–4.6 (the record ``claim_moonshine_at_term_ordering``).
    """
    last = run.history.iloc[-1]
    return float(last["at3"] - last["at1"])


def loss_terms_figure(run: TrainedModel, title: str) -> hv.Overlay:
    """Figs. 4.5/4.6: each logged term of Eq. 4.2 of ``run`` at every training step (log scale).

    The cross entropy and the β-scaled AT terms of the three residual groups, each smoothed by a running
    mean over a quarter of an epoch's steps.
    """
    steps = run.steps
    terms = [term for term in AT_TERMS if term in steps]
    window = max(1, len(steps) // (4 * int(run.history["epoch"].max())))
    curves = [
        hv.Curve(
            (steps["step"], steps[term].rolling(window, min_periods=1).mean()),
            "step",
            "loss term",
            label=AT_TERMS[term],
        ).opts(color=_TERM_COLOURS[term])
        for term in terms
    ]
    return hv.Overlay(curves).opts(
        title=title,
        logy=True,
        width=620,
        height=380,
        legend_position="top_right",
        ylabel="loss term (AT terms scaled by beta)",
        xlabel="training step",
    )
