"""Tensor-Train substitute: the weight matrix as a reshaped 3-D tensor in TT format (Eqs. 5.8, 5.10).

``W = reshape_{out×in}(A)`` with ``A(i1, i2, i3) = G1(i1) G2(i2) G3(i3)``, ``Gk(ik)`` an
``r_{k−1} × r_k`` matrix, ``r_0 = r_3 = 1``. As in §5.3.2 the tensor has 3 dimensions of
near-equal sides and the TT-ranks are a single scale × the corresponding side. Like the thesis
(which used tntorch), the module reconstructs ``W`` and backpropagates through the reconstruction;
mult-adds are counted as those of the dense pointwise it replaces (§5.3.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from thesislib.compressed.base import Substitute, TuningRange, default_weight_std

__all__ = ["TensorTrain", "near_equal_shape", "ranks_from_setting"]


def near_equal_shape(numel: int, dims: int = 3) -> tuple[int, ...]:
    """Factor ``numel`` into ``dims`` integer sides as equal as possible (ascending order).

    Minimises the ratio of the largest to the smallest side (ties: the smaller largest side).
    """
    if numel < 1 or dims < 1:
        raise ValueError(f"need numel >= 1 and dims >= 1, got {numel}, {dims}")

    def search(m: int, d: int, low: int) -> list[tuple[int, ...]]:
        if d == 1:
            return [(m,)] if m >= low else []
        out = []
        f = low
        while f**d <= m:
            if m % f == 0:
                out.extend((f, *rest) for rest in search(m // f, d - 1, f))
            f += 1
        return out

    candidates = search(numel, dims, 1)
    return min(candidates, key=lambda s: (s[-1] / s[0], s[-1]))


def ranks_from_setting(
    setting: Any, sides: Sequence[int], max_ranks: Sequence[int], what: str
) -> tuple[int, ...]:
    """Ranks from a scale (``r_k = clip(round(scale·side_k), 1, max_k)``) or an explicit tuple (checked)."""
    if isinstance(setting, (tuple, list)):
        ranks = tuple(int(r) for r in setting)
        if len(ranks) != len(max_ranks) or any(
            not 1 <= r <= m for r, m in zip(ranks, max_ranks, strict=True)
        ):
            raise ValueError(
                f"{what}: invalid ranks {tuple(setting)}; valid: a rank scale > 0, or {len(max_ranks)} "
                f"integer ranks with 1 <= r_k <= {tuple(max_ranks)}"
            )
        return ranks
    if (
        isinstance(setting, bool)
        or not isinstance(setting, (int, float))
        or not setting > 0
        or math.isinf(setting)
    ):
        raise ValueError(
            f"{what}: invalid setting {setting!r} (a rank of 0 is not a tensor decomposition); valid: a "
            f"rank scale > 0 (ranks = max(1, round(scale × side)), capped at {tuple(max_ranks)}), or "
            f"explicit integer ranks"
        )
    return tuple(min(m, max(1, round(setting * s))) for s, m in zip(sides, max_ranks, strict=True))


class TensorTrain(Substitute):
    """Pointwise substitute with a TT-format weight (Eq. 5.10).

    Setting: the rank scale ``s > 0`` (TT-ranks ``r_k = max(1, round(s·n_k))``, capped at the largest
    useful rank) or explicit ranks ``(r1, r2)``. Parameters ``n1·r1 + r1·n2·r2 + r2·n3``.
    """

    method = "tt"
    setting_range = "rank scale > 0 (ranks = max(1, round(scale*side))) or explicit ranks (r1, r2) >= 1"
    tuning_range = TuningRange(0.05, 1.0, log=True)

    def __init__(self, in_channels: int, out_channels: int, setting: float | Sequence[int]) -> None:
        super().__init__(in_channels, out_channels, setting)
        n1, n2, n3 = self.shape = near_equal_shape(in_channels * out_channels, 3)
        max_ranks = (min(n1, n2 * n3), min(n1 * n2, n3))
        what = f"TensorTrain({in_channels}→{out_channels}, shape {self.shape})"
        self.ranks = r1, r2 = ranks_from_setting(setting, (n1, n2), max_ranks, what)
        target = default_weight_std(in_channels) ** 2  # Var(W_ij) of a dense 1×1 conv init
        self.core1 = nn.Parameter(torch.randn(n1, r1))
        self.core2 = nn.Parameter(torch.randn(r1, n2, r2) / math.sqrt(r1))
        self.core3 = nn.Parameter(torch.randn(r2, n3) * math.sqrt(target / r2))

    def cores(self) -> list[torch.Tensor]:
        """The cores in tensorly's ``(r_{k−1}, n_k, r_k)`` layout."""
        return [self.core1[None], self.core2, self.core3[..., None]]

    def full_tensor(self) -> torch.Tensor:
        """``A(i1, i2, i3) = G1(i1) G2(i2) G3(i3)`` by one einsum."""
        return torch.einsum("ia,ajb,bk->ijk", self.core1, self.core2, self.core3)

    def dense_matrix(self) -> torch.Tensor:
        return self.full_tensor().reshape(self.out_channels, self.in_channels)

    def per_position_mult_adds(self) -> int:
        return self.in_channels * self.out_channels
