"""The cheap convolutional blocks of Table 4.1, built from a compact, validated spec.

A *block* is the repeating unit of a residual network: in a Wide ResNet (Table 4.2) the standard
block S is two pre-activated k×k convolutions (BN + ReLU before each conv, He et al. 2016b). The
Moonshine students keep the architecture and substitute the block (§4.3.2):

======================  ===============================================================  =======================
spec                    structure (each conv preceded by BN + ReLU)                      conv params (Table 4.1)
======================  ===============================================================  =======================
``S``                   Conv k×k, Conv k×k                                               2N²k²
``S-2x2``               the same with 2×2 kernels dilated by 2 (Yu & Koltun 2016)        2N²·4
``G(g)``                [GConv(g) k×k → BN → ReLU → Conv1×1] twice                       2N²(k²/g + 1)
``B(b)``                Conv1×1 (N→N/b) → BN → ReLU → Conv k×k → BN → ReLU → Conv1×1     N²(k²/b² + 2/b)
``BG(b,g)``             as B(b) with a grouped k×k conv                                  N²(k²/(gb²) + 2/b)
======================  ===============================================================  =======================

Group counts ``g`` are either numbers (``G(4)``: 4 groups) or fractions of the channel width as in
Table 4.3: ``G(N/4)`` has width/4 groups (``G(N)`` is depthwise-separable), and for BG the width is
``M = N/b``, the channels after the bottleneck (``BG(2,M/8)``). A grouped conv keeps its input width;
when the width changes it does so across the following pointwise conv (§4.3.2). As in the authors'
code (pytorch-moonshine), ``N`` of a grouped conv is its input width and ``M = N_out/b``.

Spec grammar (whitespace and case of ``x`` ignored; ``×`` accepted for ``x``)::

    S | S-2x2 | G(<g>) | B(<b>) | BG(<b>,<h>)
    <g> := <int> | N | N/<int>        <h> := <int> | M | M/<int>        <b> := <int>

Parse once with :func:`parse_block` (a ``ValueError`` lists the valid forms), then build blocks with
:meth:`BlockSpec.block` (pre-activation, for Wide ResNets) or :meth:`BlockSpec.post_block`
(post-activation, footnote 5: BN + ReLU after each conv, for the ImageNet ResNets and ERFNet).
Group counts that do not divide a width raise a ``ValueError`` when the block is built.

Counting convention (see :mod:`thesislib.counting`): the ReLUs *between* convolutions of a block are
network-level and counted; the ReLU *inside* a substitute conv unit (:class:`GroupedPointwise`,
:class:`Bottleneck`) is not, which those classes declare with ``counts_activations = False``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BLOCK_FORMS",
    "BlockSpec",
    "Bottleneck",
    "ConvFactory",
    "GroupedPointwise",
    "Groups",
    "PointwiseFactory",
    "PostActBlock",
    "PreActBlock",
    "ResidualBlock",
    "parse_block",
]

#: ``(in_channels, out_channels, stride) -> module`` building one conv (or a conv substitute).
ConvFactory = Callable[[int, int, int], nn.Module]
#: ``(in_channels, out_channels) -> module`` building a 1×1 conv: dense by default, or a chapter-5 substitute.
PointwiseFactory = Callable[[int, int], nn.Module]

BLOCK_FORMS = (
    "S",
    "S-2x2",
    "G(g) with g = 2, 4, 8, 16, ... or N, N/2, N/4, ... (N = channel width)",
    "B(b) with b = 1, 2, 4, ...",
    "BG(b,g) with g = 2, 4, ... or M, M/2, M/4, ... (M = N/b)",
)
_FORMS_TEXT = "; ".join(BLOCK_FORMS)

BlockKind = Literal["S", "S-2x2", "G", "B", "BG"]


@dataclasses.dataclass(frozen=True)
class Groups:
    """A number of groups: absolute (``Groups(count=4)``) or a fraction of a width (``Groups(divisor=4)`` = N/4)."""

    count: int | None = None
    divisor: int | None = None
    symbol: str = "N"

    def __post_init__(self) -> None:
        if (self.count is None) == (self.divisor is None):
            raise ValueError("Groups needs exactly one of count (e.g. 4) or divisor (e.g. 4 for N/4)")
        value = self.count if self.count is not None else self.divisor
        if value is None or value < 1:
            raise ValueError(f"group counts and divisors must be positive integers, not {value}")

    def resolve(self, width: int) -> int:
        """The number of groups for a conv of ``width`` input channels; ``ValueError`` if it does not divide."""
        if self.divisor is not None:
            if width % self.divisor:
                raise ValueError(
                    f"{self} groups need a width divisible by {self.divisor}; width {width} is not "
                    f"(valid forms: {_FORMS_TEXT})"
                )
            groups = width // self.divisor
        else:
            groups = int(self.count)  # type: ignore[arg-type]
        if width % groups:
            raise ValueError(
                f"{groups} groups do not divide a width of {width} channels; choose a group count that "
                f"divides every width of the network (valid forms: {_FORMS_TEXT})"
            )
        return groups

    def __str__(self) -> str:
        if self.count is not None:
            return str(self.count)
        return self.symbol if self.divisor == 1 else f"{self.symbol}/{self.divisor}"


_INT = r"([1-9][0-9]*)"
_PATTERNS = {
    "S": re.compile(r"S"),
    "S-2x2": re.compile(r"S-2X2"),
    "G": re.compile(rf"G\((?:{_INT}|N(?:/{_INT})?)\)"),
    "B": re.compile(rf"B\({_INT}\)"),
    "BG": re.compile(rf"BG\({_INT},(?:{_INT}|M(?:/{_INT})?)\)"),
}


def _groups(count: str | None, divisor: str | None, symbol: str) -> Groups:
    if count is not None:
        return Groups(count=int(count), symbol=symbol)
    return Groups(divisor=int(divisor) if divisor is not None else 1, symbol=symbol)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """A parsed block spec (Table 4.1). Build with :meth:`block` (pre-activation) or :meth:`post_block`."""

    kind: BlockKind
    groups: Groups | None = None
    bottleneck: int | None = None

    def __str__(self) -> str:
        if self.kind == "G":
            return f"G({self.groups})"
        if self.kind == "B":
            return f"B({self.bottleneck})"
        if self.kind == "BG":
            return f"BG({self.bottleneck},{self.groups})"
        return self.kind

    @property
    def convs(self) -> int:
        """How many conv units (with a BN + ReLU each) the block stacks: 2 for S and G, 1 for B and BG."""
        return 1 if self.kind in ("B", "BG") else 2

    @property
    def has_pointwise(self) -> bool:
        """Whether the block has 1×1 convs, the convs a chapter-5 substitute can replace: G, B and BG do."""
        return self.kind in ("G", "B", "BG")

    def conv(
        self, kernel_size: int = 3, dilation: int = 1, pointwise: PointwiseFactory | None = None
    ) -> ConvFactory:
        """The factory of one conv unit of this block: ``(in, out, stride) -> module``.

        ``dilation`` dilates the k×k (or grouped) convolution; S-2x2 is always 2×2 with dilation 2.
        ``pointwise`` builds the block's 1×1 convs, ``(in, out) -> module`` (default: a dense
        ``nn.Conv2d``); a chapter-5 substitute there gives a cheap block with a structured pointwise
        part (§5.2.2). S and S-2x2 have no 1×1 conv and refuse one.
        """
        kind = self.kind
        if pointwise is not None and not self.has_pointwise:
            raise ValueError(
                f"block {self} has no 1×1 convolution for a substitute to replace; G(g), B(b) and "
                "BG(b,g) have one (a substituted S block is chapter 5's separable block)"
            )
        if kind == "S":
            return lambda i, o, s: _conv(i, o, kernel_size, s, dilation)
        if kind == "S-2x2":
            return lambda i, o, s: _conv(i, o, 2, s, 2)
        if kind == "G":
            groups = self.groups
            assert groups is not None

            def grouped(i: int, o: int, s: int) -> nn.Module:
                return GroupedPointwise(
                    i,
                    o,
                    s,
                    groups.resolve(i),
                    kernel_size=kernel_size,
                    dilation=dilation,
                    pointwise=pointwise,
                )

            return grouped
        bottleneck = int(self.bottleneck)  # type: ignore[arg-type]
        groups = self.groups if kind == "BG" else Groups(count=1, symbol="M")

        def bottlenecked(i: int, o: int, s: int) -> nn.Module:
            if o % bottleneck:
                raise ValueError(f"{self}: a bottleneck of {bottleneck} does not divide {o} output channels")
            mid = o // bottleneck
            return Bottleneck(
                i,
                o,
                s,
                mid,
                groups.resolve(mid),
                kernel_size=kernel_size,
                dilation=dilation,
                pointwise=pointwise,
            )

        return bottlenecked

    def block(
        self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3
    ) -> PreActBlock:
        """A pre-activation residual block (Table 4.1, used in the Wide ResNets of Table 4.2)."""
        return PreActBlock(in_channels, out_channels, stride, self.conv(kernel_size), convs=self.convs)

    def post_block(
        self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3
    ) -> PostActBlock:
        """A post-activation residual block (footnote 5: BN + ReLU after each conv; ImageNet ResNets)."""
        return PostActBlock(in_channels, out_channels, stride, self.conv(kernel_size), convs=self.convs)


def parse_block(spec: str | BlockSpec) -> BlockSpec:
    """Parse a compact block spec such as ``"G(N/4)"`` or ``"BG(2,M/8)"`` (module docstring grammar)."""
    if isinstance(spec, BlockSpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"a block spec is a string such as 'G(N/4)', not {type(spec).__name__}")
    text = re.sub(r"\s+", "", spec).upper().replace("×", "X")
    for kind, pattern in _PATTERNS.items():
        match = pattern.fullmatch(text)
        if match is None:
            continue
        if kind in ("S", "S-2x2"):
            return BlockSpec(kind)  # type: ignore[arg-type]
        if kind == "G":
            return BlockSpec("G", groups=_groups(match[1], match[2], "N"))
        if kind == "B":
            return BlockSpec("B", bottleneck=int(match[1]))
        return BlockSpec("BG", groups=_groups(match[2], match[3], "M"), bottleneck=int(match[1]))
    raise ValueError(f"unknown block spec {spec!r}; valid forms: {_FORMS_TEXT}")


# ----------------------------------------------------------------------------------------------------------
# Conv units


def _conv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1, groups: int = 1
) -> nn.Conv2d:
    """A bias-free k×k conv that keeps the spatial size at stride 1 (padding = dilation·(k−1)/2, rounded up)."""
    padding = (dilation * (kernel_size - 1) + 1) // 2
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=False,
    )


class GroupedPointwise(nn.Module):
    """GConv(g) k×k (in → in, stride) → BN → ReLU → Conv1×1 (in → out): one half of a G(g) block (Eq. 4.4).

    ``pointwise`` may replace the 1×1 conv by any ``(in, out) -> module`` (chapter 5 substitutes).
    The inner ReLU belongs to the substitute and is not counted (``counts_activations = False``, §4.3.2).
    """

    counts_activations = False  # the ReLU between its convs is part of the cheap unit (Table 4.3)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        groups: int = 1,
        kernel_size: int = 3,
        dilation: int = 1,
        pointwise: PointwiseFactory | None = None,
    ) -> None:
        super().__init__()
        if in_channels % groups:
            raise ValueError(f"{groups} groups do not divide {in_channels} input channels")
        self.grouped = _conv(in_channels, in_channels, kernel_size, stride, dilation, groups)
        self.bn = nn.BatchNorm2d(in_channels)
        self.pointwise = (
            pointwise(in_channels, out_channels)
            if pointwise is not None
            else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(F.relu(self.bn(self.grouped(x))))


class Bottleneck(nn.Module):
    """Conv1×1 (in → mid) → BN → ReLU → GConv(g) k×k (mid, stride) → BN → ReLU → Conv1×1 (mid → out).

    The conv unit of B(b) (``groups=1``) and BG(b, g) with ``mid = out/b`` (Table 4.1); inner ReLUs
    are part of the substitute and not counted (``counts_activations = False``). ``pointwise`` may
    replace both 1×1 convs by any ``(in, out) -> module`` (chapter 5 substitutes).
    """

    counts_activations = False  # its inner ReLUs are part of the cheap unit (Table 4.3)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        mid_channels: int,
        groups: int = 1,
        kernel_size: int = 3,
        dilation: int = 1,
        pointwise: PointwiseFactory | None = None,
    ) -> None:
        super().__init__()
        one_by_one = pointwise or (lambda i, o: nn.Conv2d(i, o, 1, bias=False))
        self.reduce = one_by_one(in_channels, mid_channels)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv = _conv(mid_channels, mid_channels, kernel_size, stride, dilation, groups)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.expand = one_by_one(mid_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.reduce(x)))
        x = F.relu(self.bn2(self.conv(x)))
        return self.expand(x)


# ----------------------------------------------------------------------------------------------------------
# Residual blocks


class ResidualBlock(nn.Module):
    """What both residual forms (:class:`PreActBlock`, :class:`PostActBlock`) share: ``convs`` conv units,
    the first mapping ``in → out`` with ``stride``, later ones ``out → out``."""

    def __init__(self, convs: int) -> None:
        super().__init__()
        if convs < 1:
            raise ValueError(f"a block needs at least one conv, not {convs}")
        self.convs = convs

    def _units(self, in_channels: int, out_channels: int, stride: int) -> list[tuple[int, int, int]]:
        """``(index, input width, stride)`` of every conv unit, from index 1."""
        return [(1, in_channels, stride)] + [(index, out_channels, 1) for index in range(2, self.convs + 1)]


class PreActBlock(ResidualBlock):
    """A pre-activation residual block (He et al. 2016b; Table 4.1): ``convs`` × (BN → ReLU → conv unit).

    Submodules ``bn1, relu1, conv1, bn2, relu2, conv2, …``; the first conv unit maps ``in → out`` with
    ``stride``, later ones ``out → out``. When the shape changes, the ``shortcut`` is a 1×1 conv of
    the pre-activated input (as in the WRN code); otherwise the input is added unchanged.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, conv: ConvFactory, convs: int = 2
    ) -> None:
        super().__init__(convs)
        for index, width, step in self._units(in_channels, out_channels, stride):
            self.add_module(f"bn{index}", nn.BatchNorm2d(width))
            self.add_module(f"relu{index}", nn.ReLU(inplace=True))
            self.add_module(f"conv{index}", conv(width, out_channels, step))
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            if in_channels != out_channels or stride != 1
            else None
        )

    def _unit(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"relu{index}")(getattr(self, f"bn{index}")(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self._unit(1, x)
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        for index in range(2, self.convs + 1):
            out = getattr(self, f"conv{index}")(self._unit(index, out))
        return out + shortcut


class PostActBlock(ResidualBlock):
    """A post-activation residual block (He et al. 2016a; footnote 5): ``convs`` × (conv unit → BN) with a
    ReLU between them and one after the sum; a 1×1 conv + BN ``downsample`` shortcut when the shape
    changes (torchvision layout). Submodules ``conv1, bn1, relu1, conv2, bn2, relu``."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, conv: ConvFactory, convs: int = 2
    ) -> None:
        super().__init__(convs)
        for index, width, step in self._units(in_channels, out_channels, stride):
            self.add_module(f"conv{index}", conv(width, out_channels, step))
            self.add_module(f"bn{index}", nn.BatchNorm2d(out_channels))
            if index < convs:
                self.add_module(f"relu{index}", nn.ReLU(inplace=True))
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
            if in_channels != out_channels or stride != 1
            else None
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = x
        for index in range(1, self.convs + 1):
            if index > 1:
                out = getattr(self, f"relu{index - 1}")(out)
            out = getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(out))
        return self.relu(out + shortcut)
