"""HashedNet: a virtual weight matrix indexing a smaller set of real weights (Eq. 5.5, Chen et al. 2015).

``V_ij = w_{h(i,j)}``. As in the thesis, ``h`` is not a hash function: the index map is sampled
uniformly once, at initialisation, from a seed and stored as a (non-trainable) buffer. Real weights
that no virtual entry indexes are wasted; their expected fraction is Eq. 5.6,
``η = (1 − 1/(c·N_v))^{N_v}`` with ``c = N_r/N_v``, whose large-``N_v`` limit is ``exp(−1/c)``
(Eq. 5.7, Fig. 5.2).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from thesislib.compressed.base import Substitute, TuningRange

__all__ = [
    "HashedNet",
    "empirical_unused_fraction",
    "unused_fraction",
    "unused_fraction_limit",
]


def _on_meta_device() -> bool:
    return torch.empty(0).device.type == "meta"


class HashedNet(Substitute):
    """A pointwise substitute whose ``out × in`` virtual weights share ``setting`` real weights.

    Setting: the number of real weights ``N_r``, an integer in ``[1, in·out]``. Parameters ``N_r``;
    mult-adds those of the dense pointwise it replaces (``in·out`` per position; §5.3.3). The index
    map is drawn from ``seed`` (default: drawn from torch's global generator, so
    :func:`~thesislib.training.seed_everything` fixes it). The network-wide tuning is the
    compression ratio ``c = N_r / N_v`` ∈ (0, 1]: ``N_r = max(1, ⌊c·in·out⌋)``.
    """

    method = "hashed"
    setting_range = "number of real weights: an integer 1 <= N_r <= in_channels*out_channels"
    tuning_range = TuningRange(0.002, 1.0, log=True)

    def __init__(self, in_channels: int, out_channels: int, setting: int, *, seed: int | None = None) -> None:
        super().__init__(in_channels, out_channels, setting)
        virtual = in_channels * out_channels
        if isinstance(setting, bool) or not float(setting).is_integer() or not 1 <= int(setting) <= virtual:
            raise ValueError(
                f"HashedNet({in_channels}→{out_channels}): invalid setting {setting!r} "
                f"({virtual} virtual weights); valid: {self.setting_range}"
            )
        self.real = int(setting)
        self.setting = self.real
        self.weight = nn.Parameter(torch.empty(self.real))
        bound = 1.0 / math.sqrt(in_channels)  # as nn.Conv2d's default init
        nn.init.uniform_(self.weight, -bound, bound)
        if _on_meta_device():  # parameter counting only: no index map needed
            index = torch.empty(out_channels, in_channels, dtype=torch.long)
            self.seed = seed
        else:
            if seed is None:
                seed = int(torch.randint(0, 2**31 - 1, (), device="cpu").item())
            self.seed = int(seed)
            generator = torch.Generator().manual_seed(self.seed)
            index = torch.randint(
                0, self.real, (out_channels, in_channels), generator=generator, device="cpu"
            )
        self.register_buffer("index", index)

    @classmethod
    def from_tuning(cls, in_channels: int, out_channels: int, tuning: float, **kwargs: Any) -> HashedNet:
        if not 0 < tuning <= 1:
            raise ValueError(f"HashedNet compression ratio must lie in (0, 1], got {tuning}")
        return cls(in_channels, out_channels, max(1, int(tuning * in_channels * out_channels)), **kwargs)

    @property
    def compression_ratio(self) -> float:
        """``c = N_r / N_v``."""
        return self.real / (self.in_channels * self.out_channels)

    def dense_matrix(self) -> torch.Tensor:
        """The virtual matrix ``V = w[h]``; its gradient accumulates onto shared real weights."""
        return self.weight[self.index]

    def unused_weights(self) -> int:
        """Real weights that no virtual entry indexes (wasted parameters, §5.2.3)."""
        used = torch.zeros(self.real, dtype=torch.bool, device=self.index.device)
        used[self.index.reshape(-1)] = True
        return int((~used).sum())

    def per_position_mult_adds(self) -> int:
        return self.in_channels * self.out_channels


def unused_fraction(c: float | torch.Tensor, n_virtual: int) -> float | torch.Tensor:
    """Expected fraction of real weights never used, ``η = (1 − 1/(c·N_v))^{N_v}`` (Eq. 5.6)."""
    if isinstance(c, torch.Tensor):
        return torch.exp(n_virtual * torch.log1p(-1.0 / (c * n_virtual)))
    return math.exp(n_virtual * math.log1p(-1.0 / (c * n_virtual)))


def unused_fraction_limit(c: float | torch.Tensor) -> float | torch.Tensor:
    """The ``N_v → ∞`` limit ``exp(−1/c)`` of Eq. 5.6 (Eq. 5.7)."""
    return torch.exp(-1.0 / c) if isinstance(c, torch.Tensor) else math.exp(-1.0 / c)


def empirical_unused_fraction(c: float, n_virtual: int, trials: int = 8, seed: int = 0) -> float:
    """Mean fraction of real weights never indexed over ``trials`` sampled index maps (Fig. 5.2)."""
    n_real = max(1, round(c * n_virtual))
    generator = torch.Generator().manual_seed(seed)
    fractions = []
    for _ in range(trials):
        index = torch.randint(0, n_real, (n_virtual,), generator=generator)
        used = torch.bincount(index, minlength=n_real) > 0
        fractions.append(1.0 - used.float().mean().item())
    return float(sum(fractions) / len(fractions))
