"""Where the project's folders are.

In a checkout (the usual case: ``pip install -e .``) the project root is the
folder holding thesislib's ``pyproject.toml``; it holds ``notebooks/``, ``book/``,
``data/`` and ``runs/``. A non-editable install has no such folder, and the
current directory stands in for it.

A notebook run by :func:`thesislib.runs.run_notebook` sees ``THESISLIB_RUN_DIR``, the
folder its output notebook goes to (``runs/<profile>/`` or ``--out``): :func:`run_dir`
reads it, and the run's training checkpoints live in :func:`checkpoints_dir` below it,
so a run with ``--out`` writes nothing under the project's ``runs/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROFILES = ("smoke", "cpu", "paper")
"""The execution profiles, from the smallest to the thesis' settings; a profile's runs go to ``runs/<profile>/``
(:mod:`thesislib.runs.profiles` says what each one sets)."""
JOB_PROFILES = ("smoke", "paper")
"""The profiles of a thesis-scale job (:mod:`thesislib.experiments`): the thesis' settings, or tiny for tests."""


def _find_project_root() -> Path:
    for folder in Path(__file__).resolve().parents:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and re.search(
            r'^name\s*=\s*"thesislib"', pyproject.read_text(errors="replace"), re.MULTILINE
        ):
            return folder
    return Path.cwd()


PROJECT_ROOT = _find_project_root()
"""The project checkout (or the current directory when thesislib is installed without one)."""

RUN_DIR_ENV = "THESISLIB_RUN_DIR"
"""Set by the runner to the folder of the executing notebook's output."""


def run_dir() -> Path:
    """The current run's output folder (``THESISLIB_RUN_DIR``), else the project's ``runs/``."""
    configured = os.environ.get(RUN_DIR_ENV)
    return Path(configured) if configured else PROJECT_ROOT / "runs"


def checkpoints_dir(name: str) -> Path:
    """Where a notebook keeps its training checkpoints: ``<run folder>/checkpoints/<name>``.

    E.g. ``checkpoints_dir("05_moonshine")``: ``runs/cpu/checkpoints/05_moonshine`` for a cpu run,
    ``<--out>/checkpoints/05_moonshine`` for a run with ``--out``.
    """
    return run_dir() / "checkpoints" / name


def follow_run_dir(folder: str | os.PathLike) -> Path:
    """``folder`` moved below the current run's folder if it is inside the project's ``runs/checkpoints``.

    Notebooks written before :func:`checkpoints_dir` existed name ``<project>/runs/checkpoints/...``
    (or the relative ``runs/checkpoints/...``); inside a run (``THESISLIB_RUN_DIR`` set) those
    become ``<run folder>/checkpoints/...``. Any other folder, and every folder outside a run, is
    returned unchanged.
    """
    folder = Path(folder)
    configured = os.environ.get(RUN_DIR_ENV)
    if not configured:
        return folder
    legacy = PROJECT_ROOT / "runs" / "checkpoints"
    absolute = folder if folder.is_absolute() else PROJECT_ROOT / folder
    try:
        relative = absolute.resolve().relative_to(legacy.resolve())
    except ValueError:
        return folder
    return Path(configured) / "checkpoints" / relative
