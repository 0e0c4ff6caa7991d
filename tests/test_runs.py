"""The papermill runner, profiles, grids, the results store and the book's table of contents."""

from __future__ import annotations

import ast
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import nbformat
import papermill
import pytest

from thesislib import cli
from thesislib.paths import PROJECT_ROOT
from thesislib.runs import (
    NotebookFailed,
    collect_results,
    expand_grid,
    notebook_schema,
    parse_parameter,
    read_sqlite,
    resolve_parameters,
    run_grid,
    run_notebook,
    store_notebook,
    write_sqlite,
)
from thesislib.runs.book import assemble_sources, book_notebooks, toc_files
from thesislib.runs.profiles import NOTEBOOKS_DIR, load_profiles, notebook_parameters


def make_notebook(path: Path, parameters: str, *cells: str) -> Path:
    """A small notebook whose first code cell is tagged ``parameters``."""
    notebook = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    notebook.cells = [nbformat.v4.new_markdown_cell("# test"), first]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def glue_notebook(tmp_path: Path) -> Path:
    return make_notebook(
        tmp_path / "glue.ipynb",
        'profile = "cpu"\nx = 1',
        "import scrapbook as sb\nif x == 2:\n    raise ValueError('x may not be 2')\n"
        "sb.glue('double', 2 * x)\nsb.glue('label', f'x={x}')",
    )


# -- the project's notebooks ------------------------------------------------------------------


def project_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("notebook", project_notebooks(), ids=lambda path: path.stem)
def test_notebook_is_committed_clean_with_a_parameters_cell(notebook: Path) -> None:
    contents = nbformat.read(notebook, as_version=4)
    code = [cell for cell in contents.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "clear the outputs"
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    assert "profile" in notebook_parameters(notebook)
    if not contents.metadata.get("thesislib", {}).get("always_execute"):  # a ledger trains nothing
        assert "device" in notebook_parameters(notebook)
    assigned = {
        target.id
        for statement in ast.parse(code[0].source).body
        if isinstance(statement, ast.Assign | ast.AnnAssign)
        for target in (statement.targets if isinstance(statement, ast.Assign) else [statement.target])
    }
    assert set(notebook_parameters(notebook)) == assigned, "every parameter line must be in the schema"
    papermill_names = set(papermill.inspect_notebook(str(notebook)))
    assert papermill_names == assigned, "papermill must parse every parameter line"


def test_every_notebook_is_in_the_book_and_in_profiles() -> None:
    in_toc = {path.resolve() for path in book_notebooks()}
    assert in_toc == {path.resolve() for path in project_notebooks()}
    assert set(load_profiles()) == {path.stem for path in project_notebooks()}
    for name in toc_files():
        assert any((PROJECT_ROOT / f"{name}{suffix}").is_file() for suffix in (".md", ".ipynb")), name


@pytest.mark.parametrize("notebook", project_notebooks(), ids=lambda path: path.stem)
@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_profile_overrides_name_real_parameters(notebook: Path, profile: str) -> None:
    parameters = resolve_parameters(notebook, profile)
    assert parameters["profile"] == profile


# -- profiles and parameter validation ------------------------------------------------------------


def test_unknown_parameter_is_rejected_with_the_valid_ones(glue_notebook: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) y .*valid parameters: profile, x"):
        resolve_parameters(glue_notebook, "cpu", {"y": 3})


def test_unknown_parameter_in_profiles_file_is_rejected(glue_notebook: Path, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.yml"
    profiles.write_text("glue:\n  smoke:\n    z: 1\n")
    with pytest.raises(ValueError, match=r"z .*profiles\.yml"):
        resolve_parameters(glue_notebook, "smoke", profiles_file=profiles)


def test_unknown_profile_is_rejected(glue_notebook: Path) -> None:
    with pytest.raises(ValueError, match="valid profiles: smoke, cpu, paper"):
        resolve_parameters(glue_notebook, "gpu")


def test_cli_rejects_unknown_parameter(glue_notebook: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", str(glue_notebook), "-p", "bogus", "1"]) == 2
    assert "bogus" in capsys.readouterr().err


# -- the runner ---------------------------------------------------------------------------------


def test_run_caches_and_reexecutes_on_change(glue_notebook: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "glue.ipynb"
    first = run_notebook(glue_notebook, "cpu", {"x": 3}, output, progress=False)
    assert first.executed and output.is_file()
    assert nbformat.read(output, as_version=4).metadata["thesislib"]["parameters"] == {
        "profile": "cpu",
        "x": 3,
    }
    again = run_notebook(glue_notebook, "cpu", {"x": 3}, output, progress=False)
    assert not again.executed
    changed = run_notebook(glue_notebook, "cpu", {"x": 4}, output, progress=False)
    assert changed.executed


def test_failing_notebook_raises_with_cell_and_error(glue_notebook: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "glue.ipynb"
    with pytest.raises(NotebookFailed, match=r"cell .*ValueError: x may not be 2"):
        run_notebook(glue_notebook, "cpu", {"x": 2}, output, progress=False)
    assert not output.exists(), "a failed run must not look like a completed one"
    assert output.with_name("glue.failed.ipynb").is_file()


def test_cli_run_exits_nonzero_on_failure(glue_notebook: Path, tmp_path: Path, capsys) -> None:
    status = cli.main(["run", str(glue_notebook), "-p", "x", "2", "--out", str(tmp_path / "o")])
    assert status == 1
    assert "x may not be 2" in capsys.readouterr().err


# -- grids ----------------------------------------------------------------------------------------


def test_grid_runs_all_reports_failures_and_skips_done(glue_notebook: Path, tmp_path: Path, capsys) -> None:
    """A failing cell and a dead kernel are each one failed run; the grid report keeps every run."""
    make_notebook(tmp_path / "die.ipynb", 'profile = "cpu"\nx = 1', "import os\nos._exit(1)")
    grid = tmp_path / "grid.yml"
    grid.write_text(
        "profile: smoke\nruns:\n  - notebook: glue.ipynb\n    parameters:\n      x: [1, 2, 3]\n"
        "  - notebook: die.ipynb\n"
    )
    out = tmp_path / "batch"
    names = [run.output.name for run in expand_grid(grid, out)]
    assert names == ["glue__x=1.ipynb", "glue__x=2.ipynb", "glue__x=3.ipynb", "die.ipynb"]

    outcomes = run_grid(grid, workers=2, out_dir=out)
    assert [outcome.status for outcome in outcomes] == ["executed", "failed", "executed", "failed"]
    assert "x may not be 2" in outcomes[1].error
    assert "die.ipynb" in outcomes[3].error and "kernel died" in outcomes[3].error
    store = read_sqlite(out / "results.sqlite")  # written as the runs completed
    assert sorted(Path(path).name for path in set(store.path)) == ["glue__x=1.ipynb", "glue__x=3.ipynb"]
    assert cli.main(["batch", str(grid), "--out", str(out)]) == 1  # the rerun: done runs are skipped
    report = capsys.readouterr().out
    assert [line.split()[0] for line in report.splitlines()[:4]] == ["cached", "failed", "cached", "failed"]
    assert "2 of 4 runs completed, 2 failed" in report


@pytest.mark.parametrize("grid", sorted((PROJECT_ROOT / "grids").glob("*.yml")), ids=lambda path: path.stem)
def test_project_grids_name_real_parameters_of_the_right_types(grid: Path, tmp_path: Path) -> None:
    runs = expand_grid(grid, tmp_path)
    assert runs and all(run.notebook.is_file() for run in runs)


def test_batch_profile_overrides_the_grid_files(glue_notebook: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yml"
    grid.write_text("profile: cpu\nruns:\n  - notebook: glue.ipynb\n")
    assert {run.profile for run in expand_grid(grid, tmp_path / "b", profile="paper")} == {"paper"}
    assert {run.profile for run in expand_grid(grid, tmp_path / "b")} == {"cpu"}
    default = expand_grid(grid)[0].output.parent
    assert expand_grid(grid, profile="paper")[0].output.parent == default.with_name("grid-paper")
    assert expand_grid(grid, profile="cpu")[0].output.parent == default


def test_grid_with_unknown_parameter_fails_before_running(glue_notebook: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yml"
    grid.write_text("runs:\n  - notebook: glue.ipynb\n    parameters:\n      typo: [1]\n")
    with pytest.raises(ValueError, match="typo"):
        expand_grid(grid, tmp_path / "batch")


# -- the results store ----------------------------------------------------------------------------


def test_results_collects_glued_values_into_pandas_and_sqlite(glue_notebook: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    for x in (1, 3):
        run_notebook(glue_notebook, "smoke", {"x": x}, out / f"glue-{x}.ipynb", progress=False)
    with pytest.raises(NotebookFailed):
        run_notebook(glue_notebook, "smoke", {"x": 2}, out / "glue-2.ipynb", progress=False)

    table = collect_results(out)
    assert len(table) == 4, "two completed runs x two glued values; the failed run is left out"
    doubles = table[table.name == "double"].sort_values("value")
    assert doubles.value.tolist() == [2, 6]
    assert [json.loads(p)["x"] for p in doubles.parameters] == [1, 3]
    assert set(table.profile) == {"smoke"} and set(table.notebook) == {"glue"}

    database = write_sqlite(table, tmp_path / "results.sqlite")
    with sqlite3.connect(database) as connection:
        total = connection.execute("SELECT SUM(number) FROM results WHERE name = 'double'").fetchone()[0]
    assert total == 8.0
    assert read_sqlite(database).equals(table)


def test_cli_results_writes_database(glue_notebook: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "runs"
    run_notebook(glue_notebook, "cpu", {"x": 5}, out / "glue.ipynb", progress=False)
    assert cli.main(["results", str(out), "--db", str(tmp_path / "r.sqlite")]) == 0
    assert "label" in capsys.readouterr().out
    assert read_sqlite(tmp_path / "r.sqlite").set_index("name").value["label"] == "x=5"


# -- the book -----------------------------------------------------------------------------------------


def test_book_from_a_folder_missing_notebooks_names_them(tmp_path: Path) -> None:
    (tmp_path / "00_data.ipynb").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"lacks executed notebook\(s\) 01_budget_learning.ipynb"):
        assemble_sources(tmp_path)


# -- faults injected into the runner (issue 13) -------------------------------------------------------


@pytest.fixture
def die_notebook(tmp_path: Path) -> Path:
    """A notebook whose kernel dies (as an out-of-memory kill does)."""
    return make_notebook(tmp_path / "die.ipynb", 'profile = "cpu"\nx = 1', "import os\nos._exit(1)")


def test_dead_kernel_is_named_and_the_next_notebook_still_runs(
    die_notebook: Path, glue_notebook: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    status = cli.main(["run", str(die_notebook), str(glue_notebook), "--out", str(out)])
    err = capsys.readouterr()
    assert status == 1
    assert "die.ipynb" in err.err and "kernel died" in err.err
    assert (out / "glue.ipynb").is_file(), "the notebook after the dead one must still run"
    assert "1 of 2 notebooks completed, 1 failed" in err.out
    assert not (out / "die.ipynb").exists()
    assert (out / "die.failed.ipynb").is_file(), "the partly executed notebook is kept"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file is left"


def test_failed_rerun_retires_the_old_output_and_success_clears_failed(
    glue_notebook: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    output = out / "glue.ipynb"
    run_notebook(glue_notebook, "cpu", {"x": 1}, output, progress=False)
    assert len(collect_results(out)) == 2
    with pytest.raises(NotebookFailed, match=r"glue\.ipynb"):
        run_notebook(glue_notebook, "cpu", {"x": 2}, output, progress=False)
    assert not output.exists(), "the x=1 output is not this run's result"
    assert len(collect_results(out)) == 0
    assert (out / "glue.failed.ipynb").is_file()
    run_notebook(glue_notebook, "cpu", {"x": 1}, output, progress=False)
    assert not (out / "glue.failed.ipynb").exists(), "a stale .failed.ipynb must not survive a success"
    with pytest.raises(NotebookFailed):
        run_notebook(glue_notebook, "cpu", {"x": 2}, out / "other.ipynb", progress=False)
    run_notebook(glue_notebook, "cpu", {"x": 1}, out / "glue.ipynb", progress=False)  # fresh again
    assert (out / "other.failed.ipynb").is_file()


def test_cached_rerun_clears_a_stale_failed_notebook(glue_notebook: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "glue.ipynb"
    run_notebook(glue_notebook, "cpu", {"x": 1}, output, progress=False)
    stale = output.with_name("glue.failed.ipynb")
    stale.write_text("{}")
    assert not run_notebook(glue_notebook, "cpu", {"x": 1}, output, progress=False).executed
    assert not stale.exists()


def test_a_killed_runs_temporary_file_is_removed_by_the_next_run(glue_notebook: Path, tmp_path: Path) -> None:
    from thesislib.atomic import _HOST

    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen(["true"])  # a process that has ended: its pid names a dead writer
    child.wait()
    leftover = out / f".glue.ipynb.{_HOST}-{child.pid}-0123456789ab.ipynb"
    leftover.write_bytes(b"")
    foreign = out / ".glue.ipynb.otherhost-1-0123456789ab.ipynb"  # another machine's: not judged
    foreign.write_bytes(b"")
    run_notebook(glue_notebook, "cpu", {"x": 1}, out / "glue.ipynb", progress=False)
    assert not leftover.exists() and foreign.exists()


def test_results_skip_temporary_and_unreadable_notebooks_naming_each(
    glue_notebook: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    run_notebook(glue_notebook, "cpu", {"x": 1}, out / "glue.ipynb", progress=False)
    (out / ".glue.ipynb.host-1-abc.ipynb").write_bytes(b"")  # in progress: 0 bytes
    (out / "broken.ipynb").write_text('{"cells": [')
    skipped: list[str] = []
    table = collect_results(out, on_skip=skipped.append)
    assert len(table) == 2
    assert any(".glue.ipynb.host-1-abc.ipynb" in text for text in skipped)
    assert any("broken.ipynb" in text for text in skipped)
    with pytest.warns(UserWarning) as caught:  # the default: a warning naming each skipped file
        collect_results(out)
    assert sorted(str(w.message).split(":")[0] for w in caught) == sorted(
        f"skipped {out / name}" for name in (".glue.ipynb.host-1-abc.ipynb", "broken.ipynb")
    )
    assert cli.main(["results", str(out)]) == 0
    err = capsys.readouterr().err
    assert "broken.ipynb" in err and "Traceback" not in err


def test_always_execute_notebooks_are_never_served_from_the_cache(tmp_path: Path) -> None:
    notebook = make_notebook(
        tmp_path / "ledger.ipynb", 'profile = "cpu"', "import scrapbook as sb\nsb.glue('n', 1)"
    )
    contents = nbformat.read(notebook, as_version=4)
    contents.metadata["thesislib"] = {"always_execute": True}
    nbformat.write(contents, notebook)
    output = tmp_path / "out" / "ledger.ipynb"
    assert run_notebook(notebook, "cpu", output=output, progress=False).executed
    assert run_notebook(notebook, "cpu", output=output, progress=False).executed


def test_the_run_folder_is_exported_and_checkpoints_follow_it(tmp_path: Path) -> None:
    notebook = make_notebook(
        tmp_path / "where.ipynb",
        'profile = "cpu"',
        "import os, scrapbook as sb\n"
        "from thesislib.paths import PROJECT_ROOT, checkpoints_dir\n"
        "from thesislib.training import checkpoint_path\n"
        "sb.glue('run_dir', os.environ['THESISLIB_RUN_DIR'])\n"
        "sb.glue('named', str(checkpoints_dir('05_moonshine')))\n"
        "sb.glue('legacy', str(checkpoint_path(PROJECT_ROOT / 'runs/checkpoints/05_moonshine', 't', {})))\n"
        "sb.glue('relative', str(checkpoint_path('runs/checkpoints/06', 't', {})))\n"
        "sb.glue('other', str(checkpoint_path('/elsewhere', 't', {})))",
    )
    out = tmp_path / "out"
    run_notebook(notebook, "cpu", output=out / "where.ipynb", progress=False)
    values = collect_results(out).set_index("name").value
    assert values["run_dir"] == str(out.resolve())
    assert values["named"] == str(out.resolve() / "checkpoints" / "05_moonshine")
    assert values["legacy"].startswith(str(out.resolve() / "checkpoints" / "05_moonshine" / "t-"))
    assert values["relative"].startswith(str(out.resolve() / "checkpoints" / "06" / "t-"))
    assert values["other"].startswith("/elsewhere/t-")


# -- typed parameters ---------------------------------------------------------------------------------


@pytest.fixture
def typed_notebook(tmp_path: Path) -> Path:
    return make_notebook(
        tmp_path / "typed.ipynb",
        'profile = "cpu"\n'
        "epochs = 3\n"
        "split_lr = 0.05  # Adam's learning rate\n"
        'source = "mnist"\n'
        "train_size = 2500  # None for all images\n"
        "shuffle = True\n"
        "budgets = [8, 16]\n"
        "factors = [1.0, 2.5]\n"
        "teacher = ['wrn-16-2', 'S']\n"
        "students = [['wrn-16-2', 'B(2)']]\n"
        "anything = []\n"
        "limit: int | None = 4",
        "raise RuntimeError('a kernel must not start for a refused value')",
    )


def test_schema_reads_types_from_the_parameters_cell(typed_notebook: Path) -> None:
    schema = {name: str(parameter.type) for name, parameter in notebook_schema(typed_notebook).items()}
    assert schema == {
        "profile": "str",
        "epochs": "int",
        "split_lr": "float",
        "source": "str",
        "train_size": "int or None",
        "shuffle": "bool",
        "budgets": "list[int]",
        "factors": "list[float]",
        "teacher": "list[str]",
        "students": "list[list[str]]",
        "anything": "list[any]",
        "limit": "int or None",
    }


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("split_lr", "1e-3", 0.001),  # YAML 1.1 reads 1e-3 as text
        ("split_lr", "1", 1.0),
        ("epochs", "7", 7),
        ("source", "123", "123"),  # a str parameter takes the text as it is
        ("train_size", "null", None),
        ("shuffle", "false", False),
        ("budgets", "[1, 2]", [1, 2]),
        ("factors", "[1, 2.5]", [1.0, 2.5]),
        ("anything", "[B1, 2]", ["B1", 2]),
        ("limit", "null", None),
    ],
)
def test_command_line_values_are_read_by_type(typed_notebook: Path, name: str, text: str, expected) -> None:
    value = parse_parameter(typed_notebook, name, text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("epochs", "true", "parameter epochs of typed.ipynb .* expects int, got bool True"),
        ("epochs", "abc", "expects int, got str 'abc'"),
        ("epochs", "2.5", "expects int, got float 2.5"),
        ("epochs", "null", "expects int, got NoneType None"),
        ("split_lr", "fast", "expects float, got str 'fast'"),
        ("split_lr", ".nan", "expects float"),
        ("shuffle", "1", "expects bool, got int 1"),
        ("budgets", "8", r"expects list\[int\], got int 8"),
        ("budgets", "[8, x]", r"expects list\[int\]"),
        ("teacher", "2020-01-01", r"expects list\[str\], got date '2020-01-01'"),
        ("anything", "!!set {a, b}", "expects list"),
        ("epochs", "[1, 2", "cannot read"),
    ],
)
def test_bad_values_are_refused_naming_parameter_type_and_value(
    typed_notebook: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_parameter(typed_notebook, name, text)


def test_cli_refuses_a_bad_type_before_any_kernel_starts(glue_notebook: Path, tmp_path: Path, capsys) -> None:
    """The first notebook's values are fine, the second's are not: neither runs."""
    flag = make_notebook(tmp_path / "flag.ipynb", 'profile = "cpu"\nx = True', "raise RuntimeError('ran')")
    out = tmp_path / "out"
    start = time.perf_counter()
    status = cli.main(["run", str(glue_notebook), str(flag), "-p", "x", "3", "--out", str(out)])
    assert status == 2 and time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert "parameter x of flag.ipynb" in err and "expects bool, got int 3" in err and "Traceback" not in err
    assert not out.exists(), "nothing ran: not even the first, valid notebook"


def test_profiles_file_values_are_type_checked(glue_notebook: Path, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.yml"
    profiles.write_text("glue:\n  smoke:\n    x: fast\n")
    with pytest.raises(
        ValueError, match=r"parameter x of glue.ipynb \(from profile 'smoke' in profiles.yml\) expects int"
    ):
        resolve_parameters(glue_notebook, "smoke", profiles_file=profiles)


def test_grid_values_are_type_checked_and_empty_sweeps_refused(glue_notebook: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yml"
    grid.write_text("runs:\n  - notebook: glue.ipynb\n    parameters:\n      x: [1, 2020-01-01]\n")
    with pytest.raises(
        ValueError, match=r"run 1: parameter x of glue.ipynb .* expects int, got date '2020-01-01'"
    ):
        expand_grid(grid, tmp_path / "batch")
    grid.write_text("runs:\n  - notebook: glue.ipynb\n    parameters:\n      x: []\n")
    with pytest.raises(ValueError, match="empty list, which would run nothing"):
        expand_grid(grid, tmp_path / "batch")
    grid.write_text("runs:\n  - notebook: glue.ipynb\n    parameters: {x: [1\n")
    with pytest.raises(ValueError, match=r"not valid YAML: .* at line \d+, column \d+"):
        expand_grid(grid, tmp_path / "batch")


# -- the results store as a shared database ----------------------------------------------------------


def _rows(path: str, value: float) -> list[dict]:
    return [
        {"notebook": "n", "profile": "cpu", "parameters": "{}", "name": "v", "value": value, "path": path}
    ]


def test_results_database_keeps_other_tables(tmp_path: Path) -> None:
    database = tmp_path / "shared.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.close()
    import pandas as pd

    write_sqlite(pd.DataFrame(_rows("a.ipynb", 1.0)), database)
    write_sqlite(pd.DataFrame(_rows("b.ipynb", 2.0)), database)
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT text FROM notes").fetchall() == [("keep me",)]
        assert connection.execute("SELECT path FROM results").fetchall() == [("b.ipynb",)]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_results_database_with_a_foreign_results_table_is_refused(tmp_path: Path) -> None:
    import pandas as pd

    database = tmp_path / "other.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE results (x INTEGER)")
    connection.close()
    with pytest.raises(ValueError, match="already has a table 'results'"):
        write_sqlite(pd.DataFrame(_rows("a.ipynb", 1.0)), database)
    with pytest.raises(ValueError, match="is a folder"):
        write_sqlite(pd.DataFrame(_rows("a.ipynb", 1.0)), tmp_path)


def test_concurrent_writers_keep_the_store_consistent(glue_notebook: Path, tmp_path: Path) -> None:
    import threading

    import pandas as pd

    out = tmp_path / "out"
    run_notebook(glue_notebook, "cpu", {"x": 1}, out / "glue.ipynb", progress=False)
    database = tmp_path / "r.sqlite"
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for i in range(15):
                if k % 2:
                    store_notebook(database, out / "glue.ipynb")
                else:
                    write_sqlite(pd.DataFrame(_rows(f"w{k}-{i}.ipynb", float(i))), database)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    table = read_sqlite(database)
    glue_rows = table[table.path == str(out / "glue.ipynb")]
    assert len(glue_rows) in (0, 2) and table.groupby("path").size().isin([1, 2]).all()


class _LockedAtFirst:
    """A connection whose first journal-mode switches find the database locked, as in a race for a new file."""

    def __init__(self, connection: sqlite3.Connection, refusals: int, message: str) -> None:
        self.connection, self.refusals, self.message = connection, refusals, message

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql.startswith("PRAGMA journal_mode") and self.refusals:
            self.refusals -= 1
            raise sqlite3.OperationalError(self.message)
        return self.connection.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.connection, name)


def test_a_writer_waits_out_a_locked_switch_to_write_ahead_logging(tmp_path: Path, monkeypatch) -> None:
    import pandas as pd

    from thesislib.runs import results

    connect = sqlite3.connect
    monkeypatch.setattr(
        results.sqlite3, "connect", lambda *a, **k: _LockedAtFirst(connect(*a, **k), 3, "database is locked")
    )
    database = write_sqlite(pd.DataFrame(_rows("a.ipynb", 1.0)), tmp_path / "r.sqlite")
    assert read_sqlite(database).value.tolist() == [1.0]


def test_a_database_that_is_not_locked_but_broken_fails_at_once(tmp_path: Path, monkeypatch) -> None:
    import pandas as pd

    from thesislib.runs import results

    connect = sqlite3.connect
    monkeypatch.setattr(
        results.sqlite3, "connect", lambda *a, **k: _LockedAtFirst(connect(*a, **k), 1, "disk I/O error")
    )
    with pytest.raises(ValueError, match="cannot be opened as SQLite: disk I/O error"):
        write_sqlite(pd.DataFrame(_rows("a.ipynb", 1.0)), tmp_path / "r.sqlite")
