"""The chapter-4 page's tables and figures (thesislib.moonshine.report) and the thesis' rounding
(thesislib.reference.as_printed), on small synthetic runs and tables with known answers."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from thesislib.cost import FAMILY_COLOURS
from thesislib.moonshine import report
from thesislib.moonshine.distillation import DistillationSettings
from thesislib.moonshine.report import (
    StudentRuns,
    at_term_gap,
    error_vs_size,
    last_epoch_terms,
    loss_terms_figure,
    seed_errors,
    thesis_analogue,
)
from thesislib.reference import as_printed
from thesislib.training import ModelSpec


@pytest.fixture(scope="module")
def bokeh() -> None:
    """Figure options need a plotting backend (the notebook loads it in ``plots.setup``)."""
    hv.extension("bokeh", logo=False)


# ----------------------------------------------------------------------------------------------------------
# The thesis' rounding


@pytest.mark.parametrize(
    ("value", "digits", "printed", "python_round"),
    [
        (0.125, 2, "0.13", 0.12),  # exactly half in binary: round() goes to even
        (2.675, 2, "2.68", 2.67),  # 2.67499999... in binary: round() goes down
        (814.65, 1, "814.7", 814.6),  # Table 4.3's WRN-40-2 G(4): 814,650 parameters
        (2.5, 0, "3", 2),
        (-0.125, 2, "-0.13", -0.12),  # half away from zero
    ],
)
def test_as_printed_rounds_half_up_where_round_does_not(value, digits, printed, python_round) -> None:
    assert as_printed(value, digits) == printed
    assert round(value, digits) == python_round  # the case is one where round() differs


def test_as_printed_reads_counts_exactly_and_keeps_trailing_zeros() -> None:
    assert as_printed(814_650 / 1e3) == "814.7"
    assert as_printed(np.float64(0.125), 2) == "0.13"
    assert as_printed(5, 2) == "5.00"
    assert as_printed(10**20 + 5) == "100000000000000000005.0"  # an int is not rounded through a float
    assert as_printed(Decimal("0.05")) == "0.1"
    assert as_printed(0.1 + 0.2, 2) == "0.30"
    assert as_printed(0.04) == "0.0"
    with pytest.raises(ValueError, match="digits must be >= 0"):
        as_printed(1.0, -1)


# ----------------------------------------------------------------------------------------------------------
# Students and their errors


def fake_run(test_error: float = 0.0, history: pd.DataFrame | None = None, steps: pd.DataFrame | None = None):
    return SimpleNamespace(test_error=test_error, history=history, steps=steps)


def test_seed_errors_follow_the_seeds_in_order() -> None:
    runs = {
        ("wrn-10-2 B(2)", "at", 1): fake_run(10.0),
        ("wrn-10-2 B(2)", "at", 2): fake_run(12.5),
        ("wrn-10-2 B(2)", "scratch", 1): fake_run(11.0),
        ("wrn-10-1 S", "at", 1): fake_run(14.0),
    }
    assert seed_errors(runs, "wrn-10-2 B(2)", "at", [2, 1]) == [12.5, 10.0]
    assert seed_errors(runs, "wrn-10-2 B(2)", "scratch", [1]) == [11.0]
    assert seed_errors(runs, "wrn-10-2 B(2)", "at", []) == []
    with pytest.raises(KeyError):
        seed_errors(runs, "wrn-10-1 S", "at", [1, 2])


def test_student_runs_train_each_key_once_with_its_method_and_the_teacher(monkeypatch) -> None:
    calls = []

    def fake_train(spec, data, recipe, *, distillation, teacher, seed, **options):
        calls.append((spec.label, distillation.method, teacher, seed, data, recipe, options))
        return fake_run(float(len(calls)))

    monkeypatch.setattr(report, "train", fake_train)
    data, recipe, teacher = object(), object(), fake_run(5.0)
    settings = {m: DistillationSettings(m) for m in ("scratch", "kd", "at")}
    students = StudentRuns(data, recipe, teacher, settings, options={"device": "cpu", "channels_last": True})
    spec = ModelSpec("wrn-10-2", "B(2)")

    first = students.train(spec, "at", 1)
    assert students.train(spec, "at", 1) is first  # cached: trained once
    students.train(spec, "scratch", 1)
    students.train(spec, "kd", 2)
    same = students.train(ModelSpec("wrn-10-2", "S"), "at", 1, label="wrn-10-2 S (same structure)")

    assert [c[:4] for c in calls] == [
        ("wrn-10-2 B(2)", "at", teacher, 1),
        ("wrn-10-2 B(2)", "scratch", None, 1),  # no teacher from scratch
        ("wrn-10-2 B(2)", "kd", teacher, 2),
        ("wrn-10-2 S", "at", teacher, 1),
    ]
    assert all(c[4] is data and c[5] is recipe for c in calls)
    assert all(c[6] == {"device": "cpu", "channels_last": True} for c in calls)
    assert list(students.runs) == [
        ("wrn-10-2 B(2)", "at", 1),
        ("wrn-10-2 B(2)", "scratch", 1),
        ("wrn-10-2 B(2)", "kd", 2),
        ("wrn-10-2 S (same structure)", "at", 1),
    ]
    assert students.runs["wrn-10-2 S (same structure)", "at", 1] is same and same.test_error == 4.0


# ----------------------------------------------------------------------------------------------------------
# This run beside Table 4.3


def tiny_table43() -> pd.DataFrame:
    """Five rows shaped as data/reference/ch4_table43.csv: a teacher without AT error and four students."""
    return pd.DataFrame(
        {
            "name": ["wrn-40-2 S", "wrn-40-1 S", "wrn-16-1 S", "wrn-40-2 G(4)", "wrn-40-2 B(2)"],
            "model": ["wrn-40-2", "wrn-40-1", "wrn-16-1", "wrn-40-2", "wrn-40-2"],
            "block": ["S", "S", "S", "G(4)", "B(2)"],
            "role": ["teacher", "student", "student", "student", "student"],
            "params_k": [2243.5, 563.9, 175.1, 814.7, 585.0],
            "madds_m": [328.3, 83.6, 26.8, 118.5, 86.0],
            "c10_at": [np.nan, 5.50, 7.72, 5.00, 5.20],
        }
    ).set_index("name")


@pytest.mark.parametrize(
    ("name", "block", "is_teacher", "row"),
    [
        ("wrn-10-2", "S", True, "wrn-40-2 S"),  # any teacher: the thesis' teacher
        ("wrn-16-1", "S", False, "wrn-16-1 S"),  # the same network
        ("wrn-10-2", "B(2)", False, "wrn-40-2 B(2)"),  # cheap blocks: WRN-40-2 with the same block
        ("wrn-40-2", "G(4)", False, "wrn-40-2 G(4)"),
        ("wrn-10-1", "S", False, None),  # standard blocks are not compared with WRN-40-2 S
        ("wrn-40-2", "S", False, None),  # the teacher's row is not a student's
        ("wrn-10-2", "G(8)", False, None),  # no such block in the table
    ],
)
def test_thesis_analogue_picks_the_table43_row(name, block, is_teacher, row) -> None:
    assert thesis_analogue(name, block, is_teacher, tiny_table43()) == row


def test_thesis_analogue_reads_table43_by_default() -> None:
    assert thesis_analogue("wrn-10-2", "B(2)") == "wrn-40-2 B(2)"
    assert thesis_analogue("wrn-10-2", "S", is_teacher=True) == "wrn-40-2 S"
    assert thesis_analogue("wrn-16-2", "S") == "wrn-16-2 S"


def test_error_vs_size_draws_fig_4_4_by_family_with_this_run_overlaid(bokeh) -> None:
    comparison = pd.DataFrame(
        {
            "network": ["wrn-10-2 S (teacher)", "wrn-10-2 B(2)", "wrn-10-1 S"],
            "params (K)": [300.0, 77.9, 77.8],
            "mult-adds (M)": [40.0, 11.0, 12.0],
            "scratch": [10.0, 14.0, 15.0],
            "at": [np.nan, 12.0, np.nan],
        }
    ).set_index("network")
    layout = error_vs_size(tiny_table43(), comparison, "this run")
    panels = list(layout)
    assert [p.opts.get().kwargs["title"] for p in panels] == [
        "Fig. 4.4a: error vs parameters",
        "Fig. 4.4b: error vs mult-adds",
    ]
    params = list(panels[0])
    assert [(type(layer).__name__, layer.label) for layer in params] == [
        ("Curve", "thesis S (shrunk)"),
        ("Scatter", "thesis S (shrunk)"),
        ("Curve", "thesis G"),
        ("Scatter", "thesis G"),
        ("Curve", "thesis B"),
        ("Scatter", "thesis B"),
        ("Scatter", "this run, AT"),
        ("Scatter", "this run, teacher"),
    ]
    shrunk = params[0]  # sorted by size; the teacher has no AT error and is left out
    assert list(shrunk.dimension_values("params")) == [175_100.0, 563_900.0]
    assert list(shrunk.dimension_values("at")) == [7.72, 5.50]
    assert shrunk.opts.get().kwargs["color"] == FAMILY_COLOURS["S (shrunk)"]
    assert params[4].opts.get().kwargs["color"] == FAMILY_COLOURS["B"]
    ours, teacher = params[6], params[7]
    assert list(ours.dimension_values("network")) == ["wrn-10-2 B(2)"]  # only students with an AT error
    assert list(ours.dimension_values("params")) == [77_900.0] and list(ours.dimension_values("at")) == [12.0]
    assert list(teacher.dimension_values("scratch")) == [10.0]
    assert list(list(panels[1])[7].dimension_values("madds")) == [40e6]
    without_at = error_vs_size(tiny_table43(), comparison.drop(columns="at"), "this run")
    without_at_params = next(iter(without_at))
    assert [layer.label for layer in without_at_params][-2:] == ["thesis B", "this run, teacher"]


# ----------------------------------------------------------------------------------------------------------
# The loss terms of Eq. 4.2


def at_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": [1, 2],
            "ce": [2.0, 1.5],
            "at1": [0.5, 0.25],
            "at2": [1.0, 0.75],
            "at3": [3.0, 2.75],
            "test_error": [80.0, 70.0],
        }
    )


def test_last_epoch_terms_and_the_at_term_gap() -> None:
    run = fake_run(history=at_history())
    assert last_epoch_terms(run) == {"ce": 1.5, "at1": 0.25, "at2": 0.75, "at3": 2.75}
    assert at_term_gap(run) == 2.5  # 2.75 - 0.25: the third group's term stays the largest
    scratch = fake_run(history=at_history()[["epoch", "ce", "test_error"]])
    assert last_epoch_terms(scratch) == {"ce": 1.5}
    with pytest.raises(KeyError):
        at_term_gap(scratch)


def test_loss_terms_figure_smooths_each_term_over_a_quarter_epoch(bokeh) -> None:
    values = np.arange(16, dtype=float)  # 16 steps over 2 epochs: a window of 16 // (4 * 2) = 2 steps
    steps = pd.DataFrame({"step": np.arange(16), "ce": values, "at1": 2 * values, "at3": values + 1})
    figure = loss_terms_figure(fake_run(history=at_history(), steps=steps), "Fig. 4.5: test")
    curves = list(figure)
    assert [c.label for c in curves] == ["cross entropy", "AT, group 1 (conv2)", "AT, group 3 (conv4)"]
    assert [c.opts.get().kwargs["color"] for c in curves] == ["black", "#1f77b4", "#d62728"]
    np.testing.assert_allclose(curves[0].dimension_values("loss term")[:4], [0.0, 0.5, 1.5, 2.5])
    np.testing.assert_allclose(curves[1].dimension_values("loss term")[-1], 29.0)  # mean of 28 and 30
    options = figure.opts.get().kwargs
    assert options["title"] == "Fig. 4.5: test" and options["logy"] is True
    short = loss_terms_figure(fake_run(history=at_history(), steps=steps.iloc[:4]), "short")
    ce = next(iter(short))  # window 1: the raw values
    np.testing.assert_allclose(ce.dimension_values("loss term"), [0.0, 1.0, 2.0, 3.0])
