"""The test condition: statistics gathered from the number of real samples the budget prescribes.

At training time the effect of a budget is emulated by noise (Eq. 3.8); at test time
the thesis gathers each context's statistic from as many real samples as the split
allots it (§3.2.3, §3.3.1). :func:`integer_allocation` turns a learnt real-valued
allocation into whole samples; :func:`evaluate_with_samples` measures a model in that
condition; :func:`budget_to_match` finds the uniform budget that matches a learnt split
(the "extra cost" of Figs. 3.6 and 3.9).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from thesislib.budget.noising import BudgetedModel


def integer_allocation(allocation: Tensor | Sequence[float], total: int) -> Tensor:
    """Whole samples per context summing to ``total``, proportional to ``allocation`` (largest remainder).

    Each context first gets the floor of its share of ``total``; the samples left over go
    to the contexts with the largest fractional parts (ties to the lower index).
    """
    allocation = torch.as_tensor(allocation, dtype=torch.float64)
    if int(total) != total or total < 0:
        raise ValueError(f"the total budget must be a non-negative integer, got {total}")
    if allocation.ndim != 1 or bool((allocation < 0).any()) or float(allocation.sum()) <= 0:
        raise ValueError(f"an allocation must be non-negative with a positive sum, got {allocation.tolist()}")
    exact = allocation / allocation.sum() * int(total)
    counts = exact.floor().long()
    left = int(total) - int(counts.sum())
    order = sorted(range(len(exact)), key=lambda c: (-(float(exact[c]) - int(counts[c])), c))
    for context in order[:left]:
        counts[context] += 1
    return counts


@torch.no_grad()
def evaluate_with_samples(
    model: BudgetedModel,
    batches: Iterable[tuple[Tensor, Tensor]],
    counts: Tensor | Sequence[int],
    metric: Callable[[Tensor, Tensor], Tensor],
) -> float:
    """Mean of ``metric(prediction, target)`` with each context's statistic from ``counts[c]`` real samples.

    ``batches`` yields ``(samples [N, C, I, ...], targets)`` with I ≥ max(counts); no noise is
    added. ``metric`` returns one value per example (or a batch mean, weighted by batch size).
    """
    counts = torch.as_tensor(counts).long()
    was_training = model.training
    model.eval()
    total, seen = 0.0, 0
    try:
        for samples, targets in batches:
            values = metric(model(samples, counts=counts.to(samples.device), noisy=False), targets)
            size = len(targets)
            total += float(values.sum()) if values.ndim else float(values) * size
            seen += size
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("no batches to evaluate")
    return total / seen


def budget_to_match(
    budgets: Sequence[float], losses: Sequence[float], target: float, extrapolate: bool = True
) -> float:
    """The budget at which a loss curve first reaches ``target``, interpolating in log-budget.

    ``budgets`` ascending, ``losses`` the loss achieved at each (e.g. a uniform split's); the
    "extra cost" of Figs. 3.6 and 3.9 is ``budget_to_match(...) / B − 1``. If the curve already
    starts below ``target`` (the matched split does *worse* than the smallest uniform budget), the
    answer is extrapolated below ``budgets[0]`` along the first segment in log-budget, so the
    extra cost is signed rather than censored at 0; with ``extrapolate=False``, or when the first
    segment does not fall, ``budgets[0]`` is returned. Returns ``inf`` if the curve never reaches
    ``target`` within the budgets tried (censored above: see :func:`match_status`).
    """
    budgets, losses = _check_curve(budgets, losses)
    if losses[0] <= target:
        if extrapolate and len(budgets) > 1 and losses[1] < losses[0]:
            low, high = np.log(budgets[0]), np.log(budgets[1])
            fraction = (losses[0] - target) / (losses[0] - losses[1])  # <= 0 here
            return float(math.exp(low + fraction * (high - low)))
        return float(budgets[0])
    for index in range(1, len(budgets)):
        if losses[index] <= target:
            low, high = np.log(budgets[index - 1]), np.log(budgets[index])
            fraction = (losses[index - 1] - target) / (losses[index - 1] - losses[index])
            return float(math.exp(low + fraction * (high - low)))
    return math.inf


def match_status(budgets: Sequence[float], losses: Sequence[float], target: float) -> str:
    """How :func:`budget_to_match` found its answer: ``"interpolated"`` within the budgets tried,
    ``"below"`` (extrapolated under the smallest budget) or ``"censored"`` (beyond the largest)."""
    budgets, losses = _check_curve(budgets, losses)
    if losses[0] <= target:
        return "below"
    return "interpolated" if bool(np.any(losses <= target)) else "censored"


def _check_curve(budgets: Sequence[float], losses: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    budgets = np.asarray(budgets, dtype=float)
    losses = np.asarray(losses, dtype=float)
    if budgets.ndim != 1 or budgets.shape != losses.shape or len(budgets) == 0:
        raise ValueError("budgets and losses must be equal-length, non-empty sequences")
    if bool(np.any(np.diff(budgets) <= 0)) or bool(np.any(budgets <= 0)):
        raise ValueError(f"budgets must be positive and ascending, got {budgets.tolist()}")
    return budgets, losses
