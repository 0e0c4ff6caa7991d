"""Per-seed claim records: what a notebook glues for each claim it measures.

A record holds, for n paired seeds, the measured value of each arm::

    {"seeds": [0, 1, 2], "arms": {"learnt": [...], "uniform": [...]}, "unit": "rad"}

Arms are paired by seed (same data, same initial weights where the protocol
allows), so the per-seed difference of two arms is the unit of evidence
(issue 14; the claims contract).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Seed = int | str


def _seed(value: Any, name: str) -> Seed:
    if isinstance(value, bool):
        raise ValueError(f"{name}: seeds must be integers or text labels, got {value!r}")
    if isinstance(value, int | str):
        return value
    if hasattr(value, "item") and isinstance(value.item(), int):  # numpy integers
        return int(value.item())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{name}: seeds must be integers or text labels, got {value!r}")


def _value(value: Any, name: str, arm: str, index: int) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: arm {arm!r} entry {index} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(
            f"{name}: arm {arm!r} entry {index} is {number}; every measured value must be finite"
        )
    return number


def seed_record(seeds: Iterable[Any], unit: str = "", **arms: Iterable[Any]) -> dict[str, Any]:
    """Build and validate a per-seed record (JSON-safe: plain ints, strings and floats).

    ``seed_record([0, 1, 2], unit="rad", learnt=[...], uniform=[...])``. Every arm
    has one finite value per seed, in the order of ``seeds``; seeds are unique.
    """
    return validate_record(
        {"seeds": list(seeds), "arms": {k: list(v) for k, v in arms.items()}, "unit": unit}
    )


def validate_record(record: Any, name: str = "record") -> dict[str, Any]:
    """Check a glued record (named ``name`` in messages) and return it normalised; raise ``ValueError``."""
    if not isinstance(record, Mapping):
        raise ValueError(
            f"{name}: a claim record must be a dict with seeds, arms, unit; got {type(record).__name__}"
        )
    missing = {"seeds", "arms"} - set(record)
    if missing:
        raise ValueError(f"{name}: record lacks {', '.join(sorted(missing))}; it needs seeds, arms and unit")
    unknown = set(record) - {"seeds", "arms", "unit"}
    if unknown:
        raise ValueError(
            f"{name}: unknown record field(s) {', '.join(sorted(unknown))}; valid: seeds, arms, unit"
        )
    seeds_in = record["seeds"]
    if isinstance(seeds_in, str | bytes) or not isinstance(seeds_in, Sequence | Iterable):
        raise ValueError(f"{name}: seeds must be a list, got {seeds_in!r}")
    seeds = [_seed(s, name) for s in seeds_in]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{name}: seeds must be unique, got {seeds}")
    arms_in = record["arms"]
    if not isinstance(arms_in, Mapping) or not arms_in:
        raise ValueError(f"{name}: arms must be a non-empty dict of arm name -> per-seed values")
    arms: dict[str, list[float]] = {}
    for arm, values in arms_in.items():
        if not isinstance(arm, str) or not arm:
            raise ValueError(f"{name}: arm names must be non-empty text, got {arm!r}")
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise ValueError(f"{name}: arm {arm!r} must be a list of numbers, got {values!r}")
        values = list(values)
        if len(values) != len(seeds):
            raise ValueError(f"{name}: arm {arm!r} has {len(values)} values for {len(seeds)} seeds")
        arms[arm] = [_value(v, name, arm, i) for i, v in enumerate(values)]
    unit = record.get("unit", "")
    if unit is None:
        unit = ""
    if not isinstance(unit, str):
        raise ValueError(f"{name}: unit must be a short text label, got {unit!r}")
    return {"seeds": seeds, "arms": arms, "unit": unit}


def merge_records(records: Sequence[dict[str, Any]], name: str = "record") -> dict[str, Any]:
    """Concatenate validated records of one claim from several runs (e.g. a grid with a seed axis).

    The arms and unit must agree. A seed met twice keeps its first value (records in
    the given order) with a warning: two runs of one seed are not independent evidence.
    """
    if not records:
        raise ValueError(f"{name}: no records to merge")
    first = records[0]
    merged: dict[str, Any] = {"seeds": [], "arms": {arm: [] for arm in first["arms"]}, "unit": first["unit"]}
    for record in records:
        if set(record["arms"]) != set(first["arms"]):
            raise ValueError(
                f"{name}: runs disagree on the arms ({sorted(first['arms'])} vs {sorted(record['arms'])})"
            )
        if record["unit"] != first["unit"]:
            raise ValueError(f"{name}: runs disagree on the unit ({first['unit']!r} vs {record['unit']!r})")
        for i, seed in enumerate(record["seeds"]):
            if seed in merged["seeds"]:
                warnings.warn(
                    f"{name}: seed {seed!r} appears in more than one run; keeping the first", stacklevel=2
                )
                continue
            merged["seeds"].append(seed)
            for arm, values in record["arms"].items():
                merged["arms"][arm].append(values[i])
    return merged
