"""Find, verify and download the files of the registered data sets.

Where files are looked for (first hit wins), see :func:`search_path`:

1. every folder in ``THESISLIB_DATA`` (a ``:``-separated list), then
2. the project's ``data/`` folder, where downloads go.

A file lives at ``<folder>/<relative path>`` (the layout of the shared offline
folder). Every file is checked against the registry's checksum before use; a
corrupt copy raises :class:`ChecksumMismatchError` and is never used, not even
by falling back to another copy further down the search path. A folder on the
search path that cannot be read is skipped with a warning (it does not block the
folders after it).

Verified digests are remembered in ``<cache>/verified-files.json`` so that a 170 MB
archive is hashed once, not on every load. An entry holds the file's size, mtime,
**ctime, inode and device**: rewriting a file changes its ctime, which no user can
set back (``touch -r`` restores only the mtime), so an edited file is always hashed
again. Each entry is signed with an HMAC whose key lives outside the cache
(``THESISLIB_KEY_FILE``, default ``~/.config/thesislib/verified-files.key``, mode
0600): an entry forged in a shared or writable cache folder is ignored and the file
is hashed. Without a usable key nothing is remembered (every check hashes).

Environment variables:

- ``THESISLIB_DATA``: folders holding offline copies, searched before ``data/``.
- ``THESISLIB_OFFLINE=1``: never try to download.
- ``THESISLIB_CACHE``: cache folder (default ``<project>/data/cache``).
- ``THESISLIB_KEY_FILE``: the key that signs the verified-digest cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import secrets
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from thesislib.atomic import atomic_path, atomic_write_text
from thesislib.data.registry import DATASETS, DataFile, Dataset, get_dataset
from thesislib.paths import PROJECT_ROOT

if TYPE_CHECKING:
    import pandas as pd

ENV_DATA = "THESISLIB_DATA"
ENV_CACHE = "THESISLIB_CACHE"
ENV_OFFLINE = "THESISLIB_OFFLINE"
ENV_KEY_FILE = "THESISLIB_KEY_FILE"
TIMEOUT_SECONDS = 20.0
"""Network timeout of one download (connect and each read)."""

_CHUNK = 1 << 20
_HASH_CACHE = "verified-files.json"
_TRUE = {"1", "true", "yes", "on"}


class DataError(Exception):
    """Base class of the data layer's errors."""


class DataUnavailableError(DataError, FileNotFoundError):
    """A data set's files are neither on the search path nor downloadable (offline, no URL, network down)."""


class ChecksumMismatchError(DataError, ValueError):
    """A file's checksum differs from the registry's: the file is not used."""

    def __init__(self, file: DataFile, where: str, actual: str, consequence: str) -> None:
        self.file = file
        self.where = where
        self.expected = file.digest
        self.actual = actual
        self.consequence = consequence
        super().__init__(
            f"checksum mismatch for {file.path} ({where}): expected {file.algorithm} {file.digest}, "
            f"actual {file.algorithm} {actual}. {consequence}"
        )

    def __reduce__(self):  # picklable across worker processes despite the custom __init__
        return (type(self), (self.file, self.where, self.actual, self.consequence))


# --- where things are ------------------------------------------------------------------------------


def project_data_dir() -> Path:
    """The project's ``data/`` folder (``./data`` when thesislib is not run from a checkout)."""
    return PROJECT_ROOT / "data"


def _search_path_with_origin() -> list[tuple[Path, str]]:
    entries = [(Path(p).expanduser(), ENV_DATA) for p in os.environ.get(ENV_DATA, "").split(os.pathsep) if p]
    entries.append((project_data_dir(), "project data folder, downloads go here"))
    unique: dict[Path, tuple[Path, str]] = {}
    for folder, origin in entries:
        unique.setdefault(folder.resolve(), (folder.resolve(), origin))
    return list(unique.values())


def search_path() -> list[Path]:
    """The folders searched for data files, in order: ``THESISLIB_DATA`` entries, then ``data/``."""
    return [folder for folder, _ in _search_path_with_origin()]


def cache_dir() -> Path:
    """Folder for derived files (decoded tensors, verified digests): ``THESISLIB_CACHE`` or ``data/cache``."""
    configured = os.environ.get(ENV_CACHE)
    return Path(configured).expanduser().resolve() if configured else project_data_dir() / "cache"


def downloads_enabled() -> bool:
    """False when ``THESISLIB_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in _TRUE


# --- checksums -------------------------------------------------------------------------------------


def hash_file(path: Path, algorithm: str) -> str:
    """The hex digest of ``path``'s bytes (``algorithm`` is ``"sha256"`` or ``"md5"``)."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def key_file() -> Path:
    """The file holding the key that signs verified digests (``THESISLIB_KEY_FILE``)."""
    configured = os.environ.get(ENV_KEY_FILE)
    if configured:
        return Path(configured).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "thesislib" / "verified-files.key"


_KEYS: dict[Path, bytes] = {}


def _signing_key(create: bool) -> bytes | None:
    """The signing key (created, mode 0600, on first use if ``create``); None if unusable."""
    path = key_file()
    if path in _KEYS:
        return _KEYS[path]
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        if not create:
            return None
        key = secrets.token_bytes(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(key.hex())
        except FileExistsError:  # another process made it first: use theirs
            return _signing_key(create=False)
        except OSError:
            return None
    if len(key) < 16:
        return None
    _KEYS[path] = key
    return key


def _identity(path: Path, stat: os.stat_result) -> dict[str, int]:
    """What must be unchanged for a remembered digest to hold (ctime cannot be set back by a user)."""
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
        "device": stat.st_dev,
    }


def _signature(key: bytes, path: str, identity: dict[str, int], algorithm: str, digest: str) -> str:
    message = json.dumps([path, identity, algorithm, digest], sort_keys=True).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _is_dir(folder: Path) -> bool:
    try:
        return folder.is_dir()
    except OSError:
        return False


_PARSED: dict[str, tuple[tuple[int, ...], dict[str, dict]]] = {}


def _read_hash_cache(copy: bool = True) -> dict[str, dict]:
    """The cache file's entries; parsed once per version of the file (it is replaced atomically).

    ``copy=False`` returns the shared parsed entries: for reading only.
    """
    path = cache_dir() / _HASH_CACHE
    try:
        stat = path.stat()
        version = (stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        if (known := _PARSED.get(str(path))) is not None and known[0] == version:
            return json.loads(json.dumps(known[1])) if copy else known[1]
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = entries if isinstance(entries, dict) else {}
    _PARSED[str(path)] = (version, entries)
    return json.loads(json.dumps(entries)) if copy else entries


def _remember(path: Path, stat: os.stat_result, algorithm: str, digest: str) -> None:
    """Record a verified digest, signed; best effort (a read-only cache only costs a re-hash later)."""
    key = _signing_key(create=True)
    if key is None:
        return
    entries = _read_hash_cache()  # re-read: another process may have added entries meanwhile
    name = str(path.resolve())
    identity = _identity(path, stat)
    entry = entries.get(name, {})
    if not isinstance(entry, dict) or entry.get("identity") != identity:
        entry = {"identity": identity}
    entry.setdefault("digests", {})[algorithm] = {
        "digest": digest,
        "hmac": _signature(key, name, identity, algorithm, digest),
    }
    entries[name] = entry
    with contextlib.suppress(OSError):
        atomic_write_text(cache_dir() / _HASH_CACHE, json.dumps(entries, indent=1, sort_keys=True))


def _remembered(path: Path, stat: os.stat_result, file: DataFile) -> bool:
    """True if a signed entry says this very file (same identity) has ``file``'s digest."""
    key = _signing_key(create=False)
    if key is None:
        return False
    name = str(path.resolve())
    entry = _read_hash_cache(copy=False).get(name)
    if not isinstance(entry, dict) or entry.get("identity") != _identity(path, stat):
        return False
    record = (entry.get("digests") or {}).get(file.algorithm)
    if not isinstance(record, dict) or record.get("digest") != file.digest:
        return False
    expected = _signature(key, name, entry["identity"], file.algorithm, file.digest)
    return hmac.compare_digest(str(record.get("hmac", "")), expected)


def check_file(path: Path, file: DataFile) -> None:
    """Raise :class:`ChecksumMismatchError` unless ``path`` has ``file``'s checksum.

    A file verified before is not hashed again if its signed cache entry matches its size, mtime,
    ctime, inode and device; any edit (even one that restores the mtime) or a forged entry means
    the file is hashed.
    """
    stat = path.stat()
    if _remembered(path, stat, file):
        return
    actual = hash_file(path, file.algorithm)
    if actual != file.digest:
        raise ChecksumMismatchError(
            file,
            str(path),
            actual,
            "The file is corrupt or a different version and was not used (nor any other copy): "
            "delete or replace it.",
        )
    _remember(path, stat, file.algorithm, actual)


def _is_file(candidate: Path) -> bool:
    """``candidate.is_file()``, but a folder that cannot be read counts as not holding the file."""
    try:
        return candidate.is_file()
    except OSError as error:
        _warn_unreadable(candidate, error)
        return False


_WARNED: set[str] = set()


def _warn_unreadable(candidate: Path, error: OSError) -> None:
    folder = next((f for f in search_path() if f in candidate.parents), candidate.parent)
    if str(folder) not in _WARNED:
        _WARNED.add(str(folder))
        warnings.warn(
            f"data folder {folder} cannot be read ({error.strerror or error}); skipped. "
            f"Fix its permissions or remove it from {ENV_DATA}.",
            stacklevel=3,
        )


def find_local(file: DataFile, folders: list[Path] | None = None) -> Path | None:
    """The verified copy of ``file`` in the first search-path folder holding one, or None.

    Raises :class:`ChecksumMismatchError` if that first copy is corrupt.
    """
    for folder in search_path() if folders is None else folders:
        candidate = folder / file.path
        if _is_file(candidate):
            check_file(candidate, file)
            return candidate
    return None


# --- downloads -------------------------------------------------------------------------------------


class _DownloadFailed(Exception):
    """Every URL of a file failed for network reasons (message: one line per URL)."""


def _download_url(url: str, file: DataFile, target: Path) -> None:
    from tqdm import tqdm

    from thesislib import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"thesislib/{__version__}"})
    hasher = hashlib.new(file.algorithm)
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response, atomic_path(target) as part:
        total = int(response.headers.get("Content-Length") or 0) or None
        received = 0
        with (
            open(part, "wb") as out,
            tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=file.path) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                hasher.update(chunk)
                bar.update(len(chunk))
                received += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and received != total:
            raise _DownloadFailed(f"incomplete download: {received} of {total} bytes")
        actual = hasher.hexdigest()
        if actual != file.digest:  # raising here removes the .part file; target is never created
            raise ChecksumMismatchError(file, url, actual, "The download was deleted.")


def download(file: DataFile) -> Path:
    """Download ``file`` into the project's ``data/`` folder, trying its URLs in order.

    The bytes go to a ``.part`` file beside the target and are renamed onto it only
    after the checksum matched. Raises :class:`ChecksumMismatchError` for wrong
    content (nothing is left behind) and ``_DownloadFailed`` if no URL worked.
    """
    target = project_data_dir() / file.path
    failures = []
    for url in file.urls:
        try:
            _download_url(url, file, target)
        except (OSError, http.client.HTTPException, _DownloadFailed) as error:  # URLError, timeouts
            failures.append(f"{url}: {error}")
            continue
        _remember(target, target.stat(), file.algorithm, file.digest)
        return target
    raise _DownloadFailed("; ".join(failures) or "no download URL")


# --- data sets -------------------------------------------------------------------------------------


@dataclass
class FileStatus:
    """Where one file of a data set is, or why it is not there.

    ``state`` is ``"ok"`` (verified local copy), ``"downloaded"``, ``"missing"`` or ``"corrupt"``.
    """

    file: DataFile
    path: Path | None
    state: str
    detail: str = ""
    error: DataError | None = None


def file_statuses(dataset: Dataset, download_missing: bool, raise_corrupt: bool) -> list[FileStatus]:
    """Check every file of ``dataset``; download the missing ones if asked and downloads are enabled.

    With ``raise_corrupt`` a corrupt file raises :class:`ChecksumMismatchError` before anything is
    downloaded. After one file fails to download for network reasons the others are not tried
    (each would wait for the timeout).
    """
    statuses = []
    folders = search_path()
    for file in dataset.files:
        try:
            path = find_local(file, folders)
        except ChecksumMismatchError as error:
            if raise_corrupt:
                raise
            statuses.append(FileStatus(file, None, "corrupt", str(error), error))
            continue
        statuses.append(FileStatus(file, path, "ok" if path else "missing", "" if path else "not found"))

    network_failed = False
    for status in statuses:
        file = status.file
        if status.state != "missing":
            continue
        if not file.urls:
            status.detail = "not found; there is no public download URL"
        elif not download_missing:
            status.detail = "not found (not downloaded: verify only checks)"
        elif not downloads_enabled():
            status.detail = f"not found; downloads are off ({ENV_OFFLINE}={os.environ.get(ENV_OFFLINE)})"
        elif network_failed:
            status.detail = "not found; download not attempted after the previous one failed"
        else:
            try:
                status.path, status.state = download(file), "downloaded"
            except ChecksumMismatchError as error:
                if raise_corrupt:
                    raise
                status.state, status.detail, status.error = "corrupt", str(error), error
            except _DownloadFailed as error:
                status.detail = f"not found; download failed: {error}"
                network_failed = True
    return statuses


def _how_to_provide(dataset: Dataset, missing: list[FileStatus]) -> list[str]:
    lines = ["searched (in order):"]
    for folder, origin in _search_path_with_origin():
        lines.append(f"  {folder}  [{origin}{'' if _is_dir(folder) else '; does not exist or unreadable'}]")
    if dataset.note:
        lines.append(dataset.note)
    example = missing[0].file.path
    lines.append(
        f"To use an offline copy, put each file at <folder>/<file> (e.g. <folder>/{example}) and set "
        f"{ENV_DATA} to that folder (a ':'-separated list of folders, searched before data/), e.g."
    )
    lines.append(f"  export {ENV_DATA}=/path/to/shared/data")
    if any(status.file.urls for status in missing):
        lines.append(
            f"Online (and {ENV_OFFLINE} unset), `thesislib data fetch {dataset.name}` downloads them."
        )
    return lines


def _unavailable(dataset: Dataset, missing: list[FileStatus]) -> DataUnavailableError:
    lines = [
        f"data set {dataset.name!r} is not available: {len(missing)} of {len(dataset.files)} file(s) missing"
    ]
    for status in missing:
        lines.append(f"  {status.file.path}: {status.detail}")
        lines.extend(f"      url: {url}" for url in status.file.urls)
    return DataUnavailableError("\n".join(lines + _how_to_provide(dataset, missing)))


def _paths(name: str, download_missing: bool) -> dict[str, Path]:
    dataset = get_dataset(name)
    statuses = file_statuses(dataset, download_missing, raise_corrupt=True)
    missing = [status for status in statuses if status.path is None]
    if missing:
        raise _unavailable(dataset, missing)
    return {status.file.path: status.path for status in statuses if status.path is not None}


def locate(name: str) -> dict[str, Path]:
    """Verified local paths of data set ``name``'s files, keyed by their registry path.

    Missing files are downloaded into ``data/`` when online. Raises
    :class:`DataUnavailableError` (one error listing every missing file, its URLs,
    the folders searched and how to set ``THESISLIB_DATA``) or
    :class:`ChecksumMismatchError`.
    """
    return _paths(name, download_missing=True)


def verify(name: str) -> dict[str, Path]:
    """Like :func:`locate` but never downloads: checks the local copies only."""
    return _paths(name, download_missing=False)


def fetch(name: str) -> dict[str, Path]:
    """Make data set ``name`` available locally, downloading what is missing (same as :func:`locate`)."""
    return _paths(name, download_missing=True)


@dataclass(frozen=True)
class SourceChoice:
    """The data set a notebook reads (:func:`choose_source`), and why, in one sentence for the page."""

    requested: str
    name: str
    reason: str

    @property
    def fell_back(self) -> bool:
        """True if ``name`` stands in for the ``requested`` data set."""
        return self.name != self.requested


def _obtainable(dataset: Dataset) -> tuple[bool, str]:
    """(True, how) if every file of ``dataset`` is here (verified) or can be downloaded now."""
    statuses = file_statuses(dataset, download_missing=False, raise_corrupt=True)
    missing = [status for status in statuses if status.path is None]
    if not missing:
        folders = {str(s.path.parents[len(Path(s.file.path).parts) - 1]) for s in statuses if s.path}
        return True, f"found in {', '.join(sorted(folders))}"
    if not all(status.file.urls for status in missing):
        return False, "not found locally, and it has no public download"
    if not downloads_enabled():
        return (
            False,
            f"not found locally, and downloads are off ({ENV_OFFLINE}={os.environ.get(ENV_OFFLINE)})",
        )
    return True, f"{len(missing)} file(s) to download from {missing[0].file.urls[0].split('/')[2]}"


def choose_source(name: str) -> SourceChoice:
    """The data set to read for ``name``: itself when it is here or downloadable, else its fallback.

    ``cifar10-jpeg`` (an offline copy with no public download) falls back to ``cifar10``, the
    original that torchvision also downloads, so a notebook opened on Binder or Colab still runs.
    Nothing is downloaded here (the loader does that); corrupt local copies raise
    :class:`ChecksumMismatchError`. Raises :class:`DataUnavailableError` when neither the data set
    nor its fallback can be had, and ``ValueError`` for an unknown name.
    """
    dataset = get_dataset(name)
    ok, how = _obtainable(dataset)
    if ok:
        return SourceChoice(name, name, f"data set {name!r}: {how}")
    if dataset.fallback:
        fallback = get_dataset(dataset.fallback)
        fallback_ok, fallback_how = _obtainable(fallback)
        if fallback_ok:
            return SourceChoice(
                name,
                fallback.name,
                f"data set {name!r} is not available on this machine ({how}), so this page reads "
                f"{fallback.name!r} instead ({fallback_how}): {fallback.description}. "
                "Its numbers are not those of the offline copy.",
            )
    statuses = file_statuses(dataset, download_missing=False, raise_corrupt=True)
    raise _unavailable(dataset, [status for status in statuses if status.path is None])


def status_table() -> pd.DataFrame:
    """One row per data set: files, checksum status (``ok``, ``missing k/n``, ``corrupt k/n``), where found.

    Verifies local copies (cached digests make this cheap) and never downloads; for notebooks.
    """
    import pandas as pd

    rows = []
    for dataset in DATASETS.values():
        statuses = file_statuses(dataset, download_missing=False, raise_corrupt=False)
        counts = {state: sum(s.state == state for s in statuses) for state in ("missing", "corrupt")}
        problems = [f"{state} {n}/{len(statuses)}" for state, n in counts.items() if n]
        folders = {str(s.path.parents[len(Path(s.file.path).parts) - 1]): None for s in statuses if s.path}
        rows.append(
            {
                "data set": dataset.name,
                "files": len(statuses),
                "checksums": ", ".join(problems) or "ok",
                "found in": ", ".join(folders),
                "description": dataset.description,
            }
        )
    return pd.DataFrame(rows).set_index("data set")


# --- command line ----------------------------------------------------------------------------------

_ACTIONS = ("list", "verify", "fetch")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    )


def _where(dataset: Dataset) -> str:
    """Where a data set's files are, by existence only (no hashing): for ``thesislib data list``."""
    found: dict[str, None] = {}
    missing = 0
    for file in dataset.files:
        folder = next((f for f in search_path() if _is_file(f / file.path)), None)
        if folder is None:
            missing += 1
        else:
            found[str(folder)] = None
    if not missing:
        return ", ".join(found)
    rest = f" (rest in {', '.join(found)})" if found else ""
    return f"missing {missing}/{len(dataset.files)}{rest}"


def cli_data(action: str, name: str | None) -> int:
    """``thesislib data list|verify|fetch [NAME]``: print the data sets' state; 0 if all is well, else 1.

    ``list`` prints a table (name, files, where found / missing, description) and
    always returns 0; ``verify`` checks checksums without downloading; ``fetch``
    also downloads what is missing. Unknown actions or names raise ValueError.
    """
    from thesislib.data.folders import USER_DATASETS, find_folder

    if action not in _ACTIONS:
        raise ValueError(f"unknown action {action!r}; valid actions: {', '.join(_ACTIONS)}")
    if name is not None and name in USER_DATASETS:
        return _cli_user_data(action, name)
    datasets = [get_dataset(name)] if name is not None else list(DATASETS.values())
    if action == "list":
        rows = [("name", "files", "where", "description")]
        rows += [(d.name, str(len(d.files)), _where(d), d.description) for d in datasets]
        if name is None:
            for user in USER_DATASETS.values():
                root, problems = find_folder(user.name)
                where = "missing (user-supplied)" if root is None else str(root.parent)
                rows.append(
                    (user.name, "folder", where + (" (bad layout)" if problems else ""), user.description)
                )
        print(_table(rows))
        print(f"\nsearch path ({ENV_DATA}, then data/): {os.pathsep.join(map(str, search_path()))}")
        return 0

    all_good = True
    for dataset in datasets:
        statuses = file_statuses(dataset, download_missing=action == "fetch", raise_corrupt=False)
        bad = [status for status in statuses if status.path is None]
        print(f"{dataset.name}: {'ok' if not bad else f'{len(bad)} of {len(statuses)} file(s) unusable'}")
        for status in statuses:
            shown = str(status.path) if status.path is not None else status.detail
            print(
                f"  {status.state.upper() if status.path is None else status.state:<10} {status.file.path}  {shown}"
            )
        if bad:
            all_good = False
            missing = [status for status in bad if status.state == "missing"]
            if missing:
                print("\n".join("  " + line for line in _how_to_provide(dataset, missing)))
    if name is None:  # optional: only the GPU-scale experiments need them, so they do not fail the check
        print("user-supplied (optional; needed only by the ImageNet/Cityscapes experiments):")
        for user in USER_DATASETS:
            _cli_user_data(action, user)
    return 0 if all_good else 1


def _cli_user_data(action: str, name: str) -> int:
    """``thesislib data list|verify|fetch imagenet|cityscapes``: a user-supplied folder is only checked."""
    from thesislib.data.folders import find_folder, get_user_dataset

    dataset = get_user_dataset(name)
    root, problems = find_folder(name)
    if action == "list":
        print(_table([("name", "where", "description"), (name, str(root or "missing"), dataset.description)]))
        return 0
    if root is None:
        print(f"{name}: not found (user-supplied, never downloaded)")
        print("  " + dataset.how_to_provide().replace("\n", "\n  "))
        return 1
    if problems:
        print(f"{name}: {root} does not have the expected layout: {'; '.join(problems)}")
        print("  expected:\n" + dataset.layout)
        return 1
    print(f"{name}: ok (layout checked, no checksums: user-supplied folder)  {root}")
    return 0
