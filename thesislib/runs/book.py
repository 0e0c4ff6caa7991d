"""Build the Jupyter Book from executed notebooks.

The book's sources are ``_config.yml``, ``_toc.yml`` and ``book/`` at the top of
the project; its chapters are the notebooks that ``_toc.yml`` lists under
``notebooks/``. :func:`build_book` executes those notebooks in a profile (cached,
see :mod:`thesislib.runs.runner`) or takes them already executed from a folder
(e.g. paper-profile runs copied back from a GPU machine), assembles the sources
with the executed notebooks in ``book/_build/source/`` (copying only what
changed, so Sphinx rebuilds only what changed) and runs ``jupyter-book build``.
The HTML lands in ``book/_build/html``.

While assembling, papermill's injected-parameters cell of each notebook is collapsed like the
``parameters`` cell (tag ``hide-input``, see :data:`CELL_TAGS`), and the table of each
notebook's execution time per profile (:func:`lab_times`) is written for the teaching page.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import yaml
from tqdm.auto import tqdm

from thesislib.paths import PROFILES, PROJECT_ROOT
from thesislib.runs.profiles import check_profile
from thesislib.runs.runner import RUNS_DIR, run_notebook

BOOK_DIR = PROJECT_ROOT / "book"
BUILD_DIR = BOOK_DIR / "_build"
SOURCE_DIR = BUILD_DIR / "source"
TOC_FILE = PROJECT_ROOT / "_toc.yml"
LAB_TIMES_FILE = "book/_generated/lab_times.md"
"""Where the assembled sources hold the lab-times table that ``book/teaching.md`` includes."""

CELL_TAGS = {
    "parameters": "hide-input",
    "injected-parameters": "hide-input",
    "install": "remove-cell",
    "imports": "hide-input",
    "glue": "remove-cell",
}
"""The book's cell convention: a plumbing cell's role tag -> how the page shows it.

The parameters of the run and the imports are collapsed (a reader can open them), the install
cell and the cells that only record values (glue) are not shown; every other code cell is the
story and is shown. ``tests/test_book.py`` checks every notebook against it; papermill's
injected-parameters cell is tagged when the book is assembled (:func:`prepare_for_book`).
"""


def toc_files(toc_file: str | Path = TOC_FILE) -> list[str]:
    """Every file ``_toc.yml`` names (root, chapters, sections), in reading order, without suffix."""
    toc = yaml.safe_load(Path(toc_file).read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    files.append(str(node[key]))
            for value in node.values():
                if isinstance(value, list | dict):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return files


def book_notebooks(toc_file: str | Path = TOC_FILE) -> list[Path]:
    """The notebooks the book is made of, in reading order."""
    return [PROJECT_ROOT / f"{name}.ipynb" for name in toc_files(toc_file) if name.startswith("notebooks/")]


def execute_book_notebooks(profile: str) -> Path:
    """Execute (or reuse cached executions of) every book notebook in ``profile``; return their folder."""
    check_profile(profile)
    notebooks = book_notebooks()
    for notebook in tqdm(notebooks, desc=f"executing notebooks ({profile})", unit="notebook"):
        result = run_notebook(notebook, profile)
        state = f"executed in {result.seconds:.1f} s" if result.executed else "cached"
        tqdm.write(f"  {notebook.name}: {state}")
    return RUNS_DIR / profile


def _sync_file(source: Path, target: Path) -> None:
    if target.is_file() and filecmp.cmp(source, target, shallow=False):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def prepare_for_book(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Apply :data:`CELL_TAGS` to an executed notebook (in place; returned for chaining).

    Also drops display outputs that hold no data (holoviews emits one before each figure) and
    widget views (tqdm's progress bars; a static page cannot show them): a figure cell
    (``mystnb.figure``) must have exactly one output to caption.
    """
    for cell in notebook.cells:
        if cell.get("outputs"):
            cell.outputs = [output for output in cell.outputs if not _placeholder(output)]
        tags = cell.get("metadata", {}).get("tags", [])
        for role, display in CELL_TAGS.items():
            if role in tags and display not in tags:
                cell.metadata["tags"] = [*tags, display]
                tags = cell.metadata["tags"]
    return notebook


PRESENTATION_KEYS = ("tags", "mystnb")
"""Cell metadata that only says how a page shows a cell (not in the run's cache key)."""


def copy_presentation(source: nbformat.NotebookNode, executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Give ``executed``'s cells the tags and figure captions of the same cells in ``source``.

    A change of tags or captions alone does not re-execute a notebook (the cache key holds the
    cells' sources), so the book takes them from the current notebook: each executed cell with the
    same id, or else the same type and source, gets ``source``'s :data:`PRESENTATION_KEYS`.
    Cells only in ``executed`` (papermill's injected parameters) keep theirs.
    """
    by_id = {cell.get("id"): cell for cell in source.cells if cell.get("id")}
    by_source = {(cell.cell_type, cell.source): cell for cell in source.cells}
    for cell in executed.cells:
        match = by_id.get(cell.get("id")) or by_source.get((cell.cell_type, cell.source))
        if match is None or match.source != cell.source:
            match = by_source.get((cell.cell_type, cell.source))
        if match is None:
            continue
        for key in PRESENTATION_KEYS:
            if key in match.get("metadata", {}):
                cell.setdefault("metadata", {})[key] = match.metadata[key]
            else:
                cell.get("metadata", {}).pop(key, None)
    return executed


def _placeholder(output: nbformat.NotebookNode) -> bool:
    """True for a display output with no data, or one that is only a widget view."""
    if output.get("output_type") != "display_data":
        return False
    data = output.get("data") or {}
    return not data or "application/vnd.jupyter.widget-view+json" in data


def _write_if_changed(text: str, target: Path) -> None:
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def lab_times(runs_dir: str | Path = RUNS_DIR) -> pd.DataFrame:
    """Seconds each book notebook took to execute, per profile folder of ``runs_dir`` (NaN: not run).

    Read from the executed notebooks' metadata (``metadata.thesislib.seconds``, written by the
    runner): the timings of the runs on the machine that built the book, under its load.
    """
    runs_dir = Path(runs_dir)
    table = pd.DataFrame(index=[nb.stem for nb in book_notebooks()], dtype=float)
    table.index.name = "notebook"
    for profile in PROFILES:
        seconds = []
        for notebook in book_notebooks():
            executed = runs_dir / profile / notebook.name
            try:
                seconds.append(float(nbformat.read(executed, as_version=4).metadata["thesislib"]["seconds"]))
            except (OSError, KeyError, ValueError, TypeError):
                seconds.append(float("nan"))
        table[profile] = seconds
    return table


def lab_times_markdown(runs_dir: str | Path = RUNS_DIR) -> str:
    """:func:`lab_times` as a Markdown table in minutes (``not run here`` where missing)."""
    table = lab_times(runs_dir)
    lines = ["| notebook | smoke | cpu | paper |", "| --- | ---: | ---: | ---: |"]
    for name, row in table.iterrows():
        cells = [f"{row[p] / 60:.1f} min" if pd.notna(row[p]) else "not run here" for p in table.columns]
        lines.append(f"| {{doc}}`{name} <../notebooks/{name}>` | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Built on a machine with {os.cpu_count() or 'an unknown number of'} CPU cores.")
    return "\n".join(lines) + "\n"


def assemble_sources(executed_dir: str | Path) -> Path:
    """Put the book's sources and the executed notebooks from ``executed_dir`` into ``book/_build/source``."""
    executed_dir = Path(executed_dir)
    missing = [nb.name for nb in book_notebooks() if not (executed_dir / nb.name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{executed_dir} lacks executed notebook(s) {', '.join(missing)}; "
            "run `thesislib run` for them first, or build with --profile"
        )
    wanted: set[Path] = set()
    for name in ("_config.yml", "_toc.yml"):
        wanted.add(SOURCE_DIR / name)
        _sync_file(PROJECT_ROOT / name, SOURCE_DIR / name)
    for path in BOOK_DIR.rglob("*"):
        if path.is_file() and BUILD_DIR not in path.parents:
            target = SOURCE_DIR / path.relative_to(PROJECT_ROOT)
            wanted.add(target)
            _sync_file(path, target)
    for notebook in book_notebooks():
        target = SOURCE_DIR / "notebooks" / notebook.name
        wanted.add(target)
        executed = nbformat.read(executed_dir / notebook.name, as_version=4)
        copy_presentation(nbformat.read(notebook, as_version=4), executed)
        prepare_for_book(executed)
        _write_if_changed(nbformat.writes(executed) + "\n", target)
    generated = SOURCE_DIR / LAB_TIMES_FILE
    wanted.add(generated)
    _write_if_changed(lab_times_markdown(), generated)
    for path in SOURCE_DIR.rglob("*"):
        if path.is_file() and path not in wanted and "_build" not in path.relative_to(SOURCE_DIR).parts:
            path.unlink()
    return SOURCE_DIR


def build_book(profile: str | None = "cpu", from_dir: str | Path | None = None) -> Path:
    """Execute (cached) and build the HTML book; return the folder holding ``index.html``."""
    executed_dir = Path(from_dir) if from_dir else execute_book_notebooks(profile or "cpu")
    source = assemble_sources(executed_dir)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book if jupyter_book.exists() else "jupyter-book"), "build", str(source)]
    command += ["--path-output", str(BOOK_DIR), "--warningiserror", "--keep-going"]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {completed.returncode}); see the log above")
    return BUILD_DIR / "html"
