"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and an interrupted write leaves the
previous version in place. Used by the data layer, checkpoints, the results
store and the notebook runner.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_HOST = socket.gethostname().replace(".", "_").replace("-", "_") or "host"


def temporary_name(target: Path, suffix: str = ".part") -> Path:
    """The hidden temporary path beside ``target``: ``.<name>.<host>-<pid>-<random><suffix>``.

    The host and process id let :func:`remove_stale_temporaries` tell a temporary file of a
    process that was killed (``SIGKILL``, out of memory) from one still being written.
    """
    return target.parent / f".{target.name}.{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}"


def _alive(pid: int) -> bool:
    """True if process ``pid`` runs (a zombie, killed but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    return True


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete the temporary files in ``folder`` (of target ``name``, or all) whose writer has died.

    Only files written on this host are judged (a process id means nothing on another machine of a
    cluster sharing the folder). Returns the deleted paths.
    """
    folder = Path(folder)
    pattern = f".{name}.{_HOST}-*" if name else f".*.{_HOST}-*"
    removed = []
    with contextlib.suppress(OSError):
        for path in folder.glob(pattern):
            try:
                pid = int(path.name.rsplit(f".{_HOST}-", 1)[1].split("-", 1)[0])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and not _alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On an exception the temporary file is removed and ``target`` is untouched. A process killed
    outright leaves its temporary file; :func:`remove_stale_temporaries` clears such files.
    """
    target = Path(target)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = temporary_name(target, suffix)
    # Created with the usual permissions (0o666 less the umask), unlike mkstemp's 0o600.
    os.close(os.open(tmp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file for writing that atomically replaces ``target`` on close."""
    if not mode.startswith(("w", "x")):
        raise ValueError(f"atomic_open writes whole files; mode must start with 'w', got {mode!r}")
    with atomic_path(target) as tmp, open(tmp, mode.replace("x", "w"), **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy ``source`` onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write(text)
