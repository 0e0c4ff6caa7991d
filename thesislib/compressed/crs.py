"""Compression-ratio-scaled (CRS) weight decay (§5.2.5, Eqs. 5.14–5.18).

Preserving the total prior variance of a weight matrix when its ``N`` dense parameters are replaced
by ``M`` compressed ones gives ``d_c = M·d / N`` (Eq. 5.18): each compressed layer's weight decay is
the base weight decay times its compression ratio ``M/N``. Implemented with optimiser parameter
groups; ``enabled=False`` gives the ablation of §5.3.5 (every parameter at the base weight decay).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from thesislib.compressed.base import Substitute

__all__ = ["crs_factor", "crs_param_groups"]


def crs_factor(module: Substitute) -> float:
    """``M / N``: compressed parameters over the dense parameters they replace (Eq. 5.18)."""
    return module.parameter_count / module.dense_parameter_count


def crs_param_groups(model: nn.Module, weight_decay: float, enabled: bool = True) -> list[dict[str, Any]]:
    """Optimiser parameter groups: one per compressed layer at ``weight_decay × M/N``, one for the rest.

    Each group carries ``name`` and ``crs_factor`` keys (ignored by optimisers, useful for logging).
    With ``enabled=False`` the compressed layers keep their own groups but at the base weight decay.
    """
    groups: list[dict[str, Any]] = []
    claimed: set[int] = set()
    for name, module in model.named_modules():
        if not isinstance(module, Substitute) or module.method == "conv1x1":
            continue
        params = [p for p in module.parameters() if id(p) not in claimed]
        if not params:
            continue
        claimed.update(id(p) for p in params)
        factor = crs_factor(module) if enabled else 1.0
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
