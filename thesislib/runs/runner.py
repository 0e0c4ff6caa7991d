"""Execute notebooks with papermill, cached, into ``runs/<profile>/``.

A run is identified by its *cache key*: a hash of the notebook's cells, the
injected parameters, the profile and the library's source (``thesislib/`` and
``data/reference/``). The key is stored in the executed notebook's metadata
(``metadata.thesislib``); a later run with the same key re-executes nothing.
A failed run leaves its partly executed notebook for inspection, without a key,
and raises :class:`NotebookFailed` naming the cell and the error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from thesislib.atomic import atomic_path
from thesislib.paths import PROJECT_ROOT
from thesislib.runs.profiles import check_profile, resolve_parameters

KERNEL_NAME = "thesislib"
RUNS_DIR = PROJECT_ROOT / "runs"
_FINGERPRINTED = (PROJECT_ROOT / "thesislib", PROJECT_ROOT / "data" / "reference")


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookFailed(RuntimeError):
    """A notebook raised during execution; the message names the cell and the error."""


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_notebook` did: the executed notebook, whether it ran (or was cached), how long."""

    notebook: Path
    output: Path
    parameters: dict[str, Any]
    executed: bool
    seconds: float


def library_fingerprint() -> str:
    """Hash of every source file the notebooks depend on besides themselves."""
    digest = hashlib.sha256()
    for root in _FINGERPRINTED:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(notebook: Path, profile: str, parameters: dict[str, Any]) -> str:
    """The key under which an execution of ``notebook`` is cached."""
    cells = [(cell.cell_type, cell.source) for cell in nbformat.read(notebook, as_version=4).cells]
    payload = json.dumps(
        {"cells": cells, "profile": profile, "parameters": parameters, "library": library_fingerprint()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def ensure_kernel() -> str:
    """Register (once) a Jupyter kernel that runs this very interpreter, i.e. the project's venv."""
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME / "kernel.json"
    if not spec.is_file() or json.loads(spec.read_text())["argv"][0] != sys.executable:
        from ipykernel.kernelspec import install

        install(kernel_name=KERNEL_NAME, display_name="Python (thesislib)", prefix=sys.prefix)
    return KERNEL_NAME


def cached_output(output: Path, key: str) -> bool:
    """True if ``output`` is a completed execution with cache key ``key``."""
    if not output.is_file():
        return False
    try:
        metadata = nbformat.read(output, as_version=4).metadata
    except (OSError, ValueError):
        return False
    return metadata.get("thesislib", {}).get("cache_key") == key


def run_notebook(
    notebook: str | Path,
    profile: str = "cpu",
    overrides: dict[str, Any] | None = None,
    output: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> RunResult:
    """Execute ``notebook`` in ``profile`` (plus ``overrides``) with papermill; reuse a current cached run.

    ``output`` defaults to ``runs/<profile>/<notebook name>``. Raises ``ValueError``
    for unknown parameters and :class:`NotebookFailed` when a cell raises.
    """
    check_profile(profile)
    notebook = Path(notebook).resolve()
    parameters = resolve_parameters(notebook, profile, overrides)
    output = Path(output) if output else RUNS_DIR / profile / notebook.name
    key = cache_key(notebook, profile, parameters)
    if not force and cached_output(output, key):
        return RunResult(notebook, output, parameters, executed=False, seconds=0.0)

    start = time.perf_counter()
    with atomic_path(output, suffix=".ipynb") as partial, _quiet_progress_bars():
        try:
            papermill.execute_notebook(
                str(notebook),
                str(partial),
                parameters=parameters,
                kernel_name=ensure_kernel(),
                progress_bar=progress,
                cwd=str(notebook.parent),
            )
        except PapermillExecutionError as error:
            failed = output.with_name(f"{output.stem}.failed.ipynb")
            shutil.copyfile(partial, failed)
            raise NotebookFailed(_describe_failure(notebook, error, failed)) from None
        executed = nbformat.read(partial, as_version=4)
        executed.metadata["thesislib"] = {
            "cache_key": key,
            "notebook": os.path.relpath(notebook, PROJECT_ROOT),
            "profile": profile,
            "parameters": parameters,
            "seconds": round(time.perf_counter() - start, 3),
        }
        nbformat.write(executed, partial)
    output.with_name(f"{output.stem}.failed.ipynb").unlink(missing_ok=True)
    return RunResult(notebook, output, parameters, executed=True, seconds=time.perf_counter() - start)


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Silence tqdm in the kernel: an executed page keeps its results, not stale progress bars.

    Interactive sessions and terminals still show every bar.
    """
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = previous


def _describe_failure(notebook: Path, error: PapermillExecutionError, failed: Path) -> str:
    traceback = _ANSI.sub("", "\n".join(error.traceback[-6:])) if error.traceback else ""
    source = "\n".join(f"    {line}" for line in (error.source or "").splitlines()[:12])
    return (
        f"{notebook.name}: cell {error.exec_count} (cell index {error.cell_index}) raised "
        f"{error.ename}: {error.evalue}\n  cell source:\n{source}\n{traceback}\n"
        f"  the partly executed notebook is at {failed}"
    )
