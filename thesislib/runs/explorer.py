"""The results explorer: every record of the results store, for every profile, beside the thesis.

:func:`explorer_table` reads every completed execution below a runs folder (``runs/smoke``,
``runs/cpu``, paper runs copied back into ``runs/paper``, grids under ``runs/batch``) with
:func:`thesislib.runs.collect_results` and flattens each glued value into rows a reader can
filter: a number per row where the value is a number (a nested dict gives one row per numeric
leaf, ``name/key/...``; a claim record gives one row per arm, its mean over the seeds). Beside
each row stands the thesis' value where one exists: a row of ``data/reference/*.csv`` of the same
name, in a table the notebook reads, or the ``thesis_value`` of the claim whose record it is.

:func:`explorer_layout` turns the table into a bokeh layout that works in the static HTML book:
the filters (notebook, profile, parameter text, name text) run as JavaScript in the page, with no
Python kernel behind it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from thesislib.paths import PROJECT_ROOT
from thesislib.runs.results import collect_results

COLUMNS = ["notebook", "profile", "parameters", "name", "number", "text", "thesis", "thesis_number", "path"]
"""The columns of :func:`explorer_table`."""
MAX_DEPTH = 3
"""How deep nested dicts are flattened; deeper values are shown as text."""
_TABLE_CALL = re.compile(r"""reference\.(?:table|value)\(\s*["']([\w-]+)["']""")

__all__ = ["COLUMNS", "explorer_layout", "explorer_table", "flatten_value", "thesis_values"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(float(value)) else None


def _short(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def flatten_value(name: str, value: Any, depth: int = 0) -> Iterator[tuple[str, float | None, str]]:
    """``(row name, number or None, text)`` for one glued value, flattened as described above."""
    if isinstance(value, dict) and {"seeds", "arms"} <= set(value) and isinstance(value["arms"], dict):
        seeds = len(value.get("seeds") or [])
        unit = value.get("unit", "")
        for arm, values in value["arms"].items():
            numbers = [float(v) for v in values if _number(v) is not None]
            mean = sum(numbers) / len(numbers) if numbers else None
            yield f"{name}/{arm}", mean, f"mean of {seeds} seed(s){' (' + unit + ')' if unit else ''}"
        return
    if isinstance(value, dict) and depth < MAX_DEPTH and value:
        for key, item in value.items():
            yield from flatten_value(f"{name}/{key}", item, depth + 1)
        return
    number = _number(value)
    yield name, number, _short(value) if number is None else f"{number:.6g}"


def thesis_values(notebook_file: Path, claims: list | None = None) -> dict[str, tuple[str, float | None]]:
    """name -> (thesis value as text, as a number or None) for the records of one notebook.

    From the reference tables the notebook's source reads (``reference.table("ch3_tao")``) and from
    the claims registry (``claims``: :func:`thesislib.claims.load_claims`'s list, records of this
    notebook).
    """
    import nbformat

    from thesislib import reference

    values: dict[str, tuple[str, float | None]] = {}
    if notebook_file.is_file():
        source = "\n".join(cell.source for cell in nbformat.read(notebook_file, as_version=4).cells)
        for table_name in sorted(set(_TABLE_CALL.findall(source))):
            try:
                table = reference.table(table_name)
            except FileNotFoundError:
                continue
            if "value" not in table.columns:
                continue
            for row, item in table["value"].items():
                number = pd.to_numeric(pd.Series([item]), errors="coerce").iloc[0]
                unit = table.loc[row, "unit"] if "unit" in table.columns else ""
                text = f"{item} {unit}".strip() if isinstance(unit, str) else str(item)
                values[str(row)] = (text, None if pd.isna(number) else float(number))
    for claim in claims or []:
        if claim.notebook == notebook_file.stem and claim.thesis_value:
            values.setdefault(claim.record, (f"{claim.id}: {claim.thesis_value}", None))
    return values


def _changed_parameters(notebook_file: Path, parameters_json: str) -> str:
    """The run's parameters that differ from the notebook's cpu defaults, as ``name=value; ...``."""
    from thesislib.runs.profiles import notebook_schema

    try:
        given = json.loads(parameters_json)
        defaults = {k: p.default for k, p in notebook_schema(notebook_file).items()}
    except (OSError, ValueError, FileNotFoundError):
        return parameters_json
    changed = []
    for key, value in given.items():
        default = defaults.get(key)
        try:
            import ast

            same = default is not None and ast.literal_eval(default) == value
        except (ValueError, SyntaxError):
            same = False
        if not same:
            changed.append(f"{key}={json.dumps(value)}")
    return "; ".join(changed) or "(cpu defaults)"


def explorer_table(
    runs_root: str | Path, notebooks_dir: str | Path | None = None, claims: list | None = None
) -> pd.DataFrame:
    """One row per flattened record of every completed run below ``runs_root`` (columns: :data:`COLUMNS`).

    ``parameters`` lists the parameters that differ from the notebook's cpu defaults (``profile``
    among them for other profiles). Raises ``FileNotFoundError`` if ``runs_root`` is not a folder.
    """
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else PROJECT_ROOT / "notebooks"
    results = collect_results(runs_root, on_skip=lambda text: None)
    rows = []
    thesis_cache: dict[str, dict[str, tuple[str, float | None]]] = {}
    for record in results.itertuples(index=False):
        notebook_file = notebooks_dir / f"{record.notebook}.ipynb"
        if record.notebook not in thesis_cache:
            thesis_cache[record.notebook] = thesis_values(notebook_file, claims)
        thesis = thesis_cache[record.notebook]
        parameters = _changed_parameters(notebook_file, record.parameters)
        for name, number, text in flatten_value(record.name, record.value):
            base = name.split("/", 1)[0]
            thesis_text, thesis_number = thesis.get(name, thesis.get(base, ("", None)))
            rows.append(
                {
                    "notebook": record.notebook,
                    "profile": record.profile,
                    "parameters": parameters,
                    "name": name,
                    "number": number,
                    "text": text,
                    "thesis": thesis_text,
                    "thesis_number": thesis_number if name == base or name in thesis else None,
                    "path": str(Path(record.path).relative_to(Path(runs_root))),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


_FILTER_JS = """
const d = full.data;
const nb = notebook.value, pr = profile.value;
const pt = (parameter.value_input || "").trim().toLowerCase();
const nt = (name.value_input || "").trim().toLowerCase();
const out = {}, pts = {};
for (const k of Object.keys(d)) { out[k] = []; pts[k] = []; }
let count = 0;
for (let i = 0; i < d.name.length; i++) {
  if (nb !== ALL && d.notebook[i] !== nb) continue;
  if (pr !== ALL && d.profile[i] !== pr) continue;
  if (pt && !d.parameters[i].toLowerCase().includes(pt)) continue;
  if (nt && !d.name[i].toLowerCase().includes(nt)) continue;
  count++;
  for (const k of Object.keys(d)) out[k].push(d[k][i]);
  if (d.has_both[i]) for (const k of Object.keys(d)) pts[k].push(d[k][i]);
}
shown.data = out;
points.data = pts;
summary.text = `${count} of ${d.name.length} records shown`;
"""


def explorer_layout(table: pd.DataFrame, width: int = 660) -> Any:
    """A bokeh layout of ``table``: filters, a sortable table, and this run against the thesis.

    The filters are JavaScript callbacks (``CustomJS``), so they work in the static HTML book.
    """
    from bokeh.layouts import column, row
    from bokeh.models import (
        ColumnDataSource,
        CustomJS,
        DataTable,
        Div,
        HoverTool,
        NumberFormatter,
        Select,
        Slope,
        TableColumn,
        TextInput,
    )
    from bokeh.plotting import figure

    all_label = "(all)"
    frame = table.copy()
    frame["number"] = frame["number"].astype(float)
    frame["thesis_number"] = frame["thesis_number"].astype(float)
    frame["has_both"] = frame["number"].notna() & frame["thesis_number"].notna()
    data = {column_name: frame[column_name].tolist() for column_name in [*COLUMNS, "has_both"]}
    for key in ("number", "thesis_number"):
        data[key] = [None if (v is None or math.isnan(v)) else v for v in data[key]]
    full = ColumnDataSource(data, name="explorer_full")
    shown = ColumnDataSource(dict(data), name="explorer_shown")
    points = ColumnDataSource({k: [v for v, ok in zip(vs, data["has_both"], strict=True) if ok]
                               for k, vs in data.items()})
    notebooks = [all_label, *sorted(set(data["notebook"]))]
    notebook = Select(title="notebook", value=all_label, options=notebooks, width=190)
    profiles = [all_label, *sorted(set(data["profile"]))]
    profile = Select(title="profile", value=all_label, options=profiles, width=90)
    parameter = TextInput(title="parameters contain", placeholder="e.g. seeds=", width=170)
    name = TextInput(title="record name contains", placeholder="e.g. error", width=170)
    summary = Div(text=f"{len(frame)} of {len(frame)} records shown")
    callback = CustomJS(
        args=dict(full=full, shown=shown, points=points, notebook=notebook, profile=profile,
                  parameter=parameter, name=name, summary=summary),
        code=f"const ALL = {json.dumps(all_label)};" + _FILTER_JS,
    )
    for widget in (notebook, profile):
        widget.js_on_change("value", callback)
    for widget in (parameter, name):
        widget.js_on_change("value_input", callback)
    columns = [
        TableColumn(field="notebook", title="notebook", width=110),
        TableColumn(field="profile", title="profile", width=50),
        TableColumn(field="name", title="record", width=190),
        TableColumn(field="number", title="this run", formatter=NumberFormatter(format="0.[0000]"), width=70),
        TableColumn(field="text", title="value", width=120),
        TableColumn(field="thesis", title="thesis", width=160),
        TableColumn(field="parameters", title="parameters (≠ cpu defaults)", width=160),
    ]
    grid = DataTable(source=shown, columns=columns, width=width, height=420, sortable=True,
                     index_position=None, fit_columns=False, name="explorer_table")
    plot = figure(width=width, height=320, title="This run against the thesis (records with both numbers)",
                  x_axis_label="thesis value", y_axis_label="this run", tools="pan,wheel_zoom,box_zoom,reset")
    plot.scatter("thesis_number", "number", source=points, size=8, color="#1f77b4")
    plot.add_layout(Slope(gradient=1, y_intercept=0, line_color="grey", line_dash="dashed"))
    plot.add_tools(HoverTool(tooltips=[("record", "@name"), ("notebook", "@notebook"), ("profile", "@profile"),
                                       ("this run", "@number"), ("thesis", "@thesis")]))
    return column(row(notebook, profile, parameter, name), summary, grid, plot, name="results_explorer")
