"""Training recipes of chapter 4 on the shared :class:`~thesislib.training.Trainer`: teachers and students.

A recipe is plain data (:class:`Recipe`): SGD with momentum, weight decay, and a step or cosine schedule.
The thesis reuses Zagoruyko and Komodakis' protocol for every network, teacher or student (§4.4.1,
§4.5.1), which is the point of the method: no new hyperparameter search for the cheap students.

- :data:`ZAGORUYKO_CIFAR`: batch 128, 200 epochs, momentum 0.9, lr 0.1 multiplied by 0.2 after epochs
  60, 120 and 160, weight decay 5e-4.
- :data:`ZAGORUYKO_IMAGENET`: batch 256, 100 epochs, momentum 0.9, lr 0.1 divided by 10 every 30 epochs,
  weight decay 1e-4.

Both augment with pad-4 crops and flips only; ``Recipe(cutout=16)`` adds Cutout, as chapter 5's WRN-28-10
and DARTS protocols do (§5.3.1, :data:`thesislib.compressed.experiment.PROTOCOLS`).

:func:`train` trains one network on CIFAR (on-device batches from :class:`~thesislib.data.augment.CifarBatches`)
from scratch, with knowledge distillation (Eq. 4.1) or with attention transfer (Eq. 4.2), logging the
loss terms per step. Runs are cached: with ``checkpoint_dir`` each run is saved after every epoch under
``checkpoint_path(checkpoint_dir, name, identity)``, where the identity holds the model, data subset,
recipe, distillation settings, seed and, for students, the teacher's run id. A re-run with the same
configuration resumes or just loads, so one teacher serves every student::

    data = CifarSubset("cifar10-jpeg", train_size=5000, test_size=2000).load()
    teacher = train(ModelSpec("wrn-16-2"), data, recipe, checkpoint_dir="runs/ckpt")
    student = train(ModelSpec("wrn-16-2", "B(2)"), data, recipe, teacher=teacher,
                    distillation=DistillationSettings("at"), checkpoint_dir="runs/ckpt")
    student.test_error, student.steps[["step", "ce", "at1", "at2", "at3"]]
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from thesislib.data.augment import CifarBatches, cifar_normalisation
from thesislib.moonshine.distillation import DistillationLoss, DistillationSettings
from thesislib.training import (
    TrainConfig,
    Trainer,
    checkpoint_path,
    config_hash,
    seed_everything,
    select_device,
)

__all__ = [
    "RECIPES",
    "SCHEDULES",
    "ZAGORUYKO_CIFAR",
    "ZAGORUYKO_IMAGENET",
    "CifarData",
    "CifarSubset",
    "ModelSpec",
    "Recipe",
    "TrainedModel",
    "check_shared_teacher",
    "downsample",
    "evaluate_error",
    "train",
]

SCHEDULES = ("step", "cosine", "constant")

# ----------------------------------------------------------------------------------------------------------
# Recipes


@dataclasses.dataclass(frozen=True)
class Recipe:
    """SGD + momentum with weight decay on every parameter and a learning-rate schedule (plain data).

    ``schedule="step"`` multiplies the rate by ``gamma`` after each epoch in ``milestones`` (epochs are
    counted from 1, so with milestones (60, 120, 160) epochs 1–60 use ``lr``, 61–120 ``lr·γ``, ...,
    as ``MultiStepLR`` stepped once per epoch); ``"cosine"`` anneals it to 0 over all steps (per step);
    ``"constant"`` keeps it.

    ``cutout`` is the side of the Cutout square cut from every training image (DeVries and Taylor,
    2017; :class:`~thesislib.data.augment.CifarBatches`), 0 for none. It joins a run's identity only
    when non-zero (:meth:`identity`), so runs from before Cutout existed keep their cache keys.
    """

    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: Literal["step", "cosine", "constant"] = "step"
    milestones: tuple[int, ...] = (60, 120, 160)
    gamma: float = 0.2
    cutout: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be positive, got {self.epochs} and {self.batch_size}"
            )
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError(
                f"need lr > 0, momentum in [0, 1), weight_decay >= 0; got {self.lr}, {self.momentum}, "
                f"{self.weight_decay}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; valid schedules: {', '.join(SCHEDULES)}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            raise ValueError(f"milestones must be increasing positive epochs, got {list(self.milestones)}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if isinstance(self.cutout, bool) or not isinstance(self.cutout, numbers.Integral) or self.cutout < 0:
            raise ValueError(
                f"cutout must be a non-negative integer side length (0: off), got {self.cutout!r}"
            )
        object.__setattr__(self, "cutout", int(self.cutout))

    def identity(self) -> dict[str, Any]:
        """The recipe as run-identity data: every field, but ``cutout`` only when it is on.

        A recipe without Cutout thus hashes (:func:`~thesislib.training.config_hash`) exactly as
        recipes did before the field existed, and finds the same checkpoints.
        """
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if not self.cutout:
            del fields["cutout"]
        return fields

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (e.g. ``schedule="cosine"``)."""
        return dataclasses.replace(self, **changes)

    def scaled(self, epochs: int) -> Recipe:
        """The same recipe over ``epochs`` epochs, with the milestones moved proportionally (at least 1 apart)."""
        milestones: list[int] = []
        for m in self.milestones:
            scaled = max(1, round(m * epochs / self.epochs))
            if scaled < epochs and (not milestones or scaled > milestones[-1]):
                milestones.append(scaled)
        return dataclasses.replace(self, epochs=epochs, milestones=tuple(milestones))

    def lr_at(self, epoch: int, fraction: float = 0.0) -> float:
        """The learning rate during epoch ``epoch`` (from 1), ``fraction`` of the way through it."""
        if not 1 <= epoch <= self.epochs:
            raise ValueError(f"epoch must be in [1, {self.epochs}], got {epoch}")
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "step":
            return self.lr * self.gamma ** sum(epoch > m for m in self.milestones)
        progress = (epoch - 1 + fraction) / self.epochs
        return 0.5 * self.lr * (1 + math.cos(math.pi * progress))

    def optimizer(self, model: nn.Module) -> torch.optim.SGD:
        """SGD over all of ``model``'s trainable parameters, weight decay on all of them (as in the thesis' code)."""
        return torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad],
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov,
        )

    def scheduler(
        self, optimizer: torch.optim.Optimizer, steps_per_epoch: int
    ) -> tuple[torch.optim.lr_scheduler.LRScheduler, Literal["epoch", "step"]]:
        """The schedule and whether it is stepped per ``"epoch"`` or per ``"step"`` (for ``TrainConfig``)."""
        if self.schedule == "step":
            return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(self.milestones), self.gamma), "epoch"
        if self.schedule == "cosine":
            total = self.epochs * steps_per_epoch
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=0.0), "step"
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0), "epoch"


ZAGORUYKO_CIFAR = Recipe(
    epochs=200, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, milestones=(60, 120, 160), gamma=0.2
)
"""The CIFAR protocol of §4.4.1 (Zagoruyko and Komodakis), used for teacher and students alike."""

ZAGORUYKO_IMAGENET = Recipe(
    epochs=100, batch_size=256, lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=(30, 60, 90), gamma=0.1
)
"""The ImageNet protocol of §4.5.1 (lr ÷10 every 30 epochs; the thesis spread the batch over 4 GPUs)."""

RECIPES: Mapping[str, Recipe] = {"cifar": ZAGORUYKO_CIFAR, "imagenet": ZAGORUYKO_IMAGENET}

# ----------------------------------------------------------------------------------------------------------
# Data


@dataclasses.dataclass
class CifarData:
    """CIFAR tensors for one experiment: uint8 images N×3×32×32 and int64 labels, plus what they are.

    ``identity`` describes the data (name, subset sizes and seed) for the run identity; the tensors are
    not hashed.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    name: str = "cifar10"
    identity: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return 100 if self.name == "cifar100" else 10

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return cifar_normalisation(self.name)


def _stratified(labels: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """Indices of ``size`` examples, as equal a share of every class as possible, in a seeded random order."""
    n = len(labels)
    if size is None or size >= n:
        return torch.arange(n)
    if size < 1:
        raise ValueError(f"subset size must be positive, got {size}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, size]))
    labels_np = labels.numpy()
    classes = np.unique(labels_np)
    quota = np.full(len(classes), size // len(classes))
    quota[rng.permutation(len(classes))[: size % len(classes)]] += 1
    chosen = [
        rng.permutation(np.flatnonzero(labels_np == c))[:q] for c, q in zip(classes, quota, strict=True)
    ]
    return torch.from_numpy(np.sort(np.concatenate(chosen)))


def downsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 N×C×H×W images average-pooled to ``resolution``×``resolution`` (H a multiple of it), rounded."""
    size = images.shape[-1]
    if resolution < 1 or size % resolution or images.shape[-2] != size:
        raise ValueError(
            f"resolution must divide the square images' side {size} (e.g. 32, 16, 8), got {resolution}"
        )
    if resolution == size:
        return images
    pooled = F.avg_pool2d(images.float(), size // resolution)
    return pooled.round().clamp(0, 255).to(torch.uint8)


@dataclasses.dataclass(frozen=True)
class CifarSubset:
    """A seeded, class-stratified subset of a CIFAR data set (``None``: the whole split).

    ``resolution`` < 32 average-pools every image (2×2 for 16×16): the cheapest protocol of the
    chapter-4 review trains on all 50,000 images at 16×16, about 3× faster per image than at 32×32.
    """

    name: str = "cifar10-jpeg"
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 0
    resolution: int = 32

    def load(self) -> CifarData:
        """Load with :func:`thesislib.data.load_cifar` (offline ``cifar10-jpeg``, or ``cifar10``/``cifar100``)."""
        from thesislib.data import load_cifar

        tensors = []
        for split, size in (("train", self.train_size), ("test", self.test_size)):
            images, labels = load_cifar(self.name, split)
            index = _stratified(labels, size, self.seed)
            tensors += [downsample(images[index], self.resolution), labels[index]]
        identity = dataclasses.asdict(self)
        if self.resolution == 32:  # runs from before the field existed keep their cache keys
            del identity["resolution"]
        return CifarData(*tensors, name=self.name, identity=identity)


# ----------------------------------------------------------------------------------------------------------
# Models and results


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A network of chapter 4 by name and block, e.g. ``ModelSpec("wrn-40-2", "G(N/4)")``."""

    name: str
    block: str = "S"

    @property
    def label(self) -> str:
        return f"{self.name} {self.block}"

    @property
    def slug(self) -> str:
        """A file-name-safe label: ``wrn-40-2-G_N_4``."""
        return re.sub(r"[^A-Za-z0-9-]+", "_", f"{self.name}-{self.block}").strip("_")

    def build(self, num_classes: int) -> nn.Module:
        """The network from :func:`thesislib.models.build_model`."""
        from thesislib.models import build_model

        return build_model(self.name, block=self.block, num_classes=num_classes)


Builder = Callable[[ModelSpec, int], nn.Module]


@dataclasses.dataclass
class TrainedModel:
    """A trained network with its logs: ``history`` per epoch, ``steps`` per optimiser step."""

    spec: ModelSpec
    method: str
    model: nn.Module
    history: pd.DataFrame
    steps: pd.DataFrame
    run_id: str
    checkpoint: Path | None = None

    @property
    def test_error(self) -> float:
        """Top-1 test error (%) after the last epoch."""
        return float(self.history["test_error"].iloc[-1])


def evaluate_error(model: nn.Module, batches: CifarBatches) -> dict[str, float]:
    """Top-1 error (%) and mean cross entropy of ``model`` (in its current mode) over ``batches``."""
    wrong, loss, count = 0.0, 0.0, 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            out = model(x)
            logits = out[0] if isinstance(out, tuple) else out
            wrong += float((logits.argmax(dim=1) != y).sum())
            loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            count += len(y)
    return {"test_error": 100.0 * wrong / count, "test_loss": loss / count}


# ----------------------------------------------------------------------------------------------------------
# Training


def train(
    spec: ModelSpec,
    data: CifarData,
    recipe: Recipe,
    *,
    distillation: DistillationSettings | None = None,
    teacher: TrainedModel | None = None,
    seed: int = 0,
    device: str = "auto",
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    eval_batch_size: int = 500,
    channels_last: bool = False,
    builder: Builder | None = None,
) -> TrainedModel:
    """Train ``spec`` on ``data`` with ``recipe``: from scratch, or distilled from ``teacher`` (§4.4).

    Args:
        spec: the network (built by ``builder``, default :meth:`ModelSpec.build`).
        data: training and test tensors (:meth:`CifarSubset.load`).
        recipe: optimiser, schedule and Cutout (:data:`ZAGORUYKO_CIFAR` in the paper profile).
        distillation: ``scratch`` (default), ``kd`` (Eq. 4.1) or ``at`` (Eq. 4.2).
        teacher: the trained teacher, required for ``kd`` and ``at``; its run id is part of the student's.
        seed: initialisation, data order, crops, flips and Cutout squares.
        checkpoint_dir: cache and resume runs there (``None``: keep in memory).
        channels_last: feed channels-last images (can be faster on GPUs; same numbers up to rounding).

    The test error is evaluated after every epoch (``history["test_error"]``); ``steps`` holds the loss
    and its terms (``ce``, ``kd`` or ``at1..at3`` β-scaled, ``train_error``) for every step.
    """
    settings = distillation or DistillationSettings()
    if settings.needs_teacher and teacher is None:
        raise ValueError(f"distillation method {settings.method!r} needs a trained teacher")
    if not settings.needs_teacher and teacher is not None:
        raise ValueError("a teacher was given but the distillation method is 'scratch'")
    identity: dict[str, Any] = {
        "model": spec,
        "data": dict(data.identity),
        "recipe": recipe.identity(),
        "distillation": settings,
        "teacher": None if teacher is None else teacher.run_id,
        "seed": seed,
    }
    run_device = select_device(device)
    seed_everything(seed)
    model = (builder or ModelSpec.build)(spec, data.num_classes)
    # The parameter names and shapes join the identity, so a changed implementation never loads a stale run.
    identity["architecture"] = config_hash([[name, list(t.shape)] for name, t in model.state_dict().items()])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    mean, std = data.normalisation
    batches = CifarBatches(
        data.train_images,
        data.train_labels,
        batch_size=recipe.batch_size,
        mean=mean,
        std=std,
        cutout=recipe.cutout,
        padding=max(1, data.train_images.shape[-1] // 8),  # the thesis' 4 px at 32×32, 2 px at 16×16
        seed=seed,
        device=run_device,
        channels_last=channels_last,
    )
    test = CifarBatches(
        data.test_images,
        data.test_labels,
        batch_size=eval_batch_size,
        mean=mean,
        std=std,
        augment=False,
        shuffle=False,
        device=run_device,
        channels_last=channels_last,
    )
    optimizer = recipe.optimizer(model)
    scheduler, per = recipe.scheduler(optimizer, len(batches))
    path = None
    if checkpoint_dir is not None:
        path = checkpoint_path(checkpoint_dir, f"{spec.slug}-{settings.method}", identity)
    config = TrainConfig(
        epochs=recipe.epochs,
        seed=seed,
        schedule_per=per,
        device=str(run_device),
        checkpoint=path,
        progress=progress,
    )
    loss_fn = DistillationLoss(settings, None if teacher is None else teacher.model)
    trainer = Trainer(
        model,
        optimizer,
        batches,
        loss_fn,
        config,
        scheduler=scheduler,
        evaluate=lambda m: evaluate_error(m, test),
        hparams=identity,
    )
    history = trainer.fit()
    model.eval()
    return TrainedModel(
        spec=spec,
        method=settings.method,
        model=model,
        history=history,
        steps=trainer.step_history,
        run_id=trainer.run_id,
        checkpoint=path,
    )


# ----------------------------------------------------------------------------------------------------------
# One teacher for chapters 4 and 5

TEACHER_RECORD = "teacher.json"


def check_shared_teacher(
    folder: str | Path, run: TrainedModel, owner: str, record: bool = False
) -> dict[str, Any]:
    """Assert that ``run`` is the teacher recorded in ``folder`` (``record=True``, or none recorded: record it).

    Notebook 05 trains chapter 4's teacher and records its run id in ``folder/teacher.json``; notebook
    06 reuses it through the same checkpoints. Its run id depends on every setting (data, recipe,
    seed, architecture), so a changed ``batch_size`` or ``cutout`` in one notebook would silently train
    another teacher: this raises ``ValueError`` instead. Returns the record.
    """
    import json

    from thesislib.atomic import atomic_write_text

    path = Path(folder) / TEACHER_RECORD
    mine = {"run_id": run.run_id, "model": run.spec.label, "recorded_by": owner}
    if path.exists() and not record:
        recorded = json.loads(path.read_text())
        if recorded.get("run_id") != run.run_id:
            raise ValueError(
                f"{owner}'s teacher ({run.spec.label}, run {run.run_id}) is not the teacher recorded in {path} "
                f"by {recorded.get('recorded_by')} (run {recorded.get('run_id')}): their teacher settings "
                "(data, resolution, recipe, seed) differ; make them equal"
            )
        return recorded
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(mine, indent=1))
    return mine
