"""Parameters and mult-adds of a network, counted as the thesis counts them (Tables 4.3–4.5, 5.1).

:func:`count` runs the model once on one input (batch size 1, ``torch.no_grad()``, eval mode) with
forward hooks and adds up:

- **convolutions** (``nn.Conv1d/2d/3d`` and transposed): multiply-accumulates, i.e. for every output
  element ``(in_channels / groups) · prod(kernel_size)``. Dilated kernels are counted at their true
  output size. A transposed conv is counted like the direct conv over its zero-stuffed input (the
  same formula per *output* element, as the authors' counter did; this reproduces Table 4.5).
  Conv biases add nothing;
- **linear layers**: ``in_features · out_features`` MACs plus ``out_features`` bias adds per row;
- **network-level ReLUs and pooling**: one op per element entering each ReLU, once per call, however it
  is written (an ``nn.ReLU`` module, ``F.relu``, ``torch.relu`` or ``Tensor.relu``, in place or not:
  the calls are intercepted with a ``TorchFunctionMode`` and attributed to the innermost module
  running), and one op per element entering an ``nn.ReLU6`` module; one op per element read by each
  window of a pooling module (output elements × kernel area; for non-overlapping pools such as a
  global average this is one op per element entering, for ResNet's overlapping 3×3/2 max-pool it is
  9 per output element, which Table 4.4 needs). What does **not** count is declared, not implied by
  style: a module whose class sets ``counts_activations = False`` adds no ReLU ops for anything run
  inside it. The thesis' counts need this for the ReLU *inside* a cheap conv unit of
  :mod:`thesislib.moonshine.blocks` (between the grouped and pointwise conv of a G block, inside a
  bottleneck: Table 4.3), for the whole of ERFNet (Table 4.5) and for chapter 5's separable WRN
  block (the SECL counts): the authors' counter never saw those activations. A pooling done
  functionally (the WRN's final average pool, as in the authors' code) is not counted;
- **the substitute protocol** (chapter 5): any module that defines
  ``mult_adds(self, input: torch.Tensor, output: torch.Tensor) -> int`` is counted by that method
  alone; its children are not visited (their convs, ReLUs and pools are not added).

Batch norm, dropout, additions of residual branches and concatenations add nothing.
**Parameters** are always ``sum(p.numel() for p in model.parameters())`` (shared tensors once,
buffers such as BN running statistics excluded).

With this convention WRN-40-2 (S blocks, 32×32, 10 classes) has 2,243,546 parameters and
328,303,882 mult-adds (327.6M conv/linear + 0.7M ReLU), the first row of Table 4.3::

    counts = count(build_model("wrn-40-2"), (3, 32, 32))
    counts.parameters, counts.mult_adds, counts.by_kind   # {'conv': ..., 'linear': ..., 'relu': ...}
    counts.frame()                                        # one row per counted module
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["CountRow", "Counts", "count", "counts_activations", "has_mult_adds", "human"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_RELU = (nn.ReLU, nn.ReLU6)
_POOL = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
KINDS = ("conv", "linear", "substitute", "relu", "pool", "other")
_RELU_FUNCTIONS = frozenset({F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_})


class _ReluCalls(TorchFunctionMode):
    """Reports every ReLU call, whatever its spelling, to ``on_relu(input)``."""

    def __init__(self, on_relu: Any) -> None:
        super().__init__()
        self.on_relu = on_relu

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func in _RELU_FUNCTIONS and args and isinstance(args[0], torch.Tensor):
            self.on_relu(args[0])
        return func(*args, **(kwargs or {}))


@dataclasses.dataclass(frozen=True)
class CountRow:
    """One module: its qualified name, kind, calls in the forward pass, mult-adds and own parameters."""

    module: str
    type: str
    kind: str
    calls: int
    mult_adds: int
    parameters: int


@dataclasses.dataclass(frozen=True)
class Counts:
    """The result of :func:`count`: totals, a breakdown by kind and one row per module."""

    parameters: int
    mult_adds: int
    by_kind: dict[str, int]
    rows: tuple[CountRow, ...]
    input_shape: tuple[int, ...]

    @property
    def conv_linear(self) -> int:
        """Multiply-accumulates of convolutions, linear layers and substitutes (with linear bias adds)."""
        return sum(self.by_kind.get(kind, 0) for kind in ("conv", "linear", "substitute"))

    @property
    def relu_pool(self) -> int:
        """Ops of network-level ReLUs and pooling (one per element entering)."""
        return sum(self.by_kind.get(kind, 0) for kind in ("relu", "pool"))

    def frame(self) -> pd.DataFrame:
        """The per-module rows as a DataFrame (columns of :class:`CountRow`)."""
        return pd.DataFrame(
            [dataclasses.asdict(row) for row in self.rows], columns=list(CountRow.__dataclass_fields__)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able totals and breakdown (no rows)."""
        return {
            "parameters": self.parameters,
            "mult_adds": self.mult_adds,
            "conv_linear": self.conv_linear,
            "relu_pool": self.relu_pool,
            "by_kind": dict(self.by_kind),
            "input_shape": list(self.input_shape),
        }

    def __str__(self) -> str:
        return (
            f"{self.parameters:,} parameters ({human(self.parameters)}), {self.mult_adds:,} mult-adds "
            f"({human(self.mult_adds)}: {human(self.conv_linear)} conv/linear + {human(self.relu_pool)} ReLU/pool)"
        )


def human(number: float) -> str:
    """``2243546 -> '2.24M'``; ``3669000000 -> '3.67G'``."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= threshold:
            return f"{number / threshold:.3g}{suffix}"
    return f"{number:g}"


def has_mult_adds(module: nn.Module) -> bool:
    """Whether ``module`` follows the substitute protocol (defines a callable ``mult_adds``)."""
    return callable(getattr(module, "mult_adds", None))


def counts_activations(module: nn.Module) -> bool:
    """False if ``module``'s class declares ``counts_activations = False`` (module docstring)."""
    return getattr(module, "counts_activations", True) is not False


def _counted_modules(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Every module in ``module``, pre-order, not descending into protocol modules (the root included)."""
    yield prefix, module
    if has_mult_adds(module):
        return
    for name, child in module.named_children():
        yield from _counted_modules(child, f"{prefix}.{name}" if prefix else name)


def _kind(module: nn.Module) -> str:
    if has_mult_adds(module):
        return "substitute"
    if isinstance(module, _CONV + _CONV_T):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _RELU):
        return "relu"
    if isinstance(module, _POOL):
        return "pool"
    return "other"


def _ops(module: nn.Module, kind: str, x: torch.Tensor, y: torch.Tensor) -> int:
    """Mult-adds of one call of ``module`` on batch-1 input ``x`` giving ``y`` (module docstring)."""
    if kind == "substitute":
        return int(module.mult_adds(x, y))  # type: ignore[operator]
    if isinstance(module, _CONV):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return y.numel() * per_output
    if isinstance(module, _CONV_T):  # as the direct conv over the zero-stuffed input
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return y.numel() * per_output
    if isinstance(module, nn.Linear):
        rows = x.numel() // module.in_features
        return rows * (
            module.in_features * module.out_features + (module.out_features if module.bias is not None else 0)
        )
    if kind == "pool" and hasattr(module, "kernel_size"):  # every read of every window
        kernel = module.kernel_size
        size = math.prod(kernel) if isinstance(kernel, tuple) else kernel ** (x.dim() - 2)
        return y.numel() * size
    if kind in ("relu", "pool"):
        return x.numel()
    return 0


def count(model: nn.Module, input_shape: tuple[int, ...]) -> Counts:
    """Parameters and mult-adds of ``model`` on one input of shape ``input_shape`` (e.g. ``(3, 32, 32)``).

    The model runs once at batch size 1 in eval mode under ``torch.no_grad()`` on its own device
    (its training mode is restored afterwards). See the module docstring for the convention.
    """
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ValueError(
            f"input_shape must be positive sizes without the batch, e.g. (3, 32, 32), not {input_shape}"
        )
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32

    modules = list(_counted_modules(model))
    totals: dict[str, list[int]] = {name: [0, 0] for name, _ in modules}  # calls, mult-adds
    relus: dict[str, list[int]] = {}  # ReLU calls and ops, by the innermost module running them
    running: list[tuple[str, nn.Module]] = []
    handles = []

    def hook_for(name: str, kind: str):
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            x = inputs[0] if inputs else None
            if x is None or not isinstance(x, torch.Tensor):
                raise TypeError(f"cannot count {name or 'model'}: its first input is not a tensor")
            y = output[0] if isinstance(output, tuple | list) else output
            totals[name][0] += 1
            totals[name][1] += _ops(module, kind, x, y)

        return hook

    def on_relu(x: torch.Tensor) -> None:
        if not running or any(not counts_activations(m) or has_mult_adds(m) for _, m in running):
            return
        calls_ops = relus.setdefault(running[-1][0], [0, 0])
        calls_ops[0] += 1
        calls_ops[1] += x.numel()

    def enter(name: str):
        def pre_hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
            running.append((name, module))

        return pre_hook

    def leave(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        running.pop()

    kinds = {name: _kind(module) for name, module in modules}
    for name, module in modules:
        handles.append(module.register_forward_pre_hook(enter(name)))
        if kinds[name] != "other" and not isinstance(module, nn.ReLU):  # nn.ReLU: through on_relu
            handles.append(module.register_forward_hook(hook_for(name, kinds[name])))
        handles.append(module.register_forward_hook(leave))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), _ReluCalls(on_relu):
            model(torch.zeros((1, *shape), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    rows = []
    for name, module in modules:
        own = module.parameters(recurse=kinds[name] == "substitute")
        n_params = sum(p.numel() for p in own)
        calls, ops = relus.pop(name, [0, 0]) if isinstance(module, nn.ReLU) else totals[name]
        if ops or n_params or (calls and kinds[name] != "other"):
            rows.append(CountRow(name or "<model>", type(module).__name__, kinds[name], calls, ops, n_params))
        if name in relus:  # ReLUs applied functionally in this module's own forward
            calls, ops = relus.pop(name)
            rows.append(CountRow(name or "<model>", type(module).__name__, "relu", calls, ops, 0))
    by_kind: dict[str, int] = {}
    for row in rows:
        if row.kind != "other":
            by_kind[row.kind] = by_kind.get(row.kind, 0) + row.mult_adds
    unique = {id(p): p.numel() for p in model.parameters()}
    return Counts(
        parameters=sum(unique.values()),
        mult_adds=sum(by_kind.values()),
        by_kind=by_kind,
        rows=tuple(rows),
        input_shape=shape,
    )
