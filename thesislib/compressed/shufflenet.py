"""Linear ShuffleNet substitute (§5.2.3, Eqs. 5.12–5.13; Zhang et al. 2018).

``Y = c(c(riffle(c(X, B1)), D), B2)``: a grouped 1×1 convolution ``B1`` into a bottleneck of
``in/4`` channels, the channel shuffle ``P``, a k×k depthwise convolution ``D`` in the bottleneck and a
grouped 1×1 convolution ``B2`` out — all linear (no batch norm, nonlinearity or shortcut). Ignoring
``D``, ``W = B2 P B1`` (Eq. 5.12). Unlike the other methods, the spatial (depthwise) convolution sits
inside this substitute, so in a separable convolution it replaces depthwise *and* pointwise.

§5.2.3 describes ``D`` as 3×3; in the thesis' code (``LinearShuffleNet`` of the ``deficient-efficient``
repository) ``D`` takes the kernel size, stride and dilation of the convolution the unit replaces, so a
unit standing in for a 1×1 conv (WRN-50-2's bottleneck 1×1s and projection shortcuts, DARTS'
preprocessing convs) has a 1×1 ``D``. That is what Table 5.1's ShuffleNet rows count
(``kernel_size=1`` there gives 6.04M / 0.91G for the smaller budget, as printed).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.compressed.base import Substitute, TuningRange, riffle_permutation

__all__ = ["LinearShuffleNet", "bottleneck_width", "valid_groups"]


def bottleneck_width(in_channels: int, out_channels: int, bottleneck: int | str | None = None) -> int:
    """The bottleneck: ``"in"``/``None`` → ``in // 4`` (thesis text), ``"out"`` → ``out // 4`` (thesis code), or an int.

    ``"out"`` is what the thesis' numbers follow: a WRN-28-10 of ``g = 1`` units has 2.384M
    parameters with it — the 2.38M upper budget of §5.2.4 — against 2.280M with ``in // 4``.
    """
    if bottleneck is None or bottleneck == "in":
        return in_channels // 4
    if bottleneck == "out":
        return out_channels // 4
    if isinstance(bottleneck, str):
        raise ValueError(f"bottleneck must be 'in', 'out' or an integer, got {bottleneck!r}")
    return int(bottleneck)


def valid_groups(in_channels: int, out_channels: int, bottleneck: int | str | None = None) -> list[int]:
    """Group counts dividing ``in``, the bottleneck (:func:`bottleneck_width`) and ``out``."""
    b = bottleneck_width(in_channels, out_channels, bottleneck)
    return [
        g for g in range(1, max(b, 1) + 1) if in_channels % g == 0 and b % g == 0 and out_channels % g == 0
    ]


def _positive_int(name: str, value: Any, *, odd: bool = False) -> int:
    kind = "a positive odd integer (1, 3, 5, ...)" if odd else "a positive integer"
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise ValueError(f"LinearShuffleNet {name} must be {kind}, got {value!r}")
    if int(value) < 1 or (odd and int(value) % 2 == 0):
        raise ValueError(f"LinearShuffleNet {name} must be {kind}, got {value!r}")
    return int(value)


class LinearShuffleNet(Substitute):
    """Grouped 1×1 → channel shuffle → k×k depthwise (``stride``, ``dilation``) → grouped 1×1 (Eq. 5.13).

    Setting: the number of groups ``g``, which must divide ``in``, the bottleneck ``in // 4`` and
    ``out``. Parameters ``in·b/g + k²·b + b·out/g`` with ``b = in // 4`` (``bottleneck="out"``:
    ``out // 4``, the thesis' code, which its parameter budgets follow) and ``k = kernel_size``: 3 (the
    default, §5.2.3) where the unit replaces a 3×3 separable conv, 1 where it replaces a 1×1 conv (the
    thesis' code). ``kernel_size`` must be odd ("same" padding ``dilation·(k-1)/2``); ``dilation``
    (DARTS' ``dil_conv``) changes neither count. The network-wide tuning is the requested ``g``; layers
    it does not divide use the largest valid ``g`` below it (as the thesis' code).
    """

    method = "shufflenet"
    whole_conv = True
    bottleneck_keyword = "bottleneck"
    setting_range = (
        "number of groups: an integer g >= 1 dividing in_channels, in_channels // 4 and out_channels"
    )
    tuning_range = TuningRange(1, 32, log=True, integer=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        setting: int,
        *,
        stride: int = 1,
        bottleneck: int | str | None = None,
        kernel_size: int = 3,
        dilation: int = 1,
    ) -> None:
        super().__init__(in_channels, out_channels, setting)
        k = _positive_int("kernel_size", kernel_size, odd=True)
        dilation = _positive_int("dilation", dilation)
        stride = _positive_int("stride", stride)
        b = bottleneck_width(in_channels, out_channels, bottleneck)
        if b < 1:
            raise ValueError(
                f"LinearShuffleNet needs a bottleneck >= 1 (in_channels >= 4), got in={in_channels}"
            )
        valid = valid_groups(in_channels, out_channels, b)
        if isinstance(setting, bool) or not float(setting).is_integer() or int(setting) not in valid:
            raise ValueError(
                f"LinearShuffleNet({in_channels}→{out_channels}, bottleneck {b}): invalid groups {setting!r}; "
                f"valid: {self.setting_range} — here one of {valid}"
            )
        self.groups = g = int(setting)
        self.setting = g
        self.bottleneck = b
        self.stride = stride
        self.kernel_size = k
        self.dilation = dilation
        self.register_buffer("shuffle", riffle_permutation(b, g), persistent=False)
        self.gconv1 = nn.Parameter(torch.empty(b, in_channels // g, 1, 1))  # B1
        self.depthwise = nn.Parameter(torch.empty(b, 1, k, k))  # D
        self.gconv2 = nn.Parameter(torch.empty(out_channels, b // g, 1, 1))  # B2
        for w in (self.gconv1, self.depthwise, self.gconv2):
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))

    @classmethod
    def from_tuning(
        cls, in_channels: int, out_channels: int, tuning: float, **kwargs: Any
    ) -> LinearShuffleNet:
        b = bottleneck_width(in_channels, out_channels, kwargs.get("bottleneck"))
        valid = [g for g in valid_groups(in_channels, out_channels, b) if g <= max(1, round(tuning))]
        return cls(in_channels, out_channels, valid[-1] if valid else 1, **kwargs)

    @property
    def dense_parameter_count(self) -> int:
        """What it replaces: a separable k×k conv (``k²·in`` depthwise + ``in·out`` pointwise) for
        ``k > 1``, a 1×1 conv (``in·out``) for ``k = 1``."""
        k = self.kernel_size
        return (k * k * self.in_channels if k > 1 else 0) + self.in_channels * self.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return F.linear(x, self.dense_matrix())
        h = F.conv2d(x, self.gconv1, groups=self.groups)
        h = h[:, self.shuffle]
        h = F.conv2d(
            h,
            self.depthwise,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.bottleneck,
        )
        return F.conv2d(h, self.gconv2, groups=self.groups)

    def _block_diagonal(self, w: torch.Tensor) -> torch.Tensor:
        return torch.block_diag(*w[:, :, 0, 0].chunk(self.groups, dim=0))

    def dense_kernel(self) -> torch.Tensor:
        """``K[o, i] = Σ_m B2[o, m] D[m] (P B1)[m, i]``: the whole unit as one k×k convolution.

        ``module(x) == conv2d(x, K, stride=stride, padding=padding, dilation=dilation)``.
        """
        pb1 = self._block_diagonal(self.gconv1)[self.shuffle]  # b × in
        b2 = self._block_diagonal(self.gconv2)  # out × b
        return torch.einsum("om,muv,mi->oiuv", b2, self.depthwise[:, 0], pb1)

    def dense_matrix(self) -> torch.Tensor:
        """``B2 P diag(D_centre) B1`` — Eq. 5.12 with the depthwise centre tap (exact on 1×1 inputs,
        and everywhere for ``kernel_size=1``)."""
        c = self.kernel_size // 2
        return self.dense_kernel()[:, :, c, c]

    def per_position_mult_adds(self) -> int:
        b, g = self.bottleneck, self.groups
        return self.in_channels * b // g + self.kernel_size**2 * b + b * self.out_channels // g

    def mult_adds(self, input: torch.Tensor, output: torch.Tensor) -> int:
        """``B1`` at the input resolution; ``D`` and ``B2`` at the (possibly strided) output resolution."""
        if output.dim() <= 2:
            return self.per_position_mult_adds()
        b, g = self.bottleneck, self.groups
        hw_in = int(input.shape[-2] * input.shape[-1])
        hw_out = int(output.shape[-2] * output.shape[-1])
        return (
            self.in_channels * b // g * hw_in
            + (self.kernel_size**2 * b + b * self.out_channels // g) * hw_out
        )

    def extra_repr(self) -> str:
        extra = f", kernel_size={self.kernel_size}, bottleneck={self.bottleneck}"
        if self.stride != 1:
            extra += f", stride={self.stride}"
        if self.dilation != 1:
            extra += f", dilation={self.dilation}"
        return super().extra_repr() + extra
