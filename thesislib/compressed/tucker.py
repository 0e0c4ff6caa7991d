"""Tucker substitute: the weight matrix as a reshaped 3-D tensor in Tucker format (Eqs. 5.8, 5.11).

``A = G ×_1 U_1 ×_2 U_2 ×_3 U_3`` with a core ``G ∈ R^{R1×R2×R3}`` and factors ``U_k ∈ R^{n_k×R_k}``;
the tensor has 3 near-equal sides and ``R_k = scale × n_k`` (§5.3.2). The module reconstructs ``W``
and backpropagates through it; mult-adds are those of the dense pointwise it replaces (§5.3.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from thesislib.compressed.base import Substitute, TuningRange, default_weight_std
from thesislib.compressed.tensor_train import near_equal_shape, ranks_from_setting

__all__ = ["Tucker"]


class Tucker(Substitute):
    """Pointwise substitute with a Tucker-format weight (Eq. 5.11).

    Setting: the rank scale ``s > 0`` (``R_k = max(1, round(s·n_k))``, capped at ``n_k``) or explicit
    ranks ``(R1, R2, R3)``. Parameters ``R1·R2·R3 + Σ_k n_k·R_k``.
    """

    method = "tucker"
    setting_range = "rank scale > 0 (ranks = max(1, round(scale*side))) or explicit ranks (R1, R2, R3) >= 1"
    tuning_range = TuningRange(0.05, 1.0, log=True)

    def __init__(self, in_channels: int, out_channels: int, setting: float | Sequence[int]) -> None:
        super().__init__(in_channels, out_channels, setting)
        self.shape = near_equal_shape(in_channels * out_channels, 3)
        what = f"Tucker({in_channels}→{out_channels}, shape {self.shape})"
        self.ranks = ranks_from_setting(setting, self.shape, self.shape, what)
        target = default_weight_std(in_channels) ** 2
        self.core = nn.Parameter(torch.randn(*self.ranks) * math.sqrt(target))
        self.factors = nn.ParameterList(
            [
                nn.Parameter(torch.randn(n, r) / math.sqrt(r))
                for n, r in zip(self.shape, self.ranks, strict=True)
            ]
        )

    def full_tensor(self) -> torch.Tensor:
        """``G ×_1 U_1 ×_2 U_2 ×_3 U_3`` by one einsum."""
        u1, u2, u3 = self.factors
        return torch.einsum("abc,ia,jb,kc->ijk", self.core, u1, u2, u3)

    def dense_matrix(self) -> torch.Tensor:
        return self.full_tensor().reshape(self.out_channels, self.in_channels)

    def per_position_mult_adds(self) -> int:
        return self.in_channels * self.out_channels
