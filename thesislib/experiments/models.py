"""The one adapter from an experiment's :class:`~thesislib.experiments.spec.ModelRef` to the existing builders.

The one model registry, :func:`thesislib.models.build_model`, builds every network of chapters 4
and 5; this module routes to it (solving a substitute's setting for a parameter budget once) and
wraps torchvision's published ImageNet networks as teachers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from thesislib.experiments.spec import ModelRef

__all__ = ["PretrainedResNet", "build", "resolve_setting"]


class PretrainedResNet(nn.Module):
    """A torchvision ResNet (``resnet18``/``resnet34``/``wide_resnet50_2``) returning ``(logits, groups)``.

    ``pretrained=True`` loads torchvision's published ImageNet weights (``weights="DEFAULT"``; torchvision
    fetches them into its cache once): the teachers of Table 4.4 (§4.5.1) and Table 5.1 (§5.3.1).
    """

    def __init__(self, name: str, pretrained: bool, num_classes: int = 1000) -> None:
        super().__init__()
        import torchvision.models as models

        if name not in ("resnet18", "resnet34", "wide_resnet50_2"):
            raise ValueError(
                f"unknown pretrained network {name!r}; valid: resnet18, resnet34, wide_resnet50_2"
            )
        builder = getattr(models, name)
        self.net = (
            builder(weights="DEFAULT") if pretrained else builder(weights=None, num_classes=num_classes)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        from thesislib.compressed.networks import torchvision_resnet_groups

        return torchvision_resnet_groups(self.net, x)


_SETTINGS: dict[tuple[Any, ...], float] = {}


def resolve_setting(ref: ModelRef) -> float | None:
    """The substitute's tuning: ``ref.setting``, or solved for ``ref.budget`` (§5.2.4; memoised)."""
    if ref.substitute is None or ref.setting is not None:
        return ref.setting
    key = (ref.name, ref.substitute, ref.budget, ref.linear)
    if key not in _SETTINGS:
        from thesislib.models import solve_setting

        assert ref.budget is not None
        _SETTINGS[key] = float(solve_setting(ref.name, ref.substitute, ref.budget, linear=ref.linear).tuning)
    return _SETTINGS[key]


def build(ref: ModelRef, num_classes: int, *, pretrained: bool = True, **options: Any) -> nn.Module:
    """The network ``ref`` for ``num_classes`` classes; ``pretrained=False`` gives random weights (smoke).

    ``options`` go to the model registry's builder (e.g. DARTS' ``auxiliary``, ``drop_path_prob``).
    """
    from thesislib.compressed import substitute_class
    from thesislib.models import build_model

    if ref.kind == "moonshine":
        return build_model(ref.name, ref.block, num_classes=num_classes)
    if ref.kind == "pretrained":
        return PretrainedResNet(ref.name, pretrained, num_classes)
    inference = substitute_class(ref.substitute).inference_options if ref.substitute else None
    return build_model(
        ref.name,
        substitute=ref.substitute,
        setting=resolve_setting(ref),
        num_classes=num_classes,
        linear=ref.linear,
        substitute_options=inference,
        **options,
    )
