"""The parameter-budget grid of §5.2.4: one tuning value per method that hits a target size.

Every method has one tuning parameter (RF rank scale, HashedNet compression ratio, TT/Tucker rank
scale, ACDC layers, ShuffleNet groups; :attr:`Substitute.tuning_range`). For a parameter counter
``count(method, tuning) -> int`` (the model registry's :func:`thesislib.models.parameter_counter`)
the solver finds, per method, the tuning whose network parameter count lands closest to a target.
Counting builds the network on PyTorch's ``meta`` device, so even a WRN-50-2 is counted without
allocating its weights.

Fig. 5.5 normalises each method's tuning to [0, 1] and plots the network's parameters; the budgets
are chosen inside the range where all methods have support — the thesis' WRN-28-10 upper limit is set
by the linear ShuffleNet's largest network (1 group) and the lower one by RF's smallest (rank scale
0.03) — with the middle budget by linear interpolation in log parameter count. From the code
(:func:`common_support` of :func:`tuning_curves`, then :func:`budgets_in_support`): WRN-28-10
2,384,154 / 1,197,190 / 601,162 (the thesis' 2.38M / 1.2M / 0.6M) and DARTS
1,415,440 / 831,525 / 488,494 (1.42M / 0.83M / 0.49M).

ACDC's layer count is open-ended (``2N`` parameters per layer, with no largest network): the 32 layers
of its tuning range only end its curve, so it does not limit the support from above
(:data:`OPEN_ENDED`). Budgets above its curve are reported unsupported by :func:`solve_budget`, as the
thesis has ACDC results only at WRN-28-10's smallest budget (Fig. 5.7: "unstable for larger networks").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from torch import nn

from thesislib.compressed.base import SUBSTITUTES, TuningRange

__all__ = [
    "OPEN_ENDED",
    "BudgetHit",
    "budgets_in_support",
    "common_support",
    "count_parameters",
    "parse_count",
    "solve_budget",
    "tuning_curves",
]

Counter = Callable[[str, float], int]

#: methods whose tuning has no upper end (ACDC: any number of layers can be stacked); their curves
#: limit the common support of Fig. 5.5 from below only
OPEN_ENDED: frozenset[str] = frozenset({"acdc"})


def count_parameters(build: Callable[[], nn.Module]) -> int:
    """Parameters (numel of ``parameters()``, buffers excluded) of ``build()``, built on the meta device."""
    with torch.device("meta"):
        model = build()
    return sum(p.numel() for p in model.parameters())


_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_count(text: float | int | str) -> int:
    """A parameter count from ``1200000``, ``"1.2M"``, ``"600k"`` or ``"2.38e6"`` (K/M/G suffixes)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", str(text))
        if not match:
            raise ValueError(
                f"cannot read a parameter count from {text!r}; use e.g. 600000, 600K, 1.2M or 2.38e6"
            )
        value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"a parameter count must be a positive number, got {text!r}")
    return round(value)


def _range(method: str, tuning_range: TuningRange | None) -> TuningRange:
    if method not in SUBSTITUTES:
        import thesislib.compressed  # noqa: F401

    if method not in SUBSTITUTES:
        raise ValueError(f"unknown substitute {method!r}; valid: {sorted(SUBSTITUTES)}")
    return tuning_range or SUBSTITUTES[method].tuning_range


@dataclass(frozen=True)
class BudgetHit:
    """The closest tuning of one method to a target parameter count."""

    method: str
    target: int
    tuning: float
    normalised: float
    parameters: int
    supported: bool  # the target lies within the method's tuning range

    @property
    def relative_error(self) -> float:
        return (self.parameters - self.target) / self.target

    def as_dict(self) -> dict:
        return {**asdict(self), "relative_error": self.relative_error}


def _normalised_of(rng: TuningRange, value: float) -> float:
    if rng.high == rng.low:
        return 0.0
    if rng.log:
        return (math.log(value) - math.log(rng.low)) / (math.log(rng.high) - math.log(rng.low))
    return (value - rng.low) / (rng.high - rng.low)


def solve_budget(
    count: Counter,
    method: str,
    target: float,
    tuning_range: TuningRange | None = None,
    iterations: int = 30,
    tolerance: float = 0.005,
) -> BudgetHit:
    """The tuning of ``method`` whose network is closest to ``target`` parameters (§5.2.4).

    Integer tunings (ACDC layers, ShuffleNet groups) are searched exhaustively; continuous ones by
    bisection on the normalised setting (parameter counts are monotone in them), keeping the closest
    count seen. ``supported`` is False when the target lies outside the method's range by more than
    the relative ``tolerance``: budgets are printed rounded (the thesis' 1.42M DARTS budget is its
    largest linear ShuffleNet network, 1,415,440 parameters; Table 5.1's 4.35M RF row is RF at the
    range's end, rank scale 0.03: 4,353,832), so the default 0.5% keeps them inside.
    """
    rng = _range(method, tuning_range)
    if target <= 0:
        raise ValueError(f"target parameter count must be > 0, got {target}")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must lie in [0, 1), got {tolerance}")
    seen: dict[float, int] = {}

    def at(value: float) -> int:
        if value not in seen:
            seen[value] = count(method, value)
        return seen[value]

    if rng.integer:
        for v in range(int(rng.low), int(rng.high) + 1):
            at(float(v))
    else:
        lo_t, hi_t = 0.0, 1.0
        increasing = at(rng.value(1.0)) >= at(rng.value(0.0))
        for _ in range(iterations):
            mid = 0.5 * (lo_t + hi_t)
            if (at(rng.value(mid)) < target) == increasing:
                lo_t = mid
            else:
                hi_t = mid
    best = min(seen, key=lambda v: (abs(seen[v] - target), v))
    counts = seen.values()
    supported = min(counts) * (1 - tolerance) <= target <= max(counts) * (1 + tolerance)
    return BudgetHit(method, round(target), best, _normalised_of(rng, best), seen[best], supported)


def tuning_curves(count: Counter, methods: Iterable[str] | None = None, points: int = 17) -> pd.DataFrame:
    """Network parameters against the normalised tuning of each method (Fig. 5.5).

    Columns ``method, normalised, tuning, parameters``; integer methods keep their distinct values.
    """
    rows = []
    for method in sorted(SUBSTITUTES) if methods is None else methods:
        rng = _range(method, None)
        done = set()
        for i in range(points):
            value = rng.value(i / (points - 1))
            if value in done:
                continue
            done.add(value)
            rows.append(
                {
                    "method": method,
                    "normalised": _normalised_of(rng, value),
                    "tuning": value,
                    "parameters": count(method, value),
                }
            )
    return pd.DataFrame(rows)


def common_support(
    curves: pd.DataFrame,
    methods: Sequence[str] | None = None,
    open_ended: Iterable[str] = OPEN_ENDED,
) -> tuple[int, int]:
    """``(low, high)`` parameter counts every method can reach (Fig. 5.5, §5.2.4).

    ``low`` is the largest of the methods' smallest networks; ``high`` the smallest of their largest,
    leaving out the ``open_ended`` methods (default :data:`OPEN_ENDED`: ACDC), whose largest network is
    only where their curve stops. For WRN-28-10 and DARTS this is the thesis' range: RF at rank scale
    0.03 to the linear ShuffleNet at 1 group. Pass ``open_ended=()`` for the strict intersection.
    """
    frame = curves if methods is None else curves[curves.method.isin(methods)]
    if frame.empty:
        raise ValueError(f"no tuning curves for methods {methods}; curves hold {sorted(set(curves.method))}")
    grouped = frame.groupby("method").parameters
    bounded = grouped.max().drop(labels=list(set(open_ended)), errors="ignore")
    if bounded.empty:
        raise ValueError(
            f"every method in {sorted(grouped.groups)} is open-ended: no upper limit to the support"
        )
    low, high = int(grouped.min().max()), int(bounded.min())
    if low > high:
        raise ValueError(f"the methods have no common support: lowest reachable {low} > highest {high}")
    return low, high


def budgets_in_support(low: float, high: float, count: int = 3) -> list[int]:
    """``count`` budgets from ``high`` down to ``low``, evenly spaced in log parameters (§5.2.4)."""
    if count == 1:
        return [round(math.sqrt(low * high))]
    return [
        round(math.exp(math.log(high) + i * (math.log(low) - math.log(high)) / (count - 1)))
        for i in range(count)
    ]
