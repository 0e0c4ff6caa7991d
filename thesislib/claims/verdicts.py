"""Verdicts, computed from the per-seed records and never written by hand.

For every claim of the registry and one profile's runs:

- **reproduced** — the claim's test rejects at one-sided 0.025 (Holm-adjusted within
  its ``family``): the 95% interval lies on the claimed side of the margin, or inside
  it for an equivalence claim (TOST);
- **contradicted** — the opposite test rejects: the interval lies on the wrong side
  of the margin, or wholly outside it for an equivalence claim;
- **inconclusive** — neither, or fewer than 3 seeds (always); the note gives the
  smallest effect this n detects with 80% power and the seeds the observed effect
  would need;
- **not run at this profile** — no record for it in the runs read; the note gives the
  command that measures it (the claim's ``grid``, or the notebook at a profile that
  measures it) and its ``cost``.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from thesislib.claims import statistics as st
from thesislib.claims.registry import Claim

REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run at this profile"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)
#: Colour of each verdict in tables and the forest plot.
COLOURS = {REPRODUCED: "#2e7d32", CONTRADICTED: "#c62828", INCONCLUSIVE: "#ef9f00", NOT_RUN: "#9e9e9e"}
#: Fewer seeds than this are always inconclusive (the contract).
MIN_SEEDS = 3


@dataclass
class Assessment:
    """One claim's verdict and the numbers behind it (one row of the ledger)."""

    id: str
    verdict: str
    note: str
    n: int
    seeds: list
    effect: float | None
    interval: list | None
    interval_method: str | None
    unit: str
    sd: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    contrary_p_holm: float | None = None
    smallest_detectable: float | None = None
    seeds_needed: int | None = None
    command: str | None = None
    cost: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN -> None)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def run_command(claim: Claim, profile: str) -> str:
    """The command that measures ``claim``: its grid, else its notebook at a profile that measures it."""
    if claim.grid:
        return claim.grid
    at = profile if profile in claim.profiles else claim.profiles[-1]
    return f"thesislib run notebooks/{claim.notebook}.ipynb --profile {at}"


def _effect_unit(claim: Claim, record: dict[str, Any]) -> str:
    return "log ratio" if claim.scale == "log_ratio" else record.get("unit", "")


def assess(claims: list[Claim], records: dict[str, dict[str, Any]], profile: str) -> list[Assessment]:
    """Verdicts for ``claims`` given validated (merged) ``records`` by record name, from ``profile``'s runs."""
    rows: dict[str, Assessment] = {}
    tested: dict[str, np.ndarray] = {}
    for claim in claims:
        record = records.get(claim.record)
        if record is None:
            why = (
                f"no record {claim.record} in the {profile} runs read"
                if profile in claim.profiles
                else f"the {profile} profile does not measure it (measured at: {', '.join(claim.profiles)})"
            )
            rows[claim.id] = Assessment(
                claim.id,
                NOT_RUN,
                f"{why}; run: {run_command(claim, profile)}"
                + (f" (cost: {claim.cost})" if claim.cost else ""),
                0,
                [],
                None,
                None,
                None,
                "",
                command=run_command(claim, profile),
                cost=claim.cost,
            )
            continue
        try:
            effects = st.per_seed_effects(record, claim.a, claim.b, claim.scale)
        except ValueError as error:  # a record that does not fit its claim must not hide the others
            message = f"record {claim.record} does not fit claim {claim.id}: {error}"
            warnings.warn(message, stacklevel=2)
            rows[claim.id] = Assessment(
                claim.id,
                INCONCLUSIVE,
                message,
                0,
                list(record["seeds"]),
                None,
                None,
                None,
                record.get("unit", ""),
            )
            continue
        n = effects.size
        sd = float(effects.std(ddof=1)) if n > 1 else math.nan
        interval = st.confidence_interval(effects)
        rows[claim.id] = Assessment(
            claim.id,
            INCONCLUSIVE,
            "",
            n,
            list(record["seeds"]),
            float(effects.mean()),
            [interval.low, interval.high],
            interval.method,
            _effect_unit(claim, record),
            sd=sd,
            p_value=st.p_value(effects, claim.expect, claim.margin),
        )
        if n >= MIN_SEEDS:
            tested[claim.id] = effects

    families: dict[str, list[Claim]] = defaultdict(list)
    for claim in claims:
        if claim.id in tested:
            families[claim.family or f"\0{claim.id}"].append(claim)
    for members in families.values():
        support = st.holm([st.p_value(tested[c.id], c.expect, c.margin) for c in members])
        against = st.holm([st.contrary_p_value(tested[c.id], c.expect, c.margin) for c in members])
        for claim, p_for, p_against in zip(members, support, against, strict=True):
            row = rows[claim.id]
            row.p_holm, row.contrary_p_holm = float(p_for), float(p_against)
            alpha = st.ALPHA / len(members)  # Holm's strictest step, for the power figures
            row.smallest_detectable = st.smallest_detectable(row.n, row.sd, claim.expect, alpha)
            row.seeds_needed = st.seeds_needed(row.effect, row.sd, claim.expect, claim.margin, alpha)

    for claim in claims:
        row = rows[claim.id]
        if row.verdict == NOT_RUN or row.effect is None:
            continue
        row.note = _note(claim, row)
        if row.n < MIN_SEEDS:
            row.verdict = INCONCLUSIVE
        elif row.p_holm is not None and row.p_holm < st.ALPHA:
            row.verdict = REPRODUCED
        elif row.contrary_p_holm is not None and row.contrary_p_holm < st.ALPHA:
            row.verdict = CONTRADICTED
        else:
            row.verdict = INCONCLUSIVE
    return [rows[claim.id] for claim in claims]


def _note(claim: Claim, row: Assessment) -> str:
    unit = f" {row.unit}" if row.unit else ""
    if row.n < MIN_SEEDS:
        return f"{row.n} seed(s): fewer than {MIN_SEEDS} are always inconclusive"
    region = {
        "greater": f"> {_fmt(claim.margin)}",
        "less": f"< {_fmt(claim.margin)}",
        "equivalent": f"within ±{_fmt(claim.margin)}",
    }[claim.expect]
    holm_text = f", Holm p = {row.p_holm:.2g} in family {claim.family}" if claim.family else ""
    text = f"claimed effect {region}{unit}; test p = {row.p_value:.2g}{holm_text}"
    if row.contrary_p_holm is not None and row.contrary_p_holm < st.ALPHA:
        text += f"; the opposite finding has p = {row.contrary_p_holm:.2g}"
    if (
        row.p_holm is not None
        and row.p_holm >= st.ALPHA
        and not (row.contrary_p_holm is not None and row.contrary_p_holm < st.ALPHA)
    ):
        if row.sd == 0:
            return text + "; every seed gave the same effect, so no test can tell it from the margin"
        detect = row.smallest_detectable
        text += (
            f"; {row.n} seeds detect {'a margin of' if claim.expect == 'equivalent' else 'an effect of'} "
            f"{_fmt(detect)}{unit} with 80% power"
            if detect is not None and math.isfinite(detect)
            else ""
        )
        text += (
            f"; the observed effect would need {row.seeds_needed} seeds"
            if row.seeds_needed is not None
            else "; the observed effect lies on the wrong side of the margin: more seeds at this size "
            "would not support the claim"
        )
    return text
