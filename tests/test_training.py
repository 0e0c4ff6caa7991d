"""Tests of thesislib.training: devices, seeding, run identity, on-device batches and the Trainer.

Everything runs on the CPU with a tiny MLP (with dropout, so the random number generators matter) on
96 synthetic points, so the whole file takes a few seconds.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from thesislib.training import (
    NOT_HASHED,
    StepBatches,
    TensorBatches,
    TrainConfig,
    Trainer,
    checkpoint_path,
    config_hash,
    seed_everything,
    select_device,
    to_device,
)

N, BATCH = 96, 16  # 6 steps per epoch
STEPS_PER_EPOCH = N // BATCH


# ----------------------------------------------------------------------------------------------------------
# A tiny problem


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N, 6, generator=generator)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def make_model(init_seed: int = 1234) -> nn.Module:
    torch.manual_seed(init_seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))


def cross_entropy(model: nn.Module, batch: Any) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def make_batches(source: str) -> Any:
    """A fresh batch source, as a new process would build it."""
    x, y = make_data()
    if source == "tensor_batches":  # with a random augmentation drawn from the global generator
        noise = lambda batch: (batch[0] + 0.05 * torch.randn_like(batch[0]), batch[1])  # noqa: E731
        return TensorBatches(x, y, batch_size=BATCH, seed=3, transform=noise)
    if source == "dataloader":
        return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    if source == "dataloader_generator":
        generator = torch.Generator().manual_seed(7)
        return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True, generator=generator)
    raise AssertionError(source)


def make_trainer(
    source: str = "tensor_batches",
    *,
    loss_fn: Any = cross_entropy,
    init_seed: int = 1234,
    lr: float = 0.1,
    hparams: Any = None,
    evaluate: Any = None,
    **config: Any,
) -> Trainer:
    """Model, optimizer (momentum + weight decay), StepLR scheduler and data built from scratch."""
    settings = {"epochs": 4, "seed": 0, "progress": False} | config
    model = make_model(init_seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3)
    step_size = 3 if settings.get("schedule_per", "epoch") == "epoch" else 5
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=0.5)
    return Trainer(
        model,
        optimizer,
        make_batches(source),
        loss_fn,
        TrainConfig(**settings),
        scheduler=scheduler,
        evaluate=evaluate,
        hparams=hparams,
    )


class Crash(Exception):
    """Stands for a kill / KeyboardInterrupt in the middle of training."""


def crash_after(steps: int) -> Any:
    """A cross-entropy loss_fn that raises ``Crash`` on step ``steps + 1``."""
    calls = 0

    def loss_fn(model: nn.Module, batch: Any) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls > steps:
            raise Crash
        return cross_entropy(model, batch)

    return loss_fn


def assert_same_run(a: Trainer, b: Trainer) -> None:
    """Bit-identical metrics (all but wall time), per-step logs and weights."""
    pd.testing.assert_frame_equal(
        a.history.drop(columns="seconds"), b.history.drop(columns="seconds"), check_exact=True
    )
    pd.testing.assert_frame_equal(a.step_history, b.step_history, check_exact=True)
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


# ----------------------------------------------------------------------------------------------------------
# Devices and seeds


def test_select_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")
    assert select_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("banana", "unknown device"),
        ("xla", "unsupported device"),
        ("cuda", "CUDA is not available"),
        ("cuda:1", "CUDA is not available"),
        ("mps", "MPS is not available"),
    ],
)
def test_select_device_rejects_unknown_or_missing(
    monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=message):
        select_device(name)


def test_select_device_rejects_missing_cuda_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert select_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="1 CUDA device"):
        select_device("cuda:3")


def test_seed_everything_seeds_python_numpy_and_torch() -> None:
    def draw() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(5)
    first = draw()
    seed_everything(5)
    assert draw() == first
    seed_everything(6)
    assert all(a != b for a, b in zip(draw(), first, strict=True))
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_seed_everything_deterministic_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)  # restored after the test
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic


# ----------------------------------------------------------------------------------------------------------
# Run identity


@dataclasses.dataclass
class Hparams:
    width: int = 16
    lr: float = 0.1
    path: Path = Path("data/mnist")
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(epochs=3))
    verbose: bool = dataclasses.field(default=False, metadata=NOT_HASHED)


def test_config_hash_is_stable_and_order_free() -> None:
    # A golden value: changing how configurations are hashed orphans every cached checkpoint.
    assert config_hash({"lr": 0.1, "widths": [8, 16], "name": "mlp"}) == "ff503dab01b8"
    assert config_hash({"b": 2, "a": 1}) == config_hash({"a": 1, "b": 2})
    assert len(config_hash(Hparams())) == 12
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_config_hash_dataclass_hashes_like_its_fields_without_not_hashed_ones() -> None:
    as_dict = {
        "width": 16,
        "lr": 0.1,
        "path": "data/mnist",
        "train": {
            "epochs": 3,
            "seed": 0,
            "amp": False,
            "grad_clip": None,
            "schedule_per": "epoch",
            "deterministic": False,
        },
    }
    assert config_hash(Hparams()) == config_hash(as_dict)
    assert config_hash(Hparams(verbose=True)) == config_hash(Hparams())
    where = TrainConfig(device="cpu", checkpoint="somewhere.pt", progress=False, log_every=1)
    assert config_hash(where) == config_hash(TrainConfig())
    assert config_hash(TrainConfig(seed=1)) != config_hash(TrainConfig())
    assert config_hash(Hparams(train=TrainConfig(epochs=4))) != config_hash(Hparams())
    with pytest.raises(TypeError, match="function"):
        config_hash({"loss": cross_entropy})


def test_checkpoint_path_is_named_by_config(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path, "teacher", Hparams())
    assert path == tmp_path / f"teacher-{config_hash(Hparams())}.pt"
    assert checkpoint_path(str(tmp_path), "teacher", Hparams()) == path
    assert checkpoint_path(tmp_path, "teacher", Hparams(width=32)) != path


# ----------------------------------------------------------------------------------------------------------
# Batches


def test_tensor_batches_visit_every_sample_once_per_epoch() -> None:
    x = torch.arange(10)
    batches = TensorBatches(x, x * 2, batch_size=4, seed=1)
    assert len(batches) == 3
    epoch = list(batches)
    assert [len(b[0]) for b in epoch] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in epoch]).sort().values, x)
    assert all(torch.equal(b[1], b[0] * 2) for b in epoch)  # rows stay aligned

    dropped = TensorBatches(x, batch_size=4, drop_last=True)
    assert len(dropped) == len(list(dropped)) == 2
    ordered = TensorBatches(x, batch_size=4, shuffle=False)
    assert torch.equal(torch.cat([b[0] for b in ordered]), x)


def test_tensor_batches_order_depends_only_on_seed_and_epoch() -> None:
    def order(batches: TensorBatches) -> list[int]:
        return torch.cat([b[0] for b in batches]).tolist()

    x = torch.arange(50)
    batches = TensorBatches(x, batch_size=8, seed=1)
    first, second = order(batches), order(batches)  # each pass advances the epoch
    assert first != second
    batches.set_epoch(0)
    assert order(batches) == first
    fresh = TensorBatches(x, batch_size=8, seed=1)
    fresh.set_epoch(1)
    assert order(fresh) == second
    assert order(TensorBatches(x, batch_size=8, seed=2)) != first


def test_tensor_batches_transform_and_validation() -> None:
    x = torch.zeros(6, 2, dtype=torch.uint8)
    to_float = lambda batch: (batch[0].float() + 0.5, batch[1])  # noqa: E731
    batches = TensorBatches(x, torch.ones(6), batch_size=4, transform=to_float, device="cpu")
    inputs, labels = next(iter(batches))
    assert inputs.dtype == torch.float32 and torch.all(inputs == 0.5) and torch.all(labels == 1)
    with pytest.raises(ValueError, match="same length"):
        TensorBatches(x, torch.ones(5), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatches(x, batch_size=0)


def test_to_device_moves_nested_batches() -> None:
    Pair = namedtuple("Pair", "x y")
    batch = {"pair": Pair(torch.ones(2), torch.zeros(2)), "list": [torch.ones(1), "label"], "n": 3}
    moved = to_device(batch, torch.device("meta"))
    assert isinstance(moved["pair"], Pair) and moved["pair"].x.device.type == "meta"
    assert moved["list"][0].device.type == "meta" and moved["list"][1] == "label" and moved["n"] == 3


# ----------------------------------------------------------------------------------------------------------
# The Trainer


def test_same_seed_same_numbers_different_seed_different_numbers() -> None:
    first = make_trainer()
    first.fit()
    again = make_trainer()
    again.fit()
    assert_same_run(first, again)
    other = make_trainer(seed=1)
    other.fit()
    assert not np.array_equal(other.history["loss"], first.history["loss"])


def test_history_columns_and_lr_follow_epoch_schedule() -> None:
    trainer = make_trainer()
    history = trainer.fit()
    assert list(history.columns) == ["epoch", "loss", "lr", "seconds"]
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert history["lr"].tolist() == pytest.approx([0.1, 0.1, 0.1, 0.05])
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    steps = trainer.step_history
    assert steps["step"].tolist() == list(range(1, 4 * STEPS_PER_EPOCH + 1))
    means = steps.groupby("epoch")["loss"].mean()
    assert history["loss"].tolist() == pytest.approx(means.tolist(), rel=1e-12)


def test_scheduler_stepped_per_step() -> None:
    trainer = make_trainer(schedule_per="step", epochs=2)
    history = trainer.fit()
    steps = trainer.step_history
    assert steps["lr"].tolist() == pytest.approx([0.1 * 0.5 ** ((s - 1) // 5) for s in steps["step"]])
    assert history["lr"].tolist() == steps.groupby("epoch")["lr"].last().tolist()


def test_loss_parts_are_logged_per_step_and_per_epoch() -> None:
    def distill_like(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        assert model.training
        x, y = batch
        ce = nn.functional.cross_entropy(model(x), y)
        l2 = sum(p.pow(2).sum() for p in model.parameters())
        return ce + 1e-3 * l2, {"ce": ce.detach(), "l2": l2.detach(), "const": 2.0}

    trainer = make_trainer(loss_fn=distill_like, epochs=2)
    history = trainer.fit()
    assert list(history.columns) == ["epoch", "loss", "ce", "l2", "const", "lr", "seconds"]
    steps = trainer.step_history
    assert list(steps.columns) == ["epoch", "step", "loss", "ce", "l2", "const", "lr"]
    assert steps["loss"].to_numpy() == pytest.approx((steps["ce"] + 1e-3 * steps["l2"]).to_numpy(), rel=1e-5)
    assert history["ce"].tolist() == pytest.approx(steps.groupby("epoch")["ce"].mean().tolist())
    assert history["const"].tolist() == [2.0, 2.0]


def test_evaluate_metrics_join_the_history() -> None:
    x, y = make_data()

    def evaluate(model: nn.Module) -> dict[str, Any]:
        assert not model.training and not torch.is_grad_enabled()
        return {"val_acc": (model(x).argmax(1) == y).float().mean(), "val_n": len(y)}

    history = make_trainer(evaluate=evaluate).fit()
    assert list(history.columns) == ["epoch", "loss", "val_acc", "val_n", "lr", "seconds"]
    assert history["val_acc"].between(0, 1).all() and history["val_acc"].iloc[-1] > 0.8
    assert (history["val_n"] == N).all()


def test_reserved_names_are_refused() -> None:
    def logs_lr(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        return cross_entropy(model, batch), {"lr": 1.0}

    with pytest.raises(ValueError, match="reserved"):
        make_trainer(loss_fn=logs_lr).fit()
    with pytest.raises(ValueError, match="clash"):
        make_trainer(evaluate=lambda model: {"loss": 0.0}).fit()


def test_dict_batches_from_a_dataloader() -> None:
    x, y = make_data()
    samples = [{"x": a, "y": b} for a, b in zip(x, y, strict=True)]
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = lambda model, batch: nn.functional.cross_entropy(model(batch["x"]), batch["y"])  # noqa: E731
    loader = DataLoader(samples, batch_size=BATCH, shuffle=True)
    history = Trainer(model, optimizer, loader, loss_fn, TrainConfig(epochs=2, progress=False)).fit()
    assert len(history) == 2 and np.isfinite(history["loss"]).all()


def test_amp_is_harmless_on_cpu() -> None:
    plain = make_trainer(epochs=2)
    plain.fit()
    with pytest.warns(UserWarning, match="amp=True is ignored on cpu"):
        amp = make_trainer(epochs=2, amp=True)
    assert not amp.amp
    amp.fit()
    assert_same_run(plain, amp)


def test_grad_clip_bounds_the_update() -> None:
    x, y = make_data()
    for clip, bounded in [(1e-3, True), (None, False)]:
        model = make_model()
        before = nn.utils.parameters_to_vector(model.parameters()).clone()
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        batches = TensorBatches(x, y, batch_size=N, shuffle=False)  # one step
        config = TrainConfig(epochs=1, grad_clip=clip, progress=False)
        Trainer(model, optimizer, batches, cross_entropy, config).fit()
        update = (nn.utils.parameters_to_vector(model.parameters()) - before).norm().item()
        assert (update <= 1e-3 * (1 + 1e-5)) is bounded


def test_progress_bars_render(capsys: pytest.CaptureFixture[str]) -> None:
    make_trainer(epochs=1, progress=True, log_every=1).fit()
    assert "epochs: 100%" in capsys.readouterr().err


def test_fit_twice_in_memory_does_not_train_again() -> None:
    trainer = make_trainer(epochs=1)
    first = trainer.fit()
    trainer.loss_fn = crash_after(0)
    pd.testing.assert_frame_equal(trainer.fit(), first)


def test_config_validation_and_empty_epochs() -> None:
    assert TrainConfig(checkpoint="runs/a.pt").checkpoint == Path("runs/a.pt")
    for bad in [{"epochs": 0}, {"schedule_per": "batch"}, {"grad_clip": 0.0}, {"log_every": -1}]:
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    model = make_model()
    batches = TensorBatches(*make_data(), batch_size=2 * N, drop_last=True)
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), batches, cross_entropy, TrainConfig()
    )
    with pytest.raises(ValueError, match="no batches"):
        trainer.fit()


# ----------------------------------------------------------------------------------------------------------
# Checkpoints and resuming


@pytest.mark.parametrize("schedule_per", ["epoch", "step"])
@pytest.mark.parametrize("source", ["tensor_batches", "dataloader", "dataloader_generator"])
def test_resume_after_a_crash_is_bit_identical(tmp_path: Path, source: str, schedule_per: str) -> None:
    reference = make_trainer(source, schedule_per=schedule_per)
    reference.fit()

    checkpoint = tmp_path / "run.pt"
    crash_step = 2 * STEPS_PER_EPOCH + 3  # in the middle of epoch 3
    interrupted = make_trainer(
        source, loss_fn=crash_after(crash_step), schedule_per=schedule_per, checkpoint=checkpoint
    )
    with pytest.raises(Crash):
        interrupted.fit()
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2  # written after every epoch
    assert os.listdir(tmp_path) == ["run.pt"]  # atomically: no temporary files left behind

    # A fresh process: new objects, even a differently initialised model; all state comes from the file.
    resumed = make_trainer(source, init_seed=99, schedule_per=schedule_per, checkpoint=checkpoint)
    resumed.fit()
    assert_same_run(resumed, reference)


def test_rerunning_fit_after_an_interrupt_resumes(tmp_path: Path) -> None:
    """A notebook cell interrupted and run again continues from the last checkpoint."""
    reference = make_trainer()
    reference.fit()
    crashing = crash_after(STEPS_PER_EPOCH + 1)
    trainer = make_trainer(loss_fn=lambda model, batch: crashing(model, batch), checkpoint=tmp_path / "a.pt")
    with pytest.raises(Crash):
        trainer.fit()
    trainer.loss_fn = cross_entropy
    trainer.fit()
    assert_same_run(trainer, reference)


def test_finished_run_loads_without_training(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.pt"
    x, y = make_data()
    evaluate = lambda model: {"val_acc": (model(x).argmax(1) == y).float().mean()}  # noqa: E731
    finished = make_trainer(checkpoint=checkpoint, evaluate=evaluate)
    finished.fit()
    loaded = make_trainer(init_seed=99, loss_fn=crash_after(0), checkpoint=checkpoint, evaluate=evaluate)
    history = loaded.fit()
    assert loaded.epoch == 4 and "val_acc" in history
    assert_same_run(loaded, finished)
    pd.testing.assert_frame_equal(history, finished.history)  # wall times too: nothing was re-run


@pytest.fixture(scope="module")
def finished_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-epoch run with hparams {"width": 16}."""
    checkpoint = tmp_path_factory.mktemp("finished") / "run.pt"
    make_trainer(epochs=4, checkpoint=checkpoint, hparams={"width": 16}).fit()
    return checkpoint


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"epochs": 5}, "train.epochs"),
        ({"seed": 1}, "train.seed"),
        ({"hparams": {"width": 32}}, "hparams.width"),
        ({"lr": 0.2}, "optimizer.defaults.lr"),
        ({"schedule_per": "step"}, "train.schedule_per"),
    ],
)
def test_resuming_a_different_run_is_refused(
    finished_checkpoint: Path, change: dict[str, Any], named: str
) -> None:
    settings = {"epochs": 4, "checkpoint": finished_checkpoint, "hparams": {"width": 16}} | change
    with pytest.raises(ValueError, match=f"different run.*{named}"):
        make_trainer(**settings).fit()


def test_where_and_how_visibly_to_run_is_not_part_of_the_run(finished_checkpoint: Path) -> None:
    where = {"progress": True, "log_every": 1, "device": "cpu"}
    trainer = make_trainer(
        loss_fn=crash_after(0), checkpoint=finished_checkpoint, hparams={"width": 16}, **where
    )
    assert len(trainer.fit()) == 4


def test_checkpoint_holds_the_full_state(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.pt"
    make_trainer("dataloader_generator", epochs=1, checkpoint=checkpoint).fit()
    state = torch.load(checkpoint, weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "batches_rng", "history", "steps"} <= set(
        state
    )
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert state["epoch"] == 1 and len(state["history"]) == 1 and len(state["steps"]) == STEPS_PER_EPOCH
    assert math.isfinite(state["history"][0]["loss"])


def test_step_batches_make_one_batch_per_step_in_order() -> None:
    seen: list[int] = []
    batches = StepBatches(lambda step: seen.append(step) or torch.full((2,), float(step)), 4)
    assert (
        len(batches) == 4 and [float(b[0]) for b in batches] == [0.0, 1.0, 2.0, 3.0] and seen == [0, 1, 2, 3]
    )
    with pytest.raises(ValueError, match="steps must be positive"):
        StepBatches(lambda step: step, 0)


def test_a_step_loop_on_the_trainer_draws_its_batches_between_the_steps() -> None:
    """A batch made from a generator (the JPEG windows) is drawn right before its step's loss, so a
    loss that draws from the same generator sees the same stream as a hand-written loop."""
    model = nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(0)
    draws: list[str] = []

    def batch(step: int) -> torch.Tensor:
        draws.append(f"batch {step}")
        return torch.randn(4, 3, generator=generator)

    def loss_fn(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
        draws.append("loss")
        return network(x + torch.randn(x.shape, generator=generator)).square().mean()

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, optimizer, StepBatches(batch, 3), loss_fn, TrainConfig(epochs=1, progress=False))
    trainer.fit()
    assert draws == ["batch 0", "loss", "batch 1", "loss", "batch 2", "loss"]
    assert len(trainer.step_history) == 3
