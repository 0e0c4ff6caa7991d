"""Where the project's folders are.

In a checkout (the usual case: ``pip install -e .``) the project root is the
folder holding thesislib's ``pyproject.toml``; it holds ``notebooks/``, ``book/``,
``data/`` and ``runs/``. A non-editable install has no such folder, and the
current directory stands in for it.
"""

from __future__ import annotations

import re
from pathlib import Path


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
