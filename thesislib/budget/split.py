"""A split of a total budget over contexts, learnt through a softmax (thesis §3.2.1, Eqs. 3.11–3.12).

An unconstrained vector γ is mapped to the allocation r = B·softmax(γ), so the
resources always sum to the total budget B; each context's noise is then
σ_c = √v_c · σ(r_c) for the chosen noise process σ (Eqs. 3.4–3.6). With the
standard-error process this is the sample budget of Eq. 3.11,
σ²_c = v_c / (B·softmax_c(γ)); with the quantisation process and v_c = 1 it is the
bit budget of Eq. 3.12, σ²_c = 2^(−2B·softmax_c(γ)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from thesislib.budget.noise import NOISE_PROCESSES, check_process


def _check_budget(budget: float) -> float:
    budget = float(budget)
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"the total budget must be a positive finite number, got {budget}")
    return budget


class BudgetSplit(nn.Module):
    """r = B·softmax(γ) over ``contexts`` contexts, and the noise σ(γ) it implies (Eqs. 3.11–3.12).

    Args:
        contexts: number of contexts C the budget is split over.
        budget: the total budget B (samples, rate or bits), positive.
        process: the noise process, one of :data:`~thesislib.budget.noise.NOISE_PROCESSES`.
        variances: v_c, the variance of one unit of resource on each context (Eq. 3.11),
            shape ``[C]``; ``None`` means 1 for every context.
        gamma: initial γ, shape ``[C]``; ``None`` means zeros (the uniform split).
        learnable: whether γ is an ``nn.Parameter`` (learnt) or a fixed buffer.
    """

    def __init__(
        self,
        contexts: int,
        budget: float,
        process: str = "standard_error",
        variances: Tensor | Sequence[float] | None = None,
        gamma: Tensor | Sequence[float] | None = None,
        learnable: bool = True,
    ) -> None:
        super().__init__()
        if int(contexts) != contexts or contexts < 1:
            raise ValueError(f"contexts must be a positive integer, got {contexts}")
        self.contexts = int(contexts)
        self.budget = _check_budget(budget)
        self.process = check_process(process)
        variances = torch.ones(self.contexts) if variances is None else torch.as_tensor(variances).float()
        if variances.shape != (self.contexts,) or bool((variances <= 0).any()):
            raise ValueError(
                f"variances must be {self.contexts} positive numbers (one per context), got {variances.tolist()}"
            )
        self.register_buffer("variances", variances.clone())
        gamma = self._check_gamma(torch.zeros(self.contexts) if gamma is None else gamma)
        if learnable:
            self.gamma = nn.Parameter(gamma)
        else:
            self.register_buffer("gamma", gamma)

    def _check_gamma(self, gamma: Tensor | Sequence[float]) -> Tensor:
        gamma = torch.as_tensor(gamma, dtype=torch.get_default_dtype()).detach().clone()
        if gamma.shape != (self.contexts,):
            raise ValueError(
                f"gamma must have shape ({self.contexts},), one entry per context; got {tuple(gamma.shape)}"
            )
        if not bool(torch.isfinite(gamma).all()):
            raise ValueError(f"gamma must be finite, got {gamma.tolist()}")
        return gamma

    # -- constructors for fixed splits ----------------------------------------------------------------

    @classmethod
    def uniform(
        cls, contexts: int, budget: float, process: str = "standard_error", variances=None
    ) -> BudgetSplit:
        """The fixed uniform split r_c = B/C."""
        return cls(contexts, budget, process, variances, learnable=False)

    @classmethod
    def from_allocation(
        cls,
        allocation: Tensor | Sequence[float],
        process: str = "standard_error",
        variances=None,
        learnable: bool = False,
    ) -> BudgetSplit:
        """The split with allocation ``allocation`` (all positive); its total is the budget B.

        γ = log r reproduces it exactly, since softmax is invariant to a constant shift.
        """
        allocation = torch.as_tensor(allocation, dtype=torch.get_default_dtype())
        if allocation.ndim != 1 or bool((allocation <= 0).any()):
            raise ValueError(
                f"an allocation must be a vector of positive resources, got {allocation.tolist()}"
            )
        return cls(len(allocation), float(allocation.sum()), process, variances, allocation.log(), learnable)

    def set_allocation(self, allocation: Tensor | Sequence[float]) -> None:
        """Set γ so that :meth:`allocation` equals ``allocation`` rescaled to this split's budget."""
        allocation = torch.as_tensor(allocation, dtype=torch.get_default_dtype())
        if bool((allocation <= 0).any()):
            raise ValueError(f"an allocation must be positive, got {allocation.tolist()}")
        with torch.no_grad():
            self.gamma.copy_(self._check_gamma(allocation.log()))

    # -- the split and its noise ------------------------------------------------------------------------

    def shares(self) -> Tensor:
        """softmax(γ): the fraction of the budget each context receives."""
        return torch.softmax(self.gamma, dim=0)

    def allocation(self) -> Tensor:
        """r = B·softmax(γ): the resources of each context; sums to B."""
        return self.budget * self.shares()

    def std(self) -> Tensor:
        """σ_c = √v_c · σ(r_c): the noise standard deviation of each context (Eqs. 3.4–3.6, 3.11–3.12)."""
        return self.variances.sqrt() * NOISE_PROCESSES[self.process](self.allocation())

    def variance(self) -> Tensor:
        """σ²_c; for the standard-error process this is Eq. 3.11, v_c / (B·softmax_c(γ))."""
        return self.std().square()

    def extra_repr(self) -> str:
        kind = "learnable" if isinstance(self.gamma, nn.Parameter) else "fixed"
        return f"contexts={self.contexts}, budget={self.budget:g}, process={self.process!r}, {kind}"


def context_variances(features: Tensor, context_dim: int = 1) -> Tensor:
    """v_c estimated from training data: the variance of each context's features, averaged over them.

    ``features`` has examples along dim 0 and contexts along ``context_dim``.
    """
    moved = features.movedim(context_dim, 1).flatten(2) if features.ndim > 2 else features
    return moved.var(dim=0).mean(dim=-1) if moved.ndim == 3 else moved.var(dim=0)
