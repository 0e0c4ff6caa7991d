"""The common interface of the compressed linear transforms of chapter 5 (§5.2.3).

Every substitute is an :class:`nn.Module` standing in for a pointwise (1×1) convolution of
``in_channels → out_channels``. It takes one *setting* (the method's single tuning parameter) and
exposes

- :attr:`~Substitute.parameter_count` — its trainable parameters (buffers such as HashedNet's index
  map are not parameters);
- :meth:`~Substitute.mult_adds` — its test-time mult-adds for one example, following the counter
  protocol of chapter 4: a module defining ``mult_adds(input, output)`` is counted by that method
  alone. For a pointwise substitute this is the per-position cost × H×W of the output;
- :meth:`~Substitute.dense_matrix` — the effective ``out × in`` matrix ``W`` of Eq. 5.1 (differentiable),
  and :meth:`~Substitute.dense_kernel` the effective ``out × in × k × k`` convolution kernel, so
  ``module(x) == conv2d(x, dense_kernel(), stride=module.stride, padding=module.padding,
  dilation=module.dilation)`` for every substitute (``k = 1``, stride 1 for all but the linear
  ShuffleNet unit, which holds its own depthwise conv);
- :attr:`~Substitute.setting_range` — the valid settings; constructors raise ``ValueError`` naming it.

A network uses one *tuning* value for all its layers (§5.2.4); :meth:`Substitute.from_tuning`
maps it to each layer's setting (e.g. HashedNet's compression ratio → that layer's real-weight count).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SUBSTITUTES",
    "DensePointwise",
    "Substitute",
    "SubstituteSpec",
    "TuningRange",
    "build_substitute",
    "parse_substitute",
    "riffle_permutation",
    "substitute_class",
]

#: method name → class, filled as each method's module is imported (``thesislib.compressed`` imports all)
SUBSTITUTES: dict[str, type[Substitute]] = {}
_BASELINES: dict[str, type[Substitute]] = {}


@dataclass(frozen=True)
class TuningRange:
    """The network-wide tuning range of one method, as normalised to [0, 1] for Fig. 5.5.

    ``low``/``high`` are the tuning values at normalised 0 and 1; ``log`` interpolates
    geometrically; ``integer`` rounds to whole numbers (ACDC layers, ShuffleNet groups).
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def value(self, t: float) -> float:
        """The tuning value at normalised position ``t`` ∈ [0, 1]."""
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"normalised setting must lie in [0, 1], got {t}")
        if t in (0.0, 1.0):  # the ends exactly (exp(log(0.03)) is 0.029999999999999995)
            v = float(self.low if t == 0.0 else self.high)
            return float(round(v)) if self.integer else v
        if self.log:
            v = math.exp(math.log(self.low) + t * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + t * (self.high - self.low)
        return float(round(v)) if self.integer else v


def riffle_permutation(n: int, groups: int = 2) -> torch.Tensor:
    """Index ``perm`` of the riffle (channel) shuffle: ``y = x[perm]``.

    With ``groups = 2`` this is the perfect riffle shuffle of §5.2.3 (split in half, interleave the
    halves; Gilbert 1955); with ``g`` groups it is ShuffleNet's channel shuffle
    (``[g, n/g] → [n/g, g]``), which is the riffle for ``g = 2``. For ``groups = 2`` and odd ``n``
    the first half holds the extra element.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if groups == 2:
        half = (n + 1) // 2
        perm = torch.empty(n, dtype=torch.long)
        perm[0::2] = torch.arange(half)
        perm[1::2] = torch.arange(half, n)
        return perm
    if groups < 1 or n % groups:
        raise ValueError(f"groups must be a divisor of n={n}, got {groups}")
    return torch.arange(n).view(groups, n // groups).t().reshape(-1)


class Substitute(nn.Module):
    """Base class of a substitute pointwise convolution (§5.2.3).

    Subclasses implement :meth:`dense_matrix` (and optionally a cheaper ``forward``) and
    :meth:`per_position_mult_adds`; the base class provides the rest of the interface.
    """

    method: ClassVar[str] = ""
    #: human-readable valid range of the per-layer ``setting``
    setting_range: ClassVar[str] = ""
    #: network-wide tuning range normalised in Fig. 5.5
    tuning_range: ClassVar[TuningRange] = TuningRange(0.0, 1.0)
    #: ``False`` for the dense baseline, which has no tuning parameter (and is no compression method)
    tunable: ClassVar[bool] = True
    #: ``True`` if the substitute replaces a whole k×k conv, holding its own depthwise conv (the linear
    #: ShuffleNet unit, §5.2.3), so a separable conv is built as this substitute alone
    whole_conv: ClassVar[bool] = False
    #: the keyword of a bottleneck width the networks set by a convention (the linear ShuffleNet's
    #: ``bottleneck``, :class:`~thesislib.compressed.networks.NetworkSubstitute`), or ``None``
    bottleneck_keyword: ClassVar[str | None] = None
    #: keyword arguments with which a trained network is measured at test time (ACDC: its O(N log N)
    #: fast path, :meth:`~thesislib.compressed.acdc.ACDC.fast_forward`); empty for the others
    inference_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: spatial kernel, stride and dilation of the effective operator (1 for a pointwise substitute)
    kernel_size: int = 1
    stride: int = 1
    dilation: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.method and not cls.tunable:
            _BASELINES[cls.method] = cls
        elif cls.method:
            SUBSTITUTES[cls.method] = cls

    def __init__(self, in_channels: int, out_channels: int, setting: Any) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channels must be >= 1, got in={in_channels}, out={out_channels}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.setting = setting

    # -- construction from a network-wide tuning value -----------------------------------------
    @classmethod
    def from_tuning(cls, in_channels: int, out_channels: int, tuning: float, **kwargs: Any) -> Substitute:
        """This layer's substitute for the network-wide ``tuning`` value (§5.2.4)."""
        return cls(in_channels, out_channels, tuning, **kwargs)

    def _invalid(self, got: Any) -> ValueError:
        return ValueError(
            f"{type(self).__name__}({self.in_channels}→{self.out_channels}): invalid setting {got!r}; "
            f"valid: {self.setting_range}"
        )

    # -- the effective linear map --------------------------------------------------------------
    def dense_matrix(self) -> torch.Tensor:
        """The effective ``out × in`` matrix ``W`` of Eq. 5.1 (differentiable)."""
        raise NotImplementedError

    @property
    def padding(self) -> int:
        """The "same" padding of the effective k×k operator: ``dilation · (k - 1) // 2``."""
        return self.dilation * (self.kernel_size - 1) // 2

    def dense_kernel(self) -> torch.Tensor:
        """The effective ``out × in × k × k`` kernel: ``forward(x) == conv2d(x, kernel, stride=stride,
        padding=padding, dilation=dilation)``."""
        return self.dense_matrix()[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to ``B × in × H × W`` (pointwise convolution) or ``B × in`` (linear layer)."""
        w = self.dense_matrix()
        if x.dim() == 2:
            return F.linear(x, w)
        return F.conv2d(x, w[:, :, None, None])

    # -- costs ---------------------------------------------------------------------------------
    @property
    def parameter_count(self) -> int:
        """Trainable parameters (numel of ``parameters()``, buffers excluded)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def dense_parameter_count(self) -> int:
        """Parameters of the dense layer this substitutes (``in × out``); ``N`` in Eq. 5.18."""
        return self.in_channels * self.out_channels

    def per_position_mult_adds(self) -> int:
        """Test-time mult-adds to transform one input vector (one spatial position)."""
        raise NotImplementedError

    def mult_adds(self, input: torch.Tensor, output: torch.Tensor) -> int:
        """Test-time mult-adds for one example: per-position cost × output H×W (counter protocol)."""
        positions = 1 if output.dim() <= 2 else int(output.shape[-2] * output.shape[-1])
        return int(self.per_position_mult_adds()) * positions

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, setting={self.setting!r}"


class DensePointwise(Substitute):
    """The uncompressed baseline: a dense 1×1 convolution ``W ∈ R^{out×in}`` (Eq. 5.1), no bias."""

    method = "conv1x1"
    setting_range = "None (no tuning parameter)"
    tunable = False

    def __init__(self, in_channels: int, out_channels: int, setting: Any = None) -> None:
        super().__init__(in_channels, out_channels, None)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # as nn.Conv2d

    def dense_matrix(self) -> torch.Tensor:
        return self.weight

    def per_position_mult_adds(self) -> int:
        return self.in_channels * self.out_channels


def default_weight_std(in_channels: int) -> float:
    """Std of PyTorch's default 1×1 conv init (kaiming-uniform, a=√5): ``1/√(3·in)``."""
    return 1.0 / math.sqrt(3.0 * in_channels)


SubstituteFactory = Callable[[int, int, Any], Substitute]


def substitute_class(method: str) -> type[Substitute]:
    """The registered class of ``method`` (a :data:`SUBSTITUTES` key or ``"conv1x1"``); ``ValueError`` lists them."""
    import thesislib.compressed  # noqa: F401  (registers every method)

    table = {**SUBSTITUTES, **_BASELINES}
    if method not in table:
        raise ValueError(f"unknown substitute {method!r}; valid: {sorted(table)}")
    return table[method]


def build_substitute(
    method: str, in_channels: int, out_channels: int, setting: Any = None, **kwargs: Any
) -> Substitute:
    """The substitute ``method`` (one of :data:`SUBSTITUTES` or ``"conv1x1"``) with this layer's ``setting``."""
    return substitute_class(method)(in_channels, out_channels, setting, **kwargs)


@dataclass(frozen=True)
class SubstituteSpec:
    """A method and its network-wide tuning value, parsed from ``"method:tuning"`` (e.g. ``"tt:0.3"``)."""

    method: str
    tuning: float | None = None

    def __post_init__(self) -> None:
        if self.kind.tunable and self.tuning is None:
            raise ValueError(f"substitute {self.method!r} needs a tuning value, e.g. '{self.method}:0.5'")

    @property
    def kind(self) -> type[Substitute]:
        """The registered :class:`Substitute` class of ``method`` (``ValueError`` listing the valid ones)."""
        return substitute_class(self.method)

    @property
    def tunable(self) -> bool:
        """``False`` for the dense baseline ``conv1x1``, which has no setting."""
        return self.kind.tunable

    @property
    def whole_conv(self) -> bool:
        """``True`` if the substitute replaces a whole k×k conv (:attr:`Substitute.whole_conv`)."""
        return self.kind.whole_conv

    def build(self, in_channels: int, out_channels: int, **kwargs: Any) -> Substitute:
        """This layer's substitute (via :meth:`Substitute.from_tuning`)."""
        if not self.tunable:
            return self.kind(in_channels, out_channels, None)
        return self.kind.from_tuning(in_channels, out_channels, self.tuning, **kwargs)

    def __str__(self) -> str:
        return self.method if self.tuning is None else f"{self.method}:{self.tuning:g}"


def parse_substitute(spec: str | SubstituteSpec) -> SubstituteSpec:
    """Parse ``"method[:tuning]"``; raises ``ValueError`` listing the valid methods."""
    if isinstance(spec, SubstituteSpec):
        return spec
    method, _, value = str(spec).strip().partition(":")
    try:
        tuning = float(value) if value else None
    except ValueError:
        raise ValueError(f"tuning value in {spec!r} is not a number") from None
    return SubstituteSpec(method.strip().lower(), tuning)
