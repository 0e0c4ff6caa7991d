"""The thesis' reported numbers, transcribed in ``data/reference/*.csv`` with their sources.

Notebooks show them beside this run's numbers (never in place of them)::

    reference.table("ch3_rotational_mnist")          # the whole table, with its source column
    reference.value("ch3_rotational_mnist", "error_learned")
"""

from __future__ import annotations

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
