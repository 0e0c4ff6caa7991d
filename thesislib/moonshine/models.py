"""One registry for the chapter-4 networks: a model is a name plus a block (timm style).

::

    build_model("wrn-40-2")                           # the CIFAR teacher of Table 4.3 (S blocks)
    build_model("wrn-40-2", block="G(N/4)")           # a cheap-block student
    build_model("wrn-16-1", num_classes=100)          # a shrunk CIFAR-100 student
    build_model("resnet34", block="G(4)")             # Res34-G(4) of Table 4.4 (post-activation)
    build_model("resnet18-0.5")                       # Res18-0.5: last three groups halved
    build_model("erfnet", block="G(N)")               # ERFNet-G(N) of Table 4.5
    build_model("wrn-28-10", block=my_factory)        # any (in, out, stride) -> nn.Module block

Names: ``wrn-D-K`` (any depth D = 6n + 4 and width K, e.g. ``wrn-40-2``), ``resnet18``/``resnet34``
optionally with a width for the last three groups (``resnet18-0.5``), and ``erfnet``.
:func:`model_names` lists the ones the thesis uses. Every model's ``forward(x)`` returns
``(logits, [group outputs])``: conv2/conv3/conv4 for a WRN (Eq. 4.2), the four layers of a ResNet,
layers 7, 12, 16, 19, 22 of ERFNet — the attention-transfer points.

``block`` is a spec string (:mod:`thesislib.moonshine.blocks` grammar) or a factory
``(in_channels, out_channels, stride) -> nn.Module`` building a whole residual block (e.g. a
:class:`~thesislib.moonshine.blocks.PreActBlock` around chapter-5 substitute convs); factories are
used by the WRNs and ResNets (ERFNet's blocks are dilated, so it takes a G(g) spec only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from torch import nn

from thesislib.moonshine.blocks import BLOCK_FORMS, BlockSpec, parse_block
from thesislib.moonshine.erfnet import ERFNet
from thesislib.moonshine.resnet import RESNET_LAYERS, ResNet
from thesislib.moonshine.wrn import BlockFactory, WideResNet

__all__ = ["build_model", "default_input_shape", "model_names"]

_NAMES = (
    "wrn-40-2",
    "wrn-40-1",
    "wrn-16-2",
    "wrn-16-1",
    "wrn-28-10",
    "resnet18",
    "resnet34",
    "resnet18-0.5",
    "erfnet",
)
_WRN = re.compile(r"wrn-(\d+)-(\d+(?:\.\d+)?)")
_RESNET = re.compile(r"resnet(\d+)(?:-(\d+(?:\.\d+)?))?")
_OPTIONS = {
    "wrn": ("kernel_size", "in_channels"),
    "resnet": ("kernel_size", "in_channels"),
    "erfnet": ("in_channels",),
}
_DEFAULT_CLASSES = {"wrn": 10, "resnet": 1000, "erfnet": 20}
#: Input shapes at which the thesis counts (Tables 4.3, 4.4 and, for ERFNet, the size reproducing Table 4.5).
_DEFAULT_INPUT = {"wrn": (3, 32, 32), "resnet": (3, 224, 224), "erfnet": (3, 256, 256)}


def model_names() -> list[str]:
    """The registered model names the thesis uses (``wrn-D-K`` and ``resnetD-W`` accept other sizes too)."""
    return list(_NAMES)


def _family(name: str) -> tuple[str, re.Match[str] | None]:
    key = name.strip().lower()
    for family, pattern in (("wrn", _WRN), ("resnet", _RESNET)):
        match = pattern.fullmatch(key)
        if match:
            return family, match
    if key == "erfnet":
        return "erfnet", None
    raise ValueError(
        f"unknown model {name!r}; known: {', '.join(_NAMES)} (also wrn-D-K for any D = 6n + 4, "
        f"resnet18/resnet34 with an optional width such as resnet34-0.5)"
    )


def default_input_shape(name: str) -> tuple[int, int, int]:
    """The input (C, H, W) at which the thesis counts model ``name``: 32×32 CIFAR, 224×224 ImageNet,
    256×256 for ERFNet (the size that reproduces Table 4.5)."""
    return _DEFAULT_INPUT[_family(name)[0]]


def build_model(
    name: str,
    block: str | BlockSpec | Callable[[int, int, int], nn.Module] = "S",
    num_classes: int | None = None,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` with ``block`` (a Table 4.1 spec or a block factory); see the module docstring.

    ``num_classes`` defaults to 10 (WRN, CIFAR-10), 1000 (ResNet) and 20 (ERFNet, Cityscapes + void).
    Options: ``kernel_size`` (k of the k×k convs, default 3; WRN and ResNet) and ``in_channels``.
    The model gets ``name`` and ``block_spec`` attributes (the canonical spec, or ``"custom"``).
    """
    family, match = _family(name)
    unknown = sorted(set(options) - set(_OPTIONS[family]))
    if unknown:
        raise ValueError(f"{name} takes options {', '.join(_OPTIONS[family])}; not {', '.join(unknown)}")
    classes = _DEFAULT_CLASSES[family] if num_classes is None else int(num_classes)
    spec = None if callable(block) and not isinstance(block, BlockSpec) else parse_block(block)  # type: ignore[arg-type]
    kernel_size = int(options.get("kernel_size", 3))
    in_channels = int(options.get("in_channels", 3))
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be a positive integer, not {kernel_size}")

    model: nn.Module
    if family == "wrn":
        assert match is not None
        factory: BlockFactory = (
            (lambda i, o, s: spec.block(i, o, s, kernel_size)) if spec is not None else block  # type: ignore[assignment]
        )
        model = WideResNet(int(match[1]), float(match[2]), factory, classes, in_channels)
    elif family == "resnet":
        assert match is not None
        depth = int(match[1])
        if depth not in RESNET_LAYERS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_LAYERS)}, not {depth}")
        width = float(match[2]) if match[2] else 1.0
        factory = (
            (lambda i, o, s: spec.post_block(i, o, s, kernel_size)) if spec is not None else block  # type: ignore[assignment]
        )
        model = ResNet(RESNET_LAYERS[depth], factory, classes, width, in_channels)
    else:
        if spec is None:
            raise ValueError("erfnet takes a block spec ('S' or a G(g) spec such as 'G(N)'), not a callable")
        if spec.kind not in ("S", "G"):
            raise ValueError(
                f"erfnet blocks are 'S' (the original non-bottleneck-1D) or G(g), not {spec}; "
                f"block forms: {'; '.join(BLOCK_FORMS)}"
            )
        model = ERFNet(classes, None if spec.kind == "S" else spec, in_channels)
    model.name = name.strip().lower()  # type: ignore[assignment]
    model.block_spec = str(spec) if spec is not None else "custom"  # type: ignore[assignment]
    return model
