"""The shared training machinery: device choice, seeding, on-device batches, one loop, checkpoints.

Every chapter trains with the same :class:`Trainer` (in the spirit of nanoGPT and cifar10-airbench):
one loop, readable top to bottom, with the few hooks the chapters need:

- ``loss_fn(model, batch)`` returns the loss, or ``(loss, parts)`` where ``parts`` names the terms
  to log (distillation and attention-transfer terms in chapter 4);
- the optimizer is built by the caller, so per-group weight decay (chapter 5) is plain PyTorch;
- ``evaluate(model)`` returns the metrics to record after each epoch;
- a learning-rate scheduler stepped per epoch or per step.

A run is identified by its configuration: :func:`config_hash` gives a stable short id and
:func:`checkpoint_path` a file name from it, so a notebook re-run with the same configuration finds
its checkpoint and resumes (or, when finished, just loads) instead of training again. Checkpoints
hold everything the next epoch depends on, so on CPU an interrupted and resumed run ends with
bit-identical weights and metrics::

    config = TrainConfig(epochs=10, seed=0, checkpoint=checkpoint_path("runs/ckpt", "mlp", hparams))
    data = TensorBatches(x, y, batch_size=128, seed=config.seed, device=select_device(config.device))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, optimizer, data, cross_entropy_loss, config, hparams=hparams)
    history = trainer.fit()  # one row per epoch; trainer.step_history has one row per step

On top of the loop, the CIFAR training both Moonshine (chapter 4) and the compressed students (chapter 5)
use: a :class:`Recipe` is plain data (SGD with momentum, weight decay, a step or cosine schedule,
Cutout), a :class:`ModelSpec` names a network of the model registry, and :func:`train` trains one on
CIFAR (:class:`~thesislib.data.cifar.CifarData`, on-device batches from
:class:`~thesislib.data.augment.CifarBatches`) from scratch, with knowledge distillation (Eq. 4.1) or
with attention transfer (Eq. 4.2), logging the loss terms per step. Runs are cached: with
``checkpoint_dir`` each run is saved after every epoch under ``checkpoint_path(checkpoint_dir, name,
identity)``, where the identity holds the model, data subset, recipe, distillation settings, seed and,
for students, the teacher's run id. A re-run with the same configuration resumes or just loads, so one
teacher serves every student::

    data = CifarSubset("cifar10-jpeg", train_size=5000, test_size=2000).load()
    teacher = train(ModelSpec("wrn-16-2"), data, recipe, checkpoint_dir="runs/ckpt")
    student = train(ModelSpec("wrn-16-2", "B(2)"), data, recipe, teacher=teacher,
                    distillation=DistillationSettings("at"), checkpoint_dir="runs/ckpt")
    student.test_error, student.steps[["step", "ce", "at1", "at2", "at3"]]

Several processes (``torchrun``, :func:`thesislib.experiments.runner.init_distributed`): when a ``torch.distributed`` process
group is initialised, :class:`Trainer` wraps the model in ``DistributedDataParallel`` (gradients are
averaged over the processes), logs the loss averaged over the processes, and only rank 0 writes
checkpoints (holding every rank's random-number state). The caller gives each process its share of
every global batch (:class:`ShardedBatches`) and an ``evaluate`` that sums over the processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import math
import numbers
import os
import random
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from thesislib.atomic import atomic_path

if TYPE_CHECKING:
    from thesislib.compressed.base import SubstituteSpec
    from thesislib.data.cifar import CifarData
    from thesislib.moonshine.distillation import DistillationSettings

__all__ = [
    "FAULT_ENV",
    "NOT_HASHED",
    "SCHEDULES",
    "TEACHER_RECORD",
    "LossFn",
    "ModelSpec",
    "Recipe",
    "ShardedBatches",
    "StepBatches",
    "TensorBatches",
    "TrainConfig",
    "TrainedModel",
    "Trainer",
    "check_shared_teacher",
    "checkpoint_path",
    "config_hash",
    "evaluate_error",
    "load_checkpoint",
    "progress_enabled",
    "seed_everything",
    "select_device",
    "to_device",
    "train",
]

# ----------------------------------------------------------------------------------------------------------
# Devices, seeds and progress bars


def progress_enabled(requested: bool = True) -> bool:
    """Whether to show a progress bar: when asked for and not silenced by ``TQDM_DISABLE``.

    The notebook runner sets ``TQDM_DISABLE=1`` so that executed pages keep results, not bars.
    """
    return requested and os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false")


def select_device(name: str = "auto") -> torch.device:
    """The device called ``name``: ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda[:N]"``, ``"mps"``.

    Raises ``ValueError`` for an unknown name or a device this machine does not have.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    expected = "expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {name!r}; {expected}") from error
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {name!r} requested but this machine has {count} CUDA device(s)")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {name!r} requested but MPS is not available on this machine")
        return device
    raise ValueError(f"unsupported device {name!r}; {expected}")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU, CUDA, MPS) with ``seed``.

    ``deterministic=True`` also asks PyTorch for deterministic kernels (``use_deterministic_algorithms``,
    cuDNN deterministic without autotuning, and the cuBLAS workspace setting, which only takes effect if
    set before the first cuBLAS call). On CPU the training loop is deterministic either way;
    ``deterministic=False`` switches the deterministic-kernel requirement off again.
    """
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device and MPS
    if deterministic:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = deterministic
    if torch.are_deterministic_algorithms_enabled() != deterministic:  # the call imports inductor: ~2 s
        torch.use_deterministic_algorithms(deterministic)


# ----------------------------------------------------------------------------------------------------------
# Run identity

NOT_HASHED: Mapping[str, bool] = {"hash": False}
"""Field metadata for settings that do not change a run's result (paths, progress bars):
``field(default=True, metadata=NOT_HASHED)`` leaves the field out of :func:`config_hash`."""


def _plain(value: Any) -> Any:
    """``value`` as JSON data: dataclasses and mappings become dicts (without ``NOT_HASHED`` fields)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.metadata.get("hash", True)
        }
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, PurePath):
        return value.as_posix()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot hash a configuration value of type {type(value).__name__}: {value!r}")


def config_hash(config: Any) -> str:
    """A stable 12-hex-digit id of a configuration (a dataclass or a mapping, possibly nested).

    The hash is taken over sorted-key JSON, so it does not depend on field order, and a dataclass
    hashes like the dict of its fields. Fields marked ``NOT_HASHED`` are left out.
    """
    text = json.dumps(_plain(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def checkpoint_path(root: str | os.PathLike, name: str, config: Any) -> Path:
    """``root/<name>-<config_hash(config)>.pt``: the same configuration always finds the same file.

    Inside a notebook run, a ``root`` under the project's ``runs/checkpoints/`` follows the run's
    output folder (:func:`thesislib.paths.follow_run_dir`), so ``--out`` holds the checkpoints too.
    """
    from thesislib.paths import follow_run_dir

    return follow_run_dir(root) / f"{name}-{config_hash(config)}.pt"


# ----------------------------------------------------------------------------------------------------------
# Batches


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor moved to ``device``, through tuples, lists, named tuples and dicts."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(value, device) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


class TensorBatches:
    """Mini-batches drawn from tensors that already live on the device (cifar10-airbench style).

    Each pass shuffles with a permutation that depends only on ``(seed, epoch)``, so any epoch can be
    replayed exactly, e.g. after resuming from a checkpoint. ``transform(batch) -> batch`` runs on each
    batch (a tuple of tensors), which is where tensor-op augmentation goes (flips, crops, int8 -> float).

    The epoch advances by one on every pass; :meth:`set_epoch` (called by :class:`Trainer`) sets it.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        transform: Callable[[tuple[torch.Tensor, ...]], Any] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("TensorBatches needs at least one tensor")
        sizes = {len(tensor) for tensor in tensors}
        if len(sizes) != 1:
            raise ValueError(f"all tensors must have the same length, got {[len(t) for t in tensors]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.tensors = tuple(tensor.to(device) for tensor in tensors) if device is not None else tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (its order is fixed by ``(seed, epoch)``)."""
        self.epoch = epoch

    def __len__(self) -> int:
        size = len(self.tensors[0])
        return size // self.batch_size if self.drop_last else math.ceil(size / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[Any]:
        size = len(self.tensors[0])
        order = None
        if self.shuffle:
            # SeedSequence mixes (seed, epoch) into an independent stream; the permutation is drawn on
            # the CPU, so the data order is the same on every device.
            seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0])
            generator = torch.Generator().manual_seed(seed)
            order = torch.randperm(size, generator=generator).to(self.tensors[0].device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = start + self.batch_size
            index = slice(start, stop) if order is None else order[start:stop]
            batch = tuple(tensor[index] for tensor in self.tensors)
            yield batch if self.transform is None else self.transform(batch)


class StepBatches:
    """``steps`` batches made by ``make_batch(step)`` (step from 0), for loops counted in steps, not epochs.

    The JPEG tables (§3.3.3: a random window of the image per step) and the ACDC toy regression
    (§5.2.3: the same full batch every step) train this way with ``TrainConfig(epochs=1)``. A batch may
    be anything :func:`to_device` moves; ``make_batch`` may draw from its own generator, which runs
    just before the step's loss, in step order.
    """

    def __init__(self, make_batch: Callable[[int], Any], steps: int) -> None:
        if steps < 1:
            raise ValueError(f"steps must be positive, got {steps}")
        self.make_batch = make_batch
        self.steps = int(steps)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Any]:
        return (self.make_batch(step) for step in range(self.steps))


class ShardedBatches:
    """This process's share of every batch of ``batches`` (all processes draw the same global batches).

    With ``world`` processes each global batch is cut into ``world`` near-equal consecutive slices and
    process ``rank`` yields its slice, so N processes together see exactly the batches one process
    would (same order, same augmentation), and ``DistributedDataParallel``'s gradient average equals
    the single-process gradient when the slices are equal (global batch divisible by ``world``).
    Suits data held on the device (CIFAR); file-backed data shards its index sampler instead.
    """

    def __init__(self, batches: Iterable[Any], rank: int, world: int) -> None:
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"need 0 <= rank < world, got rank {rank} of {world}")
        self.batches = batches
        self.rank = rank
        self.world = world

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def _slice(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return torch.tensor_split(value, self.world)[self.rank]
        if isinstance(value, (list, tuple)):
            return type(value)(self._slice(item) for item in value)
        if isinstance(value, Mapping):
            return {key: self._slice(item) for key, item in value.items()}
        return value

    def __iter__(self) -> Iterator[Any]:
        for batch in self.batches:
            yield self._slice(batch)


def distributed_context() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised ``torch.distributed`` process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


FAULT_ENV = "THESISLIB_FAULT_AFTER_EPOCH"
"""Fault injection for tests: a process exits abruptly (``os._exit(17)``) right after the checkpoint of
this epoch is written, as if killed; the next invocation resumes from that checkpoint."""


# ----------------------------------------------------------------------------------------------------------
# The training loop

LossFn = Callable[[nn.Module, Any], torch.Tensor | tuple[torch.Tensor, Mapping[str, float | torch.Tensor]]]
"""``loss_fn(model, batch)``: the loss to minimise, or ``(loss, parts)`` with named terms to log."""


@dataclasses.dataclass
class TrainConfig:
    """How to train: plain data that papermill parameters fill.

    Fields marked ``NOT_HASHED`` (device, checkpoint, progress, log_every) say where and how visibly to
    run, not what to compute, so they are not part of the run's identity.
    """

    epochs: int = 10
    seed: int = 0
    amp: bool = False
    """Mixed precision (float16 autocast + gradient scaling); used on CUDA only, ignored elsewhere.
    The loss function's float32 casts (e.g. ``logits.float()`` in the distillation losses) keep the
    losses in full precision."""
    grad_clip: float | None = None
    """Clip the global gradient norm of the optimised parameters to this value."""
    schedule_per: Literal["epoch", "step"] = "epoch"
    """When to call ``scheduler.step()``: after every epoch or after every optimiser step."""
    deterministic: bool = False
    """Ask for deterministic GPU kernels (see :func:`seed_everything`); CPU runs are deterministic anyway."""
    device: str = dataclasses.field(default="auto", metadata=NOT_HASHED)
    checkpoint: Path | None = dataclasses.field(default=None, metadata=NOT_HASHED)
    """Save after every epoch here and resume from it; ``None`` keeps the run in memory only."""
    progress: bool = dataclasses.field(default=True, metadata=NOT_HASHED)
    log_every: int = dataclasses.field(default=50, metadata=NOT_HASHED)
    """Refresh the running loss on the progress bar every this many steps (each refresh waits for the
    device); 0 shows it only at the end of an epoch."""

    def __post_init__(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint = Path(self.checkpoint)
        if self.epochs < 1:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if self.schedule_per not in ("epoch", "step"):
            raise ValueError(f"schedule_per must be 'epoch' or 'step', got {self.schedule_per!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip}")
        if self.log_every < 0:
            raise ValueError(f"log_every must be >= 0, got {self.log_every}")


_RESERVED = frozenset({"epoch", "step", "loss", "lr", "seconds"})


class Trainer:
    """Train ``model`` on ``batches`` for ``config.epochs`` epochs; see :meth:`fit`.

    Args:
        model: moved to the configured device (in place, so an existing optimizer stays valid).
        optimizer: built by the caller over the model's parameters (parameter groups welcome).
        batches: re-iterable source of batches: :class:`TensorBatches`, a ``DataLoader``, or any iterable
            of tensors / tuples / lists / dicts of tensors. Each batch is moved to the device. Resuming
            is exact for these (a DataLoader's shuffle comes from the checkpointed generators), except
            for random transforms inside ``persistent_workers`` DataLoader workers.
        loss_fn: ``loss_fn(model, batch)`` returns the loss, or ``(loss, parts)`` whose named terms
            (floats or scalar tensors; tensors avoid a device sync per step) are logged per step and as
            epoch means.
        config: the :class:`TrainConfig`.
        scheduler: a learning-rate scheduler, stepped per ``config.schedule_per``.
        evaluate: ``evaluate(model) -> {"val_acc": ...}``, called after each epoch in eval mode under
            ``torch.inference_mode`` (tensors it creates cannot take part in a later backward pass);
            the metrics become columns of the history.
        hparams: the chapter's own settings that define the run (model size, data...); together with
            ``config`` and the optimizer's hyperparameters they form the run identity a checkpoint must
            match.
        on_epoch: ``on_epoch(epoch)`` called before each training epoch (from 1), e.g. to raise DARTS'
            drop-path probability (§5.3.1).

    Under ``torch.distributed`` (a process group initialised, e.g. by ``torchrun``) the model is
    trained through ``DistributedDataParallel`` (``find_unused_parameters=False``); ``batches`` must
    already be this process's share (:class:`ShardedBatches` or a sharded sampler) and ``evaluate``
    must return metrics over all processes (it runs on every rank). Logged losses and parts are
    averaged over the processes; checkpoints hold the unwrapped model, so they do not depend on the
    number of processes, and are written by rank 0 only.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        batches: Iterable[Any],
        loss_fn: LossFn,
        config: TrainConfig,
        *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
        hparams: Any = None,
        on_epoch: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self.device = select_device(config.device)
        self.model = model.to(self.device)
        self.on_epoch = on_epoch
        self.rank, self.world = distributed_context()
        self.network: nn.Module = self.model  # what the loss function calls: the model, or its DDP wrapper
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=device_ids)
        self.optimizer = optimizer
        self.batches = batches
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.evaluate = evaluate
        self.amp = config.amp and self.device.type == "cuda"
        if config.amp and not self.amp:
            warnings.warn(
                f"amp=True is ignored on {self.device.type}: mixed precision is used on CUDA only",
                stacklevel=2,
            )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.identity = _plain(
            {
                "train": config,
                "hparams": hparams,
                "optimizer": _optimizer_identity(optimizer),
                "scheduler": None if scheduler is None else type(scheduler).__name__,
            }
        )
        self.run_id = config_hash(self.identity)
        self.epoch = 0  # epochs completed
        self._history: list[dict[str, Any]] = []
        self._steps: list[dict[str, Any]] = []

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch: epoch, loss (mean over steps), logged parts, eval metrics, lr, seconds.

        ``lr`` is the first parameter group's learning rate during the epoch's last step; ``seconds`` is
        the wall time of the epoch's training steps (without evaluation and checkpointing).
        """
        return pd.DataFrame(self._history)

    @property
    def step_history(self) -> pd.DataFrame:
        """One row per optimiser step: epoch, step (counted from 1 over the run), loss, logged parts, lr."""
        return pd.DataFrame(self._steps)

    def fit(self) -> pd.DataFrame:
        """Train the remaining epochs and return :attr:`history`.

        If ``config.checkpoint`` exists it is loaded first (it must come from the same run identity,
        else ``ValueError``): training continues after its last epoch, and a finished run returns its
        history without training. Otherwise a new run starts with :func:`seed_everything`.
        """
        config = self.config
        resume = config.checkpoint is not None and config.checkpoint.exists()
        if resume or self.epoch == 0:
            seed_everything(config.seed, config.deterministic)
            if self.rank:  # other ranks draw other dropout masks; rank 0 keeps the single-process stream
                torch.manual_seed(int(np.random.SeedSequence([config.seed, self.rank]).generate_state(1)[0]))
        if resume:
            self._load(config.checkpoint)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        try:
            num_batches: int | None = len(self.batches)  # type: ignore[arg-type]
        except TypeError:
            num_batches = None
        show = progress_enabled(config.progress) and self.rank == 0
        epochs = tqdm(
            range(self.epoch + 1, config.epochs + 1),
            initial=self.epoch,
            total=config.epochs,
            desc="epochs",
            disable=not show,
        )
        for epoch in epochs:
            self.model.train()
            if hasattr(self.batches, "set_epoch"):
                self.batches.set_epoch(epoch)
            if self.on_epoch is not None:
                self.on_epoch(epoch)
            steps: list[dict[str, Any]] = []
            start = time.perf_counter()
            bar = tqdm(self.batches, total=num_batches, desc=f"epoch {epoch}", leave=False, disable=not show)
            for batch in bar:
                with torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext():
                    out = self.loss_fn(self.network, to_device(batch, self.device))
                loss, parts = out if isinstance(out, tuple) else (out, {})
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if config.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(params, config.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                lr = float(self.optimizer.param_groups[0]["lr"])  # the rate this step used
                if self.scheduler is not None and config.schedule_per == "step":
                    self.scheduler.step()
                step = len(self._steps) + len(steps) + 1
                steps.append(_step_row(epoch, step, loss, parts, lr))
                if show and config.log_every and step % config.log_every == 0:
                    bar.set_postfix(loss=f"{loss.item():.4g}")
            if not steps:
                raise ValueError(f"epoch {epoch} had no batches (drop_last with batch_size > data size?)")
            steps = _to_floats(steps, self.device, self.world)  # one device sync per epoch
            seconds = time.perf_counter() - start
            if self.scheduler is not None and config.schedule_per == "epoch":
                self.scheduler.step()

            record: dict[str, Any] = {"epoch": epoch, **_means(steps)}
            if self.evaluate is not None:
                self.model.eval()
                with torch.inference_mode():  # cheaper than no_grad: no version counters or views tracked
                    metrics = {name: float(value) for name, value in self.evaluate(self.model).items()}
                if clash := sorted(metrics.keys() & (record.keys() | _RESERVED)):
                    raise ValueError(f"evaluate() returned metrics that clash with logged columns: {clash}")
                record.update(metrics)
            record.update(lr=steps[-1]["lr"], seconds=seconds)
            self._history.append(record)
            self._steps.extend(steps)
            self.epoch = epoch
            if config.checkpoint is not None:
                self._save(config.checkpoint)
                if os.environ.get(FAULT_ENV) == str(epoch):
                    os._exit(17)  # simulated kill (tests): no clean-up, no further epochs
            epochs.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")})
        return self.history

    # ------------------------------------------------------------------------------------------------------
    # Checkpoints

    def _save(self, path: Path) -> None:
        """Write everything the next epoch depends on, atomically (rank 0; the others wait for it)."""
        rng = _rng_state()
        if self.world > 1:
            import torch.distributed as dist

            ranks: list[Any] = [None] * self.world
            dist.all_gather_object(ranks, rng)
            rng = {**rng, "ranks": ranks}
        if self.rank != 0:
            import torch.distributed as dist

            dist.barrier()
            return
        state = {
            "run_id": self.run_id,
            "identity": self.identity,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "batches_rng": _generator_state(self.batches),
            "history": self._history,
            "steps": self._steps,
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def _load(self, path: Path) -> None:
        """Restore a checkpoint written by :meth:`_save` for the same run identity."""
        state = load_checkpoint(path)
        if state["run_id"] != self.run_id:
            changed = _differences(state["identity"], self.identity)
            raise ValueError(
                f"checkpoint {path} belongs to a different run (run id {state['run_id']}, this run "
                f"{self.run_id}); settings that differ: {', '.join(changed)}. Delete the file or give "
                "each configuration its own file with checkpoint_path()."
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        ranks = state["rng"].get("ranks")
        if ranks is not None and len(ranks) == self.world:
            _set_rng_state(ranks[self.rank])
        elif self.world == 1:
            _set_rng_state(state["rng"])
        else:  # resumed on another number of processes: reproducible, though not the original stream
            warnings.warn(
                f"checkpoint {path} was written by {len(ranks or [0])} process(es), this run has "
                f"{self.world}: random streams are reseeded",
                stacklevel=2,
            )
            torch.manual_seed(
                int(
                    np.random.SeedSequence([self.config.seed, state["epoch"], self.rank]).generate_state(1)[0]
                )
            )
        if state["batches_rng"] is not None:
            self.batches.generator.set_state(state["batches_rng"])  # type: ignore[attr-defined]
        self._history = state["history"]
        self._steps = state["steps"]
        self.epoch = state["epoch"]


CHECKPOINT_KEYS = ("run_id", "identity", "epoch", "model", "optimizer", "scheduler", "scaler", "rng")


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :class:`Trainer`; ``ValueError`` naming the file if it is not one.

    A truncated or empty file, a file that is not a torch checkpoint and a plain ``state_dict``
    (no run identity) each raise ``ValueError`` with the path and what to do, never a bare
    ``EOFError``/``KeyError``.
    """
    path = Path(path)
    advice = "delete it to train this run again"
    try:
        if path.stat().st_size == 0:
            raise ValueError(f"checkpoint {path} is empty (an interrupted write?); {advice}")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except ValueError:
        raise
    except Exception as error:  # truncated zip, EOF, unpickling errors of a foreign file
        detail = (str(error).splitlines() or ["no detail"])[0]
        raise ValueError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {detail}); "
            f"it is truncated or not a checkpoint: {advice}"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(
            f"checkpoint {path} holds a {type(state).__name__}, not a training checkpoint; {advice}"
        )
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise ValueError(
            f"checkpoint {path} lacks {', '.join(missing)}: it is not a thesislib training checkpoint "
            f"(a plain state_dict?); {advice}, or load it with torch.load"
        )
    return state


# ----------------------------------------------------------------------------------------------------------
# Helpers of the loop and the checkpoints


_SCHEDULED = ("lr", "initial_lr", "momentum", "betas")  # group settings that schedulers change


def _optimizer_identity(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's class, constructor defaults and per-group settings (e.g. weight decay).

    A group's learning rate is taken before scheduling (``initial_lr``), and the settings schedulers
    change while training are left out of the groups, so the identity is the same before and after.
    """

    def setting(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return value.item()
        if isinstance(value, (list, tuple)):
            return [setting(item) for item in value]
        plain = value is None or isinstance(value, (bool, int, float, str))
        return value if plain else type(value).__name__

    groups = [
        {
            "lr": setting(group.get("initial_lr", group["lr"])),
            **{key: setting(value) for key, value in group.items() if key not in ("params", *_SCHEDULED)},
        }
        for group in optimizer.param_groups
    ]
    defaults = {key: setting(value) for key, value in optimizer.defaults.items()}
    return {"type": type(optimizer).__name__, "defaults": defaults, "groups": groups}


def _step_row(
    epoch: int, step: int, loss: torch.Tensor, parts: Mapping[str, Any], lr: float
) -> dict[str, Any]:
    """The log of one step; the loss and tensor parts stay on the device until :func:`_to_floats`."""
    if clash := sorted(parts.keys() & _RESERVED):
        raise ValueError(f"loss_fn logged parts with reserved names: {clash}")
    parts = {name: v.detach() if isinstance(v, torch.Tensor) else float(v) for name, v in parts.items()}
    return {"epoch": epoch, "step": step, "loss": loss.detach(), **parts, "lr": lr}


def _to_floats(rows: list[dict[str, Any]], device: torch.device, world: int = 1) -> list[dict[str, Any]]:
    """Turn the tensors logged during an epoch into floats with a single device synchronisation.

    With ``world > 1`` processes each tensor becomes its mean over the processes (one all-reduce).
    """
    tensors = [value for row in rows for value in row.values() if isinstance(value, torch.Tensor)]
    stacked = torch.stack([t.to(device, torch.float32).reshape(()) for t in tensors])
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(stacked)
        stacked = stacked / world
    values = iter(stacked.tolist())
    return [
        {key: next(values) if isinstance(v, torch.Tensor) else v for key, v in row.items()} for row in rows
    ]


def _means(steps: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over an epoch's steps of the loss and of each logged part (over the steps that logged it)."""
    names = dict.fromkeys(name for row in steps for name in row if name not in ("epoch", "step", "lr"))
    return {
        name: math.fsum(row[name] for row in steps if name in row) / sum(name in row for row in steps)
        for name in names
    }


def _rng_state() -> dict[str, Any]:
    """The state of every global random number generator the loop may draw from."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`_rng_state`."""
    random.setstate(state["python"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


def _generator_state(batches: Iterable[Any]) -> torch.Tensor | None:
    """State of a ``DataLoader(generator=...)``'s own generator (its shuffle order depends on it)."""
    generator = getattr(batches, "generator", None)
    return generator.get_state() if isinstance(generator, torch.Generator) else None


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ between two plain configurations."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            name
            for key in sorted(old.keys() | new.keys())
            for name in _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            name
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for name in _differences(a, b, f"{prefix}{i}.")
        ]
    return [] if old == new else [prefix.rstrip(".") or "(whole configuration)"]


# ----------------------------------------------------------------------------------------------------------
# CIFAR recipes, shared by chapters 4 and 5

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
    2017; :class:`~thesislib.data.augment.CifarBatches`), 0 for none.
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
        """The recipe as run-identity data: every field (:func:`~thesislib.training.config_hash` hashes it)."""
        return dataclasses.asdict(self)

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


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A network of the model registry by name, block and substitute (:func:`thesislib.models.build_model`).

    ``ModelSpec("wrn-40-2", "G(N/4)")`` is a chapter-4 student; ``ModelSpec("wrn-16-2", substitute="tt:0.3125")``
    a chapter-5 one (every 3×3 conv separable, its pointwise part a Tensor-Train). The substitute is
    held as a :class:`~thesislib.compressed.base.SubstituteSpec` (text is parsed once, keeping every
    digit of the setting); block and substitute are validated when the spec is made, the name when it
    is built (:func:`train` may take another builder).
    """

    name: str
    block: str = "S"
    substitute: SubstituteSpec | None = None

    def __post_init__(self) -> None:
        from thesislib.compressed.base import parse_substitute
        from thesislib.moonshine.blocks import parse_block

        parse_block(self.block)
        if self.substitute is not None:
            object.__setattr__(self, "substitute", parse_substitute(self.substitute))

    @property
    def label(self) -> str:
        """``wrn-40-2 G(N/4)``, ``wrn-16-2 tt:0.3125`` (an S block is not named beside a substitute)."""
        if self.substitute is None:
            return f"{self.name} {self.block}"
        block = "" if self.block == "S" else f" {self.block}"
        return f"{self.name}{block} {self.substitute}"

    @property
    def slug(self) -> str:
        """A file-name-safe label: ``wrn-40-2-G_N_4``."""
        return re.sub(r"[^A-Za-z0-9-]+", "_", self.label.replace(" ", "-")).strip("_")

    def build(self, num_classes: int) -> nn.Module:
        """The network from :func:`thesislib.models.build_model`."""
        from thesislib.models import build_model

        return build_model(self.name, self.block, substitute=self.substitute, num_classes=num_classes)


ModelBuilder = Callable[[ModelSpec, int], nn.Module]
"""``builder(spec, num_classes) -> nn.Module``: how :func:`train` builds a network (default :meth:`ModelSpec.build`)."""


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


def evaluate_error(model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
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
    builder: ModelBuilder | None = None,
) -> TrainedModel:
    """Train ``spec`` on ``data`` with ``recipe``: from scratch, or distilled from ``teacher`` (§4.4).

    Args:
        spec: the network (built by ``builder``, default :meth:`ModelSpec.build`).
        data: training and test tensors (:meth:`thesislib.data.cifar.CifarSubset.load`).
        recipe: optimiser, schedule and Cutout (:data:`thesislib.moonshine.recipes.ZAGORUYKO_CIFAR` in the
            paper profile).
        distillation: ``scratch`` (default), ``kd`` (Eq. 4.1) or ``at`` (Eq. 4.2).
        teacher: the trained teacher, required for ``kd`` and ``at``; its run id is part of the student's.
        seed: initialisation, data order, crops, flips and Cutout squares.
        checkpoint_dir: cache and resume runs there (``None``: keep in memory).
        channels_last: feed channels-last images (can be faster on GPUs; same numbers up to rounding).

    The test error is evaluated after every epoch (``history["test_error"]``); ``steps`` holds the loss
    and its terms (``ce``, ``kd`` or ``at1..at3`` β-scaled, ``train_error``) for every step.
    """
    from thesislib.data.augment import CifarBatches
    from thesislib.moonshine.distillation import DistillationLoss, DistillationSettings

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
