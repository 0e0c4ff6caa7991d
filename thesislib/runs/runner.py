"""Execute notebooks with papermill, cached, into ``runs/<profile>/``.

A run is identified by its *cache key*: a hash of the notebook's cells, the
injected parameters, the profile and the library source it depends on (the ``thesislib``
modules its code imports, transitively, and ``data/reference/``). The key is stored in the executed notebook's metadata
(``metadata.thesislib``); a later run with the same key re-executes nothing.
A failed run (a cell raised, or the kernel died) leaves its partly executed notebook
as ``<name>.failed.ipynb`` for inspection, removes any older completed output of the
same name, and raises :class:`NotebookFailed` naming the notebook, the cell and the
error. A notebook whose metadata holds ``{"thesislib": {"always_execute": true}}`` is
never served from the cache. The partial output is a hidden temporary file renamed into
place when complete; a killed run's temporary file is removed by the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbclient.exceptions import DeadKernelError
from papermill.exceptions import PapermillExecutionError

from thesislib.atomic import atomic_copy, atomic_path, remove_stale_temporaries
from thesislib.paths import PROJECT_ROOT, RUN_DIR_ENV
from thesislib.runs.dependencies import library_files
from thesislib.runs.profiles import check_profile, resolve_parameters

KERNEL_NAME = "thesislib"
RUNS_DIR = PROJECT_ROOT / "runs"


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


def library_fingerprint(notebook: Path) -> str:
    """Hash of the source files ``notebook`` depends on besides itself: the ``thesislib`` modules its code
    imports, transitively (:mod:`thesislib.runs.dependencies`), the package's data files and
    ``data/reference/``."""
    digest = hashlib.sha256()
    reference = PROJECT_ROOT / "data" / "reference"
    files = library_files(notebook, PROJECT_ROOT / "thesislib")
    files += sorted(p for p in reference.rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(notebook: Path, profile: str, parameters: dict[str, Any]) -> str:
    """The key under which an execution of ``notebook`` is cached."""
    cells = [(cell.cell_type, cell.source) for cell in nbformat.read(notebook, as_version=4).cells]
    payload = json.dumps(
        {
            "cells": cells,
            "profile": profile,
            "parameters": parameters,
            "library": library_fingerprint(notebook),
        },
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


def always_executes(notebook: Path) -> bool:
    """True if ``notebook``'s metadata says ``{"thesislib": {"always_execute": true}}``.

    Such a notebook (e.g. a ledger that reads the other notebooks' outputs) is never served from the
    cache: its inputs are not in its cache key.
    """
    metadata = nbformat.read(notebook, as_version=4).metadata
    return bool(metadata.get("thesislib", {}).get("always_execute", False))


def failed_path(output: Path) -> Path:
    """Where a failed run of ``output`` keeps its partly executed notebook."""
    return output.with_name(f"{output.stem}.failed.ipynb")


def check_output_folder(folder: Path) -> Path:
    """Raise ``ValueError`` unless ``folder`` is (or can be made) a writable folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output folder {folder} is a file; --out needs a folder")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to {existing} (permission denied); choose another output folder")
    return folder


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
    for unknown parameters or values of the wrong type, and :class:`NotebookFailed` when a cell
    raises or the kernel dies (killed for memory, ``os._exit``): then the partly executed notebook
    is kept as ``<name>.failed.ipynb`` and no completed output remains at ``output`` (an older
    execution with other parameters would otherwise be reported as this run's result).
    While the notebook runs, ``THESISLIB_RUN_DIR`` names the output's folder
    (:func:`thesislib.paths.run_dir`): the library keeps the run's checkpoints there.
    """
    check_profile(profile)
    notebook = Path(notebook).resolve()
    parameters = resolve_parameters(notebook, profile, overrides)
    output = Path(output) if output else RUNS_DIR / profile / notebook.name
    check_output_folder(output.parent)
    key = cache_key(notebook, profile, parameters)
    if not force and not always_executes(notebook) and cached_output(output, key):
        failed_path(output).unlink(missing_ok=True)
        return RunResult(notebook, output, parameters, executed=False, seconds=0.0)

    start = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output.parent, output.name)
    with (
        atomic_path(output, suffix=".ipynb") as partial,
        _environment(TQDM_DISABLE="1", **{RUN_DIR_ENV: str(output.parent.resolve())}),
    ):
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
            raise NotebookFailed(_fail(notebook, output, partial, _describe_failure(error))) from None
        except DeadKernelError:
            reason = (
                f"the kernel died{_running_cell(partial)}: killed (e.g. for lack of memory), "
                "or the notebook exited"
            )
            raise NotebookFailed(_fail(notebook, output, partial, reason)) from None
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:  # a kernel that would not start, a timeout, a broken notebook file
            reason = f"execution failed: {type(error).__name__}: {error}"
            raise NotebookFailed(_fail(notebook, output, partial, reason)) from None
        executed = nbformat.read(partial, as_version=4)
        executed.metadata["thesislib"] = {
            "cache_key": key,
            "notebook": os.path.relpath(notebook, PROJECT_ROOT),
            "profile": profile,
            "parameters": parameters,
            "seconds": round(time.perf_counter() - start, 3),
        }
        nbformat.write(executed, partial)
    failed_path(output).unlink(missing_ok=True)
    return RunResult(notebook, output, parameters, executed=True, seconds=time.perf_counter() - start)


def _running_cell(partial: Path) -> str:
    """`` in cell index N ('first line')``: the last cell papermill started, or ``""``."""
    try:
        cells = nbformat.read(partial, as_version=4).cells
    except (OSError, ValueError):
        return ""
    started = [
        (index, cell)
        for index, cell in enumerate(cells)
        if cell.cell_type == "code" and cell.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    if not started:
        return ""
    index, cell = started[-1]
    first = (cell.source.strip().splitlines() or [""])[0][:60]
    return f" in cell index {index} ({first!r})"


def _fail(notebook: Path, output: Path, partial: Path, reason: str) -> str:
    """Keep the partly executed notebook, retire the old completed output; the failure's message."""
    failed = failed_path(output)
    kept = ""
    try:
        if partial.stat().st_size:
            atomic_copy(partial, failed)
            kept = f"\n  the partly executed notebook is at {failed}"
    except OSError:
        pass
    if not kept:
        failed.unlink(missing_ok=True)
    output.unlink(missing_ok=True)  # a completed run with other parameters is not this run's result
    return f"{notebook.name}: {reason}{kept}"


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the kernel (it inherits ours), restoring them afterwards."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _describe_failure(error: PapermillExecutionError) -> str:
    traceback = _ANSI.sub("", "\n".join(error.traceback[-6:])) if error.traceback else ""
    source = "\n".join(f"    {line}" for line in (error.source or "").splitlines()[:12])
    return (
        f"cell {error.exec_count} (cell index {error.cell_index}) raised "
        f"{error.ename}: {error.evalue}\n  cell source:\n{source}\n{traceback}"
    )
