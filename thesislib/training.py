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
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from thesislib.atomic import atomic_path

__all__ = [
    "FAULT_ENV",
    "NOT_HASHED",
    "LossFn",
    "ShardedBatches",
    "TensorBatches",
    "TrainConfig",
    "Trainer",
    "checkpoint_path",
    "config_hash",
    "load_checkpoint",
    "progress_enabled",
    "seed_everything",
    "select_device",
    "to_device",
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
