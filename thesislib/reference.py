"""The thesis' reported numbers, transcribed in ``data/reference/*.csv`` with their sources.

Notebooks show them beside this run's numbers (never in place of them)::

    reference.table("ch3_rotational_mnist")          # the whole table, with its source column
    reference.value("ch3_rotational_mnist", "error_learned")
    reference.as_printed(814.65, 1)                  # "814.7": rounded as the thesis prints it
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from thesislib.paths import PROJECT_ROOT

REFERENCE_DIR = PROJECT_ROOT / "data" / "reference"


def table(name: str) -> pd.DataFrame:
    """The reference table ``data/reference/<name>.csv`` indexed by its ``name`` column."""
    path = REFERENCE_DIR / f"{name}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in REFERENCE_DIR.glob("*.csv"))
        raise FileNotFoundError(f"no reference table {name!r} at {path}; known tables: {', '.join(known)}")
    return pd.read_csv(path).set_index("name")


def value(name: str, row: str) -> float:
    """One reported number from reference table ``name``."""
    frame = table(name)
    if row not in frame.index:
        raise KeyError(f"{row!r} is not in reference table {name!r}; rows: {', '.join(frame.index)}")
    return float(frame.loc[row, "value"])


def as_printed(value: float, digits: int = 1) -> str:
    """``value`` to ``digits`` decimals as the thesis prints its numbers: rounded half up.

    The thesis rounds the decimal value half up (Table 4.3: 814,650 parameters print as 814.7K), while
    Python's ``round`` rounds the binary float half to even (``round(0.125, 2) == 0.12``,
    ``round(2.675, 2) == 2.67``; here ``"0.13"`` and ``"2.68"``). A float is read as its shortest repr,
    the decimal number it was written as; an ``int`` or a ``decimal.Decimal`` exactly. Compare two
    numbers "to the printed precision" by comparing their ``as_printed`` strings.
    """
    if digits < 0:
        raise ValueError(f"digits must be >= 0, got {digits}")
    exact = value if isinstance(value, (int, Decimal)) else Decimal(repr(float(value)))
    return str(Decimal(exact).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
