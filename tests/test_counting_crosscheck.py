"""The counter's conv/linear mult-adds against PyTorch's own ``torch.utils.flop_counter.FlopCounterMode``.

FlopCounterMode counts 2 FLOPs per multiply-accumulate of every convolution and matrix product that
actually runs. Per example (batch 2 minus batch 1, which removes batch-independent work such as
building a Tensor-Train or Tucker weight from its cores) it must equal the counter's conv + linear
(+ substitute) multiply-accumulates without the linear bias adds, for chapter-4 networks and
chapter-5 networks with each substitute. The two documented conventions that differ are tested as
exact differences: a transposed conv is counted per output element of its zero-stuffed input (the
authors' counter; FlopCounterMode counts per input element) and ACDC declares the O(N log N) cost
of its fast path (Moczulski et al.) while its training form runs the dense N×N matrix.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from thesislib.compressed import ACDC
from thesislib.counting import count
from thesislib.models import build_model


class FirstOutput(nn.Module):
    """Chapter-5 networks return ``(logits, group outputs)``; the counter and FlopCounterMode see one tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out[0] if isinstance(out, tuple) else out


def executed_macs_per_example(model: nn.Module, shape: tuple[int, ...]) -> int:
    totals = []
    for batch in (1, 2):
        torch.manual_seed(0)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.randn(batch, *shape))
        totals.append(counter.get_total_flops())
    flops = totals[1] - totals[0]
    assert flops % 2 == 0
    return flops // 2


def counted_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    counts = count(model, shape)
    modules = dict(model.named_modules())
    bias_adds = sum(
        modules[row.module].out_features * row.calls
        for row in counts.frame().itertuples()
        if row.kind == "linear" and modules[row.module].bias is not None
    )
    return counts.conv_linear - bias_adds


NETWORKS = {
    "wrn-40-2 S": (lambda: build_model("wrn-40-2"), (3, 32, 32)),
    "wrn-40-2 G(4)": (lambda: build_model("wrn-40-2", block="G(4)"), (3, 32, 32)),
    "wrn-40-2 BG(2,M)": (lambda: build_model("wrn-40-2", block="BG(2,M)"), (3, 32, 32)),
    "resnet18": (lambda: build_model("resnet18"), (3, 64, 64)),
    "darts": (lambda: FirstOutput(build_model("darts")), (3, 32, 32)),
    "wrn-40-2 + rf": (
        lambda: FirstOutput(build_model("wrn-40-2", substitute="rf", setting=0.25)),
        (3, 32, 32),
    ),
    "wrn-40-2 + hashed": (
        lambda: FirstOutput(build_model("wrn-40-2", substitute="hashed", setting=0.1)),
        (3, 32, 32),
    ),
    "wrn-40-2 + tt": (
        lambda: FirstOutput(build_model("wrn-40-2", substitute="tt", setting=0.5)),
        (3, 32, 32),
    ),
    "wrn-40-2 + tucker": (
        lambda: FirstOutput(build_model("wrn-40-2", substitute="tucker", setting=0.5)),
        (3, 32, 32),
    ),
    "wrn-40-2 + shufflenet": (
        lambda: FirstOutput(build_model("wrn-40-2", substitute="shufflenet", setting=4)),
        (3, 32, 32),
    ),
    # compositions the one registry adds: a post-activation ResNet made separable, a cheap block substituted
    "resnet18 + rf": (lambda: build_model("resnet18", substitute="rf", setting=0.25), (3, 64, 64)),
    "wrn-16-2 G(4) + tt": (
        lambda: FirstOutput(build_model("wrn-16-2", "G(4)", substitute="tt", setting=0.5)),
        (3, 32, 32),
    ),
    "wrn-16-2 BG(2,M/2) + hashed": (
        lambda: FirstOutput(build_model("wrn-16-2", "BG(2,M/2)", substitute="hashed", setting=0.1)),
        (3, 32, 32),
    ),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_counted_conv_linear_mult_adds_equal_what_flop_counter_mode_sees_run(name: str) -> None:
    build, shape = NETWORKS[name]
    model = build().eval()
    assert counted_macs(model, shape) == executed_macs_per_example(model, shape)


def test_erfnet_differs_exactly_by_the_transposed_conv_convention() -> None:
    model = build_model("erfnet").eval()
    shape = (3, 64, 128)
    sizes: dict[nn.Module, tuple[int, int]] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o: sizes.__setitem__(mod, (i[0][0].numel(), o[0].numel())))
        for m in model.modules()
        if isinstance(m, nn.ConvTranspose2d)
    ]
    with torch.no_grad():
        model(torch.randn(1, *shape))
    for hook in hooks:
        hook.remove()
    assert sizes, "ERFNet's decoder upsamples with transposed convolutions"
    difference = 0
    for m, (inputs, outputs) in sizes.items():
        kernel = math.prod(m.kernel_size)
        per_output = outputs * (m.in_channels // m.groups) * kernel  # the authors' convention (Table 4.5)
        per_input = inputs * (m.out_channels // m.groups) * kernel  # what runs (FlopCounterMode)
        difference += per_output - per_input
    assert counted_macs(model, shape) - executed_macs_per_example(model, shape) == difference


def test_acdc_declares_its_fast_path_cost_while_training_form_runs_the_dense_matrix() -> None:
    layer = ACDC(64, 64, 3).eval()
    shape = (64, 4, 4)
    positions = 16
    declared = count(layer, shape).mult_adds
    assert declared == positions * round(3 * (4 * 64 + 5 * 64 * math.log2(64)))
    assert executed_macs_per_example(layer, shape) == positions * 64 * 64  # the dense 1x1 conv
