"""A Sphinx extension: equations numbered as in the thesis, read from their labels.

Every displayed equation of the book is labelled after its number in the thesis
(``$$ ... $$ (eq-3-11)``), and the page shows that number, ``(3.11)``, both beside the
equation and wherever ``{eq}`eq-3-11``` refers to it — not Sphinx's running count. A label
``eq-C-N-M`` covers a range of the thesis' equations, ``(C.N–C.M)``; an equation the thesis
does not number (``eq-linear-optimum``) is numbered by letters in page order, ``(A)``, ``(B)``.

Enabled in ``_config.yml`` (``sphinx.extra_extensions``) with ``math_numfig: false``, so that
Sphinx's own per-page figure numbering of equations does not replace these numbers.
"""

from __future__ import annotations

import re
import string
from typing import Any

__all__ = ["equation_number", "setup"]

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


def setup(app: Any) -> dict[str, Any]:
    """Register the renumbering with Sphinx (after each document is read)."""
    app.connect("doctree-read", _renumber)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
