"""Baseline splits the learnt one is compared with (thesis §3.3.1).

- the uniform split, r_c = B/C;
- the L2-norm heuristic: train a model with the uniform split, then give each context
  budget in proportion to the L2 norm of the first-layer weights that read its features,
  the importance estimate of recursive feature elimination (Guyon et al., 2002).
"""

from __future__ import annotations

import torch
from torch import Tensor

from thesislib.budget.split import _check_budget


def uniform_allocation(contexts: int, budget: float) -> Tensor:
    """r_c = B/C for every context."""
    if int(contexts) != contexts or contexts < 1:
        raise ValueError(f"contexts must be a positive integer, got {contexts}")
    return torch.full((int(contexts),), _check_budget(budget) / contexts)


def l2_norm_allocation(weight: Tensor, contexts: int, budget: float) -> Tensor:
    """Budget ∝ the L2 norm of each context's block of input columns in ``weight``.

    ``weight`` is the ``[out, C·D]`` weight of the first layer reading the flattened
    per-context features (context-major: columns ``c·D … (c+1)·D − 1`` read context c).
    """
    budget = _check_budget(budget)
    weight = weight.detach()
    if weight.ndim != 2 or int(contexts) != contexts or contexts < 1 or weight.shape[1] % contexts:
        raise ValueError(
            f"weight must be [out, C·D] with C = {contexts} dividing its {weight.shape[-1]} input columns"
        )
    norms = weight.reshape(weight.shape[0], int(contexts), -1).square().sum(dim=(0, 2)).sqrt()
    if float(norms.sum()) <= 0:
        raise ValueError("every context's weights are zero: the L2 heuristic has nothing to go on")
    return budget * norms / norms.sum()
