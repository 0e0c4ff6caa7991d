"""Tests of thesislib.compressed.report: the chapter-5 tables, figures and claim records of notebook 06.

The experiment's results are a small synthetic table with known errors: two methods at one budget,
two seeds, and the three arms the ablations pair (AT + CRS, AT without CRS, CRS without AT).
"""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import pytest

from thesislib.compressed.budget import BudgetHit
from thesislib.compressed.report import (
    ABLATION_COLUMNS,
    METHOD_COLOURS,
    METHOD_NAMES,
    ablation_means,
    ablation_over_seeds,
    ablation_record,
    benefit_bars,
    format_budget_hit,
    per_method_claim_records,
    pooled_claim_record,
    print_run_result,
)

# (method, seed) -> test error (%) of the arms AT + CRS, AT without CRS, and CRS without AT (scratch)
ERRORS = {
    ("tt", 1): (10.0, 12.0, 15.0),
    ("tt", 2): (11.0, 14.0, 17.0),
    ("hashed", 1): (20.0, 19.0, 21.0),
    ("hashed", 2): (22.0, 21.5, 26.0),
}
PARAMETERS = {"tt": 1000, "hashed": 1010}


def synthetic_results() -> pd.DataFrame:
    rows = []
    for (method, seed), (at_crs, at_no_crs, scratch_crs) in ERRORS.items():
        for distillation, crs, error in (
            ("at", True, at_crs),
            ("at", False, at_no_crs),
            ("scratch", True, scratch_crs),
        ):
            rows.append(
                {
                    "method": method,
                    "budget": "B1",
                    "parameters": PARAMETERS[method],
                    "distillation": distillation,
                    "crs": crs,
                    "decay": "base",
                    "test_error": error,
                    "seed": seed,
                }
            )
    return pd.DataFrame(rows)


def test_format_budget_hit_reads_a_budget_hit_and_a_grid_row() -> None:
    hit = BudgetHit("rf", target=1_000_000, tuning=0.1, normalised=0.2, parameters=1_004_100, supported=True)
    assert format_budget_hit(hit) == "+0.41% (1.004M)"
    row = next(pd.DataFrame([{**hit.as_dict(), "parameters": 980_000, "relative_error": -0.02}]).itertuples())
    assert format_budget_hit(row) == "-2.00% (0.980M)"
    outside = BudgetHit(
        "acdc", target=2_380_000, tuning=32, normalised=1.0, parameters=900_000, supported=False
    )
    assert format_budget_hit(outside) == "unsupported"


def test_print_run_result_prints_one_aligned_line(capsys: pytest.CaptureFixture[str]) -> None:
    row = {
        "method": "tt",
        "budget": "B1",
        "arm": "AT + CRS",
        "test_error": 12.345,
        "parameters": 12345,
        "seconds": 7.6,
    }
    print_run_result(row)
    assert capsys.readouterr().out == f"Tensor-Train B1 {'AT + CRS':>26}:  12.3% (12,345 params, 8 s)\n"
    print_run_result({**row, "method": "new"}, names={})
    assert capsys.readouterr().out.startswith("         new B1")


def test_method_names_and_colours_cover_the_six_substitutes() -> None:
    assert list(METHOD_NAMES) == ["rf", "acdc", "hashed", "tt", "tucker", "shufflenet"]
    assert set(METHOD_COLOURS) == set(METHOD_NAMES)
    assert len(set(METHOD_COLOURS.values())) == 6


def test_ablation_over_seeds_pairs_each_seed() -> None:
    results = synthetic_results()
    at = ablation_over_seeds(results, "at", seeds=[1, 2])
    assert list(at.columns) == list(ABLATION_COLUMNS)
    benefit = {(r.method, r.seed): r.benefit for r in at.itertuples()}
    assert benefit == {("tt", 1): 5.0, ("tt", 2): 6.0, ("hashed", 1): 1.0, ("hashed", 2): 4.0}
    crs = ablation_over_seeds(results, "crs")  # seeds from the results
    assert {(r.method, r.seed): r.benefit for r in crs.itertuples()} == {
        ("tt", 1): 2.0,
        ("tt", 2): 3.0,
        ("hashed", 1): -1.0,
        ("hashed", 2): -0.5,
    }
    assert ablation_over_seeds(results, "at", seeds=[2])["seed"].tolist() == [2, 2]
    empty = ablation_over_seeds(results, "at", seeds=[])
    assert empty.empty and list(empty.columns) == list(ABLATION_COLUMNS)
    assert ablation_over_seeds(results, "crs", "matched").empty  # no matched-decay runs here


def test_ablation_means_average_over_seeds() -> None:
    means = ablation_means(ablation_over_seeds(synthetic_results(), "at"))
    assert list(means.columns) == ["parameters", "with", "without", "benefit"]
    assert means.loc[("tt", "B1")].tolist() == [1000.0, 10.5, 16.0, 5.5]
    assert means.loc[("hashed", "B1")].tolist() == [1010.0, 21.0, 23.5, 2.5]


def test_ablation_record_is_the_glued_form() -> None:
    record = ablation_record(ablation_over_seeds(synthetic_results(), "crs"), "with_crs", "without_crs")
    assert record == {
        "hashed": {"budget": "B1", "with_crs": 21.0, "without_crs": 20.25, "benefit": -0.75, "seeds": 2},
        "tt": {"budget": "B1", "with_crs": 10.5, "without_crs": 13.0, "benefit": 2.5, "seeds": 2},
    }
    assert ablation_record(pd.DataFrame(columns=list(ABLATION_COLUMNS)), "a", "b") == {}


def test_pooled_claim_record_pairs_method_and_seed() -> None:
    at = ablation_over_seeds(synthetic_results(), "at")
    record = pooled_claim_record(at, "at", "none")
    assert record == {
        "seeds": ["tt/1", "hashed/1", "tt/2", "hashed/2"],
        "arms": {"at": [10.0, 20.0, 11.0, 22.0], "none": [15.0, 21.0, 17.0, 26.0]},
        "unit": "% error",
    }
    without_hashed = pooled_claim_record(at, "crs", "none", exclude=("hashed",))
    assert without_hashed["seeds"] == ["tt/1", "tt/2"]
    assert without_hashed["arms"] == {"crs": [10.0, 11.0], "none": [15.0, 17.0]}


def test_per_method_claim_records_one_per_method_paired_by_seed() -> None:
    crs = ablation_over_seeds(synthetic_results(), "crs")
    records = per_method_claim_records(crs, "crs", "none", "claim_x")
    assert list(records) == ["claim_x_tt", "claim_x_hashed"]
    assert records["claim_x_hashed"] == {
        "seeds": [1, 2],
        "arms": {"crs": [20.0, 22.0], "none": [19.0, 21.5]},
        "unit": "% error",
    }
    assert per_method_claim_records(crs.iloc[0:0], "crs", "none", "claim_x") == {}


def test_benefit_bars_plot_the_mean_benefit_by_display_name() -> None:
    hv.extension("bokeh", logo=False)
    means = ablation_means(ablation_over_seeds(synthetic_results(), "at"))
    bars = benefit_bars(means, "AT benefit")
    assert isinstance(bars, hv.Bars)
    assert [d.name for d in bars.kdims] == ["name"]
    assert [d.name for d in bars.vdims] == ["benefit", "with", "without"]
    assert dict(zip(bars.dimension_values("name"), bars.dimension_values("benefit"), strict=True)) == {
        "HashedNet": 2.5,
        "Tensor-Train": 5.5,
    }
    assert bars.opts.get().kwargs["title"] == "AT benefit"
