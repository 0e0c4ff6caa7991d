"""The claims ledger (issue 14): every trained finding of the thesis tested over seeds.

- :mod:`~thesislib.claims.registry` — ``load_claims``: ``data/reference/claims/*.yml``, validated.
- :mod:`~thesislib.claims.records` — ``seed_record``: the per-seed record a notebook glues per claim.
- :mod:`~thesislib.claims.statistics` — paired effects, intervals, t-tests / TOST, Holm, power.
- :mod:`~thesislib.claims.verdicts` — reproduced | contradicted | inconclusive | not run at this profile.
- :mod:`~thesislib.claims.ledger` — ``ledger``: records of a folder of runs -> one pandas row per claim.
- :mod:`~thesislib.claims.plots` — ``forest_plot``: every effect with its interval, coloured by verdict.
- :mod:`~thesislib.claims.cli` — ``thesislib claims [DIR] [--json] [--profile P]``.
"""

from __future__ import annotations

from thesislib.claims.records import merge_records, seed_record, validate_record
from thesislib.claims.registry import CLAIMS_DIR, Claim, ClaimsError, load_claims, parse_claim
from thesislib.claims.verdicts import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_RUN,
    REPRODUCED,
    VERDICTS,
    Assessment,
    assess,
)

__all__ = [
    "CLAIMS_DIR",
    "CONTRADICTED",
    "INCONCLUSIVE",
    "NOT_RUN",
    "REPRODUCED",
    "VERDICTS",
    "Assessment",
    "Claim",
    "ClaimsError",
    "assess",
    "load_claims",
    "merge_records",
    "parse_claim",
    "seed_record",
    "validate_record",
]
