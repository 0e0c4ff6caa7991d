"""Compression-ratio-scaled (CRS) weight decay (§5.2.5, Eqs. 5.14–5.18).

Preserving the total prior variance of the weights when ``N`` dense parameters are replaced by ``M``
compressed ones gives ``d_c = M·d / N`` (Eq. 5.18). Which ``M/N``? The code behind the thesis' numbers
(BayesWatch/deficient-efficient) uses **one network-wide ratio**: the parameters of the compressed
network over those of the same network with full ``k×k`` convolutions
(:func:`network_compression_ratio`), applied to every compressed layer. That is the default here
(``scope="network"``); ``scope="layer"`` keeps each layer's own ``M/N`` (:func:`crs_factor`), which for
small networks can differ from the network-wide ratio several-fold (and exceed 1 for ACDC at large
budgets). Implemented with optimiser parameter groups; ``enabled=False`` gives the ablation of §5.3.5
(every parameter at the base weight decay).
"""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from thesislib.compressed.base import Substitute

__all__ = ["CRS_SCOPES", "crs_factor", "crs_param_groups", "network_compression_ratio"]

CRS_SCOPES = ("network", "layer")
CrsScope = Literal["network", "layer"]


def crs_factor(module: Substitute) -> float:
    """``M / N`` of one layer: its compressed parameters over the dense parameters they replace."""
    return module.parameter_count / module.dense_parameter_count


def network_compression_ratio(model: nn.Module) -> float:
    """Parameters of ``model`` over those of the same network with full convolutions (the thesis code's ratio).

    Every :class:`~thesislib.compressed.separable.SeparableConv2d` (depthwise + substituted pointwise, or a
    linear ShuffleNet unit) is counted as the full ``k×k`` convolution it replaces (``in·out·k²``); every
    other parameter counts the same in both networks.
    """
    from thesislib.compressed.separable import SeparableConv2d

    total = sum(p.numel() for p in model.parameters())
    full = total
    for module in model.modules():
        if isinstance(module, SeparableConv2d):
            full += module.full_parameter_count - sum(p.numel() for p in module.parameters())
    if full <= 0:
        raise ValueError("the model has no parameters, so it has no compression ratio")
    return total / full


def crs_param_groups(
    model: nn.Module,
    weight_decay: float,
    enabled: bool = True,
    scope: CrsScope = "network",
    ratio: float | None = None,
) -> list[dict[str, Any]]:
    """Optimiser parameter groups: one per compressed layer at ``weight_decay × factor``, one for the rest.

    ``factor`` is the network-wide ratio (``scope="network"``, default; ``ratio`` overrides the one
    :func:`network_compression_ratio` measures) or each layer's ``M/N`` (``scope="layer"``). Each group
    carries ``name`` and ``crs_factor`` keys (ignored by optimisers, useful for logging). With
    ``enabled=False`` the compressed layers keep their own groups but at the base weight decay.
    """
    if scope not in CRS_SCOPES:
        raise ValueError(f"unknown CRS scope {scope!r}; valid scopes: {', '.join(CRS_SCOPES)}")
    if ratio is not None and not ratio > 0:
        raise ValueError(f"the compression ratio must be positive, got {ratio}")
    network_ratio = None
    if enabled and scope == "network":
        network_ratio = network_compression_ratio(model) if ratio is None else float(ratio)
    groups: list[dict[str, Any]] = []
    claimed: set[int] = set()
    for name, module in model.named_modules():
        if not isinstance(module, Substitute) or not module.tunable:
            continue
        params = [p for p in module.parameters() if id(p) not in claimed]
        if not params:
            continue
        claimed.update(id(p) for p in params)
        if not enabled:
            factor = 1.0
        elif network_ratio is not None:
            factor = network_ratio
        else:
            factor = crs_factor(module)
        groups.append(
            {
                "params": params,
                "weight_decay": weight_decay * factor,
                "name": name or "<root>",
                "crs_factor": factor,
            }
        )
    rest = [p for p in model.parameters() if id(p) not in claimed]
    if rest:
        groups.append({"params": rest, "weight_decay": weight_decay, "name": "<dense>", "crs_factor": 1.0})
    return groups
