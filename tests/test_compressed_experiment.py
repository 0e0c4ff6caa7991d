"""Tests of thesislib.compressed.experiment: the CPU-scale chapter-5 experiment and the §5.3.1 protocols.

Training uses a WRN-10-1 with separable, substituted convolutions on 96 synthetic 8×8 images whose
class is written into their colour (learnable in a few steps; the WRN's pooling is global, so the
network runs at any size), so each run takes about a second even on a loaded CPU.
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
import torch
import yaml

from thesislib.compressed import SUBSTITUTES, Substitute, crs_factor
from thesislib.compressed.budget import count_parameters
from thesislib.compressed.experiment import (
    METHODS,
    PROTOCOLS,
    CRSRecipe,
    SubstitutionRun,
    ablation,
    matched_budgets,
    plan_runs,
    run_experiment,
    solve_grid,
)
from thesislib.data.cifar import CifarData
from thesislib.models import build_model, parameter_counter
from thesislib.moonshine.recipes import ZAGORUYKO_CIFAR
from thesislib.paths import PROJECT_ROOT
from thesislib.runs.profiles import notebook_parameters
from thesislib.training import ModelSpec, Recipe, train

NETWORK = "wrn-10-1"


def synthetic_data(n_train: int = 96, n_test: int = 40, seed: int = 0, size: int = 8) -> CifarData:
    """Images whose mean colour encodes the class (plus noise): easy to learn, no files needed."""
    g = torch.Generator().manual_seed(seed)

    def part(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 10
        base = torch.stack([(labels * 25) % 256, (labels * 70) % 256, 255 - labels * 25], dim=1)
        noise = torch.randint(-30, 31, (n, 3, size, size), generator=g)
        images = (base[:, :, None, None] + noise).clamp(0, 255).to(torch.uint8)
        return images, labels.long()

    train_images, train_labels = part(n_train)
    test_images, test_labels = part(n_test)
    return CifarData(
        train_images, train_labels, test_images, test_labels, identity={"synthetic": seed, "n": n_train}
    )


RECIPE = CRSRecipe(epochs=3, batch_size=16, lr=0.05, weight_decay=5e-4, schedule="cosine")


def tiny_grid() -> pd.DataFrame:
    count = parameter_counter(NETWORK)
    return solve_grid(count, [4000.0], methods=("rf",), labels=["B1"])


# ----------------------------------------------------------------------------------------------------------
# Networks and budgets


def test_student_is_separable_and_substituted() -> None:
    model = build_model(NETWORK, substitute="tt:0.5")
    subs = [m for m in model.modules() if isinstance(m, Substitute)]
    assert subs and all(m.method == "tt" for m in subs)
    # two separable convs per block, one block per group in a WRN-10
    assert len(subs) == 2 * 3
    logits, groups = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and len(groups) == 3


@pytest.mark.parametrize(
    ("method", "tuning"),
    [
        ("rf", 0.3),
        ("acdc", 3.0),
        ("hashed", 0.05),
        ("tt", 0.4),
        ("tucker", 0.2),
        ("shufflenet", 2.0),
        ("conv1x1", 0.0),
    ],
)
def test_parameter_counter_equals_building_the_network(method: str, tuning: float) -> None:
    setting = None if method == "conv1x1" else tuning
    built = count_parameters(lambda: build_model(NETWORK, substitute=method, setting=setting))
    assert parameter_counter(NETWORK)(method, tuning) == built


def test_budget_grid_hits_targets_inside_the_common_support() -> None:
    count = parameter_counter(NETWORK)
    curves, (low, high), targets = matched_budgets(count, budgets=2, points=9)
    assert set(curves["method"]) == set(METHODS)
    assert targets == [high, low] and low < high
    # Fig. 5.5: the top is the largest linear ShuffleNet network (1 group); the bottom no lower than
    # the smallest RF one (rank scale 0.03; in this tiny WRN-10-1 one ACDC layer is slightly larger)
    assert high == count("shufflenet", 1.0) and low == max(count("rf", 0.03), count("acdc", 1.0))
    grid = solve_grid(count, targets)
    assert len(grid) == 2 * len(METHODS) and grid["supported"].all()
    # the networks built are the ones counted, and the continuous methods land within 5%
    for row in grid.itertuples():
        assert row.parameters == count(row.method, row.tuning)
        if not SUBSTITUTES[row.method].tuning_range.integer:
            assert abs(row.relative_error) < 0.05, row


def test_plan_runs_main_grid_then_ablations() -> None:
    grid = pd.DataFrame(
        [
            {"method": m, "budget": b, "tuning": 0.5, "parameters": 100}
            for m in ("rf", "tt")
            for b in ("B1", "B2")
        ]
    )
    runs = plan_runs(grid)
    assert [r.arm for r in runs[:4]] == ["AT + CRS"] * 4
    ablations = runs[4:]
    assert {(r.method, r.budget, r.arm) for r in ablations} == {
        ("rf", "B2", "AT, no CRS"),
        ("rf", "B2", "scratch + CRS"),
        ("tt", "B2", "AT, no CRS"),
        ("tt", "B2", "scratch + CRS"),
    }
    assert len(plan_runs(grid, ablation_budgets=["B1", "B2"], ablation_methods=["tt"])) == 4 + 4
    with pytest.raises(ValueError, match="valid"):
        plan_runs(grid, ablation_budgets=["B9"])
    with pytest.raises(ValueError, match="valid"):
        plan_runs(grid, ablation_methods=["acdc"])


# ----------------------------------------------------------------------------------------------------------
# CRS weight decay in the optimiser


def test_crs_recipe_uses_the_network_wide_ratio_of_the_thesis_code() -> None:
    model = build_model(NETWORK, substitute="tt:0.5")
    ratio = sum(p.numel() for p in model.parameters()) / sum(
        p.numel() for p in build_model(NETWORK).parameters()
    )
    decays = sorted({round(g["weight_decay"], 12) for g in RECIPE.optimizer(model).param_groups})
    assert decays == [pytest.approx(5e-4 * ratio), 5e-4]
    with pytest.raises(ValueError, match="scope"):
        RECIPE.replace(crs_scope="block")


def test_summed_decay_and_the_thesis_matched_arm() -> None:
    from thesislib.compressed.experiment import THESIS_SUMMED_DECAY, matched_weight_decay, summed_decay

    # 200 epochs x 391 steps, lr 0.1 (60), 0.02 (60), 0.004 (40), 0.0008 (40), wd 5e-4: 1.445 (§5.3.1)
    assert (
        pytest.approx(391 * 5e-4 * (60 * 0.1 + 60 * 0.02 + 40 * 0.004 + 40 * 0.0008)) == THESIS_SUMMED_DECAY
    )
    one_epoch = CRSRecipe(epochs=1, batch_size=128, lr=0.1, schedule="cosine")
    assert summed_decay(one_epoch, 391) == pytest.approx(
        5e-4 * 0.1 * (391 + 1) / 2, rel=1e-9
    )  # Σ cos(πk/n) over k < n is 1
    wd = matched_weight_decay(one_epoch, 391)
    assert summed_decay(one_epoch.replace(weight_decay=wd), 391) == pytest.approx(THESIS_SUMMED_DECAY)
    runs = plan_runs(tiny_grid(), matched_decay=wd)
    matched = [r for r in runs if r.weight_decay is not None]
    assert [(r.crs, r.distillation, r.decay) for r in matched] == [
        (True, "at", "matched"),
        (False, "at", "matched"),
    ]
    assert len({r.arm for r in runs}) == len(runs)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        summed_decay(one_epoch, 0)


def test_crs_recipe_layer_scope_carries_each_layers_ratio() -> None:
    model = build_model(NETWORK, substitute="hashed:0.1")
    optimizer = RECIPE.replace(crs_scope="layer").optimizer(model)
    subs = {id(p): m for m in model.modules() if isinstance(m, Substitute) for p in m.parameters()}
    seen = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) in subs:
                seen += 1
                assert group["weight_decay"] == pytest.approx(5e-4 * crs_factor(subs[id(p)]))
                assert group["weight_decay"] < 5e-4
            else:
                assert group["weight_decay"] == 5e-4
    assert seen == len(subs)
    # every trainable parameter is optimised exactly once
    ids = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    off = RECIPE.replace(crs=False).optimizer(model)
    assert {g["weight_decay"] for g in off.param_groups} == {5e-4}


def test_training_uses_the_crs_groups(tmp_path) -> None:
    data = synthetic_data()
    groups = {}
    for crs in (True, False):
        trained = train(
            ModelSpec(NETWORK, substitute="rf:0.25"),
            data,
            RECIPE.replace(epochs=1, crs=crs),
            checkpoint_dir=tmp_path,
            progress=False,
        )
        state = torch.load(trained.checkpoint, weights_only=True)
        groups[crs] = [g["weight_decay"] for g in state["optimizer"]["param_groups"]]
    assert len(groups[True]) == 2 * 3 + 1  # one group per substitute + the dense rest
    assert min(groups[True]) < 5e-4 and max(groups[True]) == 5e-4
    assert set(groups[False]) == {5e-4}


# ----------------------------------------------------------------------------------------------------------
# Training


def test_tiny_training_lowers_the_loss() -> None:
    trained = train(ModelSpec(NETWORK, substitute="tt:0.5"), synthetic_data(), RECIPE, progress=False)
    losses = trained.history["loss"].tolist()
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.9 * losses[0], losses
    assert trained.steps["loss"].iloc[-5:].mean() < trained.steps["loss"].iloc[:5].mean()


def test_same_seed_same_result_and_the_ablation_tables(tmp_path) -> None:
    data = synthetic_data()
    teacher = train(ModelSpec(NETWORK, "S"), data, Recipe(epochs=1, batch_size=16, lr=0.05), progress=False)
    runs = plan_runs(tiny_grid())
    assert len(runs) == 3
    recipe = RECIPE.replace(epochs=1)
    first = run_experiment(runs, NETWORK, data, recipe, teacher, seed=3, progress=False)
    again = run_experiment(runs, NETWORK, data, recipe, teacher, seed=3, progress=False)
    columns = ["method", "arm", "test_error", "final_loss", "run_id"]
    pd.testing.assert_frame_equal(first[columns], again[columns])
    other = run_experiment(runs[:1], NETWORK, data, recipe, teacher, seed=4, progress=False)
    assert other["final_loss"].iloc[0] != first["final_loss"].iloc[0]
    # the three arms are distinct runs
    assert first["run_id"].nunique() == len(runs)

    crs = ablation(first, "crs")
    at = ablation(first, "at")
    assert list(crs.index) == list(at.index) == [("rf", "B1")]
    for table in (crs, at):
        assert (table["benefit"] == table["without"] - table["with"]).all()
    main = first[(first["arm"] == "AT + CRS")].set_index(["method", "budget"])["test_error"]
    assert (crs["with"] == main).all() and (at["with"] == main).all()
    with pytest.raises(ValueError, match="valid"):
        ablation(first, "kd")


def test_runs_need_a_teacher_for_at() -> None:
    run = SubstitutionRun("rf", 0.25, "B1", 1000)
    with pytest.raises(ValueError, match="teacher"):
        run_experiment([run], NETWORK, synthetic_data(), RECIPE, None, progress=False)


# ----------------------------------------------------------------------------------------------------------
# The thesis' protocols (§5.3.1) as configuration


def test_protocols_are_the_thesis_settings() -> None:
    wrn = PROTOCOLS["wrn-28-10"]
    assert (wrn.epochs, wrn.batch_size, wrn.lr, wrn.momentum, wrn.weight_decay) == (200, 128, 0.1, 0.9, 5e-4)
    assert (wrn.schedule, wrn.milestones, wrn.gamma) == ("step", (60, 120, 160), 0.2)
    assert (wrn.distillation, wrn.beta, wrn.alpha, wrn.crs) == ("at", 1000.0, 0.0, True)
    assert wrn.budgets == (2.38e6, 1.2e6, 0.6e6)
    recipe = wrn.recipe()
    assert recipe.lr_at(60) == pytest.approx(0.1) and recipe.lr_at(61) == pytest.approx(0.02)
    assert recipe.lr_at(200) == pytest.approx(0.1 * 0.2**3)
    assert wrn.recipe(crs=False).crs is False

    darts = PROTOCOLS["darts"]
    assert (darts.epochs, darts.batch_size, darts.lr, darts.weight_decay) == (600, 96, 0.025, 3e-4)
    assert darts.schedule == "cosine" and darts.auxiliary_head and darts.drop_path == (0.0, 0.2)
    assert darts.budgets == (1.42e6, 0.83e6, 0.49e6)
    assert darts.recipe().lr_at(600, 1.0) == pytest.approx(0.0, abs=1e-12)

    imagenet = PROTOCOLS["wrn-50-2"]
    assert (imagenet.epochs, imagenet.batch_size, imagenet.lr, imagenet.weight_decay) == (90, 256, 0.1, 1e-4)
    assert (imagenet.milestones, imagenet.gamma, imagenet.dataset) == ((30, 60), 0.1, "imagenet")
    assert imagenet.budgets == (17.7e6, 4.35e6)
    assert "cutout" not in imagenet.augmentation and "cutout" in wrn.augmentation
    assert all(p.momentum == 0.9 and p.crs for p in PROTOCOLS.values())


def test_cifar_protocols_use_cutout_16_and_chapter_4_does_not() -> None:
    for name in ("wrn-28-10", "darts"):  # §5.3.1: "random crops, left-right flips and Cutout"
        protocol = PROTOCOLS[name]
        assert protocol.cutout == 16 and "cutout" in protocol.augmentation
        assert protocol.recipe().cutout == protocol.recipe(crs=False).cutout == 16
        assert protocol.notebook_parameters()["cutout"] == 16
    assert PROTOCOLS["wrn-50-2"].cutout == 0 and PROTOCOLS["wrn-50-2"].recipe().cutout == 0
    assert ZAGORUYKO_CIFAR.cutout == 0  # chapter 4's protocol (§4.4.1) has crops and flips only
    # a plain Recipe handed to run_experiment keeps its Cutout as a CRSRecipe
    assert CRSRecipe(**dataclasses.asdict(Recipe(cutout=16))).cutout == 16
    with pytest.raises(ValueError, match="disagree"):
        dataclasses.replace(PROTOCOLS["wrn-28-10"], cutout=0)
    with pytest.raises(ValueError, match="disagree"):
        dataclasses.replace(PROTOCOLS["wrn-50-2"], cutout=16)


def test_paper_profile_is_the_wrn_28_10_protocol() -> None:
    profiles = yaml.safe_load((PROJECT_ROOT / "notebooks" / "profiles.yml").read_text())
    paper = profiles["06_linear_substitutions"]["paper"]
    expected = PROTOCOLS["wrn-28-10"].notebook_parameters()
    for name, value in expected.items():
        assert name in paper, name
        if isinstance(value, float):
            assert math.isclose(float(paper[name]), value), (name, paper[name], value)
        elif isinstance(value, list):
            assert [float(v) for v in paper[name]] == [float(v) for v in value], name
        else:
            assert paper[name] == value, name
    assert paper["teacher"] == ["wrn-28-10", "S"] and paper["teacher_epochs"] == 200
    assert paper["source"] == "cifar10" and paper["train_size"] is None and paper["test_size"] is None
    assert paper["methods"] == list(METHODS)
    # Cutout: a parameter of the notebook, off at CPU scale, 16 px in the paper profile
    cell = notebook_parameters(PROJECT_ROOT / "notebooks" / "06_linear_substitutions.ipynb")
    assert cell["cutout"] == "0" and paper["cutout"] == 16  # the cell: defaults as source text
