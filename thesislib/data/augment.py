"""The CIFAR training pipeline of thesis §4.4.1 on the device, in the style of cifar10-airbench.

The whole data set stays on the device as one uint8 N×3×32×32 tensor. Each mini-batch is gathered,
zero-padded by 4 pixels, randomly cropped back to 32×32 and flipped left-right with probability ½, all
with one indexing operation, and converted to normalised floats in one fused multiply-add::

    batches = CifarBatches(images, labels, batch_size=128, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                           seed=0, device=select_device())
    for x, y in batches: ...   # x float32 B×3×32×32, normalised; y int64

It is a :class:`~thesislib.training.TensorBatches`, so :class:`~thesislib.training.Trainer` drives it
(``set_epoch``): the order *and* the crops and flips of an epoch depend only on ``(seed, epoch)``, are
drawn on the CPU (the same numbers on every device) and are replayed exactly after a resume.

The per-image result equals torchvision's ``RandomCrop(32, padding=4)`` → ``RandomHorizontalFlip()`` →
``ToTensor()`` → ``Normalize(mean, std)`` for the same offsets and flips (tested);
:func:`pil_loader` builds that ``DataLoader`` and :func:`pipeline_speed` compares the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from thesislib.training import TensorBatches

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "CifarBatches",
    "cifar_normalisation",
    "crop_flip",
    "images_per_second",
    "normalise",
    "pil_loader",
    "pipeline_speed",
]

# The constants of the thesis' code (BayesWatch/pytorch-moonshine, ``main.py``).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN = (0.5071, 0.4866, 0.4409)
CIFAR100_STD = (0.2009, 0.1984, 0.2023)


def cifar_normalisation(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(mean, std)`` of a CIFAR data set in [0, 1] units, as used by the thesis' code."""
    if name in ("cifar10", "cifar10-jpeg"):
        return CIFAR10_MEAN, CIFAR10_STD
    if name == "cifar100":
        return CIFAR100_MEAN, CIFAR100_STD
    raise ValueError(f"unknown CIFAR data set {name!r}; valid names: cifar10, cifar10-jpeg, cifar100")


def _affine(
    mean: Iterable[float], std: Iterable[float], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``scale, shift`` with ``(x/255 − mean)/std = x·scale + shift``, shaped 1×C×1×1."""
    mean_t = torch.tensor(list(mean), dtype=torch.float64)
    std_t = torch.tensor(list(std), dtype=torch.float64)
    if mean_t.shape != std_t.shape or mean_t.dim() != 1:
        raise ValueError(
            f"mean and std need one value per channel, got {mean_t.tolist()} and {std_t.tolist()}"
        )
    if (std_t <= 0).any():
        raise ValueError(f"std must be positive, got {std_t.tolist()}")
    scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1)
    shift = (-mean_t / std_t).view(1, -1, 1, 1)
    return scale.to(device, dtype), shift.to(device, dtype)


def normalise(
    images: torch.Tensor,
    mean: Iterable[float] = CIFAR10_MEAN,
    std: Iterable[float] = CIFAR10_STD,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 B×C×H×W images to ``(x/255 − mean)/std`` in ``dtype`` (one fused multiply-add)."""
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    scale, shift = _affine(mean, std, images.device, dtype)
    return torch.addcmul(shift, images.to(dtype), scale)


def crop_flip(
    images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, padding: int = 4
) -> torch.Tensor:
    """Zero-pad each image by ``padding``, take the window at ``(dy, dx)``, mirror it where ``flip``.

    ``images`` is B×C×H×W (any dtype); ``dy, dx`` are integers in ``[0, 2·padding]`` (the window's top-left
    corner in the padded image) and ``flip`` booleans, one per image. One gather does crop and flip:
    ``out[b, c, i, j] = padded[b, c, dy_b + i, dx_b + (W − 1 − j if flip_b else j)]``.
    """
    if images.dim() != 4:
        raise ValueError(f"expected B×C×H×W images, got shape {tuple(images.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    b, c, h, w = images.shape
    if not (len(dy) == len(dx) == len(flip) == b):
        raise ValueError(f"need one offset and flip per image ({b}), got {len(dy)}, {len(dx)}, {len(flip)}")
    if len(dy) and (
        int(dy.min()) < 0 or int(dx.min()) < 0 or max(int(dy.max()), int(dx.max())) > 2 * padding
    ):
        raise ValueError(f"offsets must lie in [0, {2 * padding}]")
    device = images.device
    padded = F.pad(images, (padding,) * 4) if padding else images
    width = w + 2 * padding
    dy, dx, flip = dy.to(device), dx.to(device), flip.to(device)
    ii = torch.arange(h, device=device)
    jj = torch.arange(w, device=device)
    rows = dy[:, None] + ii  # B×H
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - jj, jj)  # B×W
    # One gather over the flattened padded images (much faster than 4-index advanced indexing on CPU).
    index = (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return torch.gather(padded.reshape(b, c, -1), 2, index).view(b, c, h, w)


class CifarBatches(TensorBatches):
    """Augmented, normalised CIFAR mini-batches from uint8 tensors kept on the device (§4.4.1).

    Args:
        images: uint8 N×3×H×W (e.g. from :func:`thesislib.data.load_cifar`); moved to ``device`` once.
        labels: int64 N.
        batch_size: 128 in the thesis.
        mean, std: per-channel normalisation in [0, 1] units (:func:`cifar_normalisation`).
        augment: pad ``padding`` zeros, random crop, random left-right flip; ``False`` for evaluation.
        shuffle, drop_last, seed, device: as for :class:`~thesislib.training.TensorBatches`.
        dtype: of the returned images (float32; bfloat16/float16 on accelerators if wanted).
        channels_last: return images in channels-last memory format (faster convolutions on some devices).

    Each pass yields ``(images, labels)``; the shuffle, crop offsets and flips of epoch ``e`` come from
    CPU generators seeded by ``(seed, e)`` only.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: Iterable[float] = CIFAR10_MEAN,
        std: Iterable[float] = CIFAR10_STD,
        augment: bool = True,
        padding: int = 4,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"expected uint8 N×C×H×W images, got {images.dtype} of shape {tuple(images.shape)}"
            )
        if labels.dim() != 1:
            raise ValueError(f"expected a vector of labels, got shape {tuple(labels.shape)}")
        if padding < 0:
            raise ValueError(f"padding must be non-negative, got {padding}")
        super().__init__(
            images,
            labels,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=seed,
            device=device,
        )
        self.augment = augment
        self.padding = padding
        self.dtype = dtype
        self.channels_last = channels_last
        self.scale, self.shift = _affine(mean, std, self.tensors[0].device, dtype)

    def augmentation(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The crop offsets ``dy, dx`` and flips of epoch ``epoch``, one per position in the epoch's order."""
        size = len(self.tensors[0])
        seed = int(np.random.SeedSequence([self.seed, epoch, 1]).generate_state(1, np.uint64)[0])
        generator = torch.Generator().manual_seed(seed)
        offsets = torch.randint(0, 2 * self.padding + 1, (2, size), generator=generator)
        flips = torch.rand(size, generator=generator) < 0.5
        return offsets[0], offsets[1], flips

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dy = dx = flips = None
        if self.augment:
            dy, dx, flips = self.augmentation(epoch)
        start = 0
        for images, labels in super()._batches(epoch):
            stop = start + len(images)
            if self.augment:
                assert dy is not None and dx is not None and flips is not None
                images = crop_flip(images, dy[start:stop], dx[start:stop], flips[start:stop], self.padding)
            start = stop
            x = torch.addcmul(self.shift, images.to(self.dtype), self.scale)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, labels


# ----------------------------------------------------------------------------------------------------------
# The baseline: a torchvision DataLoader with PIL transforms, and a speed comparison


class _PilDataset(torch.utils.data.Dataset):
    """uint8 N×3×H×W images as PIL images through ``transform`` (torchvision's CIFAR10 dataset does this)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable[[Any], Any]) -> None:
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = labels.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def pil_loader(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 128,
    mean: Iterable[float] = CIFAR10_MEAN,
    std: Iterable[float] = CIFAR10_STD,
    workers: int = 2,
    seed: int = 0,
) -> torch.utils.data.DataLoader:
    """The thesis code's pipeline: ``DataLoader`` + PIL ``RandomCrop(32, 4)``, flip, ``ToTensor``, ``Normalize``."""
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.RandomCrop(images.shape[-1], padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(list(mean), list(std)),
        ]
    )
    return torch.utils.data.DataLoader(
        _PilDataset(images.cpu(), labels.cpu(), transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )


def images_per_second(batches: Iterable[Any], max_batches: int | None = None, warmup: int = 1) -> float:
    """Images per second drawn from ``batches`` (first element of each batch), after ``warmup`` batches.

    Synchronises CUDA/MPS at the end so that asynchronous device work is counted.
    """
    count, start, seen = 0, None, 0
    device = None
    for seen, batch in enumerate(batches, start=1):
        x = batch[0]
        device = x.device
        if seen == warmup:
            start = time.perf_counter()
        elif seen > warmup:
            count += len(x)
        if max_batches is not None and seen >= max_batches + warmup:
            break
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device is not None and device.type == "mps":
        torch.mps.synchronize()
    if start is None or count == 0:
        raise ValueError(f"need more than {warmup} batch(es) to time, got {seen}")
    return count / (time.perf_counter() - start)


def pipeline_speed(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 128,
    max_batches: int | None = None,
    workers: int = 2,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Images/s of :class:`CifarBatches` and of :func:`pil_loader` over the same data, and their ratio.

    Returns ``{"tensor_pipeline": ..., "pil_dataloader": ..., "speedup": ...}``.
    """
    mean, std = CIFAR10_MEAN, CIFAR10_STD
    ours = CifarBatches(images, labels, batch_size=batch_size, mean=mean, std=std, seed=seed, device=device)
    theirs = pil_loader(images, labels, batch_size=batch_size, mean=mean, std=std, workers=workers, seed=seed)
    tensor_rate = images_per_second(ours, max_batches)
    pil_rate = images_per_second(theirs, max_batches)
    return {"tensor_pipeline": tensor_rate, "pil_dataloader": pil_rate, "speedup": tensor_rate / pil_rate}
