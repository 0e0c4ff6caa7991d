"""Bayesian optimisation of a budget split with GPyOpt (the thesis' black-box baseline, §3.3.1).

Each trial proposes split parameters γ in a box, trains a model from scratch with the split
they give and reports its validation error; a Gaussian-process surrogate with expected
improvement chooses the next trial (The GPyOpt authors, 2016).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SearchResult:
    """Every trial (parameters, value, seconds) in order, and the best one."""

    trials: pd.DataFrame
    best_parameters: np.ndarray
    best_value: float
    seconds: float


def bayesian_optimisation(
    objective: Callable[[np.ndarray], float],
    bounds: Sequence[tuple[float, float]],
    trials: int,
    initial_trials: int = 3,
    seed: int = 0,
) -> SearchResult:
    """Minimise ``objective(x)`` over the box ``bounds`` with ``trials`` evaluations in all.

    The first ``initial_trials`` points are a random design; the rest are chosen by GPyOpt's
    GP + expected improvement. Deterministic for a given ``seed``.
    """
    if trials < 1 or initial_trials < 1:
        raise ValueError(f"trials and initial_trials must be positive, got {trials} and {initial_trials}")
    if any(low >= high for low, high in bounds):
        raise ValueError(f"every bound must be (low, high) with low < high, got {list(bounds)}")
    import GPyOpt  # imported here: slow to import, and only this baseline needs it

    initial_trials = min(initial_trials, trials)
    records: list[dict] = []

    def evaluate(points: np.ndarray) -> np.ndarray:
        values = []
        for point in np.atleast_2d(points):
            start = time.perf_counter()
            value = float(objective(np.asarray(point, dtype=float)))
            records.append(
                {
                    "trial": len(records),
                    "value": value,
                    "seconds": time.perf_counter() - start,
                    **{f"x{i}": float(v) for i, v in enumerate(point)},
                }
            )
            values.append([value])
        return np.asarray(values)

    start = time.perf_counter()
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        domain = [{"name": f"x{i}", "type": "continuous", "domain": tuple(b)} for i, b in enumerate(bounds)]
        optimiser = GPyOpt.methods.BayesianOptimization(
            f=evaluate,
            domain=domain,
            initial_design_numdata=initial_trials,
            acquisition_type="EI",
            exact_feval=False,
            de_duplication=True,
        )
        if trials > initial_trials:
            optimiser.run_optimization(max_iter=trials - initial_trials)
    finally:
        np.random.set_state(state)
    table = pd.DataFrame(records)
    best = int(table["value"].idxmin())
    parameters = table.loc[best, [f"x{i}" for i in range(len(bounds))]].to_numpy(dtype=float)
    return SearchResult(table, parameters, float(table.loc[best, "value"]), time.perf_counter() - start)
