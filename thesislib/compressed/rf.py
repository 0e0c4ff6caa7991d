"""Rank-factorised (RF) linear bottleneck, the baseline substitute of §5.2.3 (Eqs. 5.2–5.3)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.compressed.base import Substitute, TuningRange

__all__ = ["RankFactorised"]


class RankFactorised(Substitute):
    """``W = W2 W1`` with ``W1 ∈ R^{d_bn×d_in}``, ``W2 ∈ R^{d_out×d_bn}`` (Eq. 5.2).

    Setting: the bottleneck width ``d_bn`` (an integer in ``[1, max(in, out)]``). Parameters and
    per-position mult-adds are both ``d_bn·(d_in + d_out)`` (Eq. 5.3: ``2d²/b`` when
    ``d_in = d_out = d`` and ``d_bn = d/b``). The network-wide tuning is the rank scale ``s``:
    ``d_bn = max(1, ⌊s · max(in, out)⌋)`` (as in the thesis' code), normalised over ``[0.03, 1]``:
    0.03 is the thesis' smallest rank scale (``Generic_0.03`` in its code), whose networks are the
    lower limit of Fig. 5.5's common support — §5.2.4's lower budgets, 601,162 parameters for
    WRN-28-10 (0.6M) and 488,494 for DARTS (0.49M).
    """

    method = "rf"
    setting_range = "bottleneck width: an integer 1 <= d_bn <= max(in_channels, out_channels)"
    tuning_range = TuningRange(0.03, 1.0, log=True)

    def __init__(self, in_channels: int, out_channels: int, setting: int) -> None:
        super().__init__(in_channels, out_channels, setting)
        if isinstance(setting, bool) or not float(setting).is_integer():
            raise self._invalid(setting)
        bottleneck = int(setting)
        if not 1 <= bottleneck <= max(in_channels, out_channels):
            raise self._invalid(setting)
        self.bottleneck = bottleneck
        self.setting = bottleneck
        self.contract = nn.Parameter(torch.empty(bottleneck, in_channels))  # W1
        self.expand = nn.Parameter(torch.empty(out_channels, bottleneck))  # W2
        nn.init.kaiming_uniform_(self.contract, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.expand, a=math.sqrt(5))

    @classmethod
    def from_tuning(cls, in_channels: int, out_channels: int, tuning: float, **kwargs: Any) -> RankFactorised:
        if not 0 < tuning <= 1:
            raise ValueError(f"RF rank scale must lie in (0, 1], got {tuning}")
        bottleneck = max(1, int(tuning * max(in_channels, out_channels)))
        return cls(in_channels, out_channels, bottleneck, **kwargs)

    def dense_matrix(self) -> torch.Tensor:
        return self.expand @ self.contract

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # two small products in sequence (cheaper than forming W when d_bn is small)
        if x.dim() == 2:
            return F.linear(F.linear(x, self.contract), self.expand)
        return F.conv2d(F.conv2d(x, self.contract[:, :, None, None]), self.expand[:, :, None, None])

    def per_position_mult_adds(self) -> int:
        return self.bottleneck * (self.in_channels + self.out_channels)
