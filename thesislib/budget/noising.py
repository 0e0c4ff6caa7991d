"""Reparameterised noising and models whose inputs are gathered under a budget (thesis §3.2.1).

g_γ(X, ε) = X + σ(γ) ⊙ ε with ε ~ N(0, I) (Eqs. 3.7–3.8) makes the noise a
differentiable function of γ, so the expected loss E[l(f_θ(g_γ(X, ε)), y)] —
estimated with L samples of ε (Eqs. 3.9–3.10) — has gradients with respect to the
model parameters θ and the budget parameters γ alike, and both are learnt by one
optimiser.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from thesislib.budget.split import BudgetSplit


def add_noise(
    features: Tensor, std: Tensor, context_dim: int = 1, noisy_features: int | None = None
) -> Tensor:
    """g_γ(X, ε) = X + σ ⊙ ε (Eq. 3.8): one σ_c per context, along ``context_dim`` of ``features``.

    Every feature of context c (the trailing dimensions) receives noise of standard deviation σ_c;
    with ``noisy_features = k`` only the first k entries of the last dimension do, and the rest
    (auxiliary inputs such as missing-value indicators, which are not measurements) stay clean.
    """
    if features.shape[context_dim] != std.shape[0]:
        raise ValueError(
            f"features have {features.shape[context_dim]} contexts along dim {context_dim}, "
            f"but the split has {std.shape[0]}"
        )
    shape = [1] * features.ndim
    shape[context_dim] = -1
    noise = std.view(shape) * torch.randn_like(features)
    if noisy_features is not None:
        if not 0 < noisy_features <= features.shape[-1]:
            raise ValueError(f"noisy_features must be in 1..{features.shape[-1]}, got {noisy_features}")
        noise[..., noisy_features:] = 0
    return features + noise


class BudgetedModel(nn.Module):
    """f_θ(g_γ(X, ε)): a model that sees its inputs noised as a budget split dictates.

    ``encoder`` (optional) turns raw inputs into one feature vector per context — a
    :class:`~thesislib.budget.statistic.StatisticNetwork` when contexts deliver samples
    (Eq. 3.14); the noise is added to its output, and ``predictor`` maps the noisy
    features ``[N, C, ...]`` to the prediction; ``noisy_features`` limits the noise to the first
    entries of each context's feature vector (see :func:`add_noise`). Learning model and split
    together::

        split = BudgetSplit(contexts=8, budget=20.0, variances=v)
        model = BudgetedModel(predictor, split)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss = model.expected_loss(x, y, nn.functional.mse_loss, samples=4)
        loss.backward(); optimiser.step()
    """

    def __init__(
        self,
        predictor: nn.Module,
        split: BudgetSplit,
        encoder: nn.Module | None = None,
        context_dim: int = 1,
        noisy_features: int | None = None,
    ) -> None:
        super().__init__()
        self.predictor = predictor
        self.split = split
        self.encoder = encoder
        self.context_dim = context_dim
        self.noisy_features = noisy_features

    def features(self, inputs: Tensor, counts: Tensor | None = None) -> Tensor:
        """The clean per-context features: ``encoder(inputs[, counts])``, or the inputs themselves."""
        if self.encoder is None:
            if counts is not None:
                raise ValueError("per-context sample counts need an encoder (a StatisticNetwork)")
            return inputs
        return self.encoder(inputs) if counts is None else self.encoder(inputs, counts)

    def forward(self, inputs: Tensor, counts: Tensor | None = None, noisy: bool = True) -> Tensor:
        """Predict from ``inputs``; ``noisy`` adds the split's noise (training condition), ``counts``
        gathers each context's statistic from that many real samples instead (test condition)."""
        features = self.features(inputs, counts)
        if noisy:
            features = add_noise(features, self.split.std(), self.context_dim, self.noisy_features)
        return self.predictor(features)

    def expected_loss(
        self,
        inputs: Tensor,
        targets: Tensor,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        samples: int = 1,
    ) -> Tensor:
        """(1/L) Σ_l l(f_θ(g_γ(X, ε_l)), y) with L = ``samples`` draws of ε (Eq. 3.10).

        The clean features are computed once and noised L times; ``loss_fn`` must
        average over the batch (as torch's losses do by default).
        """
        if int(samples) != samples or samples < 1:
            raise ValueError(
                f"samples (L, the Monte-Carlo draws of ε) must be a positive integer, got {samples}"
            )
        features = self.features(inputs)
        repeated = features.unsqueeze(0).expand(samples, *features.shape).reshape(-1, *features.shape[1:])
        noisy = add_noise(repeated, self.split.std(), self.context_dim, self.noisy_features)
        targets = targets.unsqueeze(0).expand(samples, *targets.shape).reshape(-1, *targets.shape[1:])
        return loss_fn(self.predictor(noisy), targets)
