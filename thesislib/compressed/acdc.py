"""ACDC: a stack of structured efficient linear layers ``W = Π_l A_l C D_l C⁻¹ P`` (Eq. 5.4).

``A_l``, ``D_l`` are learnt diagonals, ``C`` the orthonormal DCT-II (so ``C⁻¹ = Cᵀ``) and ``P`` a
fixed permutation — the riffle shuffle of §5.2.3 (or, for the toy comparison, a fixed random one).

Training (§5.2.3): applying the ``5L`` component operations in sequence would make autograd store
an activation tensor at every stage, so in training the module builds the dense ``W`` from the
diagonals and backpropagates through that construction. At test time :meth:`ACDC.fast_forward`
applies the layers with an O(N log N) DCT computed by FFT (Makhoul 1980), equal to the dense result.
Test-time mult-adds are counted as ``4N + 5N·log2 N`` per layer (Moczulski et al., 2016).

Channel changes: ``N = max(in, out)``. More output channels repeat the input along the channel
dimension (``out`` must then be a multiple of ``in``, §5.2.3); fewer keep the first ``out`` outputs.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.compressed.base import Substitute, TuningRange, riffle_permutation

__all__ = ["ACDC", "dct", "dct_matrix", "idct"]


def dct_matrix(n: int, dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``C[k, m] = s_k cos(π(2m+1)k / 2n)`` (``s_0 = √(1/n)``, else ``√(2/n)``)."""
    k = torch.arange(n, dtype=torch.float64, device=device)[:, None]
    m = torch.arange(n, dtype=torch.float64, device=device)[None, :]
    c = torch.cos(math.pi * (2 * m + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c.to(dtype)


def _scale(n: int, x: torch.Tensor) -> torch.Tensor:
    s = torch.full((n,), math.sqrt(2.0 / n), dtype=x.dtype, device=x.device)
    s[0] = math.sqrt(1.0 / n)
    return s


def dct(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II along the last dimension in O(N log N) via one FFT (Makhoul's reordering)."""
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    spectrum = torch.fft.fft(v, dim=-1)
    k = torch.arange(n, dtype=x.dtype, device=x.device)
    twiddle = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    return (spectrum * twiddle).real * _scale(n, x)


def idct(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct` (orthonormal DCT-III) along the last dimension in O(N log N)."""
    n = y.shape[-1]
    y = y / _scale(n, y)
    flipped = torch.cat([torch.zeros_like(y[..., :1]), y[..., 1:].flip(-1)], dim=-1)  # Y_{N-k}, Y_N = 0
    k = torch.arange(n, dtype=y.dtype, device=y.device)
    twiddle = torch.polar(torch.ones_like(k), math.pi * k / (2 * n))
    v = torch.fft.ifft(torch.complex(y, -flipped) * twiddle, dim=-1).real
    x = torch.empty_like(v)
    half = (n + 1) // 2
    x[..., ::2] = v[..., :half]
    x[..., 1::2] = v[..., half:].flip(-1)
    return x


class ACDC(Substitute):
    """A stack of ``L`` ACDC layers as a pointwise substitute (Eq. 5.4).

    Setting: the number of layers ``L`` (integer >= 1). Parameters ``2NL`` (the diagonals ``A_l``,
    ``D_l``); test-time mult-adds ``L·(4N + 5N·log2 N)`` per position, ``N = max(in, out)``.
    ``permutation`` is ``"riffle"`` (thesis) or ``"random"`` (a fixed random permutation drawn from
    ``seed``). With ``fast_path=True`` the module uses :meth:`fast_forward` in eval mode.
    ``count_cheaper=True`` counts ``min(ACDC, dense)`` mult-adds, as SECL assumes (seed 004, §4).
    """

    method = "acdc"
    setting_range = (
        "number of ACDC layers: an integer L >= 1 (out_channels a multiple of in_channels if larger)"
    )
    tuning_range = TuningRange(1, 32, integer=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        setting: int,
        *,
        permutation: Literal["riffle", "random"] = "riffle",
        seed: int | None = None,
        init_std: float = 0.1,
        fast_path: bool = False,
        count_cheaper: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, setting)
        if isinstance(setting, bool) or not float(setting).is_integer() or int(setting) < 1:
            raise self._invalid(setting)
        if out_channels > in_channels and out_channels % in_channels:
            raise ValueError(
                f"ACDC({in_channels}→{out_channels}): channels increase by repeating the input, so "
                f"out_channels must be a multiple of in_channels; valid: {self.setting_range}"
            )
        self.layers = int(setting)
        self.setting = self.layers
        n = max(in_channels, out_channels)
        self.n = n
        if permutation == "riffle":
            perm = riffle_permutation(n)
        elif permutation == "random":
            if seed is None:
                seed = int(torch.randint(0, 2**31 - 1, ()).item())
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        else:
            raise ValueError(f"permutation must be 'riffle' or 'random', got {permutation!r}")
        self.permutation = permutation
        self.register_buffer("perm", perm, persistent=True)
        self.A = nn.Parameter(torch.empty(self.layers, n))
        self.D = nn.Parameter(torch.empty(self.layers, n))
        nn.init.normal_(self.A, 1.0, init_std)
        nn.init.normal_(self.D, 1.0, init_std)
        self.fast_path = fast_path
        self.count_cheaper = count_cheaper

    @classmethod
    def from_tuning(cls, in_channels: int, out_channels: int, tuning: float, **kwargs: Any) -> ACDC:
        return cls(in_channels, out_channels, round(tuning), **kwargs)

    # -- the N×N stack and the in/out adaptors ----------------------------------------------------
    def square_matrix(self) -> torch.Tensor:
        """``W_N = M_L ⋯ M_1`` with ``M_l = A_l C D_l Cᵀ P`` (layer 1 acts first)."""
        c = dct_matrix(self.n, self.A.dtype, self.A.device)  # O(N²), cheap next to the O(L·N³) products
        y = torch.eye(self.n, dtype=self.A.dtype, device=self.A.device)
        for a, d in zip(self.A, self.D, strict=True):
            y = a[:, None] * (c @ (d[:, None] * (c.t() @ y[self.perm])))
        return y

    def dense_matrix(self) -> torch.Tensor:
        w = self.square_matrix()
        if self.out_channels > self.in_channels:  # repeat the input: W_eff = W_N [I; I; …]
            return w.view(self.n, self.n // self.in_channels, self.in_channels).sum(1)
        return w[: self.out_channels]

    def _apply_stack(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layers to channel-last vectors ``(..., N)`` with the fast DCT."""
        for a, d in zip(self.A, self.D, strict=True):
            x = a * dct(d * idct(x[..., self.perm]))
        return x

    def fast_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference path: ``L`` layers of diagonal · DCT · diagonal · IDCT · permutation, O(N log N)."""
        channel_last = x.movedim(1, -1) if x.dim() == 4 else x
        if self.out_channels > self.in_channels:
            channel_last = channel_last.repeat(*([1] * (channel_last.dim() - 1)), self.n // self.in_channels)
        y = self._apply_stack(channel_last)[..., : self.out_channels]
        return y.movedim(-1, 1) if x.dim() == 4 else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast_path and not self.training:
            return self.fast_forward(x)
        w = self.dense_matrix()
        return F.linear(x, w) if x.dim() == 2 else F.conv2d(x, w[:, :, None, None])

    def per_position_mult_adds(self) -> int:
        n = self.n
        cost = self.layers * (4 * n + 5 * n * math.log2(n)) if n > 1 else self.layers * 4
        cost = round(cost)
        if self.count_cheaper:
            cost = min(cost, self.in_channels * self.out_channels)
        return cost
