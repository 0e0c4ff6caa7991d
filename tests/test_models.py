"""The one model registry (:mod:`thesislib.models`): every network, block and substitute through one door.

The ``thesislib count`` commands of issue 12's "done when" either count or refuse with a reason; the
block × substitute compositions build, run and are counted as their parts say; the fast budget counter
equals counting the built network for the new compositions.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from thesislib.cli import main
from thesislib.compressed.base import Substitute, SubstituteSpec
from thesislib.compressed.budget import count_parameters
from thesislib.counting import count
from thesislib.models import (
    build_model,
    count_model,
    default_input_shape,
    families,
    model_family,
    model_names,
    parameter_counter,
    register_model,
    solve_setting,
)
from thesislib.moonshine.blocks import GroupedPointwise


def counted(words: list[str], capsys) -> dict:
    assert main([*words, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_the_issue_commands_count_or_refuse_with_a_reason(capsys) -> None:
    student = counted(["count", "wrn-16-2", "--substitute", "rf", "--setting", "0.5"], capsys)
    built = count(build_model("wrn-16-2", substitute="rf", setting=0.5), (3, 32, 32))
    assert (student["parameters"], student["mult_adds"]) == (built.parameters, built.mult_adds)
    assert student["substitute"] == "rf" and student["setting"] == 0.5 and student["block"] == "S"

    darts = counted(["count", "darts", "--classes", "100"], capsys)
    darts10 = counted(["count", "darts"], capsys)
    assert darts["num_classes"] == 100 and darts10["parameters"] == 3_349_342  # DARTS-V2's published 3.3M
    assert darts["parameters"] - darts10["parameters"] == 90 * (576 + 1)  # 90 more classes on 576 features

    resnet = counted(["count", "resnet18", "--substitute", "rf", "--setting", "0.5"], capsys)
    dense = counted(["count", "resnet18"], capsys)
    assert resnet["parameters"] < dense["parameters"] / 4 and resnet["input_shape"] == [3, 224, 224]

    words = ["count", "wrn-28-10", "--block", "G(4)", "--substitute", "acdc", "--setting", "2"]
    cheap = counted(words, capsys)
    plain = counted(["count", "wrn-28-10", "--block", "G(4)"], capsys)
    assert cheap["by_kind"]["substitute"] > 0 and cheap["parameters"] < plain["parameters"]

    for refused, reason in (
        (["count", "erfnet", "--substitute", "rf", "--setting", "0.5"], "chapter 5 never substitutes"),
        (["count", "darts", "--block", "G(4)"], "not Table 4.1 blocks"),
        (["count", "wrn-50-2", "--block", "B(2)"], "bottleneck ResNet"),
        (["count", "wrn-40-2", "--block", "S-2x2", "--substitute", "tt", "--setting", "0.5"], "no 1×1 conv"),
        (["count", "erfnet", "--substitute", "rf", "--setting", "0.5", "--linear"], "takes no substitute"),
        (["count", "wrn-41-2"], "6n + 4"),
    ):
        assert main(refused) == 2, refused
        assert reason in capsys.readouterr().err, refused


def test_every_name_builds_runs_and_names_itself() -> None:
    torch.manual_seed(0)
    assert set(model_names()) >= {"wrn-40-2", "resnet18", "erfnet", "darts", "wrn-50-2"}
    for name in ("wrn-16-1", "resnet18-0.5", "darts"):
        options = {"channels": 8, "layers": 5} if name == "darts" else {}
        model = build_model(name, num_classes=7, **options).eval()
        logits, groups = model(torch.randn(1, *default_input_shape(name)[:1], 32, 32))
        assert logits.shape == (1, 7) and groups and model.name == name and model.num_classes == 7
    assert model_family("WRN-50-2")[0].name == "wrn-50-2"  # not the WRN-D-K family
    assert model_family("wrn-52-2")[0].name == "wrn"
    assert [family.name for family in families()] == ["wrn", "resnet", "erfnet", "darts", "wrn-50-2"]


def test_a_cheap_block_with_substituted_pointwise_convs() -> None:
    model = build_model("wrn-16-2", "G(4)", substitute="tt:0.5")
    units = [m for m in model.modules() if isinstance(m, GroupedPointwise)]
    assert units and all(isinstance(u.pointwise, Substitute) and u.pointwise.method == "tt" for u in units)
    assert model.block_spec == "G(4)" and model.substitute == "tt:0.5"
    bottleneck = build_model("wrn-16-2", "B(2)", substitute=SubstituteSpec("rf", 0.5))
    assert isinstance(bottleneck.group1[0].conv1.reduce, Substitute)
    assert isinstance(bottleneck.group1[0].conv1.expand, Substitute)
    logits, _ = bottleneck(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize(
    ("name", "block"), [("wrn-16-2", "G(4)"), ("wrn-16-2", "BG(2,M/2)"), ("resnet18", None)]
)
@pytest.mark.parametrize(("method", "setting"), [("rf", 0.3), ("acdc", 2.0), ("shufflenet", 2.0)])
def test_fast_counter_equals_the_built_network_for_compositions(name, block, method, setting) -> None:
    built = count_parameters(lambda: build_model(name, block, substitute=method, setting=setting))
    assert parameter_counter(name, block)(method, setting) == built


def test_solve_setting_lands_on_a_budget_for_a_composition() -> None:
    counter = parameter_counter("wrn-16-2", "G(4)")
    target = (counter("rf", 0.03) + counter("rf", 1.0)) // 2
    hit = solve_setting("wrn-16-2", "rf", target, "G(4)")
    assert hit.supported and abs(hit.relative_error) < 0.02
    counts = count_model("wrn-16-2", "G(4)", substitute="rf", setting=hit.tuning)
    assert counts.parameters == hit.parameters


def test_bad_requests_say_what_is_valid() -> None:
    with pytest.raises(ValueError, match="known: wrn: wrn-40-2"):
        build_model("vgg16")
    with pytest.raises(ValueError, match="takes kernel_size, in_channels; not dropout"):
        build_model("wrn-16-1", dropout=0.3)
    with pytest.raises(ValueError, match="custom block factory"):
        build_model("wrn-16-1", lambda i, o, s: nn.Identity(), substitute="rf:0.5")
    with pytest.raises(ValueError, match="no linear classifier"):
        build_model("erfnet", linear=True)
    with pytest.raises(ValueError, match="num_classes must be a positive"):
        build_model("darts", num_classes=0)
    with pytest.raises(ValueError, match="already registered"):
        register_model(
            "wrn",
            "x",
            examples=(),
            dataset="",
            input_shape=(3, 1, 1),
            num_classes=1,
            description="",
        )(lambda request: nn.Identity())


def test_count_model_at_another_input_and_on_the_cpu() -> None:
    meta = count_model("wrn-16-1", "G(N)", input_shape=(3, 64, 64))
    real = count_model("wrn-16-1", "G(N)", input_shape=(3, 64, 64), device="cpu")
    assert (meta.parameters, meta.mult_adds) == (real.parameters, real.mult_adds)
    assert meta.mult_adds > count_model("wrn-16-1", "G(N)").mult_adds * 3.9


def test_a_model_spec_holds_a_typed_substitute_and_builds_through_the_registry() -> None:
    from thesislib.training import ModelSpec

    spec = ModelSpec("wrn-10-1", substitute="tt:0.3125")
    assert spec.substitute == SubstituteSpec("tt", 0.3125) and spec.label == "wrn-10-1 tt:0.3125"
    assert ModelSpec("wrn-10-1", "G(4)", substitute="rf:0.5").slug == "wrn-10-1-G_4_-rf_0_5"
    assert ModelSpec("wrn-10-1", substitute="rf:0.123456789").substitute.tuning == 0.123456789
    model = spec.build(10)
    assert model.substitute == "tt:0.3125" and any(isinstance(m, Substitute) for m in model.modules())
    with pytest.raises(ValueError, match="unknown substitute"):
        ModelSpec("wrn-10-1", substitute="fft:1")
    with pytest.raises(ValueError, match="unknown block spec"):
        ModelSpec("wrn-10-1", "Q(2)")


def test_substitute_behaviour_is_declared_by_its_class() -> None:
    from thesislib.compressed.separable import SeparableBlock, SeparableConv2d
    from thesislib.moonshine.blocks import PreActBlock

    assert not SubstituteSpec("conv1x1").tunable and SubstituteSpec("rf", 0.5).tunable
    assert SubstituteSpec("shufflenet", 2).whole_conv and not SubstituteSpec("tt", 0.5).whole_conv
    assert issubclass(SeparableBlock, PreActBlock) and SeparableBlock.counts_activations is False
    dilated = SeparableConv2d(8, 8, "rf:0.5", kernel_size=3, stride=1, dilation=2)
    assert dilated.depthwise.dilation == (2, 2) and dilated.depthwise.padding == (2, 2)
    assert dilated(torch.randn(1, 8, 9, 9)).shape == (1, 8, 9, 9)
    unit = SeparableConv2d(8, 8, "shufflenet:2", kernel_size=3, stride=2)
    assert unit.depthwise is None and unit.pointwise.stride == 2 and unit.stride == 2


def test_test_time_options_are_declared_by_the_substitute_class() -> None:
    from thesislib.compressed import SUBSTITUTES, substitute_class
    from thesislib.experiments.models import build as build_experiment_model
    from thesislib.experiments.spec import ModelRef

    assert dict(substitute_class("acdc").inference_options) == {"fast_path": True}
    assert all(not cls.inference_options for name, cls in SUBSTITUTES.items() if name != "acdc")
    with pytest.raises(ValueError, match="valid"):
        substitute_class("fft")
    ref = ModelRef(kind="compressed", name="wrn-16-2", substitute="acdc", setting=2.0)
    model = build_experiment_model(ref, 10)
    acdc = [m for m in model.modules() if m.__class__.__name__ == "ACDC"]
    assert acdc and all(m.fast_path for m in acdc)
