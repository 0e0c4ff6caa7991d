"""One model registry for the whole thesis: every network of chapters 4 and 5, any block, any substitute.

::

    build_model("wrn-40-2")                                   # the CIFAR teacher of Table 4.3 (S blocks)
    build_model("wrn-40-2", block="G(N/4)")                   # a cheap-block student (Table 4.1)
    build_model("wrn-16-1", num_classes=100)                  # a shrunk CIFAR-100 student
    build_model("resnet34", block="G(4)")                     # Res34-G(4) of Table 4.4 (post-activation)
    build_model("erfnet", block="G(N)")                       # ERFNet-G(N) of Table 4.5
    build_model("wrn-28-10", substitute="tt:0.3")             # chapter 5: separable convs, TT pointwise
    build_model("wrn-50-2", substitute=SubstituteSpec("shufflenet", 7), linear=True)  # Table 5.1 row
    build_model("wrn-28-10", block="G(4)", substitute="acdc:2")  # a G(4) block whose 1×1 convs are ACDC
    build_model("darts", num_classes=100)                     # DARTS-V2 for CIFAR-100

A model is a *name* (one of the registered families below, timm style: :func:`register_model`
adds one, :func:`model_names` lists the sizes the thesis uses), a *block* (a Table 4.1 spec, §4.3.2, or a
factory ``(in, out, stride) -> nn.Module``) and a *substitute* (a
:class:`~thesislib.compressed.base.SubstituteSpec`, i.e. method + setting, §5.2.3; the string
``"tt:0.3"`` is parsed once into one). How they compose:

=========== ==================== ========================================================================
block       substitute           what is built
=========== ==================== ========================================================================
S (default) none                 the standard network
S           any                  every k×k conv of the blocks separable, its pointwise part substituted (§5.2.2)
G, B, BG    none                 the cheap block of Table 4.1
G, B, BG    any                  the cheap block with its 1×1 convs substituted
S-2x2       any                  refused: the block has no 1×1 conv and is not separable
=========== ==================== ========================================================================

A family that cannot take a block or a substitute refuses it with a ``ValueError`` that says why and
lists what is valid (:func:`model_family` shows each family's capabilities). Every model's
``forward(x)`` returns ``(logits, [group outputs])``, the attention-transfer points (Eq. 4.2), and
carries ``name``, ``block_spec``, ``substitute`` and ``num_classes`` attributes.

:func:`count_model` gives the test-time counts (§4.3.3: conv/linear multiply-accumulates and ReLU
ops, :mod:`thesislib.counting`) at the input size the thesis counts at; :func:`parameter_counter`
is the fast ``count(method, setting) -> parameters`` the budget solver (§5.2.4) uses, and
:func:`solve_setting` finds the setting that lands on a parameter budget.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # the chapter modules import this registry's users; import them lazily at build time
    from thesislib.compressed.base import SubstituteSpec
    from thesislib.compressed.budget import BudgetHit
    from thesislib.counting import Counts
    from thesislib.moonshine.blocks import BlockSpec

__all__ = [
    "ModelFamily",
    "ModelRequest",
    "build_model",
    "count_model",
    "default_input_shape",
    "families",
    "model_family",
    "model_names",
    "parameter_counter",
    "register_model",
    "solve_setting",
]

BlockFactory = Callable[[int, int, int], nn.Module]


@dataclass(frozen=True)
class ModelRequest:
    """What :func:`build_model` hands a family's builder, already parsed and checked against the family."""

    match: re.Match[str]
    block: BlockSpec | BlockFactory
    substitute: SubstituteSpec | None
    num_classes: int
    linear: bool
    options: dict[str, Any]

    @property
    def block_spec(self) -> BlockSpec | None:
        """The parsed Table 4.1 spec, or ``None`` for a custom block factory."""
        from thesislib.moonshine.blocks import BlockSpec

        return self.block if isinstance(self.block, BlockSpec) else None


Builder = Callable[[ModelRequest], nn.Module]


@dataclass(frozen=True)
class ModelFamily:
    """A registered family of networks: a name pattern, its data and what it can be built with."""

    name: str
    pattern: str
    builder: Builder = field(repr=False)
    examples: tuple[str, ...]
    dataset: str
    input_shape: tuple[int, int, int]
    num_classes: int
    description: str
    #: Table 4.1 block kinds the family takes (``()``: its own blocks only)
    block_kinds: tuple[str, ...] = ()
    #: ``False`` for families whose convolutions chapter 5 never substitutes
    takes_substitutes: bool = True
    #: ``True`` if the network ends in a linear classifier that ``linear=True`` can substitute
    has_linear: bool = True
    #: keyword options the builder accepts
    options: tuple[str, ...] = ()
    #: options that give the network as counted at test time (e.g. DARTS without its auxiliary head)
    test_options: dict[str, Any] = field(default_factory=dict)
    #: why the family refuses Table 4.1 blocks or substitutes (for the error message)
    refusal: str = ""

    def fullmatch(self, name: str) -> re.Match[str] | None:
        return re.fullmatch(self.pattern, name)


_FAMILIES: dict[str, ModelFamily] = {}


def register_model(
    name: str,
    pattern: str,
    *,
    examples: tuple[str, ...],
    dataset: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    description: str,
    block_kinds: tuple[str, ...] = (),
    takes_substitutes: bool = True,
    has_linear: bool = True,
    options: tuple[str, ...] = (),
    test_options: dict[str, Any] | None = None,
    refusal: str = "",
) -> Callable[[Builder], Builder]:
    """Register a family of networks (a decorator on its builder ``(ModelRequest) -> nn.Module``)."""

    def register(builder: Builder) -> Builder:
        if name in _FAMILIES:
            raise ValueError(f"a model family {name!r} is already registered")
        _FAMILIES[name] = ModelFamily(
            name,
            pattern,
            builder,
            examples,
            dataset,
            input_shape,
            num_classes,
            description,
            block_kinds,
            takes_substitutes,
            has_linear,
            options,
            dict(test_options or {}),
            refusal,
        )
        return builder

    return register


def families() -> Iterator[ModelFamily]:
    """The registered families, in registration order."""
    yield from _FAMILIES.values()


def model_names() -> list[str]:
    """The model names the thesis uses (``wrn-D-K`` and ``resnetD-W`` accept other sizes too)."""
    return [example for family in _FAMILIES.values() for example in family.examples]


def _patterns() -> str:
    return "; ".join(f"{family.name}: {', '.join(family.examples)}" for family in _FAMILIES.values())


def model_family(name: str) -> tuple[ModelFamily, re.Match[str]]:
    """The registered family of model ``name`` and the match of its pattern (``ValueError`` if none)."""
    key = str(name).strip().lower()
    for family in _FAMILIES.values():
        match = family.fullmatch(key)
        if match is not None:
            return family, match
    raise ValueError(
        f"unknown model {name!r}; known: {_patterns()} (wrn-D-K takes any D = 6n + 4 and width K; "
        "resnet18/resnet34 an optional width such as resnet34-0.5)"
    )


def default_input_shape(name: str) -> tuple[int, int, int]:
    """The input (C, H, W) at which the thesis counts model ``name``: 32×32 CIFAR, 224×224 ImageNet,
    256×256 for ERFNet (the size that reproduces Table 4.5)."""
    return model_family(name)[0].input_shape


def _substitute(
    substitute: str | SubstituteSpec | None,
    setting: float | None,
    shufflenet_bottleneck: str,
    substitute_options: Mapping[str, Any] | None,
) -> SubstituteSpec | None:
    from thesislib.compressed.networks import substitute_spec

    return substitute_spec(
        substitute,
        setting,
        shufflenet_bottleneck=shufflenet_bottleneck,
        substitute_options=substitute_options,
    )


def _request(
    family: ModelFamily,
    match: re.Match[str],
    block: str | BlockSpec | BlockFactory | None,
    substitute: SubstituteSpec | None,
    num_classes: int | None,
    linear: bool,
    options: dict[str, Any],
) -> ModelRequest:
    """Check what was asked against what ``family`` can build; every refusal says why and what is valid."""
    from thesislib.moonshine.blocks import BLOCK_FORMS, BlockSpec, parse_block

    name = match.group(0)
    unknown = sorted(set(options) - set(family.options))
    if unknown:
        valid = ", ".join(family.options) or "no options"
        raise ValueError(f"{name} takes {valid}; not {', '.join(unknown)}")
    custom = callable(block) and not isinstance(block, BlockSpec)
    spec = None if custom else parse_block("S" if block is None else block)  # type: ignore[arg-type]
    if spec is not None and spec.kind != "S" and spec.kind not in family.block_kinds:
        kinds = ", ".join(family.block_kinds) or "only its own"
        raise ValueError(
            f"{name} takes no block {spec}: {family.refusal or 'its blocks are not Table 4.1 blocks'} "
            f"(block kinds it takes: {kinds}; Table 4.1 forms: {'; '.join(BLOCK_FORMS)})"
        )
    if custom and "custom" not in family.block_kinds:
        raise ValueError(f"{name} takes a block spec string, not a block factory")
    if substitute is not None:
        if not family.takes_substitutes:
            raise ValueError(
                f"{name} takes no substitute: {family.refusal}; families that do: "
                + ", ".join(f.name for f in _FAMILIES.values() if f.takes_substitutes)
            )
        if custom:
            raise ValueError(
                "a substitute cannot be combined with a custom block factory; build it into the factory"
            )
        assert spec is not None
        if spec.kind != "S" and not spec.has_pointwise:
            raise ValueError(
                f"block {spec} has no 1×1 conv for substitute {substitute} to replace and is not separable; "
                "use S (separable convs, chapter 5) or G(g), B(b), BG(b,g) (their 1×1 convs substituted)"
            )
    if linear:
        if not family.has_linear:
            raise ValueError(f"{name} ends in no linear classifier, so linear=True (+Linear) does not apply")
        if substitute is None or not substitute.tunable:
            raise ValueError('linear=True ("+Linear") needs a substitute method for the final linear layer')
    classes = family.num_classes if num_classes is None else int(num_classes)
    if classes < 1:
        raise ValueError(f"num_classes must be a positive integer, not {num_classes}")
    return ModelRequest(
        match, spec if spec is not None else block, substitute, classes, bool(linear), options
    )  # type: ignore[arg-type]


def build_model(
    name: str,
    block: str | BlockSpec | BlockFactory | None = None,
    *,
    substitute: str | SubstituteSpec | None = None,
    setting: float | None = None,
    num_classes: int | None = None,
    linear: bool = False,
    shufflenet_bottleneck: str = "out",
    substitute_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` with ``block`` and ``substitute`` (the module docstring's table says how they compose).

    ``substitute`` is a :class:`~thesislib.compressed.base.SubstituteSpec`, a method name with its
    ``setting`` (``substitute="tt", setting=0.3``) or the text ``"tt:0.3"``; ``"conv1x1"`` gives plain
    separable convs. ``linear=True`` also substitutes the final linear layer (Table 5.1's "+Linear").
    ``shufflenet_bottleneck`` and ``substitute_options`` are passed to every substituted layer
    (:func:`~thesislib.compressed.networks.substitute_spec`); ``options`` go to the family's builder
    (:func:`model_family` lists them, e.g. ``kernel_size`` for WRN/ResNet, ``auxiliary`` for DARTS).
    """
    family, match = model_family(name)
    spec = _substitute(substitute, setting, shufflenet_bottleneck, substitute_options)
    request = _request(family, match, block, spec, num_classes, linear, options)
    model = family.builder(request)
    model.name = match.group(0)  # type: ignore[assignment]
    model.block_spec = str(request.block_spec) if request.block_spec is not None else "custom"  # type: ignore[assignment]
    model.substitute = None if spec is None else str(spec)  # type: ignore[assignment]
    model.num_classes = request.num_classes  # type: ignore[assignment]
    return model


def count_model(
    name: str,
    block: str | BlockSpec | None = None,
    *,
    substitute: str | SubstituteSpec | None = None,
    setting: float | None = None,
    num_classes: int | None = None,
    linear: bool = False,
    input_shape: tuple[int, int, int] | None = None,
    device: str | torch.device = "meta",
    **options: Any,
) -> Counts:
    """Test-time :class:`~thesislib.counting.Counts` of :func:`build_model`'s model (batch size 1).

    The network is built as at test time (DARTS without its auxiliary head, §5.3.1) on ``device``
    (default ``meta``: shapes only, no weights; a model with an operation that has no meta kernel is
    counted on the CPU instead) and counted at ``input_shape`` (default: :func:`default_input_shape`).
    """
    from thesislib.counting import count

    family, _ = model_family(name)
    shape = tuple(input_shape) if input_shape is not None else family.input_shape
    kwargs = dict(substitute=substitute, setting=setting, num_classes=num_classes, linear=linear)
    kwargs |= {**family.test_options, **options}
    try:
        with torch.device(device):
            model = build_model(name, block, **kwargs)
        return count(model, shape)
    except (NotImplementedError, RuntimeError):
        if str(device) != "meta":
            raise
        return count(build_model(name, block, **kwargs), shape)


# ----------------------------------------------------------------------------------------------------------
# The budget solver's counter (§5.2.4)


def _recording_spec() -> type:
    from thesislib.compressed.networks import NetworkSubstitute

    @dataclass(frozen=True)
    class RecordingSpec(NetworkSubstitute):
        """A spec whose ``build`` records ``(in, out, kwargs)`` and returns a parameter-free placeholder.

        Building a network with it gives the network's parameters outside its substitutes and the
        list of substitutes it asks for, so a counter counts any setting without rebuilding.
        """

        calls: list = field(default_factory=list, compare=False, hash=False)

        def build(self, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
            kwargs = self.layer_kwargs(in_channels, out_channels, kwargs)
            self.calls.append((in_channels, out_channels, tuple(sorted(kwargs.items()))))
            return _Placeholder(in_channels, out_channels)

    return RecordingSpec


class _Placeholder(nn.Module):
    """Stands in for a substitute while a network's skeleton is recorded (never run)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - never called
        raise RuntimeError("a recording placeholder cannot be run")


_COUNTERS: dict[tuple, Callable[[str, float], int]] = {}
#: parameters of one substitute layer by ``(method, (in, out, kwargs), setting)``, shared by all counters
_LAYER_PARAMETERS: dict[tuple, int] = {}


def parameter_counter(
    name: str,
    block: str | None = None,
    *,
    num_classes: int | None = None,
    linear: bool = False,
    shufflenet_bottleneck: str = "out",
    **options: Any,
) -> Callable[[str, float], int]:
    """``count(method, setting) -> test-time parameters`` of model ``name``, for the budget solver (§5.2.4).

    Equal to counting :func:`build_model`'s model (tested), but fast: the network is built once per
    method on the ``meta`` device with its substitutes recorded; each setting then builds only the
    distinct substitute layers. Counters are shared per configuration, so repeated solves (Table 5.1,
    the budget grids) reuse each other's layers.
    """
    family, _ = model_family(name)
    test = {**family.test_options, **options}
    key = (str(name).strip().lower(), block, num_classes, bool(linear), shufflenet_bottleneck)
    try:
        key += (tuple(sorted(test.items())),)
        hash(key)
    except TypeError:  # unhashable options: an unshared counter
        return _new_counter(name, block, num_classes, linear, shufflenet_bottleneck, test)
    if key not in _COUNTERS:
        _COUNTERS[key] = _new_counter(name, block, num_classes, linear, shufflenet_bottleneck, test)
    return _COUNTERS[key]


def _new_counter(
    name: str,
    block: str | None,
    num_classes: int | None,
    linear: bool,
    shufflenet_bottleneck: str,
    options: dict[str, Any],
) -> Callable[[str, float], int]:
    from thesislib.compressed.base import SubstituteSpec

    family, match = model_family(name)
    recording = _recording_spec()
    skeletons: dict[str, tuple[int, Counter]] = {}

    def layer_parameters(method: str, call: tuple, setting: float) -> int:
        key = (method, call, float(setting))
        if key not in _LAYER_PARAMETERS:
            in_channels, out_channels, kwargs = call
            spec = SubstituteSpec(method, float(setting))
            with torch.device("meta"):
                module = spec.build(in_channels, out_channels, **dict(kwargs))
            _LAYER_PARAMETERS[key] = sum(p.numel() for p in module.parameters())
        return _LAYER_PARAMETERS[key]

    def count(method: str, setting: float) -> int:
        method = str(method).strip().lower()
        if method not in skeletons:
            recorder = recording(method, 1.0, shufflenet_bottleneck)
            request = _request(family, match, block, recorder, num_classes, linear, options)
            with torch.device("meta"):
                model = family.builder(request)
            skeletons[method] = (sum(p.numel() for p in model.parameters()), Counter(recorder.calls))
        base, calls = skeletons[method]
        return base + sum(n * layer_parameters(method, call, setting) for call, n in calls.items())

    return count


def solve_setting(
    name: str,
    substitute: str,
    params_budget: float | str,
    block: str | None = None,
    *,
    num_classes: int | None = None,
    linear: bool = False,
    shufflenet_bottleneck: str = "out",
    iterations: int = 24,
    **options: Any,
) -> BudgetHit:
    """The :class:`~thesislib.compressed.budget.BudgetHit` of ``substitute`` nearest ``params_budget`` (§5.2.4).

    ``params_budget`` may be a number or a string with a K/M/G suffix (``"4.35M"``). Continuous
    settings are bisected ``iterations`` times on the normalised range (2⁻²⁴ is far finer than one
    parameter); integer ones are searched exhaustively.
    """
    from thesislib.compressed.base import SubstituteSpec
    from thesislib.compressed.budget import parse_count, solve_budget

    method = str(substitute).strip().lower()
    if not SubstituteSpec(method, 1.0).tunable:  # an unknown method: a clear error
        raise ValueError("'conv1x1' has no setting to solve for; pick a substitute method")
    counter = parameter_counter(
        name,
        block,
        num_classes=num_classes,
        linear=linear,
        shufflenet_bottleneck=shufflenet_bottleneck,
        **options,
    )
    return solve_budget(counter, method, parse_count(params_budget), iterations=iterations)


# ----------------------------------------------------------------------------------------------------------
# The families


def _separable_or_cheap_block(request: ModelRequest, *, pre_activation: bool) -> BlockFactory:
    """The ``(in, out, stride)`` block factory of a WRN (pre-activation) or ResNet (post-activation)."""
    from thesislib.compressed.networks import pointwise_conv, substituted_conv
    from thesislib.compressed.separable import separable_block_factory
    from thesislib.moonshine.blocks import PostActBlock, PreActBlock

    spec, substitute = request.block_spec, request.substitute
    kernel_size = int(request.options.get("kernel_size", 3))
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be a positive integer, not {kernel_size}")
    if spec is None:  # a custom factory
        return request.block  # type: ignore[return-value]
    if substitute is not None and spec.kind == "S" and pre_activation:  # chapter 5's separable WRN block
        if kernel_size != 3:
            raise ValueError("the separable WRN blocks of chapter 5 are 3×3; kernel_size must be 3")
        return separable_block_factory(substitute)
    if substitute is None:
        conv = spec.conv(kernel_size)
    elif spec.kind == "S":  # both k×k convs separable with a substituted pointwise part
        conv = lambda i, o, s: substituted_conv(substitute, i, o, kernel_size, s)  # noqa: E731
    else:  # a cheap block whose 1×1 convs are the substitute
        conv = spec.conv(kernel_size, pointwise=lambda i, o: pointwise_conv(substitute, i, o))
    residual = PreActBlock if pre_activation else PostActBlock
    return lambda i, o, s: residual(i, o, s, conv, convs=spec.convs)


def _substituted_linear(model: nn.Module, attribute: str, request: ModelRequest) -> None:
    """Table 5.1's "+Linear": the final linear layer's weight becomes the substitute; the bias stays dense."""
    from thesislib.compressed.networks import substituted_linear

    if request.linear:
        setattr(model, attribute, substituted_linear(request.substitute, getattr(model, attribute)))


@register_model(
    "wrn",
    r"wrn-(?!50-2$)(\d+)-(\d+(?:\.\d+)?)",  # wrn-50-2 is torchvision's bottleneck network, below
    examples=("wrn-40-2", "wrn-40-1", "wrn-16-2", "wrn-16-1", "wrn-28-10"),
    dataset="cifar10",
    input_shape=(3, 32, 32),
    num_classes=10,
    description="Wide ResNet WRN-D-K (Table 4.2; pre-activation blocks); chapter 5's WRN-28-10 and WRN-40-2",
    block_kinds=("S", "S-2x2", "G", "B", "BG", "custom"),
    options=("kernel_size", "in_channels"),
)
def _wide_resnet(request: ModelRequest) -> nn.Module:
    from thesislib.moonshine.wrn import WideResNet

    depth, width = int(request.match[1]), float(request.match[2])
    factory = _separable_or_cheap_block(request, pre_activation=True)
    in_channels = int(request.options.get("in_channels", 3))
    model = WideResNet(depth, width, factory, request.num_classes, in_channels)
    _substituted_linear(model, "fc", request)
    return model


@register_model(
    "resnet",
    r"resnet(\d+)(?:-(\d+(?:\.\d+)?))?",
    examples=("resnet18", "resnet34", "resnet18-0.5"),
    dataset="imagenet",
    input_shape=(3, 224, 224),
    num_classes=1000,
    description="ImageNet ResNet-18/34 with an optional width of the last three groups (Table 4.4; post-activation)",
    block_kinds=("S", "S-2x2", "G", "B", "BG", "custom"),
    options=("kernel_size", "in_channels"),
)
def _resnet(request: ModelRequest) -> nn.Module:
    from thesislib.moonshine.resnet import RESNET_LAYERS, ResNet

    depth = int(request.match[1])
    if depth not in RESNET_LAYERS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_LAYERS)}, not {depth}")
    width = float(request.match[2]) if request.match[2] else 1.0
    factory = _separable_or_cheap_block(request, pre_activation=False)
    in_channels = int(request.options.get("in_channels", 3))
    model = ResNet(RESNET_LAYERS[depth], factory, request.num_classes, width, in_channels)
    _substituted_linear(model, "fc", request)
    return model


@register_model(
    "erfnet",
    r"erfnet",
    examples=("erfnet",),
    dataset="cityscapes",
    input_shape=(3, 256, 256),
    num_classes=20,
    description="ERFNet for segmentation (Table 4.5); its residual blocks are 1-D factorised and dilated",
    block_kinds=("S", "G"),
    takes_substitutes=False,
    has_linear=False,
    options=("in_channels",),
    refusal="ERFNet's blocks are 1-D factorised, dilated convolutions that only G(g) replaces (§4.5.2), "
    "and chapter 5 never substitutes them",
)
def _erfnet(request: ModelRequest) -> nn.Module:
    from thesislib.moonshine.erfnet import ERFNet

    spec = request.block_spec
    assert spec is not None
    in_channels = int(request.options.get("in_channels", 3))
    return ERFNet(request.num_classes, None if spec.kind == "S" else spec, in_channels)


@register_model(
    "darts",
    r"darts",
    examples=("darts",),
    dataset="cifar10",
    input_shape=(3, 32, 32),
    num_classes=10,
    description="DARTS-V2, 36 channels, 20 cells (§5.3.1); every pointwise conv of the cells substitutable",
    options=("auxiliary", "drop_path_prob", "channels", "layers"),
    test_options={"auxiliary": False},
    refusal="DARTS' cells are its searched operations (sep_conv, dil_conv, ...), not Table 4.1 blocks",
)
def _darts(request: ModelRequest) -> nn.Module:
    from thesislib.compressed.darts import DARTSNetwork
    from thesislib.compressed.networks import pointwise_conv, substituted_conv

    spec = request.substitute
    layers: dict[str, Any] = {}
    if spec is not None:
        layers = {
            "pointwise": lambda i, o: pointwise_conv(spec, i, o),
            "separable": lambda i, o, k, s, d: substituted_conv(spec, i, o, k, s, d),
        }
    model = DARTSNetwork(**layers, num_classes=request.num_classes, **request.options)
    _substituted_linear(model, "classifier", request)
    return model


@register_model(
    "wrn-50-2",
    r"wrn-50-2",
    examples=("wrn-50-2",),
    dataset="imagenet",
    input_shape=(3, 224, 224),
    num_classes=1000,
    description="WRN-50-2 (torchvision's wide_resnet50_2; §5.3.1, Table 5.1): bottleneck blocks",
    options=("substitute_1x1",),
    refusal="WRN-50-2 is torchvision's bottleneck ResNet, whose blocks are not Table 4.1 blocks",
)
def _wrn50_2(request: ModelRequest) -> nn.Module:
    from thesislib.compressed.networks import WRN50_2, substitute_convs

    model = WRN50_2(request.num_classes)
    if request.substitute is not None:
        substitute_convs(model, request.substitute, pointwise=request.options.get("substitute_1x1", True))
    _substituted_linear(model.net, "fc", request)
    return model
