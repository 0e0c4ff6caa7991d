"""The networks of chapter 5 with their convolutions made separable and substituted (§5.2.4, §5.3.1).

One registry, one builder::

    build_network("wrn-28-10")                                  # the standard dense network (36.5M)
    build_network("wrn-28-10", "conv1x1")                       # separable, dense pointwise convs
    build_network("wrn-50-2", "shufflenet", 7, linear=True)     # Table 5.1's "ShuffleNet (+Linear)"
    count_network("darts", "tt", 0.3)                           # test-time Counts (aux head excluded)
    solve_setting("wrn-50-2", "rf", "4.35M")                    # the tuning that lands on a budget

========== ========= ================================================================================
name       data      network
========== ========= ================================================================================
wrn-28-10  CIFAR-10  WRN-28-10 (chapter 4's ``build_model``); every 3×3 conv of the blocks → separable
wrn-40-2   CIFAR-10  WRN-40-2, the same way (SECL, seed 004, Table 1)
darts      CIFAR-10  DARTS-V2 (:mod:`~thesislib.compressed.darts`); every pointwise conv substituted
wrn-50-2   ImageNet  torchvision's ``wide_resnet50_2``; 3×3 → separable, and every 1×1 conv substituted
========== ========= ================================================================================

``substitute`` is ``None`` (the standard network), ``"conv1x1"`` (separable with dense pointwise
convs) or a method of :data:`~thesislib.compressed.base.SUBSTITUTES`; ``setting`` is that method's
network-wide tuning value (:meth:`~thesislib.compressed.base.Substitute.from_tuning`: RF/TT/Tucker
rank scale, HashedNet compression ratio, ACDC layers, ShuffleNet groups); ``linear=True`` also
substitutes the final linear layer (Table 5.1's "+Linear").

What is substituted follows the thesis' code (the ``deficient-efficient`` repository of §5.3.1) and is
confirmed by the thesis' numbers (``tests/test_compressed_networks.py``):

- **WRN-28-10 / WRN-40-2**: both 3×3 convs of every block; the stem conv, the projection shortcuts
  and the classifier stay dense (the WRN block of :mod:`~thesislib.compressed.separable`).
- **WRN-50-2**: the 3×3 conv *and both 1×1 convs* of every bottleneck, and the 1×1 projection
  shortcuts; only the 7×7 stem and the classifier stay dense. Table 5.1 needs this: with the 1×1
  convs left dense (option ``substitute_1x1=False``) no method gets below 23.7M parameters
  (Table 5.1: 4.35M).
- **DARTS**: every 1×1 conv in the cells (:mod:`~thesislib.compressed.darts`).

A strided 1×1 conv (WRN-50-2's projection shortcuts, DARTS' ``FactorizedReduce``) is "subsample, then
pointwise", except for the linear ShuffleNet unit, which replaces a whole conv: it holds its own depthwise conv with
the kernel size, stride and dilation of the conv it replaces (3×3 for the separable convs, **1×1**
for the 1×1 convs, as the thesis' code built it), and its first grouped conv runs at the input
resolution; that is what Table 5.1's ShuffleNet rows need (with a 3×3 depthwise conv at the 1×1
positions they came out 0.3–0.9% too large in parameters and 0.7–2.7% in mult-adds; with the 1×1
one all three rows are the printed values, e.g. 6,041,960 / 912,881,384 → "6.04M 0.91G"). Its bottleneck is
``out_channels // 4`` as in the thesis' code (``shufflenet_bottleneck="out"``, the default here;
§5.2.3's text says "input channels divided by 4", ``"in"``): with ``"out"`` Table 5.1's ShuffleNet
rows match to the printed precision and the largest WRN-28-10 ShuffleNet network is the 2.38M upper budget of §5.2.4;
with ``"in"`` the rows are 8–12% low and the largest WRN-28-10 has 2.28M.

Counting uses chapter 4's counter (:func:`thesislib.counting.count`: conv/linear multiply-accumulates,
one op per element entering a ReLU module or a pooling window, substitutes by their ``mult_adds``),
the convention of the thesis' counter; DARTS is counted without its auxiliary head (§5.3.1).
:func:`count_network` counts on PyTorch's ``meta`` device (shapes only), so even WRN-50-2 is counted
in well under a second without allocating its weights.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from thesislib.compressed.base import (
    SUBSTITUTES,
    DensePointwise,
    Substitute,
    SubstituteSpec,
    parse_substitute,
)
from thesislib.compressed.darts import DARTSNetwork, Subsample

__all__ = [
    "BUDGET_KEYS",
    "NETWORKS",
    "TABLE51_ROWS",
    "WRN50_2",
    "NetworkSpec",
    "SubstitutedLinear",
    "budget_grid",
    "build_network",
    "count_network",
    "count_record",
    "format_record",
    "network_counter",
    "parse_count",
    "pointwise_conv",
    "reproduce_table51",
    "reproduce_table51_row",
    "separable_conv",
    "solve_setting",
    "substitute_spec",
    "support_budgets",
    "table51_key",
    "torchvision_resnet_groups",
]

Builder = Callable[[SubstituteSpec | None, bool, dict[str, Any]], nn.Module]
BOTTLENECKS = ("out", "in")


@dataclass(frozen=True)
class NetworkSpec:
    """A registered chapter-5 network: its data, input shape and builder."""

    name: str
    dataset: str
    input_shape: tuple[int, int, int]
    num_classes: int
    builder: Builder = field(repr=False)
    description: str = ""
    #: options that give the network as counted at test time (e.g. DARTS without its auxiliary head)
    test_options: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------
# Substitute specs as the networks use them


@dataclass(frozen=True)
class NetworkSubstitute(SubstituteSpec):
    """A :class:`SubstituteSpec` plus the thesis code's layer conventions (module docstring).

    ``shufflenet_bottleneck="out"`` builds every linear ShuffleNet unit with a bottleneck of
    ``out_channels // 4`` (the thesis' code); ``"in"`` keeps ``in_channels // 4`` (§5.2.3's text).
    ``layer_options`` are keyword arguments for every layer's substitute, as ``(name, value)`` pairs
    (e.g. ``(("count_cheaper", True),)`` for ACDC as SECL counts it).
    """

    shufflenet_bottleneck: str = "out"
    layer_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shufflenet_bottleneck not in BOTTLENECKS:
            raise ValueError(
                f"shufflenet_bottleneck must be one of {BOTTLENECKS}, got {self.shufflenet_bottleneck!r}"
            )

    def layer_kwargs(self, in_channels: int, out_channels: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments one layer's substitute is built with."""
        kwargs = {**dict(self.layer_options), **kwargs}
        if self.method == "shufflenet" and self.shufflenet_bottleneck == "out" and "bottleneck" not in kwargs:
            return {**kwargs, "bottleneck": max(1, out_channels // 4)}
        return kwargs

    def build(self, in_channels: int, out_channels: int, **kwargs: Any) -> Substitute:
        return super().build(
            in_channels, out_channels, **self.layer_kwargs(in_channels, out_channels, kwargs)
        )


def substitute_spec(
    substitute: str | SubstituteSpec | None,
    setting: float | None = None,
    *,
    shufflenet_bottleneck: str = "out",
    substitute_options: dict[str, Any] | None = None,
) -> NetworkSubstitute | None:
    """``None`` (standard network) or the network spec of ``substitute`` at ``setting``.

    ``substitute`` may also carry its setting (``"tt:0.3"``); giving it twice is an error.
    ``substitute_options`` are keyword arguments for every layer's substitute.
    """
    if substitute is None:
        if substitute_options:
            raise ValueError(f"substitute_options {substitute_options} given without a substitute method")
        if setting is not None:
            raise ValueError(f"setting={setting!r} given without a substitute method")
        return None
    if isinstance(substitute, NetworkSubstitute) and setting is None and substitute_options is None:
        if substitute.shufflenet_bottleneck != shufflenet_bottleneck:
            return dataclasses.replace(substitute, shufflenet_bottleneck=shufflenet_bottleneck)
        return substitute
    if isinstance(substitute, SubstituteSpec):
        if setting is not None and substitute.tuning is not None:
            raise ValueError("give the setting inside the SubstituteSpec or as setting=, not both")
        method, tuning = substitute.method, substitute.tuning if setting is None else float(setting)
    else:
        text = str(substitute).strip().lower()
        if ":" in text:
            if setting is not None:
                raise ValueError(
                    f"substitute {substitute!r} already holds a setting; drop setting={setting!r}"
                )
            parsed = parse_substitute(text)
            method, tuning = parsed.method, parsed.tuning
        else:
            method, tuning = text, None if setting is None else float(setting)
    if method == "conv1x1":
        tuning = None
    elif tuning is None:
        SubstituteSpec(method, 1.0)  # a clear error for an unknown method first
        raise ValueError(f"substitute {method!r} needs a setting (its tuning value) or a parameter budget")
    options = tuple(sorted((substitute_options or {}).items()))
    if options and method == "conv1x1":
        raise ValueError(f"substitute_options {dict(options)} given for the dense 'conv1x1' pointwise conv")
    return NetworkSubstitute(method, tuning, shufflenet_bottleneck, options)


class SubstitutedLinear(nn.Module):
    """A final linear layer whose weight is a substitute (Table 5.1's "+Linear"); the bias stays dense.

    Counted by :meth:`mult_adds`: the substitute's cost for one vector plus one add per output (as the
    counter counts a dense linear layer's bias).
    """

    def __init__(self, substitute: nn.Module, bias: bool = True) -> None:
        super().__init__()
        self.substitute = substitute
        self.bias = nn.Parameter(torch.zeros(substitute.out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.substitute(x)
        return y if self.bias is None else y + self.bias

    def mult_adds(self, input: torch.Tensor, output: torch.Tensor) -> int:
        """The substitute's cost per row plus one add per output for the bias."""
        rows = input.numel() // self.substitute.in_channels
        extra = self.substitute.out_channels if self.bias is not None else 0
        return rows * (int(self.substitute.per_position_mult_adds()) + extra)


def _linear(spec: SubstituteSpec | None, old: nn.Linear) -> SubstitutedLinear:
    if spec is None or spec.method == "conv1x1":
        raise ValueError('linear=True ("+Linear") needs a substitute method for the final linear layer')
    return SubstitutedLinear(spec.build(old.in_features, old.out_features), bias=old.bias is not None)


def pointwise_conv(spec: SubstituteSpec, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """A (possibly strided) 1×1 conv from ``spec``: subsample, then the substitute.

    The linear ShuffleNet unit has its own depthwise conv, which takes the stride; replacing a 1×1
    conv it is 1×1 (the thesis' code).
    """
    if spec.method == "shufflenet":
        return spec.build(in_channels, out_channels, stride=stride, kernel_size=1)
    module = spec.build(in_channels, out_channels)
    return module if stride == 1 else nn.Sequential(Subsample(stride), module)


def separable_conv(
    spec: SubstituteSpec,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    dilation: int = 1,
) -> nn.Module:
    """A k×k conv made separable (§5.2.2): dense depthwise k×k then the substituted pointwise conv.

    The linear ShuffleNet unit replaces the whole separable conv; its depthwise part takes the conv's
    kernel size, stride and dilation (the thesis' code).
    """
    if kernel_size == 1 and dilation == 1:
        return pointwise_conv(spec, in_channels, out_channels, stride)
    if spec.method == "shufflenet":
        return spec.build(
            in_channels, out_channels, stride=stride, kernel_size=kernel_size, dilation=dilation
        )
    depthwise = nn.Conv2d(
        in_channels,
        in_channels,
        kernel_size,
        stride=stride,
        padding=dilation * (kernel_size - 1) // 2,
        dilation=dilation,
        groups=in_channels,
        bias=False,
    )
    return nn.Sequential(depthwise, spec.build(in_channels, out_channels))


# ----------------------------------------------------------------------------------------------------------
# WRN-28-10 / WRN-40-2 (CIFAR-10), through chapter 4's model registry


def _build_model(name: str, block: Any, num_classes: int) -> nn.Module:
    from thesislib.moonshine.models import build_model

    return build_model(name, block=block, num_classes=num_classes)


def _cifar_wrn(name: str) -> Builder:
    def build(spec: SubstituteSpec | None, linear: bool, options: dict[str, Any]) -> nn.Module:
        from thesislib.compressed.separable import separable_block_factory

        if options:
            raise ValueError(f"{name} takes no options, got {sorted(options)}")
        model = _build_model(name, "S" if spec is None else separable_block_factory(spec), 10)
        if linear:
            model.fc = _linear(spec, model.fc)
        return model

    return build


# ----------------------------------------------------------------------------------------------------------
# DARTS (CIFAR-10)


def _darts(spec: SubstituteSpec | None, linear: bool, options: dict[str, Any]) -> nn.Module:
    if spec is None:
        model = DARTSNetwork(**options)
    else:
        model = DARTSNetwork(
            pointwise=lambda i, o: pointwise_conv(spec, i, o),
            separable=lambda i, o, k, s, d: separable_conv(spec, i, o, k, s, d),
            **options,
        )
    if linear:
        model.classifier = _linear(spec, model.classifier)
    return model


# ----------------------------------------------------------------------------------------------------------
# WRN-50-2 (ImageNet), by module surgery on torchvision's wide_resnet50_2


def torchvision_resnet_groups(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A torchvision ResNet's forward pass returning ``(logits, [layer1, …, layer4 outputs])``.

    The four residual groups' outputs are the attention-transfer points of the thesis' ImageNet
    experiments (§4.5.1, §5.3.1).
    """
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    groups = []
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = layer(x)
        groups.append(x)
    return net.fc(torch.flatten(net.avgpool(x), 1)), groups


class WRN50_2(nn.Module):
    """torchvision's ``wide_resnet50_2`` (a ResNet-50 with twice as wide bottlenecks; 68.9M parameters).

    ``forward`` returns ``(logits, [layer1, layer2, layer3, layer4 outputs])``, the four attention
    transfer points of the thesis' ImageNet experiments.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        from torchvision.models import wide_resnet50_2

        self.net = wide_resnet50_2(weights=None, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return torchvision_resnet_groups(self.net, x)


def _wrn50_2(spec: SubstituteSpec | None, linear: bool, options: dict[str, Any]) -> nn.Module:
    options = dict(options)
    pointwise = options.pop("substitute_1x1", True)
    if options:
        raise ValueError(f"wrn-50-2 takes only the option substitute_1x1, got {sorted(options)}")
    model = WRN50_2()
    if spec is not None:
        for layer in (model.net.layer1, model.net.layer2, model.net.layer3, model.net.layer4):
            for block in layer:
                c2 = block.conv2
                block.conv2 = separable_conv(spec, c2.in_channels, c2.out_channels, 3, c2.stride[0])
                if not pointwise:  # the ablation: bottleneck 1×1 convs and shortcuts stay dense
                    continue
                c1, c3 = block.conv1, block.conv3
                block.conv1 = pointwise_conv(spec, c1.in_channels, c1.out_channels)
                block.conv3 = pointwise_conv(spec, c3.in_channels, c3.out_channels)
                if block.downsample is not None:
                    d = block.downsample[0]
                    block.downsample[0] = pointwise_conv(spec, d.in_channels, d.out_channels, d.stride[0])
    if linear:
        model.net.fc = _linear(spec, model.net.fc)
    return model


# ----------------------------------------------------------------------------------------------------------
# The registry and its entry points

NETWORKS: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        NetworkSpec("wrn-28-10", "cifar10", (3, 32, 32), 10, _cifar_wrn("wrn-28-10"), "WRN-28-10 (§5.3.1)"),
        NetworkSpec(
            "wrn-40-2", "cifar10", (3, 32, 32), 10, _cifar_wrn("wrn-40-2"), "WRN-40-2 (SECL, Table 1)"
        ),
        NetworkSpec(
            "darts",
            "cifar10",
            (3, 32, 32),
            10,
            _darts,
            "DARTS-V2, 36 channels, 20 cells (§5.3.1)",
            test_options={"auxiliary": False},
        ),
        NetworkSpec("wrn-50-2", "imagenet", (3, 224, 224), 1000, _wrn50_2, "WRN-50-2 (torchvision; §5.3.1)"),
    )
}
"""The chapter-5 networks by name."""


def _network(name: str) -> NetworkSpec:
    key = str(name).strip().lower()
    if key not in NETWORKS:
        raise ValueError(f"unknown chapter-5 network {name!r}; valid: {', '.join(NETWORKS)}")
    return NETWORKS[key]


def build_network(
    name: str,
    substitute: str | SubstituteSpec | None = None,
    setting: float | None = None,
    *,
    linear: bool = False,
    shufflenet_bottleneck: str = "out",
    substitute_options: dict[str, Any] | None = None,
    **options: Any,
) -> nn.Module:
    """The network ``name`` with its convolutions made separable and substituted (module docstring).

    ``substitute_options`` go to every layer's substitute (e.g. ``{"count_cheaper": True}`` for
    ACDC, ``{"fast_path": True}``); ``options`` go to the network (DARTS: ``auxiliary``,
    ``drop_path_prob``, ``channels``, ``layers``; WRN-50-2: ``substitute_1x1=False`` keeps the
    bottleneck 1×1 convs and shortcuts dense, the ablation that shows Table 5.1 substituted them).
    Every model's forward returns ``(logits, [group outputs])``.
    """
    network = _network(name)
    spec = substitute_spec(
        substitute,
        setting,
        shufflenet_bottleneck=shufflenet_bottleneck,
        substitute_options=substitute_options,
    )
    return network.builder(spec, linear, options)


def count_network(
    name: str,
    substitute: str | SubstituteSpec | None = None,
    setting: float | None = None,
    *,
    linear: bool = False,
    device: str | torch.device = "meta",
    **options: Any,
):
    """Test-time :class:`~thesislib.counting.Counts` of :func:`build_network`'s model (batch size 1).

    The network is built as at test time (DARTS without its auxiliary head, §5.3.1), on ``device``
    (default ``meta``: shapes only, no weights; counts are identical to a real device's, tested).
    """
    from thesislib.counting import count

    network = _network(name)
    with torch.device(device):
        model = build_network(name, substitute, setting, linear=linear, **{**network.test_options, **options})
    return count(model, network.input_shape)


@dataclass(frozen=True)
class _RecordingSpec(NetworkSubstitute):
    """A spec whose ``build`` records ``(in, out, kwargs)`` and returns a parameter-free placeholder.

    Building a network with it gives the network's parameters outside its substitutes and the list
    of substitutes it asks for, so :func:`network_counter` counts any tuning without rebuilding.
    """

    calls: list = field(default_factory=list, compare=False, hash=False)

    def build(self, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
        kwargs = self.layer_kwargs(in_channels, out_channels, kwargs)
        self.calls.append((in_channels, out_channels, tuple(sorted(kwargs.items()))))
        return _Placeholder(in_channels, out_channels)


class _Placeholder(nn.Module):
    """Stands in for a substitute while a network's skeleton is recorded (never run)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - never called
        raise RuntimeError("a recording placeholder cannot be run")


def network_counter(
    name: str, *, linear: bool = False, shufflenet_bottleneck: str = "out", **options: Any
) -> Callable[[str, float], int]:
    """``count(method, tuning) -> test-time parameters`` of network ``name``, for the budget solver.

    Equal to counting :func:`build_network`'s model (tested), but fast: the network is built once
    per method on the ``meta`` device with its substitutes recorded; each tuning then builds only
    the distinct substitute layers (also on ``meta``). Counters are shared per configuration, so
    repeated solves (Table 5.1, the budget grids) reuse each other's layers.
    """
    network = _network(name)
    key = (network.name, bool(linear), shufflenet_bottleneck, tuple(sorted(options.items())))
    try:
        return _COUNTERS[key]
    except TypeError:  # unhashable options: an unshared counter
        return _new_counter(network, linear, shufflenet_bottleneck, options)
    except KeyError:
        _COUNTERS[key] = _new_counter(network, linear, shufflenet_bottleneck, options)
        return _COUNTERS[key]


_COUNTERS: dict[tuple, Callable[[str, float], int]] = {}
#: parameters of one substitute layer by ``(method, (in, out, kwargs), tuning)``, shared by all counters
_LAYER_PARAMETERS: dict[tuple, int] = {}


def _new_counter(
    network: NetworkSpec, linear: bool, shufflenet_bottleneck: str, options: dict[str, Any]
) -> Callable[[str, float], int]:
    test = {**network.test_options, **options}
    skeletons: dict[str, tuple[int, Counter]] = {}
    layers = _LAYER_PARAMETERS

    def layer_parameters(method: str, call: tuple, tuning: float) -> int:
        key = (method, call, float(tuning))
        if key not in layers:
            in_channels, out_channels, kwargs = call
            with torch.device("meta"):
                if method == "conv1x1":
                    module: nn.Module = DensePointwise(in_channels, out_channels)
                else:
                    module = SUBSTITUTES[method].from_tuning(
                        in_channels, out_channels, tuning, **dict(kwargs)
                    )
            layers[key] = sum(p.numel() for p in module.parameters())
        return layers[key]

    def count(method: str, tuning: float) -> int:
        method = str(method).strip().lower()
        if method not in skeletons:
            recorder = _RecordingSpec(method, None if method == "conv1x1" else 1.0, shufflenet_bottleneck)
            with torch.device("meta"):
                model = network.builder(recorder, linear, test)
            skeletons[method] = (sum(p.numel() for p in model.parameters()), Counter(recorder.calls))
        base, calls = skeletons[method]
        return base + sum(n * layer_parameters(method, call, tuning) for call, n in calls.items())

    return count


def solve_setting(
    name: str,
    substitute: str,
    params_budget: float | str,
    *,
    linear: bool = False,
    shufflenet_bottleneck: str = "out",
    iterations: int = 24,
    **options: Any,
):
    """The :class:`~thesislib.compressed.budget.BudgetHit` of ``substitute`` nearest ``params_budget``.

    ``params_budget`` may be a number or a string with a K/M/G suffix (``"4.35M"``). Continuous
    tunings are bisected ``iterations`` times on the normalised range (2⁻²⁴ is far finer than one
    parameter); integer ones are searched exhaustively.
    """
    from thesislib.compressed.budget import solve_budget

    method = str(substitute).strip().lower()
    SubstituteSpec(method, 1.0)  # a clear error for an unknown method
    if method == "conv1x1":
        raise ValueError("'conv1x1' has no tuning parameter to solve for; pick a substitute method")
    counter = network_counter(name, linear=linear, shufflenet_bottleneck=shufflenet_bottleneck, **options)
    return solve_budget(counter, method, parse_count(params_budget), iterations=iterations)


_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_count(text: float | int | str) -> int:
    """A parameter count from ``1200000``, ``"1.2M"``, ``"600k"`` or ``"2.38e6"`` (K/M/G suffixes)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", str(text))
        if not match:
            raise ValueError(
                f"cannot read a parameter count from {text!r}; use e.g. 600000, 600K, 1.2M or 2.38e6"
            )
        value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"a parameter count must be a positive number, got {text!r}")
    return round(value)


def count_record(
    name: str,
    substitute: str | None = None,
    setting: float | None = None,
    *,
    params_budget: float | str | None = None,
    linear: bool = False,
    rows: bool = False,
) -> dict[str, Any]:
    """The JSON-able record ``thesislib count NAME --substitute ...`` prints (chapter 4's keys and more).

    With ``params_budget`` the setting is solved for (:func:`solve_setting`) and the hit is reported;
    ``rows=True`` adds one row per counted module.
    """
    network = _network(name)
    hit = None
    if params_budget is not None:
        if substitute is None:
            raise ValueError(
                "--params-budget needs --substitute METHOD (the method whose setting is solved for)"
            )
        if setting is not None:
            raise ValueError("give either --setting or --params-budget, not both")
        hit = solve_setting(name, substitute, params_budget, linear=linear)
        setting = hit.tuning
    counts = count_network(name, substitute, setting, linear=linear)
    spec = substitute_spec(substitute, setting)
    record: dict[str, Any] = {
        "model": network.name,
        "block": "standard" if spec is None else f"separable[{spec}]",
        "num_classes": network.num_classes,
        "substitute": None if spec is None else spec.method,
        "setting": None if spec is None else spec.tuning,
        "linear": linear,
        **counts.to_dict(),
    }
    if rows:
        record["rows"] = counts.frame().to_dict(orient="records")
    if hit is not None:
        record["params_budget"] = hit.target
        record["budget_hit"] = {
            "tuning": hit.tuning,
            "normalised": hit.normalised,
            "parameters": hit.parameters,
            "relative_error": hit.relative_error,
            "supported": hit.supported,
        }
    return record


def format_record(record: dict[str, Any]) -> str:
    """The text form of :func:`count_record` (what ``thesislib count`` prints without ``--json``)."""
    shape = "x".join(map(str, record["input_shape"]))
    lines = [f"{record['model']} {record['block']}{' +Linear' if record['linear'] else ''}, input {shape}"]
    if "budget_hit" in record:
        hit = record["budget_hit"]
        support = "" if hit["supported"] else " (outside the method's tuning range)"
        lines.append(
            f"budget      {record['params_budget']:>15,}  -> setting {hit['tuning']:.6g} "
            f"({hit['relative_error']:+.2%}){support}"
        )
    lines.append(f"parameters  {record['parameters']:>15,}  ({record['parameters'] / 1e6:,.3f}M)")
    lines.append(f"mult-adds   {record['mult_adds']:>15,}  ({record['mult_adds'] / 1e9:,.3f}G)")
    lines.extend(f"  {kind:<10}{ops:>15,}" for kind, ops in record["by_kind"].items())
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# The thesis' tables, recomputed (for the notebook and the golden tests)

#: Table 5.1's substituted WRN-50-2 rows: ``(method, budget, +Linear)``; budget "low" ≈ 4.35M, "high" ≈ 17.7M
TABLE51_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("shufflenet", "low", False),
    ("shufflenet", "high", False),
    ("shufflenet", "low", True),
    ("rf", "low", False),
    ("rf", "high", False),
    ("hashed", "low", False),
    ("hashed", "high", False),
    ("hashed", "low", True),
    ("tt", "low", False),
    ("tt", "high", False),
)

#: §5.2.4's budgets per CIFAR-10 network, as rows of ``data/reference/ch5_budgets.csv``
BUDGET_KEYS: dict[str, tuple[str, str, str]] = {
    "wrn-28-10": ("wrn28_10_budget_high", "wrn28_10_budget_mid", "wrn28_10_budget_low"),
    "darts": ("darts_budget_high", "darts_budget_mid", "darts_budget_low"),
}


@functools.cache
def _dense_counts(name: str) -> tuple[int, int]:
    counts = count_network(name)
    return counts.parameters, counts.mult_adds


def table51_key(method: str, budget: str, linear: bool) -> str:
    """The row prefix of Table 5.1's values in ``data/reference/ch5_table51.csv``."""
    return f"wrn50_2_{method}{'_linear' if linear else ''}_{budget}"


def reproduce_table51_row(method: str, budget: str, linear: bool = False) -> dict[str, Any]:
    """One Table 5.1 row recomputed: the tuning solved at the row's parameters, then both counts.

    Returns the thesis' and this library's parameters, mult-adds and compression percentages.
    """
    from thesislib import reference

    ref = reference.table("ch5_table51")["value"]
    key = table51_key(method, budget, linear)
    if f"{key}_params" not in ref.index:
        valid = ", ".join(table51_key(*row) for row in TABLE51_ROWS)
        raise ValueError(f"Table 5.1 has no row {key!r}; rows: {valid}")
    hit = solve_setting("wrn-50-2", method, ref[f"{key}_params"], linear=linear)
    counts = count_network("wrn-50-2", method, hit.tuning, linear=linear)
    dense_parameters, dense_mult_adds = _dense_counts("wrn-50-2")
    return {
        "row": key,
        "method": method,
        "linear": linear,
        "tuning": hit.tuning,
        "parameters": counts.parameters,
        "parameters_thesis": int(ref[f"{key}_params"]),
        "mult_adds": counts.mult_adds,
        "mult_adds_thesis": int(ref[f"{key}_madds"]),
        "size_pct": 100 * counts.parameters / dense_parameters,
        "size_pct_thesis": float(ref[f"{key}_size_pct"]),
        "mult_adds_pct": 100 * counts.mult_adds / dense_mult_adds,
        "mult_adds_pct_thesis": float(ref[f"{key}_madds_pct"]),
        "top1_error_thesis": float(ref[f"{key}_top1_error"]),
    }


def reproduce_table51():
    """Table 5.1's substituted rows recomputed beside the thesis' values (a pandas DataFrame)."""
    import pandas as pd

    frame = pd.DataFrame([reproduce_table51_row(*row) for row in TABLE51_ROWS])
    frame["parameters_rel_error"] = frame.parameters / frame.parameters_thesis - 1
    frame["mult_adds_rel_error"] = frame.mult_adds / frame.mult_adds_thesis - 1
    return frame


def support_budgets(name: str, methods: list[str] | None = None, points: int = 17) -> list[int]:
    """§5.2.4's three budgets recomputed for a network, as the thesis chose them (Fig. 5.5): the top and
    bottom of the common support of every method's tuning curve
    (:func:`~thesislib.compressed.budget.common_support`: the largest linear ShuffleNet network, at
    1 group, and the smallest RF one, at rank scale 0.03) and their log-midpoint."""
    from thesislib.compressed.budget import budgets_in_support, common_support, tuning_curves

    low, high = common_support(tuning_curves(network_counter(name), methods, points))
    return budgets_in_support(low, high, 3)


def budget_grid(
    name: str, budgets: list[float] | None = None, methods: list[str] | None = None, iterations: int = 24
):
    """Every method's closest setting to each budget of network ``name`` (§5.2.4) as a DataFrame.

    ``budgets`` default to the thesis' (``data/reference/ch5_budgets.csv``); ``methods`` to all six.
    Columns: ``budget, method, tuning, normalised, parameters, relative_error, supported``.
    """
    import pandas as pd

    from thesislib import reference
    from thesislib.compressed.base import SUBSTITUTES
    from thesislib.compressed.budget import solve_budget

    if budgets is None:
        if name not in BUDGET_KEYS:
            raise ValueError(
                f"the thesis gives budgets for {', '.join(BUDGET_KEYS)}; pass budgets= for {name!r}"
            )
        ref = reference.table("ch5_budgets")["value"]
        budgets = [float(ref[key]) for key in BUDGET_KEYS[name]]
    count = network_counter(name)
    rows = []
    for budget in budgets:
        for method in methods or sorted(SUBSTITUTES):
            hit = solve_budget(count, method, parse_count(budget), iterations=iterations)
            rows.append({"budget": hit.target, **{k: v for k, v in hit.as_dict().items() if k != "target"}})
    return pd.DataFrame(rows)
