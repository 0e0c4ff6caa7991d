"""MNIST digits from the official IDX files, with deterministic train/val/test splits.

Two sources (see :data:`thesislib.data.DATASETS`):

- ``"mnist-test10k"``: only the official 10,000-digit test split, which is what the
  offline folder holds. It is split 6,000 / 2,000 / 2,000 into train / val / test.
- ``"mnist"``: the full data set. train / val are a 50,000 / 10,000 split of the
  official 60,000 training digits; test is the official 10,000 test digits.

Splits draw a permutation from ``numpy.random.default_rng(SPLIT_SEED)`` and keep
each split's indices in file order. The test file is *not* cut into contiguous
blocks: its first 5,000 digits come from NIST's SD-3 (Census Bureau employees,
cleaner and easier) and its last 5,000 from SD-1 (high-school students, harder),
so contiguous blocks would differ in difficulty.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from thesislib.data.registry import get_dataset
from thesislib.data.store import DataError, locate

if TYPE_CHECKING:
    import torch

SPLIT_SEED = 0
"""Seed of the permutation behind every MNIST split (fixed: changing it changes the thesis' numbers)."""

MNIST_SOURCES = ("mnist-test10k", "mnist")
MNIST_SPLITS = ("train", "val", "test")
_SPLIT_SIZES = {
    "mnist-test10k": {"train": 6_000, "val": 2_000, "test": 2_000},  # of the official 10k test digits
    "mnist": {"train": 50_000, "val": 10_000},  # of the official 60k training digits
}
_IDX_UBYTE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes (MNIST's format) into a read-only uint8 array."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != _IDX_UBYTE:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != math.prod(shape):
        raise DataError(f"{path}: IDX header says {shape} but the file holds {len(data) - header} values")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _check(source: str, split: str) -> None:
    if source not in MNIST_SOURCES:
        raise ValueError(f"unknown MNIST source {source!r}; valid sources: {', '.join(MNIST_SOURCES)}")
    if split not in MNIST_SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; valid splits: {', '.join(MNIST_SPLITS)}")


def mnist_split_indices(source: str = "mnist-test10k", split: str = "train") -> np.ndarray:
    """Indices (sorted) of ``split``'s digits in the official file it is drawn from.

    That file is the 10k test file for ``"mnist-test10k"``, the 60k training file for
    ``"mnist"`` train/val, and the 10k test file (all of it) for ``"mnist"`` test.
    """
    _check(source, split)
    sizes = _SPLIT_SIZES[source]
    if split not in sizes:  # full MNIST's test split is the official test file
        return np.arange(10_000)
    permutation = np.random.default_rng(SPLIT_SEED).permutation(sum(sizes.values()))
    start = list(sizes).index(split)
    offset = sum(list(sizes.values())[:start])
    return np.sort(permutation[offset : offset + sizes[split]])


def load_mnist(source: str = "mnist-test10k", split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` from ``source`` as (uint8 images Nx28x28, int64 labels N).

    Args:
        source: ``"mnist-test10k"`` (offline: the official test digits split 6k/2k/2k)
            or ``"mnist"`` (full: 50k/10k of the training digits, plus the official test).
        split: ``"train"``, ``"val"`` or ``"test"``; see :func:`mnist_split_indices`.

    Splits are a permutation drawn with ``numpy.random.default_rng(SPLIT_SEED)`` (seed 0),
    not contiguous blocks: the first 5,000 official test digits come from the easier
    NIST writers (SD-3, Census Bureau employees), the last 5,000 from the harder ones
    (SD-1, high-school students), so a contiguous cut would make val/test harder than train.

    The files are found, verified (and downloaded when online) by :func:`thesislib.data.locate`.
    """
    import torch

    _check(source, split)
    dataset = get_dataset(source)
    paths = locate(source)
    prefix = "train" if source == "mnist" and split != "test" else "t10k"
    images = read_idx(paths[dataset.file(f"{prefix}-images-idx3-ubyte.gz").path])
    labels = read_idx(paths[dataset.file(f"{prefix}-labels-idx1-ubyte.gz").path])
    expected = 60_000 if prefix == "train" else 10_000
    if images.shape != (expected, 28, 28) or labels.shape != (expected,):
        raise DataError(f"MNIST {prefix} files hold {images.shape} images, {labels.shape} labels")
    index = mnist_split_indices(source, split)
    return torch.from_numpy(images[index]), torch.from_numpy(labels[index].astype(np.int64))
