"""The layers chapter 5 builds its networks from (§5.2.2–5.2.4, §5.3.1), and its tables recomputed.

The networks themselves are built by the one model registry, :func:`thesislib.models.build_model`::

    build_model("wrn-28-10", substitute="conv1x1")                     # separable, dense pointwise convs
    build_model("wrn-50-2", substitute="shufflenet", setting=7, linear=True)  # Table 5.1's "ShuffleNet (+Linear)"
    count_model("darts", substitute="tt", setting=0.3)                  # test-time Counts (aux head excluded)
    solve_setting("wrn-50-2", "rf", "4.35M")                            # the setting that lands on a budget

This module holds what those networks are made of: :func:`substitute_spec` (a substitute with the
thesis code's layer conventions, :class:`NetworkSubstitute`), :func:`pointwise_conv` (with
:class:`~thesislib.compressed.separable.SeparableConv2d`), the "+Linear" layer (:class:`SubstitutedLinear`), torchvision's WRN-50-2 with its
group outputs (:class:`WRN50_2`, :func:`substitute_convs`), and Table 5.1 / §5.2.4's budgets recomputed.

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
:func:`~thesislib.models.count_model` counts on PyTorch's ``meta`` device (shapes only), so even WRN-50-2 is counted
in well under a second without allocating its weights.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from thesislib.compressed.base import (
    SUBSTITUTES,
    Substitute,
    SubstituteSpec,
    parse_substitute,
)
from thesislib.compressed.darts import Subsample
from thesislib.compressed.separable import SeparableConv2d

__all__ = [
    "BUDGET_KEYS",
    "TABLE51_ROWS",
    "WRN50_2",
    "NetworkSubstitute",
    "SubstitutedLinear",
    "budget_grid",
    "pointwise_conv",
    "reproduce_table51",
    "reproduce_table51_row",
    "substitute_convs",
    "substitute_spec",
    "substituted_conv",
    "substituted_linear",
    "support_budgets",
    "table51_key",
    "torchvision_resnet_groups",
]

BOTTLENECKS = ("out", "in")


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
        keyword = self.kind.bottleneck_keyword
        if keyword and self.shufflenet_bottleneck == "out" and keyword not in kwargs:
            return {**kwargs, keyword: max(1, out_channels // 4)}
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
    substitute_options: Mapping[str, Any] | None = None,
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
    tunable = SubstituteSpec(method, 1.0).tunable  # a clear error for an unknown method first
    if not tunable:
        tuning = None
    elif tuning is None:
        raise ValueError(f"substitute {method!r} needs a setting (its tuning value) or a parameter budget")
    options = tuple(sorted((substitute_options or {}).items()))
    if options and not tunable:
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


def substituted_linear(spec: SubstituteSpec | None, old: nn.Linear) -> SubstitutedLinear:
    """Table 5.1's "+Linear": ``old``'s weight replaced by ``spec``'s substitute (the bias stays dense)."""
    if spec is None or not spec.tunable:
        raise ValueError('linear=True ("+Linear") needs a substitute method for the final linear layer')
    return SubstitutedLinear(spec.build(old.in_features, old.out_features), bias=old.bias is not None)


def pointwise_conv(spec: SubstituteSpec, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """A (possibly strided) 1×1 conv from ``spec``: subsample, then the substitute.

    The linear ShuffleNet unit has its own depthwise conv, which takes the stride; replacing a 1×1
    conv it is 1×1 (the thesis' code).
    """
    if spec.whole_conv:
        return spec.build(in_channels, out_channels, stride=stride, kernel_size=1)
    module = spec.build(in_channels, out_channels)
    return module if stride == 1 else nn.Sequential(Subsample(stride), module)


def substituted_conv(
    spec: SubstituteSpec,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    dilation: int = 1,
) -> nn.Module:
    """Any conv of a chapter-5 network substituted: a 1×1 conv is :func:`pointwise_conv`, a k×k conv is made
    separable (:class:`~thesislib.compressed.separable.SeparableConv2d`, §5.2.2)."""
    if kernel_size == 1 and dilation == 1:
        return pointwise_conv(spec, in_channels, out_channels, stride)
    return SeparableConv2d(in_channels, out_channels, spec, kernel_size, stride, dilation=dilation)


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


def substitute_convs(model: WRN50_2, spec: SubstituteSpec, pointwise: bool = True) -> None:
    """Substitute WRN-50-2's convolutions in place (§5.3.1): every bottleneck's 3×3 conv made separable and,
    with ``pointwise`` (the thesis' code, needed for Table 5.1), both 1×1 convs and the 1×1 projection
    shortcuts; ``pointwise=False`` is the ablation that keeps them dense."""
    for layer in (model.net.layer1, model.net.layer2, model.net.layer3, model.net.layer4):
        for block in layer:
            c2 = block.conv2
            block.conv2 = SeparableConv2d(c2.in_channels, c2.out_channels, spec, 3, c2.stride[0])
            if not pointwise:
                continue
            c1, c3 = block.conv1, block.conv3
            block.conv1 = pointwise_conv(spec, c1.in_channels, c1.out_channels)
            block.conv3 = pointwise_conv(spec, c3.in_channels, c3.out_channels)
            if block.downsample is not None:
                d = block.downsample[0]
                block.downsample[0] = pointwise_conv(spec, d.in_channels, d.out_channels, d.stride[0])


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
    from thesislib.models import count_model

    counts = count_model(name)
    return counts.parameters, counts.mult_adds


def table51_key(method: str, budget: str, linear: bool) -> str:
    """The row prefix of Table 5.1's values in ``data/reference/ch5_table51.csv``."""
    return f"wrn50_2_{method}{'_linear' if linear else ''}_{budget}"


def reproduce_table51_row(method: str, budget: str, linear: bool = False) -> dict[str, Any]:
    """One Table 5.1 row recomputed: the tuning solved at the row's parameters, then both counts.

    Returns the thesis' and this library's parameters, mult-adds and compression percentages.
    """
    from thesislib import reference
    from thesislib.models import count_model, solve_setting

    ref = reference.table("ch5_table51")["value"]
    key = table51_key(method, budget, linear)
    if f"{key}_params" not in ref.index:
        valid = ", ".join(table51_key(*row) for row in TABLE51_ROWS)
        raise ValueError(f"Table 5.1 has no row {key!r}; rows: {valid}")
    hit = solve_setting("wrn-50-2", method, ref[f"{key}_params"], linear=linear)
    counts = count_model("wrn-50-2", substitute=method, setting=hit.tuning, linear=linear)
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
    from thesislib.models import parameter_counter

    low, high = common_support(tuning_curves(parameter_counter(name), methods, points))
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
    from thesislib.compressed.budget import parse_count, solve_budget
    from thesislib.models import parameter_counter

    if budgets is None:
        if name not in BUDGET_KEYS:
            raise ValueError(
                f"the thesis gives budgets for {', '.join(BUDGET_KEYS)}; pass budgets= for {name!r}"
            )
        ref = reference.table("ch5_budgets")["value"]
        budgets = [float(ref[key]) for key in BUDGET_KEYS[name]]
    count = parameter_counter(name)
    rows = []
    for budget in budgets:
        for method in methods or sorted(SUBSTITUTES):
            hit = solve_budget(count, method, parse_count(budget), iterations=iterations)
            rows.append({"budget": hit.target, **{k: v for k, v in hit.as_dict().items() if k != "target"}})
    return pd.DataFrame(rows)


def smallest_budget_tunings(grid) -> dict[str, float]:
    """Each method's tuning at the smallest budget of a :func:`budget_grid`, where the method reaches it.

    The setting the thesis gives every method a place at (Fig. 5.7 shows ACDC at WRN-28-10's smallest
    budget only, §5.2.4); methods whose range stops short of that budget are left out.
    """
    if grid.empty:
        raise ValueError("the budget grid is empty: no budgets were solved")
    smallest = grid[grid["budget"] == grid["budget"].min()]
    return {row.method: float(row.tuning) for row in smallest.itertuples() if row.supported}
