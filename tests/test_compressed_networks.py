"""Chapter 5's networks and their counts: golden tests against Table 5.1, §5.2.4's budgets and SECL.

Counting runs on PyTorch's ``meta`` device (shapes only), so even WRN-50-2 counts in well under a
second; one test checks that meta counts equal real-device counts.
"""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from thesislib import reference
from thesislib.compressed.budget import (
    budgets_in_support,
    common_support,
    parse_count,
    solve_budget,
    tuning_curves,
)
from thesislib.compressed.darts import (
    DARTSNetwork,
    auxiliary_loss,
    counted_parameters,
    drop_path,
    drop_path_probability,
)
from thesislib.compressed.networks import (
    BUDGET_KEYS,
    TABLE51_ROWS,
    SubstitutedLinear,
    budget_grid,
    reproduce_table51_row,
    smallest_budget_tunings,
    substitute_spec,
    support_budgets,
    table51_key,
    torchvision_resnet_groups,
)
from thesislib.models import build_model, count_model, model_family, parameter_counter

METHODS = ("acdc", "hashed", "rf", "shufflenet", "tt", "tucker")
TABLE51 = reference.table("ch5_table51")["value"]
BUDGETS = reference.table("ch5_budgets")["value"]


def close(measured: float, expected: float, rel: float) -> bool:
    return abs(measured - expected) <= rel * abs(expected)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these tiny batch-1 forwards only lose to thread start-up and, on a shared
    machine, to oversubscription (20× slower with 2 threads under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def counters():
    """Fast parameter counters per network (memoised skeletons), shared by the module's tests."""
    return {name: parameter_counter(name) for name in ("wrn-28-10", "darts", "wrn-50-2")}


# ----------------------------------------------------------------------------------------------------------
# Dense base networks


def test_dense_parameter_counts():
    """WRN-28-10 36.5M (§5.3.3), WRN-50-2 68.9M and ≈11G mult-adds (Table 5.1), DARTS-V2 3.3M."""
    with torch.device("meta"):  # parameters only: no forward pass needed
        wrn = sum(p.numel() for p in build_model("wrn-28-10").parameters())
    assert round(wrn / 1e5) / 10 == BUDGETS["wrn28_10_dense_params"] / 1e6  # 36,479,194 -> 36.5M
    imagenet = count_model("wrn-50-2")
    assert round(imagenet.parameters / 1e5) / 10 == TABLE51["wrn50_2_dense_params"] / 1e6  # 68,883,240
    assert round(imagenet.mult_adds / 1e9) == TABLE51["wrn50_2_dense_madds"] / 1e9  # 11.41G -> "11G"
    # the compression percentages of Table 5.1 imply the base: 0.91G / 8.00% = 11.375G
    implied = TABLE51["wrn50_2_shufflenet_low_madds"] / (TABLE51["wrn50_2_shufflenet_low_madds_pct"] / 100)
    assert close(imagenet.mult_adds, implied, 0.01)
    assert parameter_counter("darts")("conv1x1", 0) == 3_349_342  # the published DARTS-V2 "3.3M"


def test_darts_with_auxiliary_head_is_the_thesis_38m():
    """§5.3.3 quotes 3.8×10⁶ parameters for DARTS: that is DARTS-V2 *with* its auxiliary head."""
    with torch.device("meta"):
        model = build_model("darts")
    total = sum(p.numel() for p in model.parameters())
    assert round(total / 1e5) / 10 == BUDGETS["darts_dense_params"] / 1e6  # 3,825,768 -> 3.8M
    assert counted_parameters(model) == 3_349_342  # the head is excluded from test-time counts


def test_meta_counts_equal_real_counts():
    """Counting on the meta device (shapes only) gives the real device's numbers (small networks)."""
    torch.manual_seed(0)
    small = {"channels": 8, "layers": 5}
    for name, method, setting, options in (
        ("darts", "hashed", 0.1, small),
        ("darts", "shufflenet", 2, small),
        ("wrn-40-2", "tt", 0.3, {}),
    ):
        meta = count_model(name, substitute=method, setting=setting, **options)
        real = count_model(name, substitute=method, setting=setting, device="cpu", **options)
        assert (meta.parameters, meta.mult_adds, meta.by_kind) == (
            real.parameters,
            real.mult_adds,
            real.by_kind,
        )


@pytest.mark.parametrize("name", ["wrn-28-10", "darts", "wrn-50-2"])
def test_fast_counter_equals_built_network(counters, name):
    """The budget solver's recorded-skeleton counter equals counting the built network, every method."""
    settings = {"acdc": 3, "hashed": 0.1, "rf": 0.1, "shufflenet": 4, "tt": 0.3, "tucker": 0.4}
    methods = {
        "wrn-28-10": METHODS,
        "darts": ("acdc", "shufflenet", "tucker"),
        "wrn-50-2": ("rf", "shufflenet"),
    }
    for method in methods[name]:
        with torch.device("meta"):
            model = build_model(
                name, substitute=method, setting=settings[method], **model_family(name)[0].test_options
            )
        assert counters[name](method, settings[method]) == sum(p.numel() for p in model.parameters()), method
    with torch.device("meta"):
        model = build_model(
            name, substitute="hashed", setting=0.1, linear=True, **model_family(name)[0].test_options
        )
    plus_linear = parameter_counter(name, linear=True)("hashed", 0.1)
    assert plus_linear == sum(p.numel() for p in model.parameters()) < counters[name]("hashed", 0.1)


# ----------------------------------------------------------------------------------------------------------
# Table 5.1 (WRN-50-2 on ImageNet)


#: Table 5.1's printed precision: (unit, decimals) — parameters in M and mult-adds in G to 2 decimals,
#: compression percentages to 2 decimals
PRINTED = {"parameters": (1e6, 2), "mult_adds": (1e9, 2), "size_pct": (1.0, 2), "mult_adds_pct": (1.0, 2)}
#: the only (row, quantity) pairs that are not the printed value, each within 0.5%: rows solved to a
#: rounded printed size land up to half a printed unit off (HashedNet 17.61M → 25.57% for 25.56%,
#: 2.47M → 3.59% for 3.58%); TT's integer ranks reach 4.33M, not 4.34M; the thesis' HashedNet
#: (+Linear) counts 0.01G (0.08 points) more mult-adds than the dense linear layer it replaces
NOT_PRINTED = {
    ("wrn50_2_hashed_high", "size_pct"),
    ("wrn50_2_hashed_linear_low", "size_pct"),
    ("wrn50_2_hashed_linear_low", "mult_adds"),
    ("wrn50_2_hashed_linear_low", "mult_adds_pct"),
    ("wrn50_2_tt_low", "parameters"),
    ("wrn50_2_tt_low", "size_pct"),
}


def printed(value: float, quantity: str) -> str:
    """``value`` as Table 5.1 prints ``quantity``: in its unit, rounded half up to its decimals."""
    unit, decimals = PRINTED[quantity]
    return reference.as_printed(value / unit, decimals)


@pytest.mark.parametrize(
    ("method", "budget", "linear"), TABLE51_ROWS, ids=[table51_key(*r) for r in TABLE51_ROWS]
)
def test_table51_row(method, budget, linear):
    """Each Table 5.1 row: solve the method's tuning at the row's parameters, then count both.

    Every quantity but :data:`NOT_PRINTED` (each within 0.5%) equals the table to the precision it
    prints — every ShuffleNet and RF row in full: e.g. ShuffleNet 6,041,960
    parameters / 912,881,384 mult-adds → "6.04M 0.91G 8.77 8.00". The ShuffleNet rows need the
    unit's depthwise conv to take the kernel size of the conv it replaces (1×1 at WRN-50-2's
    bottleneck 1×1s and shortcuts, as the thesis' code); with a fixed 3×3 one they were 6.09M /
    0.93G (+0.9% / +2.7%). The RF rows are the thesis' rank scales: 0.03 (the lowest) gives 4.35M.
    """
    row = reproduce_table51_row(method, budget, linear)
    for quantity in PRINTED:
        measured, thesis = row[quantity], row[f"{quantity}_thesis"]
        if (row["row"], quantity) not in NOT_PRINTED:
            assert printed(measured, quantity) == printed(thesis, quantity), (quantity, measured, thesis)
        else:
            assert close(measured, thesis, 0.005), (quantity, row)
            assert printed(measured, quantity) != printed(thesis, quantity)  # stale exception list
    if method == "rf" and budget == "low":
        assert row["tuning"] == 0.03  # the thesis' smallest RF rank scale, the range's lower end


def test_shufflenet_unit_takes_the_replaced_convs_kernel():
    """WRN-50-2 and DARTS: 1×1 convs become 1×1-depthwise ShuffleNet units (stride kept), 3×3 convs
    3×3 ones, and DARTS' dil_conv a dilated one (the thesis' code passes kernel size, stride, dilation)."""
    from thesislib.compressed.shufflenet import LinearShuffleNet

    with torch.device("meta"):
        wrn = build_model("wrn-50-2", substitute="shufflenet", setting=4)
        darts = build_model("darts", substitute="shufflenet", setting=2, auxiliary=False)
    block = wrn.net.layer2[0]
    assert (block.conv1.kernel_size, block.conv2.kernel_size, block.conv3.kernel_size) == (1, 3, 1)
    assert (block.downsample[0].kernel_size, block.downsample[0].stride, block.conv2.stride) == (1, 2, 2)
    units = [m for m in darts.modules() if isinstance(m, LinearShuffleNet)]
    shapes = Counter((u.kernel_size, u.stride, u.dilation) for u in units)
    # 18 normal cells: 2 preprocessing 1×1 + 5 sep_conv × 2 3×3 + 1 dilated 3×3; 2 reduction cells: 2
    # preprocessing 1×1; the cell after each reduction preprocesses its first input with a
    # FactorizedReduce instead: two stride-2 1×1 units
    assert shapes == {(1, 1, 1): 18 * 2 - 2 + 2 * 2, (3, 1, 1): 18 * 5 * 2, (3, 1, 2): 18, (1, 2, 1): 2 * 2}
    reduce = darts.cells[darts.reductions[0] + 1].preprocess0
    assert isinstance(reduce.conv_1, LinearShuffleNet) and reduce.conv_1.stride == 2


def test_table51_needs_the_bottleneck_1x1_convs_substituted():
    """Table 5.1 substitutes WRN-50-2's 1×1 convs too: with only the 3×3 convs made separable and
    substituted, even the smallest RF / HashedNet networks keep > 23M parameters (rows: 4.35M)."""
    dense_1x1 = parameter_counter("wrn-50-2", substitute_1x1=False)
    assert dense_1x1("rf", 0.02) > 23e6 and dense_1x1("hashed", 0.002) > 23e6
    assert parameter_counter("wrn-50-2")("rf", 0.02) < TABLE51["wrn50_2_rf_low_params"]


def test_table51_shufflenet_needs_the_codes_bottleneck():
    """With §5.2.3's "input channels / 4" bottleneck the ShuffleNet rows miss by 8–12%; the thesis'
    code used ``out_channels // 4`` (the default here), which lands within 0.1%."""
    text, code = parameter_counter("wrn-50-2", shufflenet_bottleneck="in"), parameter_counter("wrn-50-2")
    for budget in ("low", "high"):
        params = TABLE51[f"wrn50_2_shufflenet_{budget}_params"]
        assert abs(solve_budget(text, "shufflenet", params).relative_error) > 0.05
        assert abs(solve_budget(code, "shufflenet", params).relative_error) < 0.001


# ----------------------------------------------------------------------------------------------------------
# §5.2.4's parameter budgets (WRN-28-10 and DARTS on CIFAR-10)


#: §5.2.4's budgets recomputed from the code: the common support of Fig. 5.5 (top: the linear
#: ShuffleNet at 1 group; bottom: RF at rank scale 0.03) and its log-midpoint
SUPPORT = {
    "wrn-28-10": ([2_384_154, 1_197_190, 601_162], (601_162, 2_384_154)),
    "darts": ([1_415_440, 831_525, 488_494], (488_494, 1_415_440)),
}


@pytest.mark.parametrize("name", list(BUDGET_KEYS))
def test_budgets_are_the_support_range(counters, name):
    """§5.2.4 (Fig. 5.5): the budgets span the range every method supports — from the smallest RF
    network (rank scale 0.03, the thesis' smallest) to the largest linear ShuffleNet one (1 group),
    with the log-midpoint between. ``common_support`` / ``budgets_in_support`` of the tuning curves
    give exactly these, and they are the printed budgets to the printed precision (WRN-28-10 2.38M /
    1.2M / 0.6M; DARTS 1.42M / 0.83M / 0.49M). ACDC (32 layers: 0.93M on WRN-28-10) is open-ended
    and does not narrow the range (with it, WRN-28-10's support would end at 0.93M)."""
    expected, support = SUPPORT[name]
    curves = tuning_curves(counters[name], METHODS, 17)
    assert common_support(curves) == support
    assert budgets_in_support(*support, 3) == expected == support_budgets(name)
    assert support == (counters[name]("rf", 0.03), counters[name]("shufflenet", 1))
    for value, key in zip(expected, BUDGET_KEYS[name], strict=True):
        text = f"{BUDGETS[key]:.0f}".rstrip("0")  # the printed digits: 2380000 -> "238"
        assert round(value, len(text) - len(f"{BUDGETS[key]:.0f}")) == BUDGETS[key], (key, value)
    acdc_max = curves[curves.method == "acdc"].parameters.max()
    strict = common_support(curves, open_ended=())
    assert strict == (support[0], min(support[1], acdc_max))
    if name == "wrn-28-10":
        assert acdc_max == 931_818 and strict[1] == acdc_max


@pytest.mark.parametrize("name", list(BUDGET_KEYS))
def test_every_supported_method_hits_the_budgets(name):
    """Every method whose tuning range reaches a budget hits it: within 1.5% for the continuous
    tunings (RF, HashedNet, TT, Tucker); for the integer ones (ShuffleNet groups, ACDC layers) the
    nearest integer setting, within 15% (ShuffleNet's group counts must divide the channel widths,
    so e.g. WRN-28-10 has 1.34M at 2 groups and 0.56M at 8 around the 1.2M/0.6M budgets).

    ACDC cannot reach WRN-28-10's two larger budgets (32 layers give 0.93M): the thesis likewise
    has ACDC only at the smallest WRN-28-10 budget (Fig. 5.7)."""
    grid = budget_grid(name, iterations=20)
    assert set(grid.method) == set(METHODS) and len(grid) == 3 * len(METHODS)
    supported = grid[grid.supported]
    integer = supported.method.isin(["shufflenet", "acdc"])
    assert (supported[~integer].relative_error.abs() <= 0.015).all(), supported[~integer]
    assert (supported[integer].relative_error.abs() <= 0.15).all(), supported[integer]
    unsupported = {(row.method, row.budget) for row in grid[~grid.supported].itertuples()}
    expected = {("acdc", 2_380_000), ("acdc", 1_200_000)} if name == "wrn-28-10" else set()
    assert unsupported == expected


def test_smallest_budget_tunings_take_each_supported_method_at_the_smallest_budget() -> None:
    grid = pd.DataFrame(
        {
            "budget": [3e6, 3e6, 3e6, 1e6, 1e6, 1e6],
            "method": ["rf", "acdc", "tt", "rf", "acdc", "tt"],
            "tuning": [0.5, 12.0, 4.0, 0.2, 6.0, 2.0],
            "supported": [True, False, True, True, True, False],
        }
    )
    assert smallest_budget_tunings(grid) == {"rf": 0.2, "acdc": 6.0}
    with pytest.raises(ValueError, match="budget grid is empty"):
        smallest_budget_tunings(grid.iloc[:0])


# ----------------------------------------------------------------------------------------------------------
# SECL (seed 004, Table 1): WRN-40-2 with ACDC-parameterised convolutions


def test_secl_wrn40_2_acdc_counts():
    """WRN-40-2 with each 3×3 conv → depthwise 3×3 + ACDC pointwise, beside SECL's Table 1.

    - The dense WRN-40-2 is Table 1's 2.24M / 328M exactly.
    - **Parameters**: SECL's 46.4K (46,442 in its abstract) is reproduced *exactly* by **one** ACDC
      layer per conv (2N parameters, N = max(in, out)); the text says 12 layers per conv, which
      gives 105,578. The paper's count evidently covers one layer's diagonals.
    - **Mult-adds**: one layer gives 29.4M (SECL's rule: each pointwise costs the cheaper of the
      unrolled ACDC and the dense 1×1 conv) or 29.9M (always ACDC) against 33.2M (-10%); with 12
      layers every layer of this narrow network (N ≤ 128, far below the 625-channel break-even of
      §5.3.4) is cheaper dense, giving the separable network's 44.1M. The paper does not state its
      counting convention. One that closes the gap (unconfirmed): costing the two stride-2 convs at
      their input resolution (+2.96M) and counting the blocks' ReLUs (+0.70M; the substitute
      blocks apply ReLU functionally, so the counter skips them) gives 33.1M.
    - SECL-LR (38.7K, ACDC-parameterised *grouped* 3×3 convs too) has no defined equivalent here.
    """
    dense = count_model("wrn-40-2")
    assert (
        dense.parameters == 2_243_546
        and round(dense.parameters / 1e4) / 100 == BUDGETS["secl_wrn40_2_params"] / 1e6
    )
    assert round(dense.mult_adds / 1e6) == BUDGETS["secl_wrn40_2_madds"] / 1e6
    one = count_model("wrn-40-2", substitute="acdc", setting=1, substitute_options={"count_cheaper": True})
    assert one.parameters == 46_442
    assert round(one.parameters / 100) / 10 == BUDGETS["secl_wrn40_2_secl_params"] / 1e3
    assert close(one.mult_adds, BUDGETS["secl_wrn40_2_secl_madds"], 0.12)  # 29.4M vs 33.2M
    twelve = count_model(
        "wrn-40-2", substitute="acdc", setting=12, substitute_options={"count_cheaper": True}
    )
    assert twelve.parameters == 105_578
    assert (
        twelve.mult_adds == count_model("wrn-40-2", substitute="conv1x1").mult_adds
    )  # dense is cheaper everywhere


# ----------------------------------------------------------------------------------------------------------
# The builders


def test_darts_forward_auxiliary_and_drop_path():
    """DARTS: groups at 32/16/8 pixels; the auxiliary head runs only in training; drop path is seeded."""
    torch.manual_seed(0)
    model = build_model("darts", substitute="rf", setting=0.1, channels=8, layers=5, drop_path_prob=0.2)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    logits, groups = model(x)
    assert logits.shape == (2, 10) and model.aux_logits is not None and model.aux_logits.shape == (2, 10)
    assert [g.shape[-1] for g in groups] == [32, 16, 8]
    model.eval()
    logits_eval, _ = model(x)
    assert model.aux_logits is None
    assert torch.equal(logits_eval, model(x)[0])
    # training runs through every substitute and the auxiliary head
    model.train()
    logits, _ = model(x)
    targets = torch.tensor([1, 2])
    aux = auxiliary_loss(model, targets)
    assert torch.allclose(aux, 0.4 * F.cross_entropy(model.aux_logits, targets))
    (F.cross_entropy(logits, targets) + aux).backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.manual_seed(1)
    a = drop_path(torch.ones(64, 2, 1, 1), 0.5)
    torch.manual_seed(1)
    assert torch.equal(a, drop_path(torch.ones(64, 2, 1, 1), 0.5))
    assert set(a.unique().tolist()) <= {0.0, 2.0}
    assert [drop_path_probability(e, 600) for e in (0, 300, 600)] == [0.0, 0.1, 0.2]


def test_darts_dense_pointwise_factory_is_the_default():
    """DARTSNetwork(pointwise=...) puts the factory's module at every 1×1 position (240 in DARTS-V2)."""
    made = []

    def pointwise(i: int, o: int) -> torch.nn.Module:
        made.append((i, o))
        return torch.nn.Conv2d(i, o, 1, bias=False)

    with torch.device("meta"):
        model = DARTSNetwork(pointwise=pointwise, auxiliary=False)
    assert counted_parameters(model) == 3_349_342
    # 18 normal cells: 2 preprocessing + 5 sep_conv × 2 + 1 dil_conv; 2 reduction cells: 2
    # preprocessing (their skip ops read node 2, stride 1: identities); the cell after each reduction
    # preprocesses with a FactorizedReduce (two 1×1 convs instead of one)
    assert len(made) == 18 * (2 + 5 * 2 + 1) + 2 * 2 + 2


def test_wrn50_2_surgery_and_plus_linear():
    """WRN-50-2: every conv but the 7×7 stem is substituted; "+Linear" swaps the classifier's weight."""
    with torch.device("meta"):
        model = build_model("wrn-50-2", substitute="hashed", setting=0.1, linear=True)
    convs = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 1]
    assert convs == ["net.conv1"]
    assert isinstance(model.net.fc, SubstitutedLinear)
    torch.manual_seed(0)
    layer = SubstitutedLinear(substitute_spec("tt", 0.5).build(12, 8))
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(3, 12)
    assert torch.allclose(layer(x), F.linear(x, layer.substitute.dense_matrix(), layer.bias), atol=1e-6)


def test_specs_and_budgets_are_validated():
    assert parse_count("4.35M") == 4_350_000 and parse_count("600k") == 600_000
    assert parse_count("2.38e6") == 2_380_000 and parse_count(1.2e6) == 1_200_000
    for bad in ("12 parameters", "-3M", "", "0"):
        with pytest.raises(ValueError):
            parse_count(bad)
    with pytest.raises(ValueError, match="unknown model 'resnet-18'; known: wrn: wrn-40-2"):
        build_model("resnet-18")
    with pytest.raises(ValueError, match="needs a setting"):
        substitute_spec("tt")
    with pytest.raises(ValueError, match="unknown substitute"):
        substitute_spec("fft", 0.5)
    with pytest.raises(ValueError, match=r"not both|already holds"):
        substitute_spec("tt:0.3", 0.5)
    with pytest.raises(ValueError, match="Linear"):
        build_model("darts", linear=True)
    with pytest.raises(ValueError, match="shufflenet_bottleneck"):
        build_model("darts", substitute="shufflenet", setting=2, shufflenet_bottleneck="middle")
    assert str(substitute_spec("TT", 0.25)) == "tt:0.25"
    assert math.isclose(substitute_spec("hashed:0.1").tuning, 0.1)


# ----------------------------------------------------------------------------------------------------------
# The command line: thesislib count MODEL --substitute METHOD (--setting X | --params-budget P)


def test_cli_count_substitute(capsys):
    """``thesislib count`` with a substitute: a setting or a parameter budget, text or chapter 4's JSON."""
    import json

    from thesislib.cli import main

    assert main(["count", "wrn-50-2", "--substitute", "rf", "--params-budget", "4.35M", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert close(record["parameters"], 4.35e6, 0.005) and close(record["mult_adds"], 0.53e9, 0.03)
    assert record["substitute"] == "rf" and record["budget_hit"]["supported"]
    assert record["params_budget"] == 4_350_000 and record["setting"] == record["budget_hit"]["tuning"]
    assert main(["count", "wrn-40-2", "--json"]) == 0  # chapter 4's counter, same keys
    assert set(json.loads(capsys.readouterr().out)) <= set(record)
    assert main(["count", "darts", "--substitute", "hashed", "--setting", "0.1", "--linear"]) == 0
    text = capsys.readouterr().out
    assert "darts, substitute hashed:0.1 +Linear" in text and "parameters" in text
    assert main(["count", "darts"]) == 0 and "3,349,342" in capsys.readouterr().out
    for bad in (
        ["count", "darts", "--setting", "0.3"],  # no method
        ["count", "wrn-28-10", "--substitute", "fft", "--setting", "1"],
        ["count", "darts", "--substitute", "tt", "--params-budget", "lots"],
        ["count", "wrn-28-10", "--substitute", "tt", "--setting", "0.3", "--block", "S-2x2"],
        ["count", "darts", "--substitute", "tt"],  # neither setting nor budget
    ):
        assert main(bad) == 2, bad
        assert "error" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --setting and --params-budget are exclusive
        main(["count", "darts", "--substitute", "tt", "--setting", "0.3", "--params-budget", "1M"])


def test_torchvision_resnet_groups_gives_torchvision_logits_and_the_four_group_outputs() -> None:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(weights=None, num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, groups = torchvision_resnet_groups(net, x)
        expected = net(x)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    assert [tuple(g.shape) for g in groups] == [
        (2, 64, 16, 16),
        (2, 128, 8, 8),
        (2, 256, 4, 4),
        (2, 512, 2, 2),
    ]
