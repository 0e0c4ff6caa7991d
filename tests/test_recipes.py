"""Tests of the CIFAR training of thesislib.training and the protocols of thesislib.moonshine.recipes: the protocols as configuration, training, caching and resuming.

Training uses a tiny stand-in network with the Moonshine forward contract (logits, [three group outputs])
on 512 real CIFAR-10 images (the offline ``cifar10-jpeg``), so the file takes a few seconds per run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from thesislib import reference
from thesislib.data.augment import CifarBatches
from thesislib.data.cifar import CifarData, CifarSubset
from thesislib.moonshine.blocks import parse_block
from thesislib.moonshine.distillation import DistillationSettings
from thesislib.moonshine.recipes import RECIPES, ZAGORUYKO_CIFAR, ZAGORUYKO_IMAGENET
from thesislib.paths import PROJECT_ROOT
from thesislib.training import ModelSpec, Recipe, config_hash, train


class TinyNet(nn.Module):
    """Stand-in with the Moonshine contract: forward(x) -> (logits, [conv2, conv3, conv4 outputs])."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.g1 = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1))
        self.g2 = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 2 * width, 3, 2, 1))
        self.g3 = nn.Sequential(
            nn.BatchNorm2d(2 * width), nn.ReLU(), nn.Conv2d(2 * width, 4 * width, 3, 2, 1)
        )
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        a = self.g1(self.stem(x))
        b = self.g2(a)
        c = self.g3(b)
        return self.fc(torch.relu(c).mean((2, 3))), [a, b, c]


def tiny_builder(spec: ModelSpec, classes: int) -> nn.Module:
    widths = {"tiny-teacher": 16, "tiny-student": 4}
    return TinyNet(widths[spec.name], classes)


TEACHER, STUDENT = ModelSpec("tiny-teacher"), ModelSpec("tiny-student")
FAST = Recipe(epochs=2, batch_size=64, lr=0.05, schedule="cosine")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these tiny convolutions gain nothing from more, and lose a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> CifarData:
    return CifarSubset("cifar10-jpeg", train_size=512, test_size=256, seed=0).load()


# ----------------------------------------------------------------------------------------------------------
# Configuration


def test_paper_recipes_are_the_thesis_protocols() -> None:
    cifar = ZAGORUYKO_CIFAR  # §4.4.1
    assert (cifar.batch_size, cifar.epochs, cifar.momentum, cifar.lr, cifar.weight_decay) == (
        128,
        200,
        0.9,
        0.1,
        5e-4,
    )
    assert (cifar.schedule, cifar.milestones, cifar.gamma) == ("step", (60, 120, 160), 0.2)
    imagenet = ZAGORUYKO_IMAGENET  # §4.5.1
    assert (imagenet.batch_size, imagenet.epochs, imagenet.lr, imagenet.weight_decay) == (256, 100, 0.1, 1e-4)
    assert (imagenet.milestones, imagenet.gamma, imagenet.momentum) == ((30, 60, 90), 0.1, 0.9)
    assert RECIPES == {"cifar": ZAGORUYKO_CIFAR, "imagenet": ZAGORUYKO_IMAGENET}
    assert cifar.cutout == imagenet.cutout == 0  # chapter 4 crops and flips only (§4.4.1)


@pytest.mark.parametrize("recipe", [ZAGORUYKO_CIFAR, ZAGORUYKO_IMAGENET, FAST.replace(epochs=5)])
def test_torch_scheduler_follows_lr_at(recipe: Recipe) -> None:
    parameter = nn.Parameter(torch.zeros(1))
    model = nn.Module()
    model.p = parameter
    optimizer = recipe.optimizer(model)
    steps_per_epoch = 3
    scheduler, per = recipe.scheduler(optimizer, steps_per_epoch)
    assert per == ("step" if recipe.schedule == "cosine" else "epoch")
    for epoch in range(1, recipe.epochs + 1):
        for step in range(steps_per_epoch):
            expected = recipe.lr_at(epoch, step / steps_per_epoch if per == "step" else 0.0)
            assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
            optimizer.step()
            if per == "step":
                scheduler.step()
        if per == "epoch":
            scheduler.step()


def test_step_schedule_values() -> None:
    lrs = {epoch: ZAGORUYKO_CIFAR.lr_at(epoch) for epoch in (1, 60, 61, 120, 121, 160, 161, 200)}
    assert lrs[1] == lrs[60] == 0.1
    assert lrs[61] == pytest.approx(0.02) and lrs[120] == pytest.approx(0.02)
    assert lrs[121] == pytest.approx(0.004) and lrs[161] == pytest.approx(0.0008)
    assert ZAGORUYKO_IMAGENET.lr_at(31) == pytest.approx(0.01) and ZAGORUYKO_IMAGENET.lr_at(
        91
    ) == pytest.approx(1e-4)
    assert ZAGORUYKO_CIFAR.scaled(20).milestones == (6, 12, 16)
    assert ZAGORUYKO_CIFAR.scaled(2).milestones == (1,)


def test_recipe_validation() -> None:
    with pytest.raises(ValueError, match="valid schedules"):
        Recipe(schedule="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="milestones"):
        Recipe(milestones=(120, 60))
    with pytest.raises(ValueError, match="gamma"):
        Recipe(gamma=0.0)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="cutout"):
            Recipe(cutout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epoch must be"):
        ZAGORUYKO_CIFAR.lr_at(201)


def test_every_recipe_field_is_part_of_the_run_identity() -> None:
    """The identity is the whole recipe: changing any field (Cutout included) gives another run id."""
    identity = ZAGORUYKO_CIFAR.identity()
    assert set(identity) == {f.name for f in dataclasses.fields(Recipe)}
    changes = {
        "epochs": 3,
        "batch_size": 64,
        "lr": 0.05,
        "momentum": 0.5,
        "weight_decay": 1e-4,
        "nesterov": True,
    }
    changes |= {"schedule": "cosine", "milestones": (10,), "gamma": 0.1, "cutout": 16}
    keys = {
        config_hash(ZAGORUYKO_CIFAR.replace(**{name: value}).identity()) for name, value in changes.items()
    }
    assert len(keys) == len(changes) and config_hash(identity) not in keys
    assert ZAGORUYKO_CIFAR.replace(cutout=16).scaled(20).cutout == 16


def test_notebook_paper_profile_is_the_thesis_protocol() -> None:
    profiles = yaml.safe_load((PROJECT_ROOT / "notebooks" / "profiles.yml").read_text())
    paper = profiles["05_moonshine"]["paper"]
    recipe = Recipe(
        epochs=paper["epochs"],
        batch_size=paper["batch_size"],
        lr=paper["lr"],
        momentum=paper["momentum"],
        weight_decay=paper["weight_decay"],
        schedule=paper["schedule"],
        milestones=tuple(paper["milestones"]),
        gamma=paper["gamma"],
        nesterov=paper["nesterov"],
    )
    assert recipe == ZAGORUYKO_CIFAR
    assert paper["resolution"] == 32 and paper["kd_form"] == "kl_div_mean" and len(paper["seeds"]) >= 3
    assert paper["teacher_epochs"] == 200
    assert paper["source"] == "cifar10" and paper["train_size"] is None and paper["test_size"] is None
    assert paper["teacher"] == ["wrn-40-2", "S"]
    assert (paper["alpha"], paper["temperature"], paper["beta"]) == (0.9, 4.0, 1000.0)
    # Every student of Table 4.3, each a valid block spec (a YAML comma must not split "BG(2,2)").
    thesis = reference.table("ch4_table43")
    expected = {
        (m, b)
        for m, b, role in zip(thesis["model"], thesis["block"], thesis["role"], strict=True)
        if role == "student"
    }
    assert {tuple(s) for s in paper["students"]} == expected and len(paper["students"]) == len(expected)
    for _, block in paper["students"]:
        parse_block(block)
    assert paper["cheap_student"] in paper["students"] and paper["small_student"] in paper["students"]


def test_cifar_subset_is_stratified_and_seeded(data: CifarData) -> None:
    assert data.train_images.shape == (512, 3, 32, 32) and data.train_images.dtype == torch.uint8
    counts = torch.bincount(data.train_labels, minlength=10)
    assert counts.sum() == 512 and counts.max() - counts.min() <= 1
    assert len(data.test_labels) == 256
    again = CifarSubset("cifar10-jpeg", train_size=512, test_size=256, seed=0).load()
    assert torch.equal(again.train_images, data.train_images)
    other = CifarSubset("cifar10-jpeg", train_size=512, test_size=256, seed=1).load()
    assert not torch.equal(other.train_images, data.train_images)
    assert data.identity == {
        "name": "cifar10-jpeg",
        "train_size": 512,
        "test_size": 256,
        "seed": 0,
        "resolution": 32,
    }


def test_downsampled_subset_pools_and_keys_the_resolution(data: CifarData) -> None:
    small = CifarSubset("cifar10-jpeg", train_size=512, test_size=256, seed=0, resolution=16).load()
    assert small.train_images.shape == (512, 3, 16, 16) and small.train_images.dtype == torch.uint8
    expected = data.train_images[:2].float().reshape(2, 3, 16, 2, 16, 2).mean((3, 5)).round()
    assert torch.equal(small.train_images[:2].float(), expected)
    assert small.identity["resolution"] == 16 and data.identity["resolution"] == 32
    with pytest.raises(ValueError, match="resolution"):
        CifarSubset("cifar10-jpeg", train_size=8, test_size=8, resolution=12).load()


def test_shared_teacher_check_records_and_rejects_another_teacher(data: CifarData, tmp_path: Path) -> None:
    from thesislib.training import check_shared_teacher

    recipe = FAST.replace(epochs=1)
    first = train(TEACHER, data, recipe, builder=tiny_builder, device="cpu", progress=False)
    other = train(
        TEACHER, data, recipe.replace(batch_size=32), builder=tiny_builder, device="cpu", progress=False
    )
    assert first.run_id != other.run_id
    check_shared_teacher(tmp_path, first, "05_moonshine", record=True)
    assert check_shared_teacher(tmp_path, first, "06_linear_substitutions")["run_id"] == first.run_id
    with pytest.raises(ValueError, match="not the teacher recorded"):
        check_shared_teacher(tmp_path, other, "06_linear_substitutions")
    check_shared_teacher(tmp_path, other, "05_moonshine", record=True)  # 05 re-records after a change


# ----------------------------------------------------------------------------------------------------------
# Training


def test_two_epochs_on_512_images_lower_the_loss(data: CifarData) -> None:
    run = train(STUDENT, data, FAST, builder=tiny_builder, device="cpu", progress=False)
    assert list(run.history["epoch"]) == [1, 2]
    assert run.history["loss"].iloc[1] < run.history["loss"].iloc[0]
    assert 0 <= run.test_error <= 100
    assert len(run.steps) == 2 * 8 and {"ce", "train_error"} <= set(run.steps.columns)
    assert not run.model.training


@pytest.mark.parametrize(("method", "parts"), [("kd", ["ce", "kd"]), ("at", ["ce", "at1", "at2", "at3"])])
def test_students_log_their_loss_terms(
    data: CifarData, method: str, parts: list[str], tmp_path: Path
) -> None:
    teacher = train(TEACHER, data, FAST.replace(epochs=1), builder=tiny_builder, device="cpu", progress=False)
    student = train(
        STUDENT,
        data,
        FAST.replace(epochs=1),
        distillation=DistillationSettings(method),
        teacher=teacher,
        builder=tiny_builder,
        device="cpu",
        progress=False,
    )
    assert set(parts) <= set(student.steps.columns)
    total = student.steps[parts].sum(axis=1)
    torch.testing.assert_close(
        torch.tensor(total.values), torch.tensor(student.steps["loss"].values), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="needs a trained teacher"):
        train(STUDENT, data, FAST, distillation=DistillationSettings(method), builder=tiny_builder)


def test_teacher_checkpoint_is_reused_and_students_know_their_teacher(
    data: CifarData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = FAST.replace(epochs=1)
    first = train(
        TEACHER, data, recipe, builder=tiny_builder, device="cpu", progress=False, checkpoint_dir=tmp_path
    )
    assert first.checkpoint is not None and first.checkpoint.exists()

    def no_training(self: CifarBatches, epoch: int) -> None:
        raise AssertionError("a cached run must not train again")

    monkeypatch.setattr(CifarBatches, "_batches", no_training)
    again = train(
        TEACHER, data, recipe, builder=tiny_builder, device="cpu", progress=False, checkpoint_dir=tmp_path
    )
    monkeypatch.undo()
    assert again.checkpoint == first.checkpoint and again.run_id == first.run_id
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert again.test_error == first.test_error

    other_teacher = train(
        TEACHER,
        data,
        recipe.replace(lr=0.02),
        builder=tiny_builder,
        device="cpu",
        progress=False,
        checkpoint_dir=tmp_path,
    )
    students = [
        train(
            STUDENT,
            data,
            recipe,
            distillation=DistillationSettings("at"),
            teacher=t,
            builder=tiny_builder,
            device="cpu",
            progress=False,
            checkpoint_dir=tmp_path,
        )
        for t in (first, other_teacher)
    ]
    assert students[0].checkpoint != students[1].checkpoint
    assert len(list(tmp_path.glob("*.pt"))) == 4


def test_resume_after_interruption_is_bit_identical(
    data: CifarData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = train(TEACHER, data, FAST.replace(epochs=1), builder=tiny_builder, device="cpu", progress=False)
    kwargs = dict(
        distillation=DistillationSettings("at"),
        teacher=teacher,
        builder=tiny_builder,
        device="cpu",
        progress=False,
    )
    straight = train(STUDENT, data, FAST, checkpoint_dir=tmp_path / "straight", **kwargs)

    original = CifarBatches._batches

    def interrupted(self: CifarBatches, epoch: int):  # type: ignore[no-untyped-def]
        if epoch == 2 and self.augment:
            raise KeyboardInterrupt("simulated interruption in epoch 2")
        return original(self, epoch)

    monkeypatch.setattr(CifarBatches, "_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(STUDENT, data, FAST, checkpoint_dir=tmp_path / "resumed", **kwargs)
    monkeypatch.undo()
    resumed = train(STUDENT, data, FAST, checkpoint_dir=tmp_path / "resumed", **kwargs)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert straight.history.drop(columns="seconds").equals(resumed.history.drop(columns="seconds"))
    assert straight.steps.equals(resumed.steps)


def test_cutout_reaches_the_batches_and_the_run_key(data: CifarData, tmp_path: Path) -> None:
    small = CifarData(*(t[:128] for t in (data.train_images, data.train_labels)), data.test_images[:64],
                      data.test_labels[:64], name=data.name, identity={"test": "cutout"})  # fmt: skip
    recipe = FAST.replace(epochs=1)
    seen: set[tuple[bool, int]] = set()
    original = CifarBatches._batches

    def record(self: CifarBatches, epoch: int):  # type: ignore[no-untyped-def]
        seen.add((self.augment, self.cutout))
        return original(self, epoch)

    runs = {}
    for side in (0, 8):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(CifarBatches, "_batches", record)
            runs[side] = train(
                STUDENT,
                small,
                recipe.replace(cutout=side),
                builder=tiny_builder,
                device="cpu",
                progress=False,
                checkpoint_dir=tmp_path,
            )
    assert seen == {(True, 0), (True, 8), (False, 0)}  # training batches carry it, test batches never
    assert runs[0].checkpoint != runs[8].checkpoint and runs[0].run_id != runs[8].run_id
    assert not runs[0].steps["loss"].equals(runs[8].steps["loss"])
    stored = {side: torch.load(run.checkpoint, weights_only=True)["identity"] for side, run in runs.items()}
    assert stored[0]["hparams"]["recipe"]["cutout"] == 0 and stored[8]["hparams"]["recipe"]["cutout"] == 8
    assert runs[0].checkpoint.name.endswith(f"-{config_hash(stored[0]['hparams'])}.pt")


def test_training_validation(data: CifarData) -> None:
    teacher_like = train(
        TEACHER, data, FAST.replace(epochs=1), builder=tiny_builder, device="cpu", progress=False
    )
    with pytest.raises(ValueError, match="scratch"):
        train(STUDENT, data, FAST, teacher=teacher_like, builder=tiny_builder)
    assert ModelSpec("wrn-40-2", "BG(2,M/8)").slug == "wrn-40-2-BG_2_M_8"


def test_registry_models_train_with_attention_transfer(data: CifarData) -> None:
    """Integration with the model registry: a WRN teacher and a cheap-block student of the same architecture."""
    recipe = Recipe(epochs=1, batch_size=128, lr=0.05, schedule="cosine")
    small = CifarData(
        data.train_images[:256],
        data.train_labels[:256],
        data.test_images[:128],
        data.test_labels[:128],
        name=data.name,
        identity={"test": "registry"},
    )
    teacher = train(ModelSpec("wrn-10-1"), small, recipe, device="cpu", progress=False)
    student = train(
        ModelSpec("wrn-10-1", "B(2)"),
        small,
        recipe,
        distillation=DistillationSettings("at"),
        teacher=teacher,
        device="cpu",
        progress=False,
    )
    assert {"at1", "at2", "at3"} <= set(student.steps.columns)
    assert (student.steps[["at1", "at2", "at3"]] > 0).all().all()
