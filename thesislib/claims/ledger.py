"""The claims ledger: every claim of the registry against the records of a folder of runs.

:func:`collect_records` reads every completed executed notebook below a folder
(``runs/<profile>/``, a grid's ``runs/batch/<grid>/``, GPU runs copied back) with
scrapbook, keeps the glued ``claim_*`` records of one profile, validates them and
merges the runs of one record (a grid with a seed axis glues one record per run).
:func:`build_ledger` turns them into a pandas table, one row per claim, with the
verdicts of :mod:`thesislib.claims.verdicts`.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import scrapbook

from thesislib.claims.records import merge_records, validate_record
from thesislib.claims.registry import CLAIMS_DIR, NOTEBOOKS_DIR, PROFILES, Claim, load_claims
from thesislib.claims.verdicts import VERDICTS, assess

RECORD_PREFIX = "claim_"
_RECORD_NAME = re.compile(r"claim_[a-z0-9_]+")


@dataclass
class Collected:
    """The merged claim records of one profile's runs, and which notebook files they came from."""

    profile: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _run_metadata(path: Path) -> dict[str, Any] | None:
    """The runner's metadata of a completed execution, or None (with a warning) for anything else."""
    try:
        metadata = nbformat.read(path, as_version=4).metadata
    except Exception as error:  # any unreadable file is skipped, never fatal
        warnings.warn(f"skipping unreadable notebook {path}: {error}", stacklevel=3)
        return None
    run = metadata.get("thesislib", {})
    if "cache_key" not in run or metadata.get("papermill", {}).get("exception"):
        warnings.warn(f"skipping {path}: not a completed execution (in progress or failed)", stacklevel=3)
        return None
    return run


def _notebook_files(directory: Path) -> list[Path]:
    # Hidden files are the runner's in-progress partial outputs; .failed.ipynb are failed runs.
    return [
        path
        for path in sorted(directory.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in path.parts
        and not path.name.startswith(".")
        and not path.name.endswith(".failed.ipynb")
    ]


def collect_records(directory: str | Path, profile: str | None = None) -> Collected:
    """The merged ``claim_*`` records of the runs of ``profile`` below ``directory``.

    ``profile=None`` takes the one profile the completed runs share (``ValueError`` if
    they mix profiles; a missing or empty folder yields no records, profile ``cpu``).
    Unreadable, in-progress and failed notebooks, and invalid records, are skipped
    with a warning.
    """
    directory = Path(directory)
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    runs: list[tuple[Path, dict[str, Any]]] = []
    if directory.is_dir():
        for path in _notebook_files(directory):
            run = _run_metadata(path)
            if run is not None:
                runs.append((path, run))
    else:
        warnings.warn(f"no folder of runs at {directory}; every claim is not run", stacklevel=2)
    if profile is None:
        seen = sorted({run.get("profile") for _, run in runs} - {None})
        if len(seen) > 1:
            raise ValueError(
                f"{directory} holds runs of profiles {', '.join(seen)}; choose one with --profile"
            )
        profile = seen[0] if seen else "cpu"
    collected = Collected(profile)
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path, run in runs:
        if run.get("profile") != profile:
            continue
        try:
            scraps = scrapbook.read_notebook(str(path)).scraps
        except Exception as error:
            warnings.warn(f"skipping {path}: scrapbook cannot read it ({error})", stacklevel=2)
            collected.skipped.append(str(path))
            continue
        for name, scrap in scraps.items():
            if not name.startswith(RECORD_PREFIX):
                continue
            try:
                found[name].append(validate_record(scrap.data, f"{path.name}: {name}"))
            except ValueError as error:
                warnings.warn(f"skipping invalid record: {error}", stacklevel=2)
                continue
            collected.sources.setdefault(name, []).append(str(path))
    for name, records in found.items():
        try:
            collected.records[name] = merge_records(records, name)
        except ValueError as error:
            warnings.warn(f"skipping record {name}: {error}", stacklevel=2)
    return collected


def section_id(heading: str) -> str:
    """The HTML id Sphinx (docutils) gives a section with this heading, as in the built book."""
    try:
        from docutils.nodes import make_id
    except ImportError:  # docutils comes with the optional book dependencies; mimic it otherwise
        text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode().lower()
        return re.sub(r"^[^a-z]+", "", re.sub(r"[^a-z0-9]+", "-", text)).strip("-")
    return make_id(heading)


@functools.cache
def _anchors(notebook: Path, mtime_ns: int) -> list[tuple[str, str]]:
    """(cell source, id of the section it is in) for each code cell of a source notebook."""
    cells = nbformat.read(notebook, as_version=4).cells
    section = ""
    out = []
    for cell in cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    section = section_id(line.lstrip("#").strip())
        elif cell.cell_type == "code":
            out.append((cell.source, section))
    return out


def section_link(claim: Claim, notebooks_dir: Path = NOTEBOOKS_DIR) -> str:
    """Link (relative, within the book) to the claim's ``section`` of its notebook, else to the section
    whose code first names its record (Sphinx's heading ids, as Jupyter Book makes them)."""
    page = f"{claim.notebook}.html"
    if claim.section:
        return f"{page}#{section_id(claim.section)}"
    path = Path(notebooks_dir) / f"{claim.notebook}.ipynb"
    if not path.is_file():
        return page
    for source, section in _anchors(path, path.stat().st_mtime_ns):
        if names_record(source, claim.record):
            return f"{page}#{section}" if section else page
    return page


def names_record(source: str, record: str) -> bool:
    """Whether ``source`` names ``record``, or a stem the code extends (``claim_x`` + ``f"_{method}"``)."""
    return any(record == name or record.startswith(f"{name}_") for name in _RECORD_NAME.findall(source))


COLUMNS = [
    "id",
    "verdict",
    "effect",
    "interval",
    "n",
    "seeds",
    "unit",
    "interval_method",
    "note",
    "location",
    "statement",
    "thesis_value",
    "thesis_data",
    "expect",
    "margin",
    "scale",
    "effect_label",
    "notebook",
    "record",
    "link",
    "family",
    "protocol",
    "p_value",
    "p_holm",
    "smallest_detectable",
    "seeds_needed",
    "command",
    "cost",
    "sources",
]


def build_ledger(
    claims: list[Claim], collected: Collected, notebooks_dir: Path = NOTEBOOKS_DIR
) -> pd.DataFrame:
    """One row per claim: the registry's fields, this run's effect, interval, n and the verdict."""
    rows = []
    for claim, assessment in zip(claims, assess(claims, collected.records, collected.profile), strict=True):
        row = assessment.to_dict()
        row.update(
            location=claim.location,
            statement=claim.statement,
            thesis_value=claim.thesis_value,
            thesis_data=claim.thesis_data,
            expect=claim.expect,
            margin=claim.margin,
            scale=claim.scale,
            effect_label=claim.effect_label,
            notebook=claim.notebook,
            record=claim.record,
            link=section_link(claim, notebooks_dir),
            family=claim.family,
            protocol=claim.protocol,
            sources=collected.sources.get(claim.record, []),
        )
        rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["profile"] = collected.profile
    return table


def ledger(
    directory: str | Path,
    profile: str | None = None,
    claims_dir: str | Path = CLAIMS_DIR,
    notebooks_dir: Path = NOTEBOOKS_DIR,
) -> pd.DataFrame:
    """The ledger of the registry in ``claims_dir`` against the runs below ``directory``."""
    claims = load_claims(claims_dir, notebooks_dir)
    return build_ledger(claims, collect_records(directory, profile), notebooks_dir)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


def ledger_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The ledger as a JSON-safe list of dicts (each with id, verdict, seeds, effect, interval, ...)."""
    records = [
        _json_safe({k: (None if v is pd.NA else v) for k, v in row.items()})
        for row in table.to_dict(orient="records")
    ]
    for record in records:
        for key in ("n", "seeds_needed"):
            if record.get(key) is not None:
                record[key] = int(record[key])
    json.dumps(records)  # fail here, not in a consumer, if anything is not JSON
    return records


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict (every verdict listed, zeros included)."""
    counts = Counter(table["verdict"])
    return {verdict: int(counts.get(verdict, 0)) for verdict in VERDICTS}


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _number(value: Any) -> str:
    return f"{value:.3g}" if _given(value) else ""


def ledger_html(table: pd.DataFrame) -> str:
    """The ledger as an HTML table for the book: claim (linked to its section), statement, thesis,
    expected effect, this run's effect [95% interval] and n, and the verdict in its colour."""
    from html import escape

    from thesislib.claims.verdicts import COLOURS

    rows = []
    for row in table.itertuples():
        thesis = escape(str(row.thesis_value)) if _given(row.thesis_value) else ""
        if _given(row.thesis_data):
            thesis += f"<br><small>{escape(str(row.thesis_data))}</small>"
        region = {"greater": "&gt; ", "less": "&lt; ", "equivalent": "within ±"}[row.expect]
        if _given(row.effect):
            low, high = row.interval if isinstance(row.interval, list) else (None, None)
            interval = f" [{_number(low)}, {_number(high)}]" if _given(low) else ""
            measured = (
                f"{_number(row.effect)}{interval} {escape(row.unit or '')}<br><small>n = {row.n}</small>"
            )
        else:
            measured = "—"
        rows.append(
            {
                "claim": f'<a href="{escape(row.link)}">{escape(row.id)}</a><br><small>{escape(row.location)}</small>',
                "statement": escape(row.statement),
                "thesis": thesis,
                "expected": f"<code>{escape(row.effect_label)}</code> {region}{_number(row.margin)}",
                "this run": measured,
                "verdict": f'<span style="color:{COLOURS[row.verdict]};font-weight:bold">{escape(row.verdict)}</span>',
            }
        )
    columns = ["claim", "statement", "thesis", "expected", "this run", "verdict"]
    return pd.DataFrame(rows, columns=columns).to_html(escape=False, index=False, border=0)
