"""The chapter-5 experiment at CPU scale, and the thesis' training protocols as plain data (§5.3).

The thesis substitutes every pointwise convolution of a separable WRN-28-10, DARTS or WRN-50-2 by
one of six compressed linear transforms, tunes each method to the same parameter budgets (§5.2.4),
and trains every network with attention transfer (AT) from the uncompressed network and
compression-ratio-scaled (CRS) weight decay (§5.2.5), with ablations that switch CRS off (§5.3.5,
Fig. 5.13) and AT off (§5.3.6, Fig. 5.16).

This module runs the same design on a network and data small enough for a CPU, on top of chapter
4's CIFAR training (:func:`thesislib.training.train`), which it does not fork:

- :class:`CRSRecipe` is a :class:`~thesislib.training.Recipe` whose optimiser uses the CRS
  parameter groups of :func:`~thesislib.compressed.crs.crs_param_groups` (``crs=False``: the ablation);
- a student is a :class:`~thesislib.training.ModelSpec` with a substitute, e.g.
  ``ModelSpec("wrn-16-2", substitute="tt:0.3125")``: the WRN with every 3×3 convolution separable and
  its pointwise part substituted (:func:`thesislib.models.build_model`);
- :func:`matched_budgets` / :func:`solve_grid` pick budgets inside the common support of all
  methods and solve each method's tuning for them (§5.2.4, with the budget solver);
- :func:`plan_runs` lists the runs (main grid: AT + CRS at every budget; ablations: without CRS and
  without AT at one budget) and :func:`run_experiment` trains them; :func:`ablation` tabulates the
  with/without differences in the sign convention of Figs. 5.13 and 5.16.

:data:`PROTOCOLS` holds the thesis' protocols for WRN-28-10, DARTS and WRN-50-2 (§5.3.1) as
:class:`Protocol` records; :meth:`Protocol.recipe` turns one into a :class:`CRSRecipe` and
:meth:`Protocol.notebook_parameters` into the ``paper`` profile of ``06_linear_substitutions``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from thesislib.compressed.base import SUBSTITUTES
from thesislib.compressed.budget import (
    BudgetHit,
    budgets_in_support,
    common_support,
    solve_budget,
    tuning_curves,
)
from thesislib.compressed.crs import crs_param_groups
from thesislib.data.cifar import CifarData
from thesislib.moonshine.distillation import DistillationSettings
from thesislib.training import ModelSpec, Recipe, TrainedModel, train

__all__ = [
    "METHODS",
    "PROTOCOLS",
    "THESIS_SUMMED_DECAY",
    "CRSRecipe",
    "Protocol",
    "SubstitutionRun",
    "ablation",
    "matched_budgets",
    "matched_weight_decay",
    "plan_runs",
    "run_experiment",
    "solve_grid",
    "summed_decay",
]

METHODS: tuple[str, ...] = ("rf", "acdc", "hashed", "tt", "tucker", "shufflenet")
"""The six substitutes of §5.2.3, in the thesis' order of Fig. 5.5's legend."""

# ----------------------------------------------------------------------------------------------------------
# CRS weight decay inside chapter 4's recipes


@dataclasses.dataclass(frozen=True)
class CRSRecipe(Recipe):
    """A chapter-4 :class:`~thesislib.training.Recipe` with CRS weight decay (Eq. 5.18).

    Every substitute layer's parameters form one optimiser group at ``weight_decay × M/N``, where
    ``M/N`` is the network-wide compression ratio as in the thesis' code (``crs_scope="network"``:
    parameters of the compressed network over the same network with full convolutions) or each
    layer's own (``"layer"``); all other parameters keep ``weight_decay``. ``crs=False`` keeps the
    groups but at the base weight decay (the ablation of §5.3.5).
    """

    crs: bool = True
    crs_scope: str = "network"

    def __post_init__(self) -> None:
        super().__post_init__()
        from thesislib.compressed.crs import CRS_SCOPES

        if self.crs_scope not in CRS_SCOPES:
            raise ValueError(f"unknown CRS scope {self.crs_scope!r}; valid scopes: {', '.join(CRS_SCOPES)}")

    def optimizer(self, model: nn.Module) -> torch.optim.SGD:
        """SGD over the CRS parameter groups of ``model`` (trainable parameters only)."""
        groups = []
        for group in crs_param_groups(model, self.weight_decay, enabled=self.crs, scope=self.crs_scope):  # type: ignore[arg-type]
            params = [p for p in group["params"] if p.requires_grad]
            if params:
                groups.append({**group, "params": params})
        return torch.optim.SGD(
            groups, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, nesterov=self.nesterov
        )


def summed_decay(recipe: Recipe, steps_per_epoch: int) -> float:
    """``Σ_t lr_t · wd`` over every optimiser step of ``recipe``: how far weight decay shrinks the weights.

    With SGD, each step multiplies a weight by ``1 − lr_t·wd`` (before momentum), so this sum — not
    ``wd`` alone — says how strong a decay is over a run. The thesis' WRN-28-10 protocol (200 epochs of
    391 steps, step schedule from 0.1, wd 5e-4) sums to about 1.45 (:data:`THESIS_SUMMED_DECAY`); one
    cosine epoch of the CPU recipe to about 0.01, so CRS there changes almost nothing unless the decay
    is matched (:func:`matched_weight_decay`).
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    total = 0.0
    if recipe.schedule == "cosine":
        steps = recipe.epochs * steps_per_epoch
        total = sum(0.5 * recipe.lr * (1 + math.cos(math.pi * k / steps)) for k in range(steps))
    else:
        total = sum(recipe.lr_at(epoch) * steps_per_epoch for epoch in range(1, recipe.epochs + 1))
    return total * recipe.weight_decay


def matched_weight_decay(recipe: Recipe, steps_per_epoch: int, target: float | None = None) -> float:
    """The weight decay that gives ``recipe`` the summed decay ``target`` (default: the thesis', 1.45)."""
    target = THESIS_SUMMED_DECAY if target is None else float(target)
    if target < 0:
        raise ValueError(f"the target summed decay must be non-negative, got {target}")
    per_unit = summed_decay(recipe.replace(weight_decay=1.0), steps_per_epoch)
    return target / per_unit


# ----------------------------------------------------------------------------------------------------------
# The thesis' protocols (§5.3.1) as data


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One training protocol of §5.3.1, as printed in the thesis (and Appendix C of the paper, seed 002).

    ``budgets`` are the parameter budgets of §5.2.4. Settings the thesis delegates to another paper
    ("we replicated precisely the training hyperparameters ... of the original paper") carry that
    paper's value and say so in ``notes``. ``cutout`` is the side of the Cutout square (DeVries and
    Taylor, 2017) when ``augmentation`` lists ``"cutout"``, else 0; the thesis names Cutout without its
    size, and 16 px is the paper's CIFAR-10 setting, DARTS' and the thesis code's (``Cutout(16)``).
    """

    network: str
    dataset: str
    epochs: int
    batch_size: int
    lr: float
    schedule: str
    milestones: tuple[int, ...]
    gamma: float
    momentum: float
    weight_decay: float
    budgets: tuple[float, ...]
    augmentation: tuple[str, ...]
    cutout: int = 0
    crs: bool = True
    distillation: str = "at"
    beta: float = 1000.0
    alpha: float = 0.0
    nesterov: bool = False
    auxiliary_head: bool = False
    drop_path: tuple[float, float] = (0.0, 0.0)
    section: str = "§5.3.1"
    notes: str = ""

    def __post_init__(self) -> None:
        if ("cutout" in self.augmentation) != (self.cutout > 0):
            raise ValueError(
                f"augmentation {list(self.augmentation)} and cutout={self.cutout} disagree: list 'cutout' "
                "exactly when the square's side is positive"
            )

    def recipe(self, crs: bool | None = None) -> CRSRecipe:
        """The optimiser and schedule as a :class:`CRSRecipe` (``crs`` overrides the protocol's switch)."""
        return CRSRecipe(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov,
            schedule=self.schedule,  # type: ignore[arg-type]
            milestones=self.milestones,
            gamma=self.gamma,
            cutout=self.cutout,
            crs=self.crs if crs is None else crs,
        )

    def notebook_parameters(self) -> dict[str, Any]:
        """The ``06_linear_substitutions`` parameters that express this protocol (the ``paper`` profile)."""
        return {
            "network": self.network,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "schedule": self.schedule,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "cutout": self.cutout,
            "crs": self.crs,
            "beta": self.beta,
            "budgets": [float(b) for b in self.budgets],
        }


PROTOCOLS: Mapping[str, Protocol] = {
    "wrn-28-10": Protocol(
        network="wrn-28-10",
        dataset="cifar10",
        epochs=200,
        batch_size=128,
        lr=0.1,
        schedule="step",
        milestones=(60, 120, 160),
        gamma=0.2,
        momentum=0.9,
        weight_decay=5e-4,
        budgets=(2.38e6, 1.2e6, 0.6e6),
        augmentation=("random crop", "left-right flip", "cutout"),
        cutout=16,
        beta=1000.0,
        alpha=0.0,
        notes="AT with alpha = 0 and beta = 1000 (§5.3.1); CRS weight decay in every run but the §5.3.5 "
        "ablation; teacher: the WRN-28-10 itself, 3.2% error, 36.5M parameters (§5.3.3). Cutout 16 px "
        "(size not printed: DeVries and Taylor's CIFAR-10 setting and the thesis code's), teacher included.",
    ),
    "darts": Protocol(
        network="darts",
        dataset="cifar10",
        epochs=600,
        batch_size=96,
        lr=0.025,
        schedule="cosine",
        milestones=(),
        gamma=1.0,
        momentum=0.9,
        weight_decay=3e-4,
        budgets=(1.42e6, 0.83e6, 0.49e6),
        augmentation=("random crop", "left-right flip", "cutout"),
        cutout=16,
        auxiliary_head=True,
        drop_path=(0.0, 0.2),
        notes="Cosine from 0.025 to 0; auxiliary head in training only, not counted at test time; drop "
        "path probability rising linearly 0 -> 0.2 (§5.3.1). The thesis replicated the DARTS paper's "
        "remaining settings (auxiliary weight 0.4, cutout 16 px, gradient clipping 5 in Liu et al.'s code). "
        "AT with the DARTS base network (2.83% error) as teacher (§5.3.3).",
    ),
    "wrn-50-2": Protocol(
        network="wrn-50-2",
        dataset="imagenet",
        epochs=90,
        batch_size=256,
        lr=0.1,
        schedule="step",
        milestones=(30, 60),
        gamma=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        budgets=(17.7e6, 4.35e6),
        augmentation=("random crop", "left-right flip"),
        beta=750.0,
        notes="AT from the model-zoo WRN-50-2 (22.5% error as evaluated, §5.3.1). Chapter 5 does not print "
        "beta for ImageNet; 750 = 1000·3/4 is the thesis code's scaling for four groups (§4.5.1).",
    ),
}
"""The thesis' protocols by network name (§5.3.1)."""

THESIS_SUMMED_DECAY: float = summed_decay(PROTOCOLS["wrn-28-10"].recipe(), math.ceil(50_000 / 128))
"""``Σ lr·wd`` of the thesis' WRN-28-10 protocol (≈ 1.45): 200 epochs × 391 steps of CIFAR-10."""


# ----------------------------------------------------------------------------------------------------------
# The CPU-scale student: a chapter-4 WRN with separable, substituted convolutions


def _rounded(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def matched_budgets(
    count: Callable[[str, float], int],
    methods: Sequence[str] = METHODS,
    budgets: int = 2,
    points: int = 17,
) -> tuple[pd.DataFrame, tuple[int, int], list[int]]:
    """Fig. 5.5 for one network and ``budgets`` targets inside the range all ``methods`` support.

    Returns ``(curves, (low, high), targets)``: the tuning curves (:func:`tuning_curves`), the common
    support (:func:`common_support`) and the targets from its top to its bottom, evenly spaced in log
    parameters (§5.2.4: the thesis' three WRN-28-10 budgets are the two limits and the log-midpoint).
    """
    curves = tuning_curves(count, methods, points)
    low, high = common_support(curves)
    return curves, (low, high), budgets_in_support(low, high, budgets)


def solve_grid(
    count: Callable[[str, float], int],
    targets: Iterable[float],
    methods: Sequence[str] = METHODS,
    digits: int = 4,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each method's tuning for each target (§5.2.4), rounded to ``digits`` significant digits.

    Columns: ``method, budget, target, tuning, parameters, relative_error, supported, normalised``.
    ``parameters`` is recounted at the rounded tuning, so it is the size of the network that is built.
    ``budget`` labels the targets (default ``B1, B2, ...`` from the largest).
    """
    targets = [float(t) for t in targets]
    labels = list(labels) if labels is not None else [f"B{i + 1}" for i in range(len(targets))]
    if len(labels) != len(targets):
        raise ValueError(f"need one label per target, got {len(labels)} labels for {len(targets)} targets")
    rows = []
    for method in methods:
        for label, target in zip(labels, targets, strict=True):
            hit: BudgetHit = solve_budget(count, method, target)
            tuning = hit.tuning if SUBSTITUTES[method].tuning_range.integer else _rounded(hit.tuning, digits)
            parameters = count(method, tuning)
            rows.append(
                {
                    "method": method,
                    "budget": label,
                    "target": round(target),
                    "tuning": tuning,
                    "parameters": parameters,
                    "relative_error": (parameters - target) / target,
                    "supported": hit.supported,
                    "normalised": hit.normalised,
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# Runs


@dataclasses.dataclass(frozen=True)
class SubstitutionRun:
    """One student to train: a substitute at a tuning, with or without AT and CRS weight decay."""

    method: str
    tuning: float
    budget: str
    parameters: int
    distillation: str = "at"
    crs: bool = True
    weight_decay: float | None = None  # None: the recipe's; else e.g. the thesis-matched decay

    @property
    def decay(self) -> str:
        """``"base"`` (the recipe's weight decay) or ``"matched"`` (an override, e.g. the thesis' summed decay)."""
        return "base" if self.weight_decay is None else "matched"

    @property
    def substitute(self) -> str:
        """The student's substitute as text (``"tt:0.3125"``; the setting keeps every digit)."""
        if self.method not in SUBSTITUTES:  # the dense baseline has no setting
            return self.method
        return f"{self.method}:{self.tuning!r}"

    @property
    def arm(self) -> str:
        """``"AT + CRS"``, ``"AT, no CRS"``, ``"scratch + CRS"``, ...: which ablation arm this run is."""
        first = "AT" if self.distillation == "at" else self.distillation
        arm = f"{first} + CRS" if self.crs else f"{first}, no CRS"
        return arm if self.weight_decay is None else f"{arm} (matched decay)"


def plan_runs(
    grid: pd.DataFrame,
    ablation_budgets: Sequence[str] | None = None,
    ablation_methods: Sequence[str] | None = None,
    crs_ablation: bool = True,
    at_ablation: bool = True,
    matched_decay: float | None = None,
) -> list[SubstitutionRun]:
    """The runs of the experiment, main grid first, then the ablations.

    Main grid: AT + CRS for every row of ``grid`` (:func:`solve_grid`), as every result of §5.3.3.
    Ablations at ``ablation_budgets`` (default: the last, smallest budget; the thesis repeated all)
    for ``ablation_methods`` (default: all): AT without CRS (§5.3.5, Fig. 5.13) and CRS without AT,
    i.e. from scratch (§5.3.6, Fig. 5.16). With ``matched_decay`` (a weight decay, e.g. from
    :func:`matched_weight_decay`), the CRS ablation is also run as a pair at that decay — AT with and
    without CRS — so that its summed decay is comparable with the thesis'.
    """
    runs = [
        SubstitutionRun(r.method, float(r.tuning), r.budget, int(r.parameters), "at", True)
        for r in grid.itertuples()
    ]
    budgets = list(dict.fromkeys(grid["budget"]))
    chosen = [budgets[-1]] if ablation_budgets is None else list(ablation_budgets)
    if missing := sorted(set(chosen) - set(budgets)):
        raise ValueError(f"ablation budgets {missing} are not budgets of the grid; valid: {budgets}")
    methods = list(dict.fromkeys(grid["method"])) if ablation_methods is None else list(ablation_methods)
    if unknown := sorted(set(methods) - set(grid["method"])):
        raise ValueError(
            f"ablation methods {unknown} are not in the grid; valid: {sorted(set(grid['method']))}"
        )
    rows = grid[grid["budget"].isin(chosen) & grid["method"].isin(methods)]
    for r in rows.itertuples():
        if crs_ablation:
            runs.append(SubstitutionRun(r.method, float(r.tuning), r.budget, int(r.parameters), "at", False))
        if at_ablation:
            runs.append(
                SubstitutionRun(r.method, float(r.tuning), r.budget, int(r.parameters), "scratch", True)
            )
        if crs_ablation and matched_decay is not None:
            for crs in (True, False):
                runs.append(
                    SubstitutionRun(
                        r.method,
                        float(r.tuning),
                        r.budget,
                        int(r.parameters),
                        "at",
                        crs,
                        float(matched_decay),
                    )
                )
    return runs


def run_experiment(
    runs: Sequence[SubstitutionRun],
    network: str,
    data: CifarData,
    recipe: Recipe,
    teacher: TrainedModel | None,
    *,
    beta: float = 1000.0,
    seed: int = 0,
    device: str = "auto",
    checkpoint_dir: str | Path | None = None,
    channels_last: bool = False,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Train every run (:func:`~thesislib.training.train`, as chapter 4) and tabulate the results.

    Each run uses ``recipe`` as a :class:`CRSRecipe` with the run's CRS switch, AT (Eq. 4.2, ``beta``)
    from ``teacher`` or plain cross entropy, and the same ``seed`` (so arms differ only by the
    ablated setting). Columns: ``method, budget, tuning, parameters, distillation, crs, arm,
    decay, test_error, final_loss, seconds, run_id``. Runs are cached in ``checkpoint_dir``.
    """
    base = CRSRecipe(**dataclasses.asdict(recipe)) if not isinstance(recipe, CRSRecipe) else recipe
    rows = []
    for run in runs:
        settings = DistillationSettings(run.distillation, beta=beta)  # type: ignore[arg-type]
        if settings.needs_teacher and teacher is None:
            raise ValueError(f"run {run} needs a teacher for {run.distillation!r}")
        tick = time.perf_counter()
        trained = train(
            ModelSpec(network, substitute=run.substitute),
            data,
            base.replace(
                crs=run.crs, weight_decay=base.weight_decay if run.weight_decay is None else run.weight_decay
            ),
            distillation=settings,
            teacher=teacher if settings.needs_teacher else None,
            seed=seed,
            device=device,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
            channels_last=channels_last,
        )
        row = {
            "method": run.method,
            "budget": run.budget,
            "tuning": run.tuning,
            "parameters": run.parameters,
            "distillation": run.distillation,
            "crs": run.crs,
            "decay": run.decay,
            "arm": run.arm,
            "test_error": trained.test_error,
            "final_loss": float(trained.history["loss"].iloc[-1]),
            "seconds": time.perf_counter() - tick,
            "run_id": trained.run_id,
        }
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return pd.DataFrame(rows)


def ablation(results: pd.DataFrame, switch: str, decay: str = "base") -> pd.DataFrame:
    """With/without table of one ablation: ``switch`` is ``"crs"`` (Fig. 5.13) or ``"at"`` (Fig. 5.16).

    Pairs runs of the same method and budget that differ only in the switch; columns ``with``,
    ``without`` (test error, %) and ``benefit = without − with`` (percentage points; positive: the
    switch lowers the error, the sign the thesis' figures are read in). ``decay`` picks the runs at
    the recipe's weight decay (``"base"``) or at the matched one (``"matched"``, CRS only).
    """
    if "decay" in results:
        results = results[results["decay"] == decay]
    elif decay != "base":
        raise ValueError(f"the results have no {decay!r} decay runs")
    if switch == "crs":
        arms = results[results["distillation"] == "at"]
        on, off = arms[arms["crs"]], arms[~arms["crs"]]
    elif switch == "at":
        arms = results[results["crs"]]
        on, off = arms[arms["distillation"] == "at"], arms[arms["distillation"] == "scratch"]
    else:
        raise ValueError(f"unknown ablation switch {switch!r}; valid: 'crs', 'at'")
    keys = ["method", "budget"]
    merged = on[[*keys, "parameters", "test_error"]].merge(
        off[[*keys, "test_error"]], on=keys, suffixes=("_with", "_without")
    )
    merged = merged.rename(columns={"test_error_with": "with", "test_error_without": "without"})
    merged["benefit"] = merged["without"] - merged["with"]
    return merged.set_index(keys)
