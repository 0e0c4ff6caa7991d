"""The command line never answers a user's mistake with a traceback: one line, non-zero exit.

``--debug`` shows the traceback. Each case injects one mistake from issue 13.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import nbformat
import pytest

from thesislib import cli


def _notebook(path: Path) -> Path:
    contents = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('profile = "cpu"\nx = 1\nrate = 0.1')
    cell.metadata["tags"] = ["parameters"]
    contents.cells = [cell, nbformat.v4.new_code_cell("import scrapbook as sb\nsb.glue('x', x)")]
    contents.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(contents, path)
    return path


def _fails_in_one_line(capsys, argv: list[str], *needles: str) -> str:
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status != 0, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_out_naming_a_file(tmp_path: Path, capsys) -> None:
    notebook = _notebook(tmp_path / "nb.ipynb")
    (tmp_path / "afile").write_text("x")
    _fails_in_one_line(capsys, ["run", str(notebook), "--out", str(tmp_path / "afile")], "is a file", "afile")


def test_read_only_output_folder(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = _notebook(tmp_path / "nb.ipynb")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # root may write anywhere, so the read-only folder is injected through os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    _fails_in_one_line(
        capsys, ["run", str(notebook), "--out", str(locked / "sub")], "permission denied", "locked"
    )


def test_missing_notebook(tmp_path: Path, capsys) -> None:
    _fails_in_one_line(capsys, ["run", str(tmp_path / "nope.ipynb")], "no notebook at", "nope.ipynb")


def test_bad_parameter_value(tmp_path: Path, capsys) -> None:
    notebook = _notebook(tmp_path / "nb.ipynb")
    _fails_in_one_line(
        capsys, ["run", str(notebook), "-p", "rate", "fast"], "rate", "expects float", "'fast'"
    )


def test_db_naming_a_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "runs").mkdir()
    _fails_in_one_line(capsys, ["results", str(tmp_path / "runs"), "--db", str(tmp_path)], "is a folder")


def test_results_of_a_missing_folder(tmp_path: Path, capsys) -> None:
    _fails_in_one_line(capsys, ["results", str(tmp_path / "nothing")], "no folder of executed notebooks")


@pytest.mark.parametrize(
    ("grid", "needles"),
    [
        ("runs:\n  - notebook: nb.ipynb\n    parameters: {x: [1\n", ("not valid YAML", "line")),
        ("runs:\n  - notebook: nb.ipynb\n    parameters:\n      x: []\n", ("empty list",)),
        ("runs: []\n", ("non-empty 'runs' list",)),
        ("runs:\n  - notebook: missing.ipynb\n", ("no notebook at",)),
        ("runs:\n  - notebook: nb.ipynb\n    parameters:\n      x: [{a, b}]\n", ("expects int",)),
        ("runs:\n  - notebook: nb.ipynb\n    parameters:\n      x: !!set {1, 2}\n", ("expects int",)),
        (
            "runs:\n  - notebook: nb.ipynb\n    parameters:\n      rate: [2024-05-01]\n",
            ("expects float", "2024-05-01"),
        ),
        ("profile: gpu\nruns:\n  - notebook: nb.ipynb\n", ("unknown profile 'gpu'",)),
    ],
)
def test_grid_file_mistakes(tmp_path: Path, capsys, grid: str, needles: tuple[str, ...]) -> None:
    _notebook(tmp_path / "nb.ipynb")
    path = tmp_path / "grid.yml"
    path.write_text(grid)
    _fails_in_one_line(capsys, ["batch", str(path), "--out", str(tmp_path / "out")], *needles)
    assert not (tmp_path / "out").exists(), "nothing ran"


def test_grid_file_that_is_a_folder_or_binary(tmp_path: Path, capsys) -> None:
    _fails_in_one_line(capsys, ["batch", str(tmp_path)], "is a folder")
    binary = tmp_path / "grid.yml"
    binary.write_bytes(b"\xff\xfe\x00runs")
    _fails_in_one_line(capsys, ["batch", str(binary)], "not a text")


def test_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    assert cli.main(["--debug", "run", str(tmp_path / "nope.ipynb")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "no notebook at" in err


def test_an_internal_error_is_one_line_too(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import thesislib.runs

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(thesislib.runs, "cli_results", broken)
    _fails_in_one_line(capsys, ["results"], "internal error", "ZeroDivisionError", "--debug")


def test_claims_delegates_to_the_claims_module(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    seen = {}
    module = types.ModuleType("thesislib.claims.cli")

    def add_arguments(parser) -> None:
        parser.add_argument("directory", nargs="?", type=Path)
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--only-fake-option", action="store_true")

    def run(args) -> int:
        seen["args"] = args
        return 0

    module.add_arguments, module.run = add_arguments, run
    package = types.ModuleType("thesislib.claims")
    package.cli = module
    monkeypatch.setitem(sys.modules, "thesislib.claims", package)
    monkeypatch.setitem(sys.modules, "thesislib.claims.cli", module)
    assert cli.main(["claims", str(tmp_path), "--json", "--only-fake-option"]) == 0
    assert seen["args"].directory == tmp_path and seen["args"].json and seen["args"].only_fake_option


def test_other_commands_do_not_import_the_claims_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "thesislib.claims.cli", None)  # importing it would fail
    parser = cli._parser(["results"])
    assert parser.parse_args(["results"]).command == "results"
