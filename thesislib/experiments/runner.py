"""Run one experiment: data, model, loss and metric built from its spec, trained by the shared Trainer.

``run_experiment(name, out)`` trains (or, for published weights, evaluates) one job of
:data:`~thesislib.experiments.spec.EXPERIMENTS` and writes its run folder ``<out>/<name>/``
(``<out>/<name>__seed=N/`` for another seed):

- ``checkpoint.pt`` (one per stage for ERFNet): the Trainer's atomic per-epoch checkpoint; a re-run
  resumes from it, a finished run just reloads;
- ``model.pt``: the final weights (a student's teacher is read from ``<teacher dir>/<teacher>/model.pt``);
- ``history.csv`` and ``result.json``: per-epoch logs and the final metrics;
- ``<folder name>.ipynb``: a *record notebook*: no code, only the metadata and glued values
  (scrapbook format) of an executed notebook, so the results store (``thesislib results``),
  ``thesislib batch`` and the claims ledger read an experiment exactly as they read notebooks.

Several processes: launched by ``torchrun`` (``thesislib experiments run NAME --nproc N`` does it),
each process joins the process group (NCCL on CUDA, Gloo on CPU), takes its share of every global
batch and of the test set; the Trainer averages gradients (DistributedDataParallel) and rank 0 writes.
Mixed precision is on for CUDA runs of the paper profile (``amp=False`` turns it off). Batch norm
normalises each process' share of the batch, as the thesis' multi-GPU runs did (Table 4.4: "256 ...
across 4 GPUs"), so results can depend a little on the number of processes; ``sync_batchnorm=True``
(CUDA only) normalises over the whole global batch instead, as one GPU would.

Profiles: ``paper`` uses every setting of the spec; ``smoke`` runs the same code for one epoch with
a global batch of 4 on tiny data (random CIFAR-shaped tensors; the ImageNet/Cityscapes folders found
on the data path, e.g. a fake set laid out like the real one), small images and untrained teachers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from thesislib.atomic import atomic_path, atomic_write_text
from thesislib.data.folders import CITYSCAPES_VOID
from thesislib.experiments import data as xdata
from thesislib.experiments import models
from thesislib.experiments.spec import Experiment, get_experiment
from thesislib.paths import JOB_PROFILES
from thesislib.training import (
    ShardedBatches,
    TrainConfig,
    Trainer,
    config_hash,
    distributed_context,
    seed_everything,
    select_device,
)

__all__ = [
    "RunOutput",
    "SmokeSizes",
    "init_distributed",
    "record_notebook",
    "run_experiment",
    "run_folder",
]

RECORD_SCRAP = "application/scrapbook.scrap.json+json"


@dataclasses.dataclass(frozen=True)
class SmokeSizes:
    """What the smoke profile shrinks (the code path stays the paper one)."""

    epochs: int = 1
    batch_size: int = 4
    imagenet_size: int = 32
    cityscapes_size: tuple[int, int] = (64, 128)
    cifar_train: int = 8
    cifar_test: int = 8


@dataclasses.dataclass
class RunOutput:
    """What a run produced: final metrics, per-epoch history and where it is."""

    experiment: str
    metrics: dict[str, float]
    history: pd.DataFrame
    folder: Path
    record: Path
    run_id: str


def run_folder(out: str | Path, name: str, seed: int = 0) -> Path:
    """``<out>/<name>`` for seed 0, ``<out>/<name>__seed=<seed>`` otherwise."""
    return Path(out) / (name if seed == 0 else f"{name}__seed={seed}")


def init_distributed() -> tuple[int, int, int]:
    """Join the ``torchrun`` process group if launched by it: ``(rank, world, local rank)``.

    NCCL when CUDA is available, else Gloo (CPU). Without ``torchrun`` (no ``WORLD_SIZE``): ``(0, 1, 0)``.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
    rank, world = distributed_context()
    return rank, world, local


# ----------------------------------------------------------------------------------------------------------
# Recipes


def _sgd_recipe(experiment: Experiment, epochs: int, batch_size: int):
    from thesislib.compressed.experiment import CRSRecipe
    from thesislib.training import Recipe

    v = experiment.value
    fields = dict(
        epochs=epochs,
        batch_size=batch_size,
        lr=v("lr"),
        momentum=v("momentum"),
        weight_decay=v("weight_decay"),
        schedule=v("schedule"),
        milestones=tuple(v("milestones", ())),
        gamma=v("gamma", 1.0),
        cutout=int(v("cutout", 0)),
    )
    if experiment.model.kind == "compressed" and experiment.model.substitute is not None:
        return CRSRecipe(**fields, crs=bool(v("crs", True)), crs_scope=v("crs_scope", "network"))
    return Recipe(**fields)


def _optimizer(experiment: Experiment, model: nn.Module, epochs: int, batch_size: int, steps: int):
    """``(optimizer, scheduler, schedule_per)`` of the experiment's recipe."""
    if experiment.value("optimizer") == "adam":  # ERFNet (Romera et al.): Adam with a poly schedule
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=experiment.value("lr"),
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=experiment.value("weight_decay"),
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: (1 - e / epochs) ** 0.9)
        return optimizer, scheduler, "epoch"
    recipe = _sgd_recipe(experiment, epochs, batch_size)
    optimizer = recipe.optimizer(model)
    scheduler, per = recipe.scheduler(optimizer, steps)
    return optimizer, scheduler, per


# ----------------------------------------------------------------------------------------------------------
# Losses


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


class DartsLoss:
    """Chapter 4's distillation loss plus DARTS' auxiliary head term (weight 0.4, Liu et al. 2019)."""

    def __init__(self, base: Callable[..., Any], weight: float) -> None:
        self.base, self.weight = base, weight

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> Any:
        from thesislib.compressed.darts import auxiliary_loss

        loss, parts = self.base(model, batch)
        aux = auxiliary_loss(_unwrap(model), batch[1], self.weight)  # type: ignore[arg-type]
        return loss + aux, {**parts, "aux": aux}


class SegmentationLoss:
    """Cross entropy over the non-void pixels (+ β Σ attention terms from a teacher), §4.5.2.

    Labels are resized (nearest) to the logits when these are smaller (ERFNet's encoder stage trains
    at 1/8 resolution). The teacher returns its taps in the student's order.
    """

    def __init__(self, teacher: nn.Module | None, beta: float) -> None:
        self.teacher, self.beta = teacher, beta
        if teacher is not None:
            teacher.eval()
            for parameter in teacher.parameters():
                parameter.requires_grad_(False)

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> Any:
        from thesislib.moonshine.distillation import attention_distance

        x, y = batch
        logits, taps = model(x)
        if logits.shape[-2:] != y.shape[-2:]:
            y = F.interpolate(y[:, None].float(), size=logits.shape[-2:], mode="nearest")[:, 0].long()
        ce = F.cross_entropy(logits.float(), y, ignore_index=CITYSCAPES_VOID)
        parts: dict[str, torch.Tensor] = {"ce": ce}
        loss = ce
        if self.teacher is not None:
            with torch.no_grad():
                _, teacher_taps = self.teacher(x)
            for i, (s, t) in enumerate(zip(taps, teacher_taps, strict=False), start=1):
                parts[f"at{i}"] = self.beta * attention_distance(s, t)
                loss = loss + parts[f"at{i}"]
        return loss, parts


class DropPathSchedule:
    """DARTS' drop-path probability, raised linearly from 0 to ``final`` over training (§5.3.1)."""

    def __init__(self, model: nn.Module, epochs: int, final: float) -> None:
        self.model, self.epochs, self.final = model, epochs, final

    def __call__(self, epoch: int) -> None:
        from thesislib.compressed.darts import drop_path_probability

        self.model.drop_path_prob = drop_path_probability(epoch - 1, self.epochs, self.final)


class EncoderStage(nn.Module):
    """ERFNet's encoder (layers 1-16) with its own 1×1 output conv: ``(1/8-resolution scores, taps 7, 12, 16)``."""

    def __init__(self, erfnet: nn.Module, classes: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(list(erfnet.layers)[:16])
        self.head = nn.Conv2d(128, classes, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        taps = []
        for number, layer in enumerate(self.layers, start=1):
            x = layer(x)
            if number in (7, 12, 16):
                taps.append(x)
        return self.head(x), taps


class FirstTaps(nn.Module):
    """A teacher returning only its first ``count`` taps (ERFNet's encoder stage: layers 7, 12, 16)."""

    def __init__(self, teacher: nn.Module, count: int) -> None:
        super().__init__()
        self.teacher, self.count = teacher, count

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        logits, taps = self.teacher(x)
        return logits, list(taps)[: self.count]


# ----------------------------------------------------------------------------------------------------------
# Data


def _classes(experiment: Experiment) -> int:
    return {"cifar10": 10, "cifar100": 100, "imagenet": 1000, "cityscapes": 20}[experiment.dataset]


def _cifar(
    experiment: Experiment,
    smoke: SmokeSizes | None,
    batch_size: int,
    seed: int,
    device,
    rank: int,
    world: int,
):
    from thesislib.data import load_cifar
    from thesislib.data.augment import CifarBatches, cifar_normalisation

    if smoke is not None:
        x, y, tx, ty = xdata.synthetic_cifar(_classes(experiment), smoke.cifar_train, smoke.cifar_test, seed)
    else:
        x, y = load_cifar(experiment.dataset, "train")
        tx, ty = load_cifar(experiment.dataset, "test")
    mean, std = cifar_normalisation(experiment.dataset)
    train = CifarBatches(
        x,
        y,
        batch_size=batch_size,
        mean=mean,
        std=std,
        cutout=int(experiment.value("cutout", 0)),
        seed=seed,
        device=device,
    )
    test = CifarBatches(
        tx[rank::world],
        ty[rank::world],
        batch_size=500,
        mean=mean,
        std=std,
        augment=False,
        shuffle=False,
        device=device,
    )
    return ShardedBatches(train, rank, world), test, len(y)


def _folder_data(
    experiment: Experiment,
    smoke: SmokeSizes | None,
    batch_size: int,
    seed: int,
    rank: int,
    world: int,
    workers: int,
    pin: bool,
):
    from thesislib.data.folders import CityscapesSet, ImageFolderSet, locate_folder

    root = locate_folder(experiment.dataset)
    if experiment.dataset == "imagenet":
        size = smoke.imagenet_size if smoke else 224
        train_t, eval_t = xdata.imagenet_transforms(size, round(size * 256 / 224))
        train_set, test_set = ImageFolderSet(root, "train", train_t), ImageFolderSet(root, "val", eval_t)
        if smoke is None and len(train_set.classes) != 1000:
            raise ValueError(
                f"ImageNet at {root} has {len(train_set.classes)} classes, not ILSVRC-2012's 1000"
            )
    else:
        size = smoke.cityscapes_size if smoke else tuple(experiment.value("image_size"))
        train_set = CityscapesSet(root, "train", xdata.SegmentationTransform(size, augment=True))
        test_set = CityscapesSet(root, "val", xdata.SegmentationTransform(size))
    train = xdata.LoaderBatches(
        train_set,
        xdata.GlobalBatchSampler(len(train_set), batch_size, rank=rank, world=world, seed=seed),
        workers,
        pin,
    )
    eval_batch = 50 if experiment.dataset == "imagenet" else 4
    test = xdata.LoaderBatches(
        test_set,
        xdata.GlobalBatchSampler(len(test_set), eval_batch, rank=rank, world=world, shuffle=False),
        workers,
        pin,
    )
    return train, test, len(train_set)


# ----------------------------------------------------------------------------------------------------------
# Teachers


def _teacher(
    experiment: Experiment, smoke: bool, teacher_dir: Path, device: torch.device
) -> nn.Module | None:
    if experiment.teacher is None or experiment.method not in ("kd", "at"):
        return None
    teacher = get_experiment(experiment.teacher)
    if teacher.model.kind == "pretrained":
        network = models.build(teacher.model, _classes(teacher), pretrained=not smoke)
    else:
        network = models.build(teacher.model, _classes(teacher))
        weights = teacher_dir / teacher.name / "model.pt"
        if weights.is_file():
            network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        elif not smoke:
            raise FileNotFoundError(
                f"{experiment.name} needs its teacher's weights at {weights}: run "
                f"`thesislib experiments run {teacher.name} --out {teacher_dir}` first (or give --teacher-dir)"
            )
    return network.to(device).eval()


# ----------------------------------------------------------------------------------------------------------
# The run


def _write_outputs(
    folder: Path,
    experiment: Experiment,
    profile: str,
    seed: int,
    model: nn.Module | None,
    history: pd.DataFrame,
    metrics: dict[str, float],
    extra: dict[str, Any],
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        with atomic_path(folder / "model.pt") as tmp:
            torch.save(_unwrap(model).state_dict(), tmp)
    with atomic_path(folder / "history.csv") as tmp:
        history.to_csv(tmp, index=False)
    result = {"experiment": experiment.name, "profile": profile, "seed": seed, "metrics": metrics, **extra}
    atomic_write_text(folder / "result.json", json.dumps(result, indent=1, default=str))
    scraps = {
        "experiment": experiment.name,
        "location": experiment.location,
        experiment.metric: metrics.get(experiment.metric),
        "metrics": metrics,
        "history": json.loads(history.to_json(orient="records")),
        **extra,
    }
    parameters = {"experiment": experiment.name, "seed": seed}
    return record_notebook(
        folder / f"{folder.name}.ipynb", experiment.name, profile, parameters, scraps, extra["run_id"]
    )


def record_notebook(
    path: Path, name: str, profile: str, parameters: dict[str, Any], scraps: dict[str, Any], key: str
) -> Path:
    """Write a record notebook: an executed notebook's metadata and glued values, no code (atomic).

    :func:`thesislib.runs.results.collect_results` reads it like any executed notebook: notebook
    ``name``, ``profile``, ``parameters``, one row per scrap (scrapbook's JSON scrap format).
    """
    import nbformat

    outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={RECORD_SCRAP: {"name": key_, "data": value, "encoder": "json", "version": 1}},
            metadata={"scrapbook": {"name": key_, "data": True, "display": False}},
        )
        for key_, value in json.loads(json.dumps(scraps, default=float)).items()
        if value is not None  # scrapbook cannot encode None: a value not measured is not glued
    ]
    cell = nbformat.v4.new_code_cell(
        source=f"# thesislib experiments run {name} --profile {profile}", outputs=outputs, execution_count=1
    )
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["thesislib"] = {
        "cache_key": key,
        "notebook": f"{name}.ipynb",  # the results store names a notebook by this path's stem
        "profile": profile,
        "parameters": parameters,
    }
    notebook.metadata["papermill"] = {"exception": None}
    with atomic_path(path) as tmp:
        nbformat.write(notebook, tmp)
    return path


def run_experiment(
    name: str,
    out: str | Path,
    *,
    profile: str = "paper",
    seed: int = 0,
    device: str = "auto",
    amp: bool = True,
    epochs: int | None = None,
    teacher_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    smoke: SmokeSizes | None = None,
    sync_batchnorm: bool = False,
) -> RunOutput:
    """Train (or evaluate) experiment ``name`` into ``run_folder(out, name, seed)``; see the module docstring.

    ``epochs`` overrides the number of epochs (per stage); ``teacher_dir`` is where teachers' run folders
    are (default ``out``); ``workers`` DataLoader processes for the folder data sets (default 8 per
    process in the paper profile, 0 in smoke). Under ``torchrun`` every process calls this.
    """
    if profile not in JOB_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(JOB_PROFILES)}")
    experiment = get_experiment(name)
    if experiment.blocked:
        raise ValueError(f"experiment {name} cannot run yet: {experiment.blocked}")
    sizes = (smoke or SmokeSizes()) if profile == "smoke" else None
    rank, world, local = init_distributed()
    if world > 1 and torch.cuda.is_available() and device in ("auto", "cuda"):
        device = f"cuda:{local}"
    run_device = select_device(device)
    folder = run_folder(out, name, seed)
    folder.mkdir(parents=True, exist_ok=True)
    teacher_dir = Path(teacher_dir) if teacher_dir is not None else Path(out)
    workers = (0 if sizes else 8) if workers is None else workers
    started = time.perf_counter()
    epochs = epochs if epochs is not None else (sizes.epochs if sizes else int(experiment.value("epochs")))
    batch_size = sizes.batch_size if sizes else int(experiment.value("batch_size", 1))
    if world > 1 and batch_size % world:
        raise ValueError(f"the global batch {batch_size} must be divisible by the {world} processes")
    classes = _classes(experiment)

    seed_everything(seed)
    if experiment.method == "eval":
        model = models.build(experiment.model, classes, pretrained=sizes is None).to(run_device).eval()
        _, test, _ = _folder_data(experiment, sizes, 1, seed, rank, world, workers, run_device.type == "cuda")
        metrics = xdata.classification_metrics(model, test, run_device, world)
        history = pd.DataFrame([{"epoch": 0, **metrics}])
        run_id = config_hash({"experiment": name, "profile": profile, "seed": seed})
        return _finish(
            experiment, profile, seed, None, history, folder, run_id, started, world, run_device, rank
        )

    options = {"auxiliary": True} if experiment.model.name == "darts" else {}
    model = models.build(experiment.model, classes, **options)
    if sync_batchnorm and world > 1:
        if run_device.type != "cuda":
            raise ValueError("sync_batchnorm needs CUDA (PyTorch's SyncBatchNorm has no CPU implementation)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    teacher = _teacher(experiment, sizes is not None, teacher_dir, run_device)
    if experiment.task == "classification":
        if experiment.dataset.startswith("cifar"):
            train, test, _ = _cifar(experiment, sizes, batch_size, seed, run_device, rank, world)
        else:
            train, test, _ = _folder_data(
                experiment, sizes, batch_size, seed, rank, world, workers, run_device.type == "cuda"
            )
        prefix = "top" if experiment.dataset == "imagenet" else "test"
        evaluate = _classification_evaluator(test, run_device, world, prefix)
        stages = [("main", model, _classification_loss(experiment, teacher), evaluate)]
    else:
        train, test, _ = _folder_data(
            experiment, sizes, batch_size, seed, rank, world, workers, run_device.type == "cuda"
        )
        encoder = EncoderStage(model, classes)
        stages = [
            (
                "encoder",
                encoder,
                SegmentationLoss(
                    None if teacher is None else FirstTaps(teacher, 3), experiment.value("beta")
                ),
                None,
            ),
            (
                "decoder",
                model,
                SegmentationLoss(teacher, experiment.value("beta_decoder")),
                lambda m: xdata.segmentation_metrics(m, test, run_device, world, classes),
            ),
        ]

    histories, run_ids = [], []
    identity = {
        "experiment": name,
        "profile": profile,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
    }
    if sizes is not None:
        identity["smoke"] = dataclasses.asdict(sizes)
    for stage, network, loss_fn, evaluate_fn in stages:
        optimizer, scheduler, per = _optimizer(experiment, network, epochs, batch_size, len(train))
        config = TrainConfig(
            epochs=epochs,
            seed=seed,
            amp=amp and run_device.type == "cuda",
            grad_clip=experiment.value("grad_clip"),
            schedule_per=per,
            device=str(run_device),
            checkpoint=folder / ("checkpoint.pt" if stage == "main" else f"checkpoint-{stage}.pt"),
            progress=progress,
        )
        on_epoch = None
        if experiment.model.name == "darts":
            on_epoch = DropPathSchedule(network, epochs, float(experiment.value("drop_path", 0.0)))
        trainer = Trainer(
            network,
            optimizer,
            train,
            loss_fn,
            config,
            scheduler=scheduler,
            evaluate=evaluate_fn,
            hparams={**identity, "stage": stage},
            on_epoch=on_epoch,
        )
        history = trainer.fit().assign(stage=stage)
        histories.append(history)
        run_ids.append(trainer.run_id)
    history = pd.concat(histories, ignore_index=True)
    run_id = config_hash(run_ids)
    return _finish(
        experiment, profile, seed, model, history, folder, run_id, started, world, run_device, rank
    )


def _classification_loss(experiment: Experiment, teacher: nn.Module | None):
    from thesislib.moonshine.distillation import DistillationLoss, DistillationSettings

    settings = DistillationSettings(
        experiment.method,  # type: ignore[arg-type]
        alpha=float(experiment.value("alpha", 0.9)),
        temperature=float(experiment.value("temperature", 4.0)),
        beta=float(experiment.value("beta", 1000.0)),
        kd_form=experiment.value("kd_form", "kl_div_mean"),
    )
    loss = DistillationLoss(settings, teacher)
    if experiment.model.name == "darts":
        return DartsLoss(loss, float(experiment.value("auxiliary_weight", 0.4)))
    return loss


def _classification_evaluator(test: Any, device: torch.device, world: int, prefix: str):
    def evaluate(model: nn.Module) -> dict[str, float]:
        metrics = xdata.classification_metrics(model, test, device, world, "top")
        if prefix == "test":  # chapter 4's CIFAR name for the top-1 error
            return {
                "test_error": metrics["top1_error"],
                "top5_error": metrics["top5_error"],
                "test_loss": metrics["test_loss"],
            }
        return metrics

    return evaluate


def _finish(
    experiment: Experiment,
    profile: str,
    seed: int,
    model: nn.Module | None,
    history: pd.DataFrame,
    folder: Path,
    run_id: str,
    started: float,
    world: int,
    device: torch.device,
    rank: int,
) -> RunOutput:
    last = history.iloc[-1]
    metrics = {
        k: float(last[k])
        for k in ("test_error", "top1_error", "top5_error", "test_loss", "mean_iou", "pixel_accuracy")
        if k in history and pd.notna(last[k])
    }
    parameters = None
    if model is not None:
        parameters = sum(
            p.numel() for n, p in _unwrap(model).named_parameters() if not n.startswith("auxiliary_head")
        )
    extra = {
        "run_id": run_id,
        "seconds": time.perf_counter() - started,
        "world_size": world,
        "device": str(device),
        "parameters": parameters,
        "setting": models.resolve_setting(experiment.model),
        "gpu_hours_estimate": experiment.gpu_hours,
    }
    record = folder / f"{folder.name}.ipynb"
    if rank == 0:
        record = _write_outputs(folder, experiment, profile, seed, model, history, metrics, extra)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return RunOutput(experiment.name, metrics, history, folder, record, run_id)
