"""Separable convolutions with a substituted pointwise part (§5.2.2), and WRN blocks built from them.

A depthwise-separable convolution is a ``k×k`` depthwise convolution (groups = in channels) followed
by a pointwise (1×1) convolution; chapter 5 replaces only the pointwise part by a substitute
(:mod:`thesislib.compressed.base`). The linear ShuffleNet substitute already holds its own k×k
depthwise convolution in its bottleneck (§5.2.3), so for it the substitute is the whole convolution
(built with the convolution's kernel size and stride).

:func:`separable_block_factory` returns a ``(in_channels, out_channels, stride) -> nn.Module``
factory of pre-activation Wide-ResNet blocks made of such convolutions — the form chapter 4's
``build_model(name, block=...)`` accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.compressed.base import Substitute, SubstituteSpec, parse_substitute

__all__ = ["SeparableBlock", "SeparableConv2d", "separable_block_factory", "separable_conv_factory"]

BlockFactory = Callable[[int, int, int], nn.Module]


class SeparableConv2d(nn.Module):
    """Depthwise ``k×k`` (stride ``stride``, padding ``k//2``) then a substitute pointwise (§5.2.2).

    ``substitute`` is a spec such as ``"tt:0.3"`` / :class:`SubstituteSpec`; ``"conv1x1"`` gives the
    plain separable convolution. ``substitute_kwargs`` go to the substitute's constructor (e.g.
    ``{"bottleneck": "out"}`` for the linear ShuffleNet).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        substitute: str | SubstituteSpec = "conv1x1",
        kernel_size: int = 3,
        stride: int = 1,
        substitute_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        spec = parse_substitute(substitute)
        self.spec = spec
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        kwargs = dict(substitute_kwargs or {})
        if spec.whole_conv:  # the linear ShuffleNet unit's own depthwise conv takes the kernel and stride
            self.depthwise = None
            self.pointwise: Substitute = spec.build(
                in_channels, out_channels, stride=stride, kernel_size=kernel_size, **kwargs
            )
        else:
            self.depthwise = nn.Conv2d(
                in_channels,
                in_channels,
                kernel_size,
                stride,
                kernel_size // 2,
                groups=in_channels,
                bias=False,
            )
            self.pointwise = spec.build(in_channels, out_channels, **kwargs)

    @property
    def full_parameter_count(self) -> int:
        """Parameters of the full ``k×k`` convolution this separable one replaces (no bias)."""
        return self.in_channels * self.out_channels * self.kernel_size**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.depthwise is not None:
            x = self.depthwise(x)
        return self.pointwise(x)


def separable_conv_factory(
    substitute: str | SubstituteSpec, kernel_size: int = 3, **substitute_kwargs: Any
) -> BlockFactory:
    """A ``(in, out, stride) -> SeparableConv2d`` factory for one substitute spec."""
    spec = parse_substitute(substitute)

    def make(in_channels: int, out_channels: int, stride: int = 1) -> SeparableConv2d:
        return SeparableConv2d(in_channels, out_channels, spec, kernel_size, stride, substitute_kwargs)

    return make


class SeparableBlock(nn.Module):
    """Pre-activation WRN basic block (BN-ReLU-conv ×2 + shortcut) with separable substituted convs.

    The projection shortcut (when channels or resolution change) stays a dense 1×1 convolution, as
    in the thesis' code. ``activations`` of the block output can be read by attention transfer hooks.
    """

    counts_activations = False  # as the chapter-5 counts were made (SECL's WRN-40-2: 29.4M mult-adds)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        substitute: str | SubstituteSpec,
        substitute_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = SeparableConv2d(in_channels, out_channels, substitute, 3, stride, substitute_kwargs)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = SeparableConv2d(out_channels, out_channels, substitute, 3, 1, substitute_kwargs)
        self.equal = in_channels == out_channels and stride == 1
        self.shortcut = (
            None if self.equal else nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        y = self.conv1(o)
        y = self.conv2(F.relu(self.bn2(y)))
        return y + (x if self.shortcut is None else self.shortcut(o))


def separable_block_factory(substitute: str | SubstituteSpec, **substitute_kwargs: Any) -> BlockFactory:
    """A ``(in_channels, out_channels, stride) -> SeparableBlock`` factory for ``build_model(block=...)``."""
    spec = parse_substitute(substitute)

    def make(in_channels: int, out_channels: int, stride: int = 1) -> SeparableBlock:
        return SeparableBlock(in_channels, out_channels, stride, spec, substitute_kwargs)

    make.__name__ = f"separable_block[{spec}]"
    return make
