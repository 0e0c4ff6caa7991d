"""The results store: every value a notebook glued with scrapbook, in one table.

Notebooks record their key numbers with ``scrapbook.glue(name, value)``.
:func:`collect_results` reads every executed notebook below a folder into a
pandas DataFrame with one row per glued value (notebook, profile, parameters,
name, value); :func:`write_sqlite` stores the same table in an SQLite database,
the project's embedded default results store.
"""

from __future__ import annotations

import json
import numbers
import sqlite3
from pathlib import Path

import nbformat
import pandas as pd
import scrapbook

from thesislib.atomic import atomic_path

COLUMNS = ["notebook", "profile", "parameters", "name", "value", "path"]


def _is_completed(path: Path) -> bool:
    metadata = nbformat.read(path, as_version=4).metadata
    return "cache_key" in metadata.get("thesislib", {}) and not metadata.get("papermill", {}).get("exception")


def collect_results(directory: str | Path) -> pd.DataFrame:
    """One row per glued value of every completed notebook execution below ``directory``.

    ``parameters`` is the JSON of the parameters papermill injected (sorted keys),
    so rows of one grid run share it; ``value`` is the glued Python value.
    Failed and un-executed notebooks are left out.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no folder of executed notebooks at {directory}")
    rows = []
    for path in sorted(directory.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts or not _is_completed(path):
            continue
        book = scrapbook.read_notebook(str(path))
        run = book.metadata["thesislib"]
        parameters = json.dumps(run["parameters"], sort_keys=True, default=str)
        for name, scrap in book.scraps.items():
            rows.append(
                {
                    "notebook": Path(run["notebook"]).stem,
                    "profile": run["profile"],
                    "parameters": parameters,
                    "name": name,
                    "value": scrap.data,
                    "path": str(path),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def write_sqlite(table: pd.DataFrame, database: str | Path) -> Path:
    """Write ``table`` (from :func:`collect_results`) to table ``results`` of an SQLite file, atomically.

    ``value`` is stored as JSON text, and numbers also in ``number`` (REAL) so SQL
    can aggregate them: ``SELECT notebook, AVG(number) FROM results WHERE name='error' GROUP BY 1``.
    """
    database = Path(database)
    records = [
        (
            row.notebook,
            row.profile,
            row.parameters,
            row.name,
            json.dumps(row.value, default=str),
            float(row.value) if isinstance(row.value, numbers.Real) else None,
            row.path,
        )
        for row in table.itertuples(index=False)
    ]
    with atomic_path(database, suffix=".sqlite") as partial:
        partial.unlink()
        with sqlite3.connect(partial) as connection:
            connection.execute(
                "CREATE TABLE results (notebook TEXT, profile TEXT, parameters TEXT, name TEXT, "
                "value TEXT, number REAL, path TEXT)"
            )
            connection.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", records)
        connection.close()
    return database


def read_sqlite(database: str | Path) -> pd.DataFrame:
    """Read table ``results`` back into the DataFrame form of :func:`collect_results`."""
    with sqlite3.connect(database) as connection:
        table = pd.read_sql_query(
            "SELECT notebook, profile, parameters, name, value, path FROM results", connection
        )
    connection.close()
    table["value"] = table["value"].map(json.loads)
    return table[COLUMNS]
