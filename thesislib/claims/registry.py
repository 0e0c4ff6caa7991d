"""The claims registry: ``data/reference/claims/*.yml``, loaded and validated.

Each YAML file is a list of claims — trained, falsifiable findings of the thesis
(chapters 3–5 and SECL) — with where the thesis states them, the notebook and
glued record that measure them, the per-seed effect to compute and what the
thesis expects of it (a sign against a margin, or equivalence within a margin).
The schema is documented in ``data/reference/claims/README.md``; every error
names the file and the claim at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from thesislib.paths import PROFILES, PROJECT_ROOT

CLAIMS_DIR = PROJECT_ROOT / "data" / "reference" / "claims"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
EXPECTS = ("greater", "less", "equivalent")
SCALES = ("difference", "log_ratio")

_ID = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")
_RECORD = re.compile(r"^claim_[a-z0-9_]+$")
_REQUIRED = ("id", "location", "statement", "notebook", "record", "effect", "expect", "profiles")
_OPTIONAL = (
    "scale",
    "margin",
    "thesis_value",
    "thesis_data",
    "family",
    "grid",
    "cost",
    "protocol",
    "section",
)


class ClaimsError(ValueError):
    """A claims file breaks the schema; the message names the file, the claim and what is valid."""


@dataclass(frozen=True)
class Claim:
    """One claim of the registry (see ``data/reference/claims/README.md`` for each field)."""

    id: str
    location: str
    statement: str
    notebook: str
    record: str
    a: str
    b: str | None
    expect: str
    profiles: tuple[str, ...]
    scale: str = "difference"
    margin: float = 0.0
    thesis_value: str | None = None
    thesis_data: str | None = None
    family: str | None = None
    grid: str | None = None
    cost: str | None = None
    protocol: str | None = None
    section: str | None = None
    source: str = field(default="", compare=False)

    @property
    def effect_label(self) -> str:
        """The per-seed effect as a formula of the record's arms, e.g. ``uniform - learnt``."""
        if self.b is None:
            return self.a if self.scale == "difference" else f"log({self.a})"
        return f"{self.a} - {self.b}" if self.scale == "difference" else f"log({self.a} / {self.b})"


def _fail(source: str, claim: str | None, message: str) -> ClaimsError:
    where = f"{source}, claim {claim!r}" if claim else source
    return ClaimsError(f"{where}: {message}")


def _text(entry: dict[str, Any], key: str, source: str, cid: str | None, required: bool) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise _fail(source, cid, f"missing required field {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(source, cid, f"field {key!r} must be text, got {type(value).__name__} {value!r}")
    text = str(value).strip()
    if required and not text:
        raise _fail(source, cid, f"field {key!r} is empty")
    return text


def parse_claim(entry: Any, source: str = "<claims>", notebooks_dir: Path | None = NOTEBOOKS_DIR) -> Claim:
    """Validate one registry entry and return it as a :class:`Claim`.

    ``notebooks_dir`` (if given) must hold ``<notebook>.ipynb``. Raises :class:`ClaimsError`.
    """
    if not isinstance(entry, dict):
        raise _fail(source, None, f"each claim must be a mapping of fields, got {type(entry).__name__}")
    cid = entry.get("id") if isinstance(entry.get("id"), str) else None
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _fail(
            source, cid, f"unknown field(s) {', '.join(unknown)}; valid: {', '.join(_REQUIRED + _OPTIONAL)}"
        )
    text = {
        key: _text(entry, key, source, cid, key in _REQUIRED)
        for key in _REQUIRED + _OPTIONAL
        if key not in ("effect", "profiles", "margin")
    }
    cid = text["id"]
    if not _ID.match(cid):
        raise _fail(source, cid, "id must be lowercase letters, digits, '.' and '-' (thesis section first)")
    if not _RECORD.match(text["record"]):
        raise _fail(source, cid, f"record {text['record']!r} must match 'claim_[a-z0-9_]+'")
    if notebooks_dir is not None and not (Path(notebooks_dir) / f"{text['notebook']}.ipynb").is_file():
        available = sorted(p.stem for p in Path(notebooks_dir).glob("*.ipynb"))
        raise _fail(
            source, cid, f"notebook {text['notebook']!r} does not exist; notebooks: {', '.join(available)}"
        )
    if text["section"] and notebooks_dir is not None:
        headings = notebook_headings(Path(notebooks_dir) / f"{text['notebook']}.ipynb")
        if text["section"] not in headings:
            raise _fail(
                source,
                cid,
                f"section {text['section']!r} is not a heading of {text['notebook']}; its headings: "
                + "; ".join(headings),
            )
    effect = entry["effect"]
    if not isinstance(effect, dict) or "a" not in effect or set(effect) - {"a", "b"}:
        raise _fail(source, cid, f"effect must be {{a: ARM}} or {{a: ARM, b: ARM}}, got {effect!r}")
    a, b = effect["a"], effect.get("b")
    if not isinstance(a, str) or not (b is None or isinstance(b, str)) or a == b:
        raise _fail(source, cid, f"effect arms must be two different arm names (text), got {effect!r}")
    scale = text["scale"] or "difference"
    if scale not in SCALES:
        raise _fail(source, cid, f"scale {scale!r} is not one of {', '.join(SCALES)}")
    expect = text["expect"]
    if expect not in EXPECTS:
        raise _fail(source, cid, f"expect {expect!r} is not one of {', '.join(EXPECTS)}")
    margin = entry.get("margin", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, int | float):
        raise _fail(source, cid, f"margin must be a number on the effect's scale, got {margin!r}")
    if expect == "equivalent" and not margin > 0:
        raise _fail(source, cid, f"an equivalence claim needs a margin > 0, got {margin!r}")
    profiles = entry["profiles"]
    if isinstance(profiles, str):
        profiles = [profiles]
    if not isinstance(profiles, list) or not profiles or set(profiles) - set(PROFILES):
        raise _fail(
            source, cid, f"profiles must be a non-empty list of {', '.join(PROFILES)}, got {profiles!r}"
        )
    return Claim(
        id=cid,
        location=text["location"],
        statement=text["statement"],
        notebook=text["notebook"],
        record=text["record"],
        a=a,
        b=b,
        expect=expect,
        profiles=tuple(profiles),
        scale=scale,
        margin=float(margin),
        thesis_value=text["thesis_value"],
        thesis_data=text["thesis_data"],
        family=text["family"],
        grid=text["grid"],
        cost=text["cost"],
        protocol=text["protocol"],
        section=text["section"],
        source=source,
    )


def notebook_headings(notebook: Path) -> list[str]:
    """The markdown headings of a notebook (text after the leading ``#``), in order."""
    import nbformat

    return [
        line.lstrip("#").strip()
        for cell in nbformat.read(notebook, as_version=4).cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("#")
    ]


def load_claims_file(path: str | Path, notebooks_dir: Path | None = NOTEBOOKS_DIR) -> list[Claim]:
    """The claims of one YAML file (a list of claims; an empty file holds none)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise _fail(path.name, None, f"is not valid YAML: {error}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise _fail(path.name, None, f"must be a YAML list of claims, got {type(data).__name__}")
    return [parse_claim(entry, path.name, notebooks_dir) for entry in data]


def load_claims(
    directory: str | Path = CLAIMS_DIR, notebooks_dir: Path | None = NOTEBOOKS_DIR
) -> list[Claim]:
    """Every claim of every ``*.yml`` in ``directory`` (sorted by file name), ids unique across files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no claims registry folder at {directory}")
    claims: list[Claim] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yml")):
        for claim in load_claims_file(path, notebooks_dir):
            if claim.id in seen:
                raise _fail(path.name, claim.id, f"duplicate id (also in {seen[claim.id]})")
            seen[claim.id] = path.name
            claims.append(claim)
    return claims
