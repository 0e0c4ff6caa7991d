"""The run cache depends on the library modules a notebook imports, transitively, and on nothing else."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from thesislib.runs import runner
from thesislib.runs.dependencies import imported_modules, library_files

MODULES = {
    "__init__.py": "",
    "plots.py": "import numpy\n",
    "chapter/__init__.py": "from .model import build\n",
    "chapter/model.py": "from thesislib.chapter import layers\n\ndef build():\n    from ..helpers import tool\n",
    "chapter/layers.py": "X = 1\n",
    "helpers.py": "def tool():\n    pass\n",
    "unrelated.py": "Y = 2\n",
    "other/__init__.py": "",
    "other/thing.py": "Z = 3\n",
    "tables.csv": "a,b\n1,2\n",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in MODULES.items():
        path = tmp_path / "thesislib" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "data" / "reference").mkdir(parents=True)
    (tmp_path / "data" / "reference" / "table.csv").write_text("x\n1\n")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("import thesislib.unrelated  (prose, not code)"),
        nbformat.v4.new_code_cell(
            "%matplotlib inline\nfrom thesislib import plots\nfrom thesislib.chapter import build"
        ),
    ]
    nbformat.write(notebook, tmp_path / "page.ipynb")
    monkeypatch.setattr(runner, "PROJECT_ROOT", tmp_path)
    return tmp_path


def test_the_closure_follows_absolute_relative_and_function_level_imports(project: Path) -> None:
    files = {
        p.relative_to(project / "thesislib").as_posix()
        for p in library_files(project / "page.ipynb", project / "thesislib")
    }
    assert files == {
        "__init__.py",
        "plots.py",
        "chapter/__init__.py",
        "chapter/model.py",
        "chapter/layers.py",
        "helpers.py",
        "tables.csv",
    }


@pytest.mark.parametrize(
    "edited,changes",
    [
        ("unrelated.py", False),
        ("other/thing.py", False),
        ("chapter/layers.py", True),  # imported by an imported module
        ("helpers.py", True),  # imported inside a function, relatively
        ("tables.csv", True),  # package data
        ("../data/reference/table.csv", True),
    ],
)
def test_an_edit_changes_the_cache_key_exactly_when_the_notebook_depends_on_the_file(
    project: Path, edited: str, changes: bool
) -> None:
    notebook = project / "page.ipynb"
    before = runner.cache_key(notebook, "smoke", {"seed": 1})
    path = project / "thesislib" / edited
    path.write_text(path.read_text() + "# an edit\n")
    assert (runner.cache_key(notebook, "smoke", {"seed": 1}) != before) is changes


def test_relative_imports_resolve_against_the_module_or_the_package() -> None:
    assert imported_modules("from . import b", "thesislib.a.m") == {"thesislib.a", "thesislib.a.b"}
    assert imported_modules("from .b import c", "thesislib.a", is_package=True) == {
        "thesislib.a.b",
        "thesislib.a.b.c",
    }
    assert imported_modules("from ..x import y", "thesislib.a.m") == {"thesislib.x", "thesislib.x.y"}
    assert imported_modules("import numpy, thesislib.q as q") == {"thesislib.q"}
