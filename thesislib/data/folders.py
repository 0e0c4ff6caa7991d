"""User-supplied data sets held as folders: ImageNet (ILSVRC-2012) and Cityscapes (§4.5, §5.3.1).

Their licences forbid redistribution, so thesislib never downloads them: a reader who has them puts
them under a folder of ``THESISLIB_DATA`` (the search path of :mod:`thesislib.data.store`) in the
layout their owners distribute, and :func:`locate_folder` finds and checks it::

    <folder>/imagenet/train/n01440764/n01440764_10026.JPEG       ILSVRC-2012 train, one folder per class
    <folder>/imagenet/val/n01440764/ILSVRC2012_val_00000293.JPEG  validation, sorted into class folders
    <folder>/cityscapes/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <folder>/cityscapes/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

No checksums: the extracted folders have none (the official archives do, but the layouts above are
what training reads). The layout is checked instead (folders present, classes the same in train and
val, every image with its label map), with an error naming what is missing and where the data comes from.

:class:`ImageFolderSet` and :class:`CityscapesSet` read them as ``torch.utils.data.Dataset`` s with
the training and evaluation transforms of :mod:`thesislib.experiments`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thesislib.data.store import ENV_DATA, DataError, DataUnavailableError, search_path

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_TRAIN_IDS",
    "CITYSCAPES_VOID",
    "USER_DATASETS",
    "CityscapesSet",
    "FolderDataset",
    "ImageFolderSet",
    "cityscapes_pairs",
    "get_user_dataset",
    "imagenet_samples",
    "locate_folder",
]

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


@dataclass(frozen=True)
class FolderDataset:
    """A data set the user supplies as a folder (never downloaded).

    Attributes:
        name: registry key (``"imagenet"``).
        folder: its folder below a data root.
        homepage: where to obtain it.
        description: one line for ``thesislib data list``.
        layout: the expected layout, shown when it is missing or incomplete.
        check: ``check(root) -> problems``: what is wrong with the layout at ``root`` (empty: fine).
    """

    name: str
    folder: str
    homepage: str
    description: str
    layout: str
    check: Callable[[Path], list[str]]

    def how_to_provide(self) -> str:
        folders = "\n".join(f"  {folder}" for folder in search_path())
        return (
            f"{self.name} is user-supplied and never downloaded (its licence forbids redistribution): "
            f"obtain it from {self.homepage}, extract it as\n{self.layout}\nand add the folder holding "
            f"'{self.folder}/' to {ENV_DATA} (a ':'-separated list). Searched:\n{folders}"
        )


def _subfolders(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    except OSError:
        return []


def _check_imagenet(root: Path) -> list[str]:
    problems = []
    classes = {}
    for split in ("train", "val"):
        if not (root / split).is_dir():
            problems.append(f"no {split}/ folder")
            continue
        classes[split] = _subfolders(root / split)
        if not classes[split]:
            problems.append(f"{split}/ holds no class folders (validation images must be sorted into them)")
    if len(classes) == 2 and classes["train"] and classes["train"] != classes["val"]:
        only = sorted(set(classes["train"]) ^ set(classes["val"]))[:5]
        problems.append(f"train/ and val/ have different class folders (e.g. {', '.join(only)})")
    return problems


def _check_cityscapes(root: Path) -> list[str]:
    problems = []
    for split in ("train", "val"):
        for kind in ("leftImg8bit", "gtFine"):
            if not (root / kind / split).is_dir():
                problems.append(f"no {kind}/{split}/ folder")
    if not problems:
        for split in ("train", "val"):
            try:
                cityscapes_pairs(root, split)
            except DataError as error:
                problems.append(str(error))
    return problems


USER_DATASETS: dict[str, FolderDataset] = {
    dataset.name: dataset
    for dataset in (
        FolderDataset(
            name="imagenet",
            folder="imagenet",
            homepage="https://image-net.org/download.php (ILSVRC-2012, after registration)",
            description="ImageNet ILSVRC-2012: 1.28M train + 50,000 val images, 1000 classes (user-supplied)",
            layout=(
                "  <folder>/imagenet/train/<wnid>/*.JPEG   (1000 class folders, e.g. n01440764)\n"
                "  <folder>/imagenet/val/<wnid>/*.JPEG     (the 50,000 validation images sorted into the "
                "same class folders, as torchvision's ImageFolder expects)"
            ),
            check=_check_imagenet,
        ),
        FolderDataset(
            name="cityscapes",
            folder="cityscapes",
            homepage="https://www.cityscapes-dataset.com/downloads/ (leftImg8bit_trainvaltest.zip and "
            "gtFine_trainvaltest.zip, after registration)",
            description="Cityscapes: 2,975 train + 500 val street scenes, fine labels, 19 classes (user-supplied)",
            layout=(
                "  <folder>/cityscapes/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png\n"
                "  <folder>/cityscapes/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png"
            ),
            check=_check_cityscapes,
        ),
    )
}
"""The user-supplied data sets, by name."""


def get_user_dataset(name: str) -> FolderDataset:
    """The user-supplied data set ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return USER_DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown user-supplied data set {name!r}; valid: {', '.join(USER_DATASETS)}"
        ) from None


def find_folder(name: str) -> tuple[Path | None, list[str]]:
    """The first search-path folder holding ``name``'s folder and the problems of its layout."""
    dataset = get_user_dataset(name)
    for folder in search_path():
        candidate = folder / dataset.folder
        if candidate.is_dir():
            return candidate, dataset.check(candidate)
    return None, []


def locate_folder(name: str) -> Path:
    """The checked root folder of user-supplied data set ``name`` (e.g. ``<folder>/imagenet``).

    Raises :class:`~thesislib.data.store.DataUnavailableError` (where it comes from, the layout, the
    folders searched) if no search-path folder holds it, and :class:`~thesislib.data.store.DataError`
    naming each problem if its layout is incomplete.
    """
    dataset = get_user_dataset(name)
    root, problems = find_folder(name)
    if root is None:
        raise DataUnavailableError(f"data set {name!r} is not available. {dataset.how_to_provide()}")
    if problems:
        raise DataError(
            f"data set {name!r} at {root} does not have the expected layout: {'; '.join(problems)}.\n"
            f"Expected:\n{dataset.layout}"
        )
    return root


# ----------------------------------------------------------------------------------------------------------
# ImageNet


def imagenet_samples(root: str | Path, split: str) -> tuple[list[tuple[Path, int]], list[str]]:
    """``([(image path, class index)], classes)`` of ``root/split`` (classes: sorted folder names)."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    folder = Path(root) / split
    classes = _subfolders(folder)
    samples = []
    for index, name in enumerate(classes):
        for entry in sorted(os.scandir(folder / name), key=lambda e: e.name):
            if entry.is_file() and entry.name.lower().endswith(IMAGE_SUFFIXES):
                samples.append((Path(entry.path), index))
    if not samples:
        raise DataError(f"{folder} holds no images (.JPEG/.jpg/.png) in its class folders")
    return samples, classes


def _rgb(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


class ImageFolderSet(torch.utils.data.Dataset):
    """Images of class folders (``root/split/<class>/*``) as ``(transform(PIL image), label)``."""

    def __init__(self, root: str | Path, split: str, transform: Callable[[Any], torch.Tensor]) -> None:
        self.samples, self.classes = imagenet_samples(root, split)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return self.transform(_rgb(path)), label


# ----------------------------------------------------------------------------------------------------------
# Cityscapes

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)  # fmt: skip
"""The 19 evaluated classes, in train-id order (Cordts et al., 2016; cityscapesScripts ``labels.py``)."""

CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
"""Cityscapes label id -> train id of the 19 evaluated classes; every other id is void."""

CITYSCAPES_VOID = 19
"""The void class: ERFNet's 20th output, ignored by the loss and the mean IoU."""

_LOOKUP = np.full(256, CITYSCAPES_VOID, dtype=np.uint8)
for _id, _train in CITYSCAPES_TRAIN_IDS.items():
    _LOOKUP[_id] = _train


def cityscapes_pairs(root: str | Path, split: str) -> list[tuple[Path, Path]]:
    """``[(leftImg8bit image, gtFine labelIds map)]`` of ``split``, sorted; ``DataError`` if a map is missing."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(root)
    images = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
    if not images:
        raise DataError(f"{root / 'leftImg8bit' / split} holds no <city>/*_leftImg8bit.png images")
    pairs, missing = [], []
    for image in images:
        stem = image.name.removesuffix("_leftImg8bit.png")
        label = root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"
        (pairs if label.is_file() else missing).append((image, label))
    if missing:
        raise DataError(f"{len(missing)} {split} image(s) lack their gtFine label map, e.g. {missing[0][1]}")
    return pairs


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """A ``labelIds`` map (uint8) as train ids 0..18 with every other class void (19)."""
    return _LOOKUP[label_ids]


class CityscapesSet(torch.utils.data.Dataset):
    """Cityscapes ``split`` as ``transform(PIL image, PIL train-id map) -> (image tensor, label tensor)``."""

    def __init__(
        self, root: str | Path, split: str, transform: Callable[[Any, Any], tuple[torch.Tensor, torch.Tensor]]
    ) -> None:
        self.pairs = cityscapes_pairs(root, split)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        image_path, label_path = self.pairs[index]
        with Image.open(label_path) as label:
            train_ids = Image.fromarray(cityscapes_train_ids(np.asarray(label, dtype=np.uint8)))
        return self.transform(_rgb(image_path), train_ids)
