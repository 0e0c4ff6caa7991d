"""Data, sharding and metrics of the experiments: CIFAR on the device, ImageNet and Cityscapes from folders.

Every process of a ``torchrun`` job sees its share of each *global* batch, so N processes train on
the same batches as one: CIFAR through :class:`~thesislib.training.ShardedBatches` (the whole set
lives on each device, augmentation as chapter 4), the folder data sets through
:class:`GlobalBatchSampler`. Evaluation splits the test set between the processes and sums counts
(errors, confusion matrices) with one all-reduce: top-1/top-5 error (Tables 4.3, 4.4, 5.1) and the
Cityscapes class mean IoU (Eq. 4.5, Table 4.5).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from thesislib.data.folders import CITYSCAPES_VOID

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "GlobalBatchSampler",
    "LoaderBatches",
    "SegmentationTransform",
    "all_reduce_sum",
    "classification_metrics",
    "imagenet_transforms",
    "segmentation_metrics",
    "synthetic_cifar",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def all_reduce_sum(tensor: torch.Tensor, world: int) -> torch.Tensor:
    """``tensor`` summed over the processes (itself when there is one)."""
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(tensor)
    return tensor


def synthetic_cifar(classes: int, train: int = 8, test: int = 8, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random uint8 images N×3×32×32 with labels cycling through ``classes``: CIFAR-shaped data for smoke runs."""
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for size in (train, test):
        tensors.append(torch.randint(0, 256, (size, 3, 32, 32), generator=generator, dtype=torch.uint8))
        tensors.append(torch.arange(size) % classes)
    return tuple(tensors)


class GlobalBatchSampler(torch.utils.data.Sampler[list[int]]):
    """This process's indices of every global batch of ``batch_size`` (a ``DataLoader`` batch sampler).

    The order of epoch ``e`` depends only on ``(seed, e)``; each global batch is cut into ``world``
    near-equal consecutive slices and process ``rank`` takes its slice. ``shuffle=False``: the
    evaluation split, where process ``rank`` takes every ``world``-th example instead.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        *,
        rank: int = 0,
        world: int = 1,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if size < 1 or batch_size < 1:
            raise ValueError(f"need a non-empty data set and a positive batch size, got {size}, {batch_size}")
        self.size, self.batch_size, self.rank, self.world = size, batch_size, rank, world
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if not self.shuffle:
            return math.ceil(len(range(self.rank, self.size, self.world)) / self.batch_size)
        return math.ceil(self.size / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            mine = list(range(self.rank, self.size, self.world))
            for start in range(0, len(mine), self.batch_size):
                yield mine[start : start + self.batch_size]
            return
        state = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0])
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(state))
        for start in range(0, self.size, self.batch_size):
            batch = order[start : start + self.batch_size]
            yield torch.tensor_split(batch, self.world)[self.rank].tolist()


class LoaderBatches:
    """A ``DataLoader`` over a :class:`GlobalBatchSampler` with ``set_epoch`` (for the shared Trainer)."""

    def __init__(
        self, dataset: torch.utils.data.Dataset, sampler: GlobalBatchSampler, workers: int, pin: bool
    ) -> None:
        self.sampler = sampler
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=False,
            worker_init_fn=_seed_worker,
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32  # set per worker by the DataLoader from the main process' RNG
    random.seed(seed)
    np.random.seed(seed)


def imagenet_transforms(size: int = 224, resize: int = 256) -> tuple[Any, Any]:
    """Training (random-resized crop + flip) and evaluation (resize + centre crop) transforms, normalised."""
    from torchvision import transforms as T

    normalise = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    train = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), *normalise])
    evaluate = T.Compose([T.Resize(resize), T.CenterCrop(size), *normalise])
    return train, evaluate


@dataclass
class SegmentationTransform:
    """Cityscapes pairs resized to ``size`` (H, W) (image bilinear, labels nearest), optionally augmented
    with a left-right flip and a random translation of 0-``shift`` px (void-filled), as ERFNet trains."""

    size: tuple[int, int]
    augment: bool = False
    shift: int = 2

    def __call__(self, image: Any, label: Any) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image
        from torchvision.transforms import functional as TF

        height, width = self.size
        image = image.resize((width, height), Image.BILINEAR)
        label = label.resize((width, height), Image.NEAREST)
        x = TF.to_tensor(image)
        y = torch.from_numpy(np.asarray(label, dtype=np.int64).copy())
        if self.augment:
            if torch.rand(()) < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            dx, dy = (int(v) for v in torch.randint(0, self.shift + 1, (2,)))
            if dx or dy:
                x = F.pad(x, (dx, 0, dy, 0))[:, :height, :width]
                y = F.pad(y, (dx, 0, dy, 0), value=CITYSCAPES_VOID)[:height, :width]
        return x, y


def _logits(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def classification_metrics(
    model: nn.Module, batches: Any, device: torch.device, world: int = 1, prefix: str = "top"
) -> dict[str, float]:
    """Top-1 and top-5 error (%) and mean cross entropy over every process' share of the test set.

    ``prefix="top"`` names them ``top1_error``/``top5_error`` (ImageNet); the CIFAR jobs also report
    ``test_error`` (= top-1, as chapter 4 names it).
    """
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # top-1 wrong, top-5 wrong, loss, count
    with torch.no_grad():
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = _logits(model(x)).float()
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            sums[0] += (top[:, 0] != y).sum()
            sums[1] += (~(top == y[:, None]).any(dim=1)).sum()
            sums[2] += F.cross_entropy(logits, y, reduction="sum")
            sums[3] += len(y)
    wrong1, wrong5, loss, count = all_reduce_sum(sums, world).tolist()
    count = max(count, 1.0)
    return {
        f"{prefix}1_error": 100.0 * wrong1 / count,
        f"{prefix}5_error": 100.0 * wrong5 / count,
        "test_loss": loss / count,
    }


def confusion(
    logits: torch.Tensor, labels: torch.Tensor, classes: int, void: int = CITYSCAPES_VOID
) -> torch.Tensor:
    """``classes × classes`` counts (true, predicted) over the non-void pixels (predictions of void count as class ``void``)."""
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    predicted = logits.argmax(dim=1)
    keep = labels != void
    index = labels[keep] * classes + predicted[keep]
    return torch.bincount(index, minlength=classes * classes).reshape(classes, classes)


def iou_from_confusion(matrix: torch.Tensor, evaluated: int = 19) -> tuple[float, list[float]]:
    """Mean and per-class IoU (%) = ``|A∩B| / |A∪B|`` (Eq. 4.5) of the first ``evaluated`` classes.

    Classes absent from both the labels and the predictions (union 0) are left out of the mean.
    """
    matrix = matrix.double()
    intersection = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - intersection
    per_class = (intersection / union.clamp(min=1))[:evaluated]
    present = union[:evaluated] > 0
    mean = float(per_class[present].mean() * 100) if bool(present.any()) else float("nan")
    return mean, [float(v) * 100 if p else float("nan") for v, p in zip(per_class, present, strict=True)]


def segmentation_metrics(
    model: nn.Module, batches: Any, device: torch.device, world: int = 1, classes: int = 20
) -> dict[str, float]:
    """Class mean IoU (%) over the 19 Cityscapes classes (Table 4.5) and pixel accuracy (%), all processes."""
    matrix = torch.zeros(classes, classes, dtype=torch.int64, device=device)
    with torch.no_grad():
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            matrix += confusion(_logits(model(x)).float(), y, classes)
    matrix = all_reduce_sum(matrix, world)
    mean, _ = iou_from_confusion(matrix.cpu())
    total = float(matrix.sum())
    return {"mean_iou": mean, "pixel_accuracy": 100.0 * float(matrix.diagonal().sum()) / max(total, 1.0)}
