"""Statistic networks: a learnt statistic of each context's samples (thesis §3.2.3, Eq. 3.14, Fig. 3.4).

A shared network h_φ embeds every sample x_{i,c} of context c; the statistic is the
mean of the embeddings, x̄_c = (1/I) Σ_i h_φ(x_{i,c}) (Edwards and Storkey, 2017).
At training time each context contributes a fixed number I of samples and the
statistic is noised as the budget dictates; at test time the budget decides how
many real samples each context contributes, and the same network averages them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class StatisticNetwork(nn.Module):
    """x̄_c = mean_i h_φ(x_{i,c}) for samples ``[N, C, I, *sample_shape]`` → statistics ``[N, C, D]``.

    ``embed`` (h_φ) maps a batch of samples ``[M, *sample_shape]`` to ``[M, D]``.
    ``counts`` (shape ``[C]`` or ``[N, C]``) limits context c to its first ``counts[c]``
    samples; a context with no samples gets the zero statistic.
    """

    def __init__(self, embed: nn.Module) -> None:
        super().__init__()
        self.embed = embed

    def forward(self, samples: Tensor, counts: Tensor | None = None) -> Tensor:
        if samples.ndim < 3:
            raise ValueError(
                f"samples must be [N, C, I, ...] (examples, contexts, samples), got {tuple(samples.shape)}"
            )
        n, contexts, available = samples.shape[:3]
        if counts is not None:
            counts = torch.as_tensor(counts, device=samples.device).long()
            if counts.shape not in ((contexts,), (n, contexts)):
                raise ValueError(
                    f"counts must have shape ({contexts},) or ({n}, {contexts}), got {tuple(counts.shape)}"
                )
            if bool((counts < 0).any()) or int(counts.max()) > available:
                raise ValueError(
                    f"counts must lie in 0..{available} (samples available), got {counts.tolist()}"
                )
            used = max(int(counts.max()), 1)
            samples = samples[:, :, :used]  # embed only the samples some context uses
        embedded = self.embed(samples.flatten(0, 2))
        embedded = embedded.view(n, contexts, samples.shape[2], -1)
        if counts is None:
            return embedded.mean(dim=2)
        counts = counts.expand(n, contexts)
        mask = torch.arange(samples.shape[2], device=samples.device) < counts.unsqueeze(-1)
        total = (embedded * mask.unsqueeze(-1)).sum(dim=2)
        return total / counts.clamp(min=1).unsqueeze(-1).to(total.dtype)
