"""CIFAR-10 / CIFAR-100 as one uint8 tensor Nx3x32x32 plus int64 labels.

Sources (see :data:`thesislib.data.DATASETS`):

- ``"cifar10"``, ``"cifar100"``: the original python-pickle archives (torchvision's),
  read straight from the ``.tar.gz``.
- ``"cifar10-jpeg"``: the offline JPEG re-encoding (quality 75, lossy), read straight
  from the zip ``cifar10-jpeg/{train,test}/<class>/NNNN.jpg``; images are ordered by
  class, then file name. Results on it are not comparable to the original's.

The first load decodes the archive and caches the tensors as
``<cache>/<name>-<split>-<first 12 hex digits of the archive checksum>.pt``;
later loads read that file (well under a second).
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thesislib.atomic import atomic_path
from thesislib.data.registry import get_dataset
from thesislib.data.store import DataError, cache_dir, locate

if TYPE_CHECKING:
    import torch

CIFAR_NAMES = ("cifar10", "cifar10-jpeg", "cifar100")
CIFAR_SPLITS = ("train", "test")

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (  # the fine labels, in label order (alphabetical), as in the archive's ``meta``
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

# name -> (folder in the tar, members per split, meta member, label key, class-name key)
_PICKLE_LAYOUT = {
    "cifar10": (
        "cifar-10-batches-py",
        {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
        "batches.meta",
        b"labels",
        b"label_names",
    ),
    "cifar100": (
        "cifar-100-python",
        {"train": ("train",), "test": ("test",)},
        "meta",
        b"fine_labels",
        b"fine_label_names",
    ),
}
_JPEG_ROOT = "cifar10-jpeg"


def _check(name: str, split: str) -> None:
    if name not in CIFAR_NAMES:
        raise ValueError(f"unknown CIFAR data set {name!r}; valid names: {', '.join(CIFAR_NAMES)}")
    if split not in CIFAR_SPLITS:
        raise ValueError(f"unknown CIFAR split {split!r}; valid splits: {', '.join(CIFAR_SPLITS)}")


def cifar_classes(name: str = "cifar10") -> list[str]:
    """Class names of a CIFAR data set, indexed by label."""
    _check(name, "train")
    return list(CIFAR100_CLASSES if name == "cifar100" else CIFAR10_CLASSES)


def _read_pickle_tar(path: Path, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images Nx3x32x32 and labels from the original python archive (checksum-verified, so trusted)."""
    folder, members, meta, label_key, names_key = _PICKLE_LAYOUT[name]
    wanted = [f"{folder}/{member}" for member in members[split]]
    found: dict[str, dict] = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            if member.name in (*wanted, f"{folder}/{meta}"):
                handle = archive.extractfile(member)
                if handle is not None:
                    found[member.name] = pickle.load(handle, encoding="bytes")
    missing = [member for member in (*wanted, f"{folder}/{meta}") if member not in found]
    if missing:
        raise DataError(f"{path}: archive lacks {', '.join(missing)}")
    class_names = [label.decode() for label in found[f"{folder}/{meta}"][names_key]]
    if class_names != cifar_classes(name):
        raise DataError(f"{path}: class names {class_names} differ from {cifar_classes(name)}")
    images = np.concatenate([np.asarray(found[m][b"data"], dtype=np.uint8) for m in wanted])
    labels = np.concatenate([np.asarray(found[m][label_key], dtype=np.int64) for m in wanted])
    return images.reshape(-1, 3, 32, 32), labels


def _read_jpeg_zip(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images Nx3x32x32 and labels from the JPEG zip; label = index of the class folder in sorted order."""
    from PIL import Image
    from tqdm import tqdm

    prefix = f"{_JPEG_ROOT}/{split}/"
    with zipfile.ZipFile(path) as archive:
        members = sorted(
            (info.filename[len(prefix) :].split("/", 1)[0], info.filename, info)
            for info in archive.infolist()
            if info.filename.startswith(prefix) and not info.is_dir()
        )
        classes = sorted({class_name for class_name, _, _ in members})
        if tuple(classes) != CIFAR10_CLASSES:
            raise DataError(f"{path}: class folders {classes} under {prefix} are not CIFAR-10's")
        images = np.empty((len(members), 32, 32, 3), dtype=np.uint8)
        labels = np.empty(len(members), dtype=np.int64)
        for k, (class_name, filename, info) in enumerate(tqdm(members, desc=f"decode {prefix}", unit="img")):
            with Image.open(io.BytesIO(archive.read(info))) as image:
                rgb = image.convert("RGB")
            if rgb.size != (32, 32):
                raise DataError(f"{path}: {filename} is {rgb.size[0]}x{rgb.size[1]}, not 32x32")
            images[k] = np.asarray(rgb)
            labels[k] = classes.index(class_name)
    return images.transpose(0, 3, 1, 2), labels


SPLIT_SIZES = {"train": 50_000, "test": 10_000}
"""Images per split of every CIFAR variant (a decoded cache holding another count is decoded again)."""


def _load_cached(path: Path, expected: int | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
    import torch

    try:
        saved = torch.load(path, weights_only=True)
        images, labels = saved["images"], saved["labels"]
    except Exception:  # unreadable or old cache file: decode again and overwrite it
        return None
    if images.dtype != torch.uint8 or images.shape[1:] != (3, 32, 32) or labels.dtype != torch.int64:
        return None
    if len(images) != len(labels) or (expected is not None and len(images) != expected):
        return None
    return images, labels


def load_cifar(name: str = "cifar10", split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR ``split`` as (uint8 images Nx3x32x32, int64 labels N); class names: :func:`cifar_classes`.

    Args:
        name: ``"cifar10"``, ``"cifar10-jpeg"`` or ``"cifar100"`` (fine labels).
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).

    The archive is found and verified by :func:`thesislib.data.locate`; the decoded
    tensors are cached in :func:`thesislib.data.store.cache_dir`.
    """
    import torch

    _check(name, split)
    file = get_dataset(name).files[0]
    source = locate(name)[file.path]
    cached = cache_dir() / f"{name}-{split}-{file.digest[:12]}.pt"
    if cached.is_file() and (loaded := _load_cached(cached, SPLIT_SIZES[split])) is not None:
        return loaded
    if name == "cifar10-jpeg":
        images, labels = _read_jpeg_zip(source, split)
    else:
        images, labels = _read_pickle_tar(source, name, split)
    result = torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
    with atomic_path(cached) as part:
        torch.save({"images": result[0], "labels": result[1]}, part)
    return result


# ----------------------------------------------------------------------------------------------------------
# Subsets for training (chapters 4 and 5)


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
        from thesislib.data.augment import cifar_normalisation

        return cifar_normalisation(self.name)


def _stratified(labels: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """Indices of ``size`` examples, as equal a share of every class as possible, in a seeded random order."""
    import torch

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
    import torch
    import torch.nn.functional as F

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
        tensors = []
        for split, size in (("train", self.train_size), ("test", self.test_size)):
            images, labels = load_cifar(self.name, split)
            index = _stratified(labels, size, self.seed)
            tensors += [downsample(images[index], self.resolution), labels[index]]
        return CifarData(*tensors, name=self.name, identity=dataclasses.asdict(self))
