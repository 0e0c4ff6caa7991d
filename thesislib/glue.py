"""Record a notebook's numbers once, for the results store *and* for the book's prose.

``glue(name, value)`` writes the same output as ``scrapbook.glue(name, value)`` (the results store,
:func:`thesislib.runs.collect_results`, and the claims ledger read it), with one addition: a
``text/plain`` rendering of the value. MyST-NB reads every scrapbook output as a glue key, so the
book's text can quote the value where it is discussed, formatted::

    glue("teacher_error", 12.3456)          # in a (hidden) code cell
    The teacher's test error was {glue:text}`teacher_error:.2f`%.   <- in a markdown cell

The sentence and the number then come from the same run and cannot disagree. A value quoted with
a format spec must be a number; ``None`` cannot be recorded (scrapbook has no encoding for it).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["glue", "plain_text"]


def plain_text(value: Any) -> str:
    """The ``text/plain`` form MyST-NB's ``{glue:text}`` reads: numbers at full precision, text bare."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def glue(name: str, value: Any) -> None:
    """Record ``value`` under ``name`` like ``scrapbook.glue`` (JSON encoder), plus its plain text.

    Raises ``ValueError`` for an empty name or a ``None`` value (neither can be recorded).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a glue name must be a non-empty string, got {name!r}")
    if value is None:
        raise ValueError(
            f"cannot glue None under {name!r}: scrapbook cannot encode it; glue only measured values"
        )
    from IPython.display import display
    from scrapbook.encoders import registry
    from scrapbook.schemas import GLUE_PAYLOAD_FMT
    from scrapbook.scraps import Scrap, scrap_to_payload

    encoder = registry.determine_encoder_name(value)
    payload = scrap_to_payload(registry.encode(Scrap(name, value, encoder)))
    data = {GLUE_PAYLOAD_FMT.format(encoder=encoder): payload, "text/plain": plain_text(value)}
    metadata = {"scrapbook": {"name": name, "data": True, "display": False}}
    display(data, metadata=metadata, raw=True)
