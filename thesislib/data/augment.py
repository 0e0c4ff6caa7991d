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

``cutout=16`` adds Cutout (DeVries and Taylor, 2017), which chapter 5 uses for WRN-28-10 and DARTS
(§5.3.1): after normalisation one ``16×16`` square of every image is set to zero, its centre uniform
over the image's pixels and the square clipped at the borders (:func:`cutout`). The centres are drawn
from the same ``(seed, epoch)`` generator *after* the crops and flips, so a run with Cutout has the same
order, crops and flips as one without, and ``cutout=0`` is the pipeline above, bit for bit.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

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
    "EpochAugmentation",
    "cifar_normalisation",
    "crop_flip",
    "cutout",
    "cutout_mask",
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


def _square(
    cy: torch.Tensor, cx: torch.Tensor, size: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """B×H and B×W booleans: the rows and the columns each image's Cutout square covers."""
    if size < 0:
        raise ValueError(f"cutout size must be non-negative, got {size}")
    if cy.dim() != 1 or cx.shape != cy.shape:
        raise ValueError(
            f"need one centre (cy, cx) per image, got shapes {tuple(cy.shape)} and {tuple(cx.shape)}"
        )
    rows = torch.arange(height, device=cy.device) - (cy[:, None] - size // 2)  # row − top, B×H
    cols = torch.arange(width, device=cx.device) - (cx[:, None] - size // 2)
    return (rows >= 0) & (rows < size), (cols >= 0) & (cols < size)


def cutout_mask(cy: torch.Tensor, cx: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
    """B×H×W booleans, true inside each image's Cutout square (DeVries and Taylor, 2017).

    The square of image ``b`` covers rows ``[cy_b − size//2, cy_b − size//2 + size)`` and columns
    ``[cx_b − size//2, cx_b − size//2 + size)``, clipped to the image: the paper's code
    (``mask[clip(y − length//2) : clip(y + length//2), ...] = 0`` with ``y`` uniform in ``[0, h)``) for
    even ``size``, and exactly ``size`` pixels wide for odd ``size`` too. ``cy, cx`` are integer
    vectors; the mask lives on their device.
    """
    rows, cols = _square(cy, cx, size, height, width)
    return rows[:, :, None] & cols[:, None, :]


def cutout(images: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: int) -> torch.Tensor:
    """``images`` (B×C×H×W) with each image's ``size×size`` square around ``(cy, cx)`` zeroed in every channel.

    Cutout (DeVries and Taylor, 2017), as in the paper's code and the thesis' (``Cutout(16)`` after
    ``Normalize``): applied to *normalised* images, so the cut-out pixels take the data mean, and only
    the part of the square inside the image is cut (:func:`cutout_mask`). One multiplication by an
    outer product of row and column indicators, on the images' device; ``size=0`` returns ``images``.
    """
    if images.dim() != 4:
        raise ValueError(f"expected B×C×H×W images, got shape {tuple(images.shape)}")
    if len(cy) != len(images) or len(cx) != len(images):
        raise ValueError(f"need one centre per image ({len(images)}), got {len(cy)} and {len(cx)}")
    if size == 0:
        return images
    rows, cols = _square(cy.to(images.device), cx.to(images.device), size, images.shape[2], images.shape[3])
    keep = 1 - rows[:, :, None].to(images.dtype) * cols[:, None, :].to(images.dtype)  # B×H×W of 0 and 1
    return images * keep[:, None]


class EpochAugmentation(NamedTuple):
    """The random draws of one epoch, one per position in the epoch's order (:meth:`CifarBatches.augmentation`).

    ``dy, dx``: crop offsets in ``[0, 2·padding]``; ``flip``: left-right flips; ``cy, cx``: Cutout centres
    in ``[0, H)`` and ``[0, W)``, or ``None`` without Cutout.
    """

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor
    cy: torch.Tensor | None = None
    cx: torch.Tensor | None = None


class CifarBatches(TensorBatches):
    """Augmented, normalised CIFAR mini-batches from uint8 tensors kept on the device (§4.4.1).

    Args:
        images: uint8 N×3×H×W (e.g. from :func:`thesislib.data.load_cifar`); moved to ``device`` once.
        labels: int64 N.
        batch_size: 128 in the thesis.
        mean, std: per-channel normalisation in [0, 1] units (:func:`cifar_normalisation`).
        augment: pad ``padding`` zeros, random crop, random left-right flip; ``False`` for evaluation.
        cutout: side of the Cutout square (16 in §5.3.1 for WRN-28-10 and DARTS), cut from every
            training image after normalisation (:func:`cutout`); 0 (default) for none. Needs ``augment``.
        shuffle, drop_last, seed, device: as for :class:`~thesislib.training.TensorBatches`.
        dtype: of the returned images (float32; bfloat16/float16 on accelerators if wanted).
        channels_last: return images in channels-last memory format (faster convolutions on some devices).

    Each pass yields ``(images, labels)``; the shuffle, crop offsets, flips and Cutout centres of epoch
    ``e`` come from CPU generators seeded by ``(seed, e)`` only.
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
        cutout: int = 0,
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
        if isinstance(cutout, bool) or not isinstance(cutout, numbers.Integral) or cutout < 0:
            raise ValueError(f"cutout must be a non-negative integer side length (0: off), got {cutout!r}")
        if cutout and not augment:
            raise ValueError(
                "cutout is a training augmentation: it needs augment=True (cutout=0 to evaluate)"
            )
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
        self.cutout = int(cutout)
        self.dtype = dtype
        self.channels_last = channels_last
        self.scale, self.shift = _affine(mean, std, self.tensors[0].device, dtype)

    def augmentation(self, epoch: int) -> EpochAugmentation:
        """The crop offsets, flips and Cutout centres of epoch ``epoch``, one per position in its order.

        All are drawn on the CPU from one generator seeded by ``(seed, epoch)``: offsets, then flips,
        then (only with Cutout) the centres, so the offsets and flips do not depend on ``cutout``.
        """
        size = len(self.tensors[0])
        seed = int(np.random.SeedSequence([self.seed, epoch, 1]).generate_state(1, np.uint64)[0])
        generator = torch.Generator().manual_seed(seed)
        offsets = torch.randint(0, 2 * self.padding + 1, (2, size), generator=generator)
        flips = torch.rand(size, generator=generator) < 0.5
        if not self.cutout:
            return EpochAugmentation(offsets[0], offsets[1], flips)
        height, width = self.tensors[0].shape[2:]
        cy = torch.randint(0, height, (size,), generator=generator)
        cx = torch.randint(0, width, (size,), generator=generator)
        return EpochAugmentation(offsets[0], offsets[1], flips, cy, cx)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        draws = self.augmentation(epoch) if self.augment else None
        start = 0
        for images, labels in super()._batches(epoch):
            stop = start + len(images)
            if draws is not None:
                part = slice(start, stop)
                images = crop_flip(images, draws.dy[part], draws.dx[part], draws.flip[part], self.padding)
            start = stop
            x = torch.addcmul(self.shift, images.to(self.dtype), self.scale)
            if draws is not None and draws.cy is not None and draws.cx is not None:
                x = cutout(x, draws.cy[part], draws.cx[part], self.cutout)
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
