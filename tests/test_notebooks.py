"""Every notebook of the book executes in the smoke profile.

Outputs go to ``runs/smoke/`` (the runner's default), so the smoke-profile book that
CI builds next reuses these executions instead of running the notebooks again.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from thesislib.runs import run_notebook
from thesislib.runs.book import book_notebooks


@pytest.mark.notebook
@pytest.mark.timeout(600)
@pytest.mark.parametrize("notebook", book_notebooks(), ids=lambda path: path.stem)
def test_notebook_executes_in_smoke_profile(notebook: Path) -> None:
    result = run_notebook(notebook, "smoke", progress=False)
    executed = nbformat.read(result.output, as_version=4)
    assert executed.metadata["thesislib"]["profile"] == "smoke"
    assert executed.metadata["thesislib"]["parameters"]["profile"] == "smoke"
    errors = [
        output
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
