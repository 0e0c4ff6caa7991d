"""Tests of thesislib.counting: each counting rule against a slow loop over output positions and taps,
the substitute protocol with a toy module, parameters vs buffers, and the WRN-40-2 breakdown."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from thesislib.counting import Counts, count, has_mult_adds, human
from thesislib.models import build_model


def slow_conv_macs(conv: nn.Conv2d, height: int, width: int) -> int:
    """Multiply-accumulates by walking every output position, output channel and kernel tap."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    macs = 0
    for _oc, _y, _x in itertools.product(range(conv.out_channels), range(out_h), range(out_w)):
        for _ic, _i, _j in itertools.product(range(conv.in_channels // conv.groups), range(kh), range(kw)):
            macs += 1
    return macs


@pytest.mark.parametrize(
    ("conv", "shape"),
    [
        (nn.Conv2d(3, 8, 3, padding=1), (3, 10, 10)),
        (nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), (4, 9, 7)),
        (nn.Conv2d(8, 8, 3, padding=1, groups=4), (8, 6, 6)),
        (nn.Conv2d(8, 8, 3, padding=1, groups=8), (8, 6, 6)),
        (nn.Conv2d(4, 4, 2, padding=1, dilation=2), (4, 8, 8)),  # S-2x2: true output 8×8, not 9×9
        (nn.Conv2d(4, 4, (3, 1), padding=(4, 0), dilation=(4, 1)), (4, 12, 5)),
        (nn.Conv2d(4, 5, 1), (4, 5, 5)),
    ],
)
def test_conv_mult_adds_match_a_slow_loop(conv: nn.Conv2d, shape: tuple[int, int, int]) -> None:
    counts = count(conv, shape)
    assert counts.mult_adds == slow_conv_macs(conv, shape[1], shape[2])
    assert counts.by_kind == {"conv": counts.mult_adds}
    assert counts.parameters == sum(
        p.numel() for p in conv.parameters()
    )  # the bias is a parameter, not an op


def test_dilated_conv_is_counted_at_its_true_output_size() -> None:
    conv = nn.Conv2d(2, 2, 2, padding=1, dilation=2, bias=False)
    assert count(conv, (2, 32, 32)).mult_adds == 2 * 2 * 4 * 32 * 32  # the output is 32×32


def test_transposed_conv_counts_the_direct_conv_over_its_zero_stuffed_input() -> None:
    deconv = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
    out = deconv(torch.zeros(1, 6, 5, 7))
    assert out.shape == (1, 4, 10, 14)
    assert count(deconv, (6, 5, 7)).mult_adds == 4 * 10 * 14 * 6 * 9


def test_linear_counts_macs_and_bias_adds_per_row() -> None:
    assert count(nn.Linear(5, 3), (5,)).mult_adds == 5 * 3 + 3
    assert count(nn.Linear(5, 3, bias=False), (5,)).mult_adds == 15
    assert count(nn.Linear(5, 3), (4, 5)).mult_adds == 4 * 18  # applied to 4 rows


class ReLUTwice(nn.Module):
    """A conv, a ReLU module called twice and a functional ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.relu(self.conv(self.relu(x))))


def test_relus_count_one_op_per_element_per_call_module_or_functional() -> None:
    counts = count(ReLUTwice(), (2, 4, 4))
    assert counts.by_kind == {"relu": 3 * 32, "conv": 2 * 2 * 16}
    rows = counts.frame()
    module_row = rows[(rows["module"] == "relu")].iloc[0]
    assert module_row["calls"] == 2 and module_row["mult_adds"] == 64
    functional = rows[(rows["module"] == "<model>") & (rows["kind"] == "relu")].iloc[0]
    assert functional["calls"] == 1 and functional["mult_adds"] == 32


SPELLINGS = {
    "module": lambda m, x: m.relu(x),
    "F.relu": lambda m, x: F.relu(x),
    "F.relu inplace": lambda m, x: F.relu(x, inplace=True),
    "torch.relu": lambda m, x: torch.relu(x),
    "torch.relu_": lambda m, x: torch.relu_(x),
    "Tensor.relu": lambda m, x: x.relu(),
    "Tensor.relu_": lambda m, x: x.relu_(),
}


class Spelled(nn.Module):
    def __init__(self, spelling: str) -> None:
        super().__init__()
        self.spelling = spelling
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace="inplace" in spelling or spelling.endswith("_"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(SPELLINGS[self.spelling](self, self.conv1(x)))


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_the_count_does_not_depend_on_how_a_relu_is_written(spelling: str) -> None:
    expected = count(Spelled("module"), (3, 8, 8))
    counts = count(Spelled(spelling), (3, 8, 8))
    assert (counts.mult_adds, counts.by_kind) == (expected.mult_adds, expected.by_kind)
    assert counts.by_kind["relu"] == 4 * 8 * 8


class CheapUnit(nn.Module):
    counts_activations = False  # declared: ReLUs inside are part of the unit

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Conv2d(2, 2, 1, bias=False), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.inner(x))


def test_a_module_that_declares_counts_activations_false_adds_no_relu_ops_inside() -> None:
    model = nn.Sequential(CheapUnit(), nn.ReLU())
    counts = count(model, (2, 4, 4))
    assert counts.by_kind == {"conv": 2 * 2 * 16, "relu": 32}  # only the ReLU outside the unit


def test_pooling_counts_every_read_of_every_window() -> None:
    # Non-overlapping windows: one op per element entering.
    assert count(nn.MaxPool2d(2, stride=2), (4, 8, 8)).mult_adds == 4 * 8 * 8
    assert count(nn.AdaptiveAvgPool2d(1), (4, 8, 8)).mult_adds == 4 * 8 * 8
    assert count(nn.AvgPool2d(8), (4, 8, 8)).mult_adds == 4 * 8 * 8
    # ResNet's overlapping 3×3/2 max-pool reads 9 elements per output element (Table 4.4 needs this).
    assert count(nn.MaxPool2d(3, stride=2, padding=1), (4, 8, 8)).mult_adds == 4 * 4 * 4 * 9


class ToySubstitute(nn.Module):
    """A substitute following the protocol: its children (conv + ReLU module) must not be visited."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.inner(x))

    def mult_adds(self, input: torch.Tensor, output: torch.Tensor) -> int:
        self.seen.append((tuple(input.shape), tuple(output.shape)))
        return 1234


def test_substitute_protocol_counts_the_method_alone_and_all_its_parameters() -> None:
    substitute = ToySubstitute()
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), substitute, nn.ReLU())
    assert has_mult_adds(substitute) and not has_mult_adds(model)
    counts = count(model, (3, 5, 5))
    assert substitute.seen == [((1, 4, 5, 5), (1, 4, 5, 5))]
    assert counts.by_kind == {"conv": 3 * 4 * 25, "substitute": 1234, "relu": 4 * 25}
    frame = counts.frame().set_index("module")
    assert "1.inner" not in frame.index and "1.relu" not in frame.index
    assert frame.loc["1", "parameters"] == 4 * 4 * 9 + 4
    assert counts.parameters == frame["parameters"].sum() == sum(p.numel() for p in model.parameters())


def test_whole_model_following_the_protocol() -> None:
    counts = count(ToySubstitute(), (4, 3, 3))
    assert counts.mult_adds == 1234 and counts.by_kind == {"substitute": 1234}


def test_parameters_exclude_buffers_and_count_shared_tensors_once() -> None:
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.BatchNorm1d(4), shared, shared)
    counts = count(model, (4,))
    assert counts.parameters == 8 + 20  # BN weight + bias, one Linear; running statistics excluded
    assert counts.mult_adds == 2 * 20  # but the shared layer runs twice


def test_count_restores_training_mode_and_changes_nothing() -> None:
    model = build_model("wrn-10-1")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    count(model, (3, 32, 32))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_rows_add_up_and_breakdown_of_the_teacher() -> None:
    with torch.device("meta"):  # counting needs shapes only
        teacher = build_model("wrn-40-2")
    counts = count(teacher, (3, 32, 32))
    assert isinstance(counts, Counts)
    frame = counts.frame()
    assert list(frame.columns) == ["module", "type", "kind", "calls", "mult_adds", "parameters"]
    assert frame["mult_adds"].sum() == counts.mult_adds
    assert frame["parameters"].sum() == counts.parameters == 2_243_546
    # The brief's decomposition of Table 4.3's first row: 327.6M conv/linear + 0.7M ReLU = 328.3M.
    assert round(counts.conv_linear / 1e6, 1) == 327.6
    assert round(counts.relu_pool / 1e6, 1) == 0.7 and counts.by_kind.get("pool", 0) == 0
    assert round(counts.mult_adds / 1e6, 1) == 328.3
    assert counts.to_dict()["by_kind"] == counts.by_kind
    assert "2,243,546 parameters" in str(counts)


@pytest.mark.parametrize("shape", [(), (0, 32, 32), (3, -1, 4)])
def test_invalid_input_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        count(nn.Conv2d(3, 3, 1), shape)


def test_human() -> None:
    assert human(2_243_546) == "2.24M"
    assert human(3_669_156_328) == "3.67G"
    assert human(512) == "512"
    assert math.isclose(float(human(1500)[:-1]), 1.5)
