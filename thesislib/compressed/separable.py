"""Separable convolutions with a substituted pointwise part (§5.2.2), and WRN blocks built from them.

A depthwise-separable convolution is a ``k×k`` depthwise convolution (groups = in channels) followed
by a pointwise (1×1) convolution; chapter 5 replaces only the pointwise part by a substitute
(:mod:`thesislib.compressed.base`). A substitute that replaces a whole convolution
(:attr:`~thesislib.compressed.base.Substitute.whole_conv`: the linear ShuffleNet, which holds its own
k×k depthwise convolution in its bottleneck, §5.2.3) is the whole convolution, built with the
convolution's kernel size, stride and dilation. :class:`SeparableConv2d` is the one separable
convolution of every chapter-5 network (WRNs, DARTS' cells, WRN-50-2's bottlenecks).

:class:`SeparableBlock` is chapter 4's pre-activation block (:class:`~thesislib.moonshine.blocks.PreActBlock`)
with separable convolutions; :func:`separable_block_factory` returns its ``(in, out, stride)`` factory,
the form :func:`thesislib.models.build_model` passes to a WRN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from thesislib.compressed.base import Substitute, SubstituteSpec, parse_substitute
from thesislib.moonshine.blocks import PreActBlock

__all__ = ["SeparableBlock", "SeparableConv2d", "separable_block_factory", "separable_conv_factory"]

BlockFactory = Callable[[int, int, int], nn.Module]


class SeparableConv2d(nn.Module):
    """Depthwise ``k×k`` (``stride``, ``dilation``, padding ``dilation·(k−1)/2``) then a substitute pointwise (§5.2.2).

    ``substitute`` is a spec such as ``"tt:0.3"`` / :class:`SubstituteSpec`; ``"conv1x1"`` gives the
    plain separable convolution. ``substitute_kwargs`` go to the substitute's constructor (e.g.
    ``{"bottleneck": "out"}`` for the linear ShuffleNet). A ``whole_conv`` substitute takes the kernel,
    stride and dilation itself (``depthwise`` is then ``None``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        substitute: str | SubstituteSpec = "conv1x1",
        kernel_size: int = 3,
        stride: int = 1,
        substitute_kwargs: dict[str, Any] | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        spec = parse_substitute(substitute)
        self.spec = spec
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.dilation = stride, dilation
        kwargs = dict(substitute_kwargs or {})
        if spec.whole_conv:  # the unit's own depthwise conv takes the kernel, stride and dilation
            self.depthwise = None
            if dilation != 1:
                kwargs["dilation"] = dilation
            self.pointwise: Substitute = spec.build(
                in_channels, out_channels, stride=stride, kernel_size=kernel_size, **kwargs
            )
        else:
            self.depthwise = nn.Conv2d(
                in_channels,
                in_channels,
                kernel_size,
                stride=stride,
                padding=dilation * (kernel_size - 1) // 2,
                dilation=dilation,
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


class SeparableBlock(PreActBlock):
    """Chapter 4's pre-activation WRN block (BN-ReLU-conv ×2 + shortcut) with separable substituted convs.

    The projection shortcut (when channels or resolution change) stays a dense 1×1 convolution, as
    in the thesis' code. Its ReLUs are not counted, as the chapter-5 counts were made (SECL's
    WRN-40-2: 29.4M mult-adds; :mod:`thesislib.counting`).
    """

    counts_activations = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        substitute: str | SubstituteSpec,
        substitute_kwargs: dict[str, Any] | None = None,
    ) -> None:
        conv = separable_conv_factory(substitute, 3, **(substitute_kwargs or {}))
        super().__init__(in_channels, out_channels, stride, conv, convs=2)


def separable_block_factory(substitute: str | SubstituteSpec, **substitute_kwargs: Any) -> BlockFactory:
    """A ``(in_channels, out_channels, stride) -> SeparableBlock`` factory for ``build_model(block=...)``."""
    spec = parse_substitute(substitute)

    def make(in_channels: int, out_channels: int, stride: int = 1) -> SeparableBlock:
        return SeparableBlock(in_channels, out_channels, stride, spec, substitute_kwargs)

    make.__name__ = f"separable_block[{spec}]"
    return make
