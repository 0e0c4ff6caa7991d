"""Launch buttons that work: the hidden cell that installs thesislib where it is missing.

The book's pages have Binder and Colab buttons. Binder builds ``binder/environment.yml`` and
runs ``binder/postBuild`` (which installs this checkout), so thesislib is there. Colab opens the
notebook alone, so every book notebook carries, right after its ``parameters`` cell, a cell tagged
``install`` (and ``remove-cell``: the book does not show it) that clones the repository and
installs it when ``import thesislib`` would fail; in the project's own environment it does nothing.

The repository is named in one place, ``repository.url`` of ``_config.yml``;
:func:`install_cell_source` builds the cell from it, ``tests/test_book.py`` checks that every
notebook's cell matches, and ``python -m thesislib.runs.launch`` rewrites the cells after the
URL changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import yaml

from thesislib.paths import PROJECT_ROOT

CONFIG_FILE = PROJECT_ROOT / "_config.yml"
INSTALL_TAGS = ("install", "remove-cell")
"""The tags of the install cell: ``install`` names it, ``remove-cell`` keeps it out of the book."""

__all__ = ["INSTALL_TAGS", "install_cell_source", "repository_url", "sync_install_cells"]


def repository_url(config: str | Path = CONFIG_FILE) -> str:
    """``repository.url`` of the book's ``_config.yml``; ``ValueError`` if it is missing or not https."""
    settings = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    url = str((settings.get("repository") or {}).get("url") or "")
    if not url.startswith("https://"):
        raise ValueError(f"{config}: repository.url must be an https:// URL of the project, got {url!r}")
    return url.rstrip("/")


def install_cell_source(url: str | None = None) -> str:
    """The install cell's code for the repository ``url`` (default: :func:`repository_url`)."""
    url = url or repository_url()
    return (
        "# Colab: install thesislib (and this project's data/reference) when it is missing.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("thesislib") is None:\n'
        "    import subprocess\n"
        "    import sys\n"
        "\n"
        f'    subprocess.run(["git", "clone", "--depth", "1", "{url}", "thesislib-project"], check=True)\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "thesislib-project"], check=True)\n'
        '    sys.path.insert(0, "thesislib-project")  # the editable install is seen from the next kernel on\n'
    )


def _is_install_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and "install" in cell.get("metadata", {}).get("tags", [])


def sync_install_cells(notebooks: list[Path], url: str | None = None) -> list[Path]:
    """Give each notebook the install cell for ``url``, right after its parameters cell.

    An existing install cell is rewritten in place; returns the notebooks that changed.
    Raises ``ValueError`` for a notebook without a ``parameters`` cell.
    """
    source = install_cell_source(url)
    changed = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        existing = [cell for cell in notebook.cells if _is_install_cell(cell)]
        if existing:
            cell = existing[0]
            if cell.source == source and list(INSTALL_TAGS) == cell.metadata.get("tags"):
                continue
            cell.source = source
            cell.metadata["tags"] = list(INSTALL_TAGS)
        else:
            index = next(
                (
                    i
                    for i, cell in enumerate(notebook.cells)
                    if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", [])
                ),
                None,
            )
            if index is None:
                raise ValueError(f"{path} has no code cell tagged 'parameters'")
            cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(INSTALL_TAGS)})
            notebook.cells.insert(index + 1, cell)
        nbformat.write(notebook, path)
        changed.append(path)
    return changed


def main() -> int:
    """``python -m thesislib.runs.launch``: rewrite the install cell of every book notebook."""
    from thesislib.runs.book import book_notebooks

    changed = sync_install_cells(book_notebooks())
    print(f"install cells for {repository_url()}: {len(changed)} notebook(s) rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
