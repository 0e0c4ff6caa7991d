"""Every notebook of the book executes in the smoke profile.

Outputs go to ``runs/smoke/`` (the runner's default), so the smoke-profile book that
CI builds next reuses these executions instead of running the notebooks again.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import scrapbook

from thesislib.claims import CLAIMS_DIR, load_claims
from thesislib.runs import run_notebook
from thesislib.runs.book import book_notebooks

# What each notebook must record (scrapbook glue), as its issue asks: `thesislib results`
# and grids of runs read these names.
REQUIRED_RECORDS = {
    "00_data": {"tao_rows", "mnist_split_sizes", "cifar_images", "kodak_images"},
    "01_budget_learning": {"learned_split", "analytic_split", "test_mse", "mean_uniform_extra_cost"},
    "02_rotational_mnist": {
        "error_learned",
        "error_uniform",
        "error_l2",
        "error_bo_best",
        "mean_uniform_extra_cost",
    },
    "03_tao_buoys": {"extra_cost_per_buoy", "mean_extra_cost", "missing_fraction"},
    "04_jpeg_quantisation": {
        "images",
        "bpp",
        "delta_msssim_at_equal_size",
        "perceptual_metric_used",
        "mean_delta_psnr",
    },
    "05_moonshine": {
        "table43_params",
        "table43_madds",
        "table43_all_match",
        "student_errors",
        "teacher_error",
        "pipeline_speedup",
        "latency_vs_madds_spearman",
    },
    "06_linear_substitutions": {
        "table51_params",
        "table51_madds",
        "budget_hits",
        "hashed_exclusion",
        "substitute_errors",
        "crs_ablation",
        "acdc_speed_ratio",
        "latency_vs_madds_spearman",
    },
    "07_claims_ledger": {"ledger", "verdict_counts"},
    "08_results_explorer": {"explorer_records", "explorer_profiles"},
}


def required_records(notebook: str, profile: str = "smoke") -> set[str]:
    """REQUIRED_RECORDS plus the record of every registry claim this notebook measures at ``profile``.

    The claims registry (data/reference/claims/*.yml) is read at test time, so a notebook that
    stops gluing a claim's record fails its smoke test.
    """
    claims = load_claims() if CLAIMS_DIR.is_dir() else []
    return REQUIRED_RECORDS[notebook] | {
        claim.record for claim in claims if claim.notebook == notebook and profile in claim.profiles
    }


def test_every_book_notebook_has_required_records() -> None:
    assert {path.stem for path in book_notebooks()} == set(REQUIRED_RECORDS)


def test_required_records_include_every_claim_measured_in_the_smoke_profile() -> None:
    claims = load_claims() if CLAIMS_DIR.is_dir() else []
    for claim in claims:
        assert claim.notebook in REQUIRED_RECORDS, (
            f"claim {claim.id}: {claim.notebook} is not a book notebook"
        )
        if "smoke" in claim.profiles:
            assert claim.record in required_records(claim.notebook, "smoke"), claim.id


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
    recorded = set(scrapbook.read_notebook(str(result.output)).scraps)
    required = required_records(notebook.stem, "smoke")
    assert required <= recorded, required - recorded
