"""What a notebook's execution depends on: the ``thesislib`` modules it imports, transitively.

The run cache (:func:`thesislib.runs.runner.cache_key`) hashes these files rather than the whole
library, so a docstring edit in the JPEG code does not re-execute the Moonshine page. The imports are
found statically (``ast``) in the notebook's code cells and then in every ``thesislib`` module they
reach, including imports inside functions; importing ``thesislib.a.b`` also runs ``thesislib/__init__.py``
and ``thesislib/a/__init__.py``, so those count too. Over-inclusion is safe (a needless re-execution);
an import the analysis cannot see (``importlib.import_module`` with a computed name) is not, so
:func:`library_files` also counts every non-Python file shipped inside ``thesislib/`` and the caller
adds ``data/reference/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import nbformat

PACKAGE = "thesislib"


def _module_file(package_root: Path, dotted: str) -> Path | None:
    """The source file of ``dotted`` (``thesislib.x.y``) below ``package_root``'s parent, if any."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_root.parent.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _parents(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def imported_modules(source: str, current: str | None = None, is_package: bool = False) -> set[str]:
    """Dotted names of the ``thesislib`` modules (and candidate submodules) ``source`` imports.

    ``current`` is the dotted name of the module ``source`` belongs to (for relative imports);
    ``from thesislib.a import b`` yields ``thesislib.a`` and ``thesislib.a.b`` (``b`` may be a
    submodule; names that are not modules are dropped later). Code that does not parse (IPython magics in
    a notebook cell) is read line by line, keeping the lines that parse.
    """
    try:
        trees = [ast.parse(source)]
    except SyntaxError:
        trees = []
        for line in source.splitlines():
            try:
                trees.append(ast.parse(line.strip()))
            except SyntaxError:
                continue
    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level and current:
                    anchor = current.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def module_closure(roots: Iterable[str], package_root: Path) -> set[Path]:
    """Source files of ``roots`` and of every ``thesislib`` module they import, transitively."""
    files: set[Path] = set()
    seen: set[str] = set()
    todo = [parent for name in roots for parent in _parents(name)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(package_root, name)
        if path is None:
            continue
        files.add(path)
        source = path.read_text(encoding="utf-8")
        for found in imported_modules(source, name, is_package=path.name == "__init__.py"):
            todo.extend(_parents(found))
    return files


def notebook_imports(notebook: Path) -> set[str]:
    """The ``thesislib`` modules imported by ``notebook``'s code cells."""
    cells = nbformat.read(notebook, as_version=4).cells
    return set().union(*(imported_modules(c.source) for c in cells if c.cell_type == "code"), set())


def library_files(notebook: Path, package_root: Path) -> list[Path]:
    """Every library file ``notebook``'s execution depends on, sorted: the transitive ``thesislib``
    imports of its code cells plus all non-Python files inside the package."""
    files = module_closure(notebook_imports(notebook), package_root)
    files |= {
        p
        for p in package_root.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    return sorted(files)
