"""The book as a course: cell conventions, cross-references, exercises, launch cells, explorer.

The convention tests read the notebooks' sources (no execution) so a page that would show its
plumbing, lose a cross-reference or an exercise fails here first; the unit tests cover the
library pieces the book is built with (glue, equation numbers, install cells, explorer, lab times).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from thesislib.glue import plain_text
from thesislib.paths import PROJECT_ROOT
from thesislib.runs import book, explorer, launch
from thesislib.runs.sphinx_book import equation_number

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = book.book_notebooks()
CHAPTERS = [nb for nb in NOTEBOOKS if re.match(r"0[1-6]_", nb.name)]
ROLES = set(book.CELL_TAGS)
DISPLAY_TAGS = {"hide-input", "remove-input", "remove-cell", "hide-cell", "hide-output", "remove-output"}
MAX_LINE = 130
"""Story cells are formatted at 88 characters (ruff format); only long strings may exceed it, up to
this, and the page wraps them at the column's edge (book/_static/thesis.css, checked in Chromium)."""


def _cells(notebook: Path) -> list[nbformat.NotebookNode]:
    return nbformat.read(notebook, as_version=4).cells


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _markdown(notebook: Path) -> str:
    return "\n".join(cell.source for cell in _cells(notebook) if cell.cell_type == "markdown")


def _all_markdown() -> str:
    pages = [path.read_text(encoding="utf-8") for path in (ROOT / "book").rglob("*.md")]
    return "\n".join([*pages, *(_markdown(nb) for nb in NOTEBOOKS)])


# --- the cell convention ---------------------------------------------------------------------------


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_plumbing_cells_come_first_in_a_fixed_order(notebook: Path) -> None:
    code = [cell for cell in _cells(notebook) if cell.cell_type == "code"]
    assert [_tags(cell)[:1] for cell in code[:3]] == [["parameters"], ["install"], ["imports"]], notebook.name
    for cell in code:
        roles = ROLES & set(_tags(cell))
        assert len(roles) <= 1, f"{notebook.name}: a cell has two roles {roles}"
        for role in roles:
            assert book.CELL_TAGS[role] in _tags(cell), f"{notebook.name}: {role} cell lacks its display tag"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_values_are_glued_only_in_hidden_glue_cells(notebook: Path) -> None:
    for cell in _cells(notebook):
        if cell.cell_type != "code" or "imports" in _tags(cell):
            continue
        glues = re.search(r"\b(sb\.)?glue\(", cell.source)
        if glues:
            assert "glue" in _tags(cell), f"{notebook.name}: glue outside a glue cell:\n{cell.source[:200]}"
            assert "sb.glue" not in cell.source, f"{notebook.name}: use thesislib.glue.glue (text for prose)"
        elif "glue" in _tags(cell):
            pytest.fail(f"{notebook.name}: a cell tagged glue records nothing")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_story_cells_are_shown_and_fit_the_column(notebook: Path) -> None:
    for cell in _cells(notebook):
        if cell.cell_type != "code" or ROLES & set(_tags(cell)):
            continue
        hidden = DISPLAY_TAGS & set(_tags(cell)) - {"hide-output", "remove-output"}
        assert not hidden, f"{notebook.name}: a story cell is hidden ({hidden}); give it a role or show it"
        long = [line for line in cell.source.splitlines() if len(line) > MAX_LINE]
        assert not long, f"{notebook.name}: lines wider than {MAX_LINE} characters: {long[:2]}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_install_cell_uses_the_one_repository_url(notebook: Path) -> None:
    cell = next(cell for cell in _cells(notebook) if "install" in _tags(cell))
    assert cell.source == launch.install_cell_source(launch.repository_url()), (
        f"{notebook.name}: run `python -m thesislib.runs.launch` to rewrite the install cells"
    )
    ast.parse(cell.source)


def test_every_notebook_has_its_profile_entry_and_the_ledger_pages_always_execute() -> None:
    import yaml

    profiles = yaml.safe_load((ROOT / "notebooks" / "profiles.yml").read_text())
    assert {nb.stem for nb in NOTEBOOKS} <= set(profiles)
    explorer_nb = nbformat.read(ROOT / "notebooks" / "08_results_explorer.ipynb", as_version=4)
    assert explorer_nb.metadata["thesislib"]["always_execute"] is True


# --- cross-references, prose numbers, exercises ----------------------------------------------------


def test_no_hand_typed_equation_numbers_and_every_display_equation_is_labelled() -> None:
    text = _all_markdown()
    assert not re.search(r"\\qquad\s*\(\d+\.\d+", text), "an equation number typed by hand"
    blocks = re.findall(r"^\$\$\n(.*?)\n\$\$([^\n]*)$", text, flags=re.M | re.S)
    assert blocks, "no display equations found"
    for body, after in blocks:
        assert re.match(r"\s*\(eq-[\w-]+\)\s*$", after), f"unlabelled display equation: {body[:80]!r}"
        assert "\\tag" not in body


def test_every_eq_and_numref_target_exists() -> None:
    text = _all_markdown()
    labels = set(re.findall(r"^\$\$\s*\((eq-[\w-]+)\)", text, flags=re.M))
    figures = set()
    for notebook in NOTEBOOKS:
        for cell in _cells(notebook):
            figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
            if figure:
                assert figure.get("caption") and figure.get("name"), (
                    f"{notebook.name}: figure without caption"
                )
                figures.add(figure["name"])
    for target in re.findall(r"\{eq\}`([^`]+)`", text):
        assert target in labels, f"{{eq}} to an unknown equation {target!r}"
    for target in re.findall(r"\{numref\}`(?:[^`<]*<)?([^`>]+)>?`", text):
        assert target in figures, f"{{numref}} to an unknown figure {target!r}"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_reference_equations_figures_modules_and_quote_this_run(notebook: Path) -> None:
    text = _markdown(notebook)
    assert re.search(r"\{py:mod\}`thesislib\.", text), f"{notebook.name}: no link to the API reference"
    assert "{glue:text}`" in text, f"{notebook.name}: no number of this run quoted in the prose"
    assert "{numref}`" in text, f"{notebook.name}: no figure referenced from the text"
    figures = [c for c in _cells(notebook) if c.get("metadata", {}).get("mystnb", {}).get("figure")]
    named = {c.metadata["mystnb"]["figure"]["name"] for c in figures}
    referenced = set(re.findall(r"\{numref\}`(?:[^`<]*<)?([^`>]+)>?`", text))
    assert named and named <= referenced, f"{notebook.name}: figures never referenced: {named - referenced}"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_have_three_exercises_with_collapsed_solutions(notebook: Path) -> None:
    text = _markdown(notebook)
    exercises = re.findall(r"^(`{3,}|:{3,})\{exercise\}.*\n:label: ([\w-]+)", text, flags=re.M)
    solutions = re.findall(r"^(`{3,}|:{3,})\{solution\} ([\w-]+)\n((?::\w+:.*\n)*)", text, flags=re.M)
    assert len(exercises) >= 3, f"{notebook.name}: {len(exercises)} exercises"
    labels = {label for _, label in exercises}
    assert {target for _, target, _ in solutions} == labels, (
        f"{notebook.name}: every exercise needs a solution"
    )
    assert all(":class: dropdown" in options for _, _, options in solutions), "solutions must be collapsed"


def test_glue_text_names_are_glued_by_their_notebook() -> None:
    for notebook in NOTEBOOKS:
        code = "\n".join(c.source for c in _cells(notebook) if "glue" in _tags(c))
        glued = set(re.findall(r"""glue\(\s*["']([\w-]+)["']""", code)) | set(
            re.findall(r"glue\(\s*f?[\"']([\w-]+)", code)
        )
        for name in re.findall(r"\{glue:text\}`([\w-]+)(?::[^`]*)?`", _markdown(notebook)):
            assert name in glued, f"{notebook.name}: {{glue:text}} quotes {name!r}, which it never glues"


# --- library pieces --------------------------------------------------------------------------------


def test_equation_numbers_come_from_the_labels() -> None:
    assert equation_number("eq-3-11") == "3.11"
    assert equation_number("eq-3-7-8") == "3.7\u20133.8"
    assert [equation_number("eq-linear-optimum", k) for k in (0, 1, 25, 26)] == ["A", "B", "Z", "AA"]
    with pytest.raises(ValueError, match="M > N"):
        equation_number("eq-3-8-7")
    with pytest.raises(ValueError, match="non-empty"):
        equation_number("")


def test_plain_text_is_what_glue_text_formats() -> None:
    assert float(plain_text(0.1 + 0.2)) == 0.1 + 0.2
    assert plain_text(3) == "3" and plain_text(True) == "True" and plain_text("pieapp") == "pieapp"
    assert json.loads(plain_text({"a": [1, 2]})) == {"a": [1, 2]}
    assert format(float(plain_text(0.1234)), ".1%") == "12.3%"


def test_glue_refuses_none_and_records_text(monkeypatch) -> None:
    import IPython.display

    from thesislib import glue as glue_module

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, **kw: shown.append((data, kw)))
    glue_module.glue("teacher_error", 12.5)
    data, options = shown[0]
    assert data["text/plain"] == "12.5" and options["raw"] is True
    assert options["metadata"]["scrapbook"] == {"name": "teacher_error", "data": True, "display": False}
    assert any(key.startswith("application/scrapbook.scrap.") for key in data)
    with pytest.raises(ValueError, match="None"):
        glue_module.glue("x", None)
    with pytest.raises(ValueError, match="non-empty"):
        glue_module.glue("", 1)


def test_glued_values_are_read_by_the_results_store_and_by_myst_nb(tmp_path: Path) -> None:
    """Execute a two-cell notebook: scrapbook reads the value, MyST-NB finds its text/plain."""
    import papermill
    import scrapbook
    from myst_nb.ext.glue import extract_glue_data

    from thesislib.runs.runner import ensure_kernel

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("from thesislib.glue import glue\nglue('ratio', 0.25)\nglue('n', 3)")
    ]
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(notebook, source)
    papermill.execute_notebook(str(source), str(output), kernel_name=ensure_kernel(), progress_bar=False)
    assert scrapbook.read_notebook(str(output)).scraps.data_dict == {"ratio": 0.25, "n": 3}
    executed = nbformat.read(output, as_version=4)
    glued = extract_glue_data(executed, [0], logger=None)
    assert glued["ratio"]["data"]["text/plain"] == "0.25"


def test_install_cell_source_and_sync(tmp_path: Path) -> None:
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.org/me/project/\n")
    assert launch.repository_url(config) == "https://example.org/me/project"
    config.write_text("repository:\n  url: ''\n")
    with pytest.raises(ValueError, match=r"repository\.url"):
        launch.repository_url(config)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# t"),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(x)"),
    ]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert launch.sync_install_cells([path], "https://example.org/a") == [path]
    cells = nbformat.read(path, as_version=4).cells
    assert _tags(cells[2]) == list(launch.INSTALL_TAGS) and "https://example.org/a" in cells[2].source
    assert launch.sync_install_cells([path], "https://example.org/a") == []  # already current
    assert launch.sync_install_cells([path], "https://example.org/b") == [path]
    cells = nbformat.read(path, as_version=4).cells
    assert len(cells) == 4 and "https://example.org/b" in cells[2].source
    bare = tmp_path / "bare.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), bare)
    with pytest.raises(ValueError, match="parameters"):
        launch.sync_install_cells([bare])


def test_prepare_for_book_collapses_the_injected_parameters() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters", "hide-input"]}),
        nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("glue('x', x)", metadata={"tags": ["glue"]}),
        nbformat.v4.new_code_cell("x"),
    ]
    notebook.cells[3].outputs = [
        nbformat.v4.new_output("display_data", data={}),
        nbformat.v4.new_output(
            "display_data", data={"application/vnd.jupyter.widget-view+json": {}, "text/plain": "HBox()"}
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
    ]
    prepared = book.prepare_for_book(notebook)
    assert [o.output_type for o in prepared.cells[3].outputs] == ["execute_result"]
    assert [_tags(c) for c in prepared.cells] == [
        ["parameters", "hide-input"],
        ["injected-parameters", "hide-input"],
        ["glue", "remove-cell"],
        [],
    ]


def _executed(path: Path, notebook: str, profile: str, seconds: float, scraps: dict) -> None:
    """A completed execution as the runner writes it, with scrapbook outputs."""
    from scrapbook.encoders import registry
    from scrapbook.scraps import Scrap, scrap_to_payload

    outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/scrapbook.scrap.json+json": scrap_to_payload(
                    registry.encode(Scrap(k, v, "json"))
                )
            },
            metadata={"scrapbook": {"name": k, "data": True, "display": False}},
        )
        for k, v in scraps.items()
    ]
    cell = nbformat.v4.new_code_cell("glue(...)", outputs=outputs)
    executed = nbformat.v4.new_notebook(cells=[cell])
    executed.metadata["thesislib"] = {
        "cache_key": "k",
        "notebook": f"notebooks/{notebook}.ipynb",
        "profile": profile,
        "parameters": {"profile": profile, "seeds": [0, 1]},
        "seconds": seconds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(executed, path)


def test_lab_times_read_the_runs_of_each_profile(tmp_path: Path) -> None:
    _executed(tmp_path / "smoke" / "01_budget_learning.ipynb", "01_budget_learning", "smoke", 42.0, {})
    _executed(tmp_path / "cpu" / "01_budget_learning.ipynb", "01_budget_learning", "cpu", 300.0, {})
    times = book.lab_times(tmp_path)
    assert (
        times.loc["01_budget_learning", "smoke"] == 42.0 and times.loc["01_budget_learning", "cpu"] == 300.0
    )
    assert times["paper"].isna().all() and times.loc["00_data"].isna().all()
    text = book.lab_times_markdown(tmp_path)
    assert "| 0.7 min | 5.0 min | not run here |" in text and "{doc}`01_budget_learning" in text
    assert "CPU cores" in text.splitlines()[-1]


def test_explorer_flattens_records_and_sets_the_thesis_beside_them(tmp_path: Path) -> None:
    from thesislib.claims import load_claims

    record = {
        "seeds": [0, 1, 2],
        "arms": {"learnt": [0.1, 0.2, 0.3], "uniform": [0.4, 0.4, 0.4]},
        "unit": "rad",
    }
    _executed(
        tmp_path / "cpu" / "02_rotational_mnist.ipynb",
        "02_rotational_mnist",
        "cpu",
        1.0,
        {"error_learned": 0.2, "learned_counts": {"0": [1, 2]}, "claim_rotmnist_learnt_vs_uniform": record},
    )
    _executed(
        tmp_path / "paper" / "03_tao_buoys.ipynb", "03_tao_buoys", "paper", 1.0, {"missing_fraction": 0.09}
    )
    table = explorer.explorer_table(tmp_path, claims=load_claims())
    rows = table.set_index("name")
    assert set(table["profile"]) == {"cpu", "paper"}
    assert rows.loc["error_learned", "number"] == 0.2 and rows.loc["error_learned", "thesis_number"] == 0.156
    assert rows.loc["missing_fraction", "thesis_number"] == 0.083
    assert rows.loc["claim_rotmnist_learnt_vs_uniform/learnt", "number"] == pytest.approx(0.2)
    assert "learnt-beats-uniform" in rows.loc["claim_rotmnist_learnt_vs_uniform/learnt", "thesis"]
    assert rows.loc["learned_counts/0", "text"] == "[1, 2]"
    assert "seeds=[0, 1]" in rows.loc["error_learned", "parameters"]
    layout = explorer.explorer_layout(table)
    assert layout.select_one({"name": "explorer_table"}).source.data["name"] == table["name"].tolist()
    with pytest.raises(FileNotFoundError):
        explorer.explorer_table(tmp_path / "missing")


def test_every_module_is_on_an_api_page() -> None:
    documented = set(
        re.findall(
            r"\.\. automodule:: ([\w.]+)",
            "".join(p.read_text() for p in (ROOT / "book" / "api").glob("*.md")),
        )
    )
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "thesislib").rglob("*.py")
        if path.name != "__main__.py" and "__pycache__" not in path.parts
    }
    assert modules == documented, f"undocumented: {modules - documented}; unknown: {documented - modules}"


def test_binder_environment_has_the_lock_pins_and_postbuild_installs_thesislib() -> None:
    environment = (ROOT / "binder" / "environment.yml").read_text()
    pins = dict(re.findall(r"^\s+- ([A-Za-z0-9_.\-]+)==(\S+)$", environment, re.M))
    root_pins = dict(
        re.findall(r"^\s+- ([A-Za-z0-9_.\-]+)==(\S+)$", (ROOT / "environment.yml").read_text(), re.M)
    )
    assert pins == root_pins
    assert "download.pytorch.org/whl/cpu" in environment
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_the_book_takes_tags_and_captions_from_the_current_notebook() -> None:
    """A caption or tag added after the run (no re-execution: the cache key holds sources only)."""
    source = nbformat.v4.new_notebook()
    source.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters", "hide-input"]}),
        nbformat.v4.new_code_cell(
            "plot(x)", metadata={"mystnb": {"figure": {"name": "fig-a", "caption": "A."}}}
        ),
        nbformat.v4.new_code_cell("print(x)"),
    ]
    executed = nbformat.v4.new_notebook()
    executed.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("plot(x)"),
        nbformat.v4.new_code_cell("print(x)", metadata={"tags": ["hide-input"]}),
    ]
    book.copy_presentation(source, executed)
    assert [_tags(c) for c in executed.cells] == [
        ["parameters", "hide-input"],
        ["injected-parameters"],
        [],
        [],
    ]
    assert executed.cells[2].metadata["mystnb"]["figure"]["name"] == "fig-a"


def test_outputs_named_tbl_are_numbered_as_tables() -> None:
    from docutils import nodes
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document

    from thesislib.runs import sphinx_book

    document = new_document("page", get_default_settings(Parser))
    for name in ("tbl-counts", "fig-plot"):
        figure = nodes.figure(names=[name], ids=[name])
        figure += nodes.caption(text=f"{name} caption")
        document += figure
    sphinx_book._tables(None, document)
    assert isinstance(document.ids["tbl-counts"], sphinx_book.NumberedTable)
    kinds = {node["names"][0]: type(node) for node in document.findall(nodes.figure)}
    assert kinds == {"tbl-counts": sphinx_book.NumberedTable, "fig-plot": nodes.figure}
    assert sphinx_book._caption(next(document.findall(sphinx_book.NumberedTable))) == "tbl-counts caption"


def test_notebooks_pass_the_library_linter() -> None:
    """Notebook code is linted by ruff with the library's rules (pyproject.toml), so a notebook cannot
    hide an unused import, a shadowed name or a silent ``zip`` truncation that the library would not."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [ruff, "check", "--no-cache", "notebooks"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _defined_functions(source: str) -> list[str]:
    """Functions and classes a cell defines: ``def``/``class`` statements and lambdas bound to a name."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Lambda):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found.extend(ast.unparse(t) for t in targets)
    return found


def test_the_detector_finds_defs_classes_and_named_lambdas() -> None:
    source = "%matplotlib inline\ndef f():\n    pass\nclass C: ...\ng = lambda x: x\ndf.map(lambda b: b)\n"
    assert _defined_functions(source) == ["f", "C", "g"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_define_no_functions(notebook: Path) -> None:
    """Logic lives in thesislib, where it is tested: a notebook calls it (an inline lambda as a pandas
    formatter or sort key is an argument, not a definition)."""
    defined = [
        (index, name)
        for index, cell in enumerate(_cells(notebook))
        if cell.cell_type == "code"
        for name in _defined_functions(cell.source)
    ]
    assert not defined, f"{notebook.name} defines {defined} (cell index, name): move them to thesislib"
