"""The DARTS network for CIFAR-10 (Liu et al., 2019), the state-of-the-art base network of §5.3.1.

The network is the published *DARTS-V2* cell genotype stacked into 20 cells with 36 initial channels,
reduction cells at one and two thirds of the depth, an auxiliary classifier after the second reduction
and drop path (Liu et al., 2019; thesis §5.3.1)::

    net = DARTSNetwork()                           # dense: 3.35M parameters without the auxiliary head
    net = DARTSNetwork(pointwise=my_factory)       # every 1×1 (pointwise) conv from ``my_factory``
    logits, groups = net(images)                   # groups: cell outputs at the three resolutions
    net.aux_logits                                 # the auxiliary head's logits of the last training pass

DARTS is already built from separable convolutions, so chapter 5 substitutes its *pointwise* convs
(thesis §5.3.3: "it already uses separable convolutions"). Matching the thesis' code (the
``deficient-efficient`` repository cited in §5.3.1), every 1×1 conv inside the cells goes through the
``pointwise`` factory: the pointwise half of each ``sep_conv``/``dil_conv`` op, the two 1×1
preprocessing convs of every cell and the stride-2 1×1 convs of ``FactorizedReduce`` (these through
the ``separable`` factory with kernel size 1 when one is given, so that a substitute replacing the
whole conv, the linear ShuffleNet unit, gets the conv's kernel size 1 and stride 2). The stem's
3×3 conv, the auxiliary head and the classifier stay dense. A stride-2 pointwise conv is applied as
"subsample, then pointwise", which is exactly a 1×1 stride-2 convolution, so any substitute for a
stride-1 pointwise conv plugs in unchanged.

Counting (§5.3.1): "the auxiliary classification head was used in training, but not counted at test
time". The head is built and trained, is never run in ``eval()`` mode, and :func:`counted_parameters`
leaves it out. Dense DARTS-V2 has 3,349,342 parameters (the published 3.3M) without the head and
3.83M with it -- the "3.8×10⁶" quoted in §5.3.3 evidently included the head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "DARTS_V2",
    "AuxiliaryHeadCIFAR",
    "Cell",
    "DARTSNetwork",
    "DilConv",
    "FactorizedReduce",
    "Genotype",
    "PointwiseFactory",
    "ReLUConvBN",
    "SepConv",
    "SeparableFactory",
    "Subsample",
    "auxiliary_loss",
    "counted_parameters",
    "dense_pointwise",
    "drop_path",
    "drop_path_probability",
    "separable_from_pointwise",
]

PointwiseFactory = Callable[[int, int], nn.Module]
"""Builds the module that stands in for a 1×1 convolution: ``(in_channels, out_channels) -> module``."""

SeparableFactory = Callable[[int, int, int, int, int], nn.Module]
"""Builds a separable k×k convolution: ``(in_channels, out_channels, kernel_size, stride, dilation)``."""


@dataclass(frozen=True)
class Genotype:
    """A DARTS cell: ``(op, input index)`` pairs, two per intermediate node, and the concatenated nodes."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


DARTS_V2 = Genotype(
    normal=(
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ),
    normal_concat=(2, 3, 4, 5),
    reduce=(
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ),
    reduce_concat=(2, 3, 4, 5),
)
"""The published DARTS-V2 genotype (second-order DARTS, Liu et al., 2019), used by the thesis."""


def dense_pointwise(in_channels: int, out_channels: int) -> nn.Module:
    """The default pointwise factory: a dense 1×1 convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, 1, bias=False)


class Subsample(nn.Module):
    """Keep every ``stride``-th pixel: with a following 1×1 conv, a 1×1 conv of that stride."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


def strided_pointwise(
    pointwise: PointwiseFactory, in_channels: int, out_channels: int, stride: int
) -> nn.Module:
    """A 1×1 conv of ``stride`` from a stride-1 ``pointwise`` factory (subsample, then pointwise)."""
    module = pointwise(in_channels, out_channels)
    return module if stride == 1 else nn.Sequential(Subsample(stride), module)


def separable_from_pointwise(pointwise: PointwiseFactory) -> SeparableFactory:
    """A separable-conv factory: depthwise k×k (dense, one filter per channel) then ``pointwise``.

    For ``kernel_size == 1`` there is no depthwise part and the result is a strided pointwise conv.
    This is the depthwise-separable convolution of §5.2.2 with its pointwise half substituted.
    """

    def separable(
        in_channels: int, out_channels: int, kernel_size: int, stride: int, dilation: int
    ) -> nn.Module:
        if kernel_size == 1:
            return strided_pointwise(pointwise, in_channels, out_channels, stride)
        padding = dilation * (kernel_size - 1) // 2
        depthwise = nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=False,
        )
        return nn.Sequential(depthwise, pointwise(in_channels, out_channels))

    return separable


def drop_path_probability(epoch: int, epochs: int, final: float = 0.2) -> float:
    """DARTS' schedule (§5.3.1): the drop probability rises linearly from 0 to ``final`` over training.

    Set it before each epoch: ``model.drop_path_prob = drop_path_probability(epoch, epochs)``.
    """
    if epochs < 1 or not 0 <= epoch <= epochs:
        raise ValueError(f"need 0 <= epoch <= epochs and epochs >= 1, got epoch={epoch}, epochs={epochs}")
    if not 0.0 <= final < 1.0:
        raise ValueError(f"final drop probability must be in [0, 1), got {final}")
    return final * epoch / epochs


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Drop whole examples' paths with probability ``drop_prob``, rescaling the kept ones (DARTS).

    Uses the global torch generator, so :func:`thesislib.training.seed_everything` makes it repeatable.
    """
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class ReLUConvBN(nn.Sequential):
    """ReLU → 1×1 conv (through the pointwise factory) → BatchNorm: a cell's input preprocessing."""

    def __init__(self, in_channels: int, out_channels: int, pointwise: PointwiseFactory) -> None:
        super().__init__(nn.ReLU(), pointwise(in_channels, out_channels), nn.BatchNorm2d(out_channels))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1×1 convs on offset pixel grids, concatenated (DARTS).

    The stride-2 1×1 convs come from ``separable`` (as ``separable(in, out, 1, 2, 1)``, so a
    substitute holding its own depthwise conv, the linear ShuffleNet unit, takes the stride as in the
    thesis' code) or, without it, are "subsample, then ``pointwise``".
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pointwise: PointwiseFactory,
        separable: SeparableFactory | None = None,
    ) -> None:
        super().__init__()
        if out_channels % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {out_channels}")
        self.relu = nn.ReLU()
        half = out_channels // 2
        if separable is None:
            self.conv_1 = strided_pointwise(pointwise, in_channels, half, 2)
            self.conv_2 = strided_pointwise(pointwise, in_channels, half, 2)
        else:
            self.conv_1 = separable(in_channels, half, 1, 2, 1)
            self.conv_2 = separable(in_channels, half, 1, 2, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class SepConv(nn.Sequential):
    """DARTS' ``sep_conv_kxk``: two ReLU → separable conv → BN stages (the first one strided)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, separable: SeparableFactory
    ) -> None:
        first = (
            nn.ReLU(),
            separable(in_channels, in_channels, kernel_size, stride, 1),
            nn.BatchNorm2d(in_channels),
        )
        second = (
            nn.ReLU(),
            separable(in_channels, out_channels, kernel_size, 1, 1),
            nn.BatchNorm2d(out_channels),
        )
        super().__init__(*first, *second)


class DilConv(nn.Sequential):
    """DARTS' ``dil_conv_kxk``: ReLU → dilated (dilation 2) separable conv → BN."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, separable: SeparableFactory
    ) -> None:
        dilated = separable(in_channels, out_channels, kernel_size, stride, 2)
        super().__init__(nn.ReLU(), dilated, nn.BatchNorm2d(out_channels))


def _operation(
    name: str, channels: int, stride: int, pointwise: PointwiseFactory, separable: SeparableFactory
):
    """One DARTS operation by its genotype name."""
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, pointwise, separable)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    kinds = {"sep_conv": SepConv, "dil_conv": DilConv}
    for prefix, kind in kinds.items():
        for k in (3, 5, 7):
            if name == f"{prefix}_{k}x{k}":
                return kind(channels, channels, k, stride, separable)
    valid = ["skip_connect", "max_pool_3x3", "avg_pool_3x3"] + [
        f"{p}_{k}x{k}" for p in kinds for k in (3, 5, 7)
    ]
    raise ValueError(f"unknown DARTS operation {name!r}; valid: {', '.join(valid)}")


class Cell(nn.Module):
    """A DARTS cell: preprocess the two previous cells' outputs, build four nodes, concatenate them."""

    def __init__(
        self,
        genotype: Genotype,
        prev_prev_channels: int,
        prev_channels: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        pointwise: PointwiseFactory,
        separable: SeparableFactory,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(prev_prev_channels, channels, pointwise, separable)
        else:
            self.preprocess0 = ReLUConvBN(prev_prev_channels, channels, pointwise)
        self.preprocess1 = ReLUConvBN(prev_channels, channels, pointwise)
        ops = genotype.reduce if reduction else genotype.normal
        self.concat = tuple(genotype.reduce_concat if reduction else genotype.normal_concat)
        if len(ops) % 2:
            raise ValueError(f"a genotype needs two operations per node, got {len(ops)} operations")
        self.indices = tuple(index for _, index in ops)
        self.ops = nn.ModuleList(
            _operation(name, channels, 2 if reduction and index < 2 else 1, pointwise, separable)
            for name, index in ops
        )
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self.ops) // 2):
            total = 0
            for op, index in zip(
                self.ops[2 * node : 2 * node + 2], self.indices[2 * node : 2 * node + 2], strict=True
            ):
                h = op(states[index])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """The auxiliary classifier on the 8×8 output of the second reduction (DARTS; training only)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),  # 8×8 -> 2×2
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DARTSNetwork(nn.Module):
    """DARTS for CIFAR: stem, ``layers`` cells (reductions at 1/3 and 2/3), global pooling, classifier.

    Parameters follow Liu et al. (2019) and thesis §5.3.1: ``channels=36``, ``layers=20``,
    ``genotype=DARTS_V2``, an auxiliary head and drop path (``drop_path_prob`` is an attribute the
    training schedule raises linearly from 0 to 0.2). ``pointwise`` builds every 1×1 conv in the cells
    (see the module docstring); ``separable`` (default: dense depthwise then ``pointwise``) builds the
    k×k separable convs of the ``sep_conv``/``dil_conv`` ops, for substitutes such as the linear
    ShuffleNet that replace the whole separable conv.

    ``forward`` returns ``(logits, groups)``: ``groups`` are the outputs of the last cell before each
    reduction and of the final cell (32×32, 16×16 and 8×8 maps, for attention transfer). In training
    mode with ``auxiliary=True`` the auxiliary head's logits are left in ``self.aux_logits``.
    """

    def __init__(
        self,
        pointwise: PointwiseFactory | None = None,
        *,
        separable: SeparableFactory | None = None,
        channels: int = 36,
        layers: int = 20,
        num_classes: int = 10,
        auxiliary: bool = True,
        genotype: Genotype = DARTS_V2,
        drop_path_prob: float = 0.0,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        if layers < 3:
            raise ValueError(f"DARTS needs at least 3 cells (two reductions), got layers={layers}")
        if channels < 1 or num_classes < 1:
            raise ValueError(f"channels and num_classes must be positive, got {channels}, {num_classes}")
        if not 0.0 <= drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob must be in [0, 1), got {drop_path_prob}")
        pointwise = pointwise or dense_pointwise
        separable = separable or separable_from_pointwise(pointwise)
        self.drop_path_prob = drop_path_prob
        self.reductions = (layers // 3, 2 * layers // 3)
        stem_channels = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 3, padding=1, bias=False), nn.BatchNorm2d(stem_channels)
        )
        prev_prev, prev, current = stem_channels, stem_channels, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        aux_channels = prev
        for i in range(layers):
            reduction = i in self.reductions
            if reduction:
                current *= 2
            cell = Cell(genotype, prev_prev, prev, current, reduction, reduction_prev, pointwise, separable)
            self.cells.append(cell)
            reduction_prev = reduction
            prev_prev, prev = prev, cell.multiplier * current
            if i == self.reductions[1]:
                aux_channels = prev
        self.auxiliary_head = AuxiliaryHeadCIFAR(aux_channels, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(prev, num_classes)
        self.aux_logits: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        s0 = s1 = self.stem(x)
        groups: list[torch.Tensor] = []
        self.aux_logits = None
        for i, cell in enumerate(self.cells):
            if i in self.reductions:
                groups.append(s1)
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.reductions[1] and self.auxiliary_head is not None and self.training:
                self.aux_logits = self.auxiliary_head(s1)
        groups.append(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, groups


def auxiliary_loss(model: DARTSNetwork, targets: torch.Tensor, weight: float = 0.4) -> torch.Tensor:
    """``weight`` × cross-entropy of the auxiliary head's logits from the last training forward pass.

    DARTS trains with ``loss = CE(logits) + 0.4 · CE(aux_logits)`` (Liu et al., 2019); zero when the
    head did not run (eval mode or ``auxiliary=False``).
    """
    if model.aux_logits is None:
        return torch.zeros((), device=targets.device)
    return weight * nn.functional.cross_entropy(model.aux_logits, targets)


def counted_parameters(model: nn.Module, exclude: Sequence[str] = ("auxiliary_head",)) -> int:
    """Parameters counted at test time (§5.3.1): all but those of the sub-modules named in ``exclude``."""
    skipped = {
        id(p)
        for name in exclude
        if hasattr(model, name) and getattr(model, name) is not None
        for p in getattr(model, name).parameters()
    }
    return sum(p.numel() for p in model.parameters() if id(p) not in skipped)
