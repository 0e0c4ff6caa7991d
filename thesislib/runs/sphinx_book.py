"""A Sphinx extension for the book: thesis equation numbers, and API links by their short names.

**Equations.**
Every displayed equation of the book is labelled after its number in the thesis
(``$$ ... $$ (eq-3-11)``), and the page shows that number, ``(3.11)``, both beside the
equation and wherever ``{eq}`eq-3-11``` refers to it — not Sphinx's running count. A label
``eq-C-N-M`` covers a range of the thesis' equations, ``(C.N–C.M)``; an equation the thesis
does not number (``eq-linear-optimum``) is numbered by letters in page order, ``(A)``, ``(B)``.

Enabled in ``_config.yml`` (``sphinx.extra_extensions``) with ``math_numfig: false``, so that
Sphinx's own per-page figure numbering of equations does not replace these numbers.

**Tables.** A notebook's table output is captioned and labelled like a figure (cell metadata
``mystnb.figure``); when its name starts with ``tbl-`` it is numbered as a table instead,
"Table 3", and ``{numref}`tbl-...``` says so.

**API links.** Docstrings and pages refer to objects as a reader knows them:
``thesislib.data.locate`` (re-exported by the package) or ``fit_budgeted`` (defined in a sibling
module). When Sphinx finds no object of that exact name, :func:`resolve_short_name` looks for the
one documented object whose full name ends with it (or that the package re-exports under it);
a name that matches none, or several, stays unresolved and fails the nitpicky build.
"""

from __future__ import annotations

import re
import string
from typing import Any

from docutils import nodes

__all__ = ["NumberedTable", "equation_number", "resolve_short_name", "setup"]

_THESIS = re.compile(r"^eq-(\d+)-(\d+)(?:-(\d+))?$")


def equation_number(label: str, unnumbered_before: int = 0) -> str:
    """The number shown for an equation labelled ``label``.

    ``eq-3-11`` gives ``"3.11"``, ``eq-3-7-8`` gives ``"3.7–3.8"``; any other label gives a letter,
    ``unnumbered_before`` being how many such equations precede it on the page (0 gives ``"A"``).
    Raises ``ValueError`` for an empty label or a range that does not increase.
    """
    if not label:
        raise ValueError("an equation label must be a non-empty string")
    match = _THESIS.match(label)
    if match:
        chapter, first, last = match.groups()
        if last is None:
            return f"{chapter}.{first}"
        if int(last) <= int(first):
            raise ValueError(f"equation label {label!r}: a range eq-C-N-M needs M > N")
        return f"{chapter}.{first}\u2013{chapter}.{last}"
    letters = string.ascii_uppercase
    index, text = unnumbered_before, ""
    while True:
        text = letters[index % 26] + text
        index = index // 26 - 1
        if index < 0:
            return text


def _renumber(app: Any, doctree: Any) -> None:
    from docutils import nodes

    domain = app.env.get_domain("math")
    objects = domain.data.setdefault("objects", {})
    docname = app.env.docname
    unnumbered = 0
    for node in doctree.findall(nodes.math_block):
        label = node.get("label")
        if not label:
            continue
        number = equation_number(label, unnumbered)
        if not _THESIS.match(label):
            unnumbered += 1
        node["number"] = number
        objects[label] = (docname, number)


class NumberedTable(nodes.figure):
    """A captioned notebook output numbered as a table (a figure named ``tbl-...``)."""


def _tables(app: Any, doctree: Any) -> None:
    for figure in list(doctree.findall(nodes.figure)):
        if type(figure) is nodes.figure and any(name.startswith("tbl-") for name in figure["names"]):
            numbered = NumberedTable(figure.rawsource, *figure.children, **figure.attributes)
            figure.replace_self(numbered)
            for node_id in numbered["ids"]:  # {numref} finds its target through the ids
                doctree.ids[node_id] = numbered


def _caption(node: Any) -> str:
    return next((child.astext() for child in node.children if isinstance(child, nodes.caption)), "")


def resolve_short_name(target: str, documented: dict[str, str]) -> str | None:
    """The documented full name ``target`` stands for, or None (unknown, or ambiguous).

    ``documented`` maps full names to object types (the Python domain's objects). A dotted
    ``target`` naming a re-export (``thesislib.data.locate``) resolves to where the object is
    defined; otherwise the one full name ending in ``.target`` is taken.
    """
    if target in documented:
        return target
    if "." in target:
        module_name, _, attribute = target.rpartition(".")
        try:
            import importlib

            obj = getattr(importlib.import_module(module_name), attribute)
            full = f"{obj.__module__}.{obj.__qualname__}"
        except (ImportError, AttributeError, ValueError):
            full = None
        if full in documented:
            return full
    suffix = "." + target.rpartition(".")[2]
    prefix = target.rpartition(".")[0] + "."
    matches = [name for name in documented if name.endswith("." + target)]
    if not matches and "." in target:  # a re-exported constant: defined in a submodule of the package
        matches = [name for name in documented if name.endswith(suffix) and name.startswith(prefix)]
    return matches[0] if len(matches) == 1 else None


def _missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    documented = {name: entry.objtype for name, entry in domain.objects.items()}
    documented.update({name: "module" for name in domain.modules})
    full = resolve_short_name(node["reftarget"], documented)
    if full is None:
        return None
    from sphinx.util.nodes import make_refnode

    if full in domain.modules:
        entry = domain.modules[full]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, full)
    entry = domain.objects[full]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, full)


def setup(app: Any) -> dict[str, Any]:
    """Register the renumbering (after each document is read) and the short-name resolver."""
    app.connect("doctree-read", _renumber)
    app.connect("doctree-read", _tables)
    app.connect("missing-reference", _missing_reference)
    from sphinx.writers.html5 import HTML5Translator

    app.add_enumerable_node(
        NumberedTable,
        "table",
        _caption,
        html=(HTML5Translator.visit_figure, HTML5Translator.depart_figure),
    )
    return {"parallel_read_safe": True, "parallel_write_safe": True}
