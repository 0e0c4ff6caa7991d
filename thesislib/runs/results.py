"""The results store: every value a notebook glued with scrapbook, in one table.

Notebooks record their key numbers with ``scrapbook.glue(name, value)``.
:func:`collect_results` reads every executed notebook below a folder into a
pandas DataFrame with one row per glued value (notebook, profile, parameters,
name, value); :func:`write_sqlite` stores the same table in table ``results`` of an
SQLite database, the project's embedded default results store.

The store is safe to share: it touches only its own table (other tables in the same
database are left alone), uses SQLite's write-ahead log and one transaction per update
(concurrent writers wait for each other, readers never see half an update), and
:func:`store_notebook` replaces one notebook's rows as a grid's runs complete.
Unreadable notebooks and the runner's in-progress temporary files (hidden
``.NAME.<host>-<pid>-<id>.ipynb``) are skipped with a warning naming each.
"""

from __future__ import annotations

import json
import numbers
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

COLUMNS = ["notebook", "profile", "parameters", "name", "value", "path"]
TABLE = "results"
_SQL_COLUMNS = ("notebook", "profile", "parameters", "name", "value", "number", "path")
_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (notebook TEXT, profile TEXT, parameters TEXT, name TEXT, "
    "value TEXT, number REAL, path TEXT)"
)


class ResultsWarning(UserWarning):
    """A notebook below the results folder was skipped (unreadable, or still being written)."""


def _warn(message: str) -> None:
    warnings.warn(message, ResultsWarning, stacklevel=3)


def _is_completed(metadata: dict[str, Any]) -> bool:
    return "cache_key" in metadata.get("thesislib", {}) and not metadata.get("papermill", {}).get("exception")


def notebook_rows(path: Path) -> list[dict[str, Any]]:
    """The result rows of one executed notebook (none if it is not a completed execution).

    Raises ``ValueError`` or ``OSError`` if the file cannot be read as a notebook.
    """
    contents = nbformat.read(path, as_version=4)
    if not _is_completed(contents.metadata):
        return []
    run = contents.metadata["thesislib"]
    parameters = json.dumps(run["parameters"], sort_keys=True, default=str)
    rows = []
    for name, value in _scraps(contents).items():
        rows.append(
            {
                "notebook": Path(run["notebook"]).stem,
                "profile": run["profile"],
                "parameters": parameters,
                "name": name,
                "value": value,
                "path": str(path),
            }
        )
    return rows


def _scraps(contents: nbformat.NotebookNode) -> dict[str, Any]:
    """The glued values of an executed notebook, read with scrapbook from the already-loaded JSON."""
    from scrapbook.models import Notebook

    book = Notebook(contents)
    return {name: scrap.data for name, scrap in book.scraps.items()}


def collect_results(directory: str | Path, on_skip: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One row per glued value of every completed notebook execution below ``directory``.

    ``parameters`` is the JSON of the parameters papermill injected (sorted keys),
    so rows of one grid run share it; ``value`` is the glued Python value.
    Failed and un-executed notebooks are left out; in-progress temporary files and
    unreadable files are skipped, each reported through ``on_skip`` (default: a
    :class:`ResultsWarning`).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no folder of executed notebooks at {directory}")
    report = on_skip or _warn
    rows = []
    for path in sorted(directory.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        if path.name.startswith("."):
            report(f"skipped {path}: a run's temporary file (in progress, or left by a killed run)")
            continue
        try:
            rows.extend(notebook_rows(path))
        except (OSError, ValueError, KeyError, TypeError) as error:
            detail = (str(error).splitlines() or [type(error).__name__])[0]
            report(f"skipped {path}: not a readable notebook ({detail})")
    return pd.DataFrame(rows, columns=COLUMNS)


def _records(table: pd.DataFrame | Iterable[dict[str, Any]]) -> list[tuple]:
    rows = table.to_dict(orient="records") if isinstance(table, pd.DataFrame) else list(table)
    return [
        (
            row["notebook"],
            row["profile"],
            row["parameters"],
            row["name"],
            json.dumps(row["value"], default=str),
            float(row["value"])
            if isinstance(row["value"], numbers.Real) and not isinstance(row["value"], bool)
            else None,
            row["path"],
        )
        for row in rows
    ]


_BUSY_SECONDS = 60  # how long a writer waits for another to finish


def _connect(database: str | Path) -> sqlite3.Connection:
    database = Path(database)
    if database.is_dir():
        raise ValueError(f"results database {database} is a folder; --db needs a file name")
    if not database.parent.is_dir():
        raise ValueError(f"results database {database}: folder {database.parent} does not exist")
    connection = sqlite3.connect(database, timeout=_BUSY_SECONDS, isolation_level=None)
    try:
        _use_write_ahead_log(connection)
    except sqlite3.DatabaseError as error:
        connection.close()
        raise ValueError(f"results database {database} cannot be opened as SQLite: {error}") from None
    return connection


def _use_write_ahead_log(connection: sqlite3.Connection) -> None:
    """Switch the database to WAL mode, waiting out other connections that hold it.

    The switch needs the database to itself, and SQLite answers "database is locked" at once,
    without its busy wait, when two connections to a new file race for it; so it is retried
    here until the busy timeout runs out.
    """
    deadline = time.monotonic() + _BUSY_SECONDS
    pause = 0.001
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.1)


def _check_table(connection: sqlite3.Connection, database: Path) -> None:
    connection.execute(_CREATE)
    columns = tuple(row[1] for row in connection.execute(f"PRAGMA table_info({TABLE})"))
    if columns != _SQL_COLUMNS:
        raise ValueError(
            f"{database} already has a table {TABLE!r} with columns {', '.join(columns)}, not the results "
            f"store's ({', '.join(_SQL_COLUMNS)}); use another --db file"
        )


def _transaction(database: str | Path, work: Callable[[sqlite3.Connection], None]) -> None:
    connection = _connect(database)
    try:
        connection.execute("BEGIN IMMEDIATE")  # one writer at a time; readers see the old rows meanwhile
        try:
            _check_table(connection, Path(database))
            work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    finally:
        connection.close()


def write_sqlite(table: pd.DataFrame, database: str | Path) -> Path:
    """Replace the rows of table ``results`` of an SQLite file by ``table``, in one transaction.

    Other tables of the database are untouched. ``value`` is stored as JSON text, and numbers
    also in ``number`` (REAL) so SQL can aggregate them:
    ``SELECT notebook, AVG(number) FROM results WHERE name='error' GROUP BY 1``.
    """
    records = _records(table)

    def replace(connection: sqlite3.Connection) -> None:
        connection.execute(f"DELETE FROM {TABLE}")
        connection.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", records)

    _transaction(database, replace)
    return Path(database)


def store_notebook(database: str | Path, path: str | Path) -> int:
    """Replace the rows of one executed notebook ``path`` in the store (none if it failed); row count.

    A grid calls this as each run completes, so the store always matches the output notebooks.
    """
    path = Path(path)
    rows = notebook_rows(path) if path.is_file() else []
    records = _records(rows)

    def replace(connection: sqlite3.Connection) -> None:
        connection.execute(f"DELETE FROM {TABLE} WHERE path = ?", (str(path),))
        connection.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", records)

    _transaction(database, replace)
    return len(records)


def read_sqlite(database: str | Path) -> pd.DataFrame:
    """Read table ``results`` back into the DataFrame form of :func:`collect_results`."""
    database = Path(database)
    if not database.is_file():
        raise FileNotFoundError(f"no results database at {database}")
    connection = _connect(database)
    try:
        table = pd.read_sql_query(
            f"SELECT notebook, profile, parameters, name, value, path FROM {TABLE} ORDER BY rowid",
            connection,
        )
    finally:
        connection.close()
    table["value"] = table["value"].map(json.loads)
    return table[COLUMNS]
