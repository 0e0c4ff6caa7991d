"""The real data sets of the thesis: one registry, a search path, checksums, downloads, loaders.

>>> from thesislib.data import load_mnist, locate
>>> images, labels = load_mnist("mnist-test10k", "train")   # uint8 6000x28x28, int64 6000

Files are looked for in ``THESISLIB_DATA`` (``:``-separated folders) and then in the
project's ``data/`` folder, verified against the registry's checksums, and
downloaded into ``data/`` when missing and online (``THESISLIB_OFFLINE=1`` forbids
downloads). ``thesislib data list|verify|fetch [NAME]`` does the same from a shell.

Modules: :mod:`~thesislib.data.registry` (what the data sets are),
:mod:`~thesislib.data.store` (where they are), and one loader module per data set
(:mod:`~thesislib.data.mnist`, :mod:`~thesislib.data.cifar`, :mod:`~thesislib.data.tao`,
:mod:`~thesislib.data.kodak`).
"""

from thesislib.data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES, cifar_classes, load_cifar
from thesislib.data.kodak import kodak_paths, load_kodak
from thesislib.data.mnist import SPLIT_SEED, load_mnist, mnist_split_indices, read_idx
from thesislib.data.registry import DATASETS, DataFile, Dataset, get_dataset
from thesislib.data.store import (
    ChecksumMismatchError,
    DataError,
    DataUnavailableError,
    SourceChoice,
    cache_dir,
    choose_source,
    cli_data,
    fetch,
    locate,
    project_data_dir,
    search_path,
    status_table,
    verify,
)
from thesislib.data.tao import TAO_COLUMNS, read_tao

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR100_CLASSES",
    "DATASETS",
    "SPLIT_SEED",
    "TAO_COLUMNS",
    "ChecksumMismatchError",
    "DataError",
    "DataFile",
    "DataUnavailableError",
    "Dataset",
    "SourceChoice",
    "cache_dir",
    "choose_source",
    "cifar_classes",
    "cli_data",
    "fetch",
    "get_dataset",
    "kodak_paths",
    "load_cifar",
    "load_kodak",
    "load_mnist",
    "locate",
    "mnist_split_indices",
    "project_data_dir",
    "read_idx",
    "read_tao",
    "search_path",
    "status_table",
    "verify",
]
