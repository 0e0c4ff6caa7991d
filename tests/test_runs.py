"""The papermill runner, profiles, grids, the results store and the book's table of contents."""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path

import nbformat
import pytest

from thesislib import cli
from thesislib.paths import PROJECT_ROOT
from thesislib.runs import (
    NotebookFailed,
    collect_results,
    expand_grid,
    read_sqlite,
    resolve_parameters,
    run_grid,
    run_notebook,
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
    assert {"profile", "device"} <= set(notebook_parameters(notebook))
    assigned = {
        target.id
        for statement in ast.parse(code[0].source).body
        if isinstance(statement, ast.Assign)
        for target in statement.targets
    }
    assert set(notebook_parameters(notebook)) == assigned, "papermill must parse every parameter line"


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


def test_grid_runs_all_reports_failures_and_skips_done(glue_notebook: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yml"
    grid.write_text("profile: smoke\nruns:\n  - notebook: glue.ipynb\n    parameters:\n      x: [1, 2, 3]\n")
    out = tmp_path / "batch"
    names = [run.output.name for run in expand_grid(grid, out)]
    assert names == ["glue__x=1.ipynb", "glue__x=2.ipynb", "glue__x=3.ipynb"]

    outcomes = run_grid(grid, workers=2, out_dir=out)
    assert [outcome.status for outcome in outcomes] == ["executed", "failed", "executed"]
    assert "x may not be 2" in outcomes[1].error
    rerun = run_grid(grid, workers=1, out_dir=out)
    assert [outcome.status for outcome in rerun] == ["cached", "failed", "cached"]


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
