"""The claims ledger (issue 14): registry schema, records, statistics, verdicts, ledger, CLI, plot."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from scipy import stats

from thesislib.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_RUN,
    REPRODUCED,
    ClaimsError,
    load_claims,
    merge_records,
    parse_claim,
    seed_record,
)
from thesislib.claims import cli as claims_cli
from thesislib.claims import statistics as st
from thesislib.claims.ledger import (
    build_ledger,
    collect_records,
    ledger,
    ledger_html,
    ledger_records,
    names_record,
    section_id,
    section_link,
    verdict_counts,
)
from thesislib.claims.registry import CLAIMS_DIR, NOTEBOOKS_DIR
from thesislib.claims.verdicts import assess

NOTEBOOK = "02_rotational_mnist"  # any notebook of the project, for claims that must name one


def claim(**fields):
    entry = {
        "id": "s0-test",
        "location": "§0",
        "statement": "a test claim",
        "notebook": NOTEBOOK,
        "record": "claim_test",
        "effect": {"a": "uniform", "b": "learnt"},
        "expect": "greater",
        "profiles": ["cpu"],
    }
    entry.update(fields)
    return parse_claim({k: v for k, v in entry.items() if v is not None}, "test.yml")


def record_of(effects, base=1.0):
    """A two-arm record whose per-seed difference uniform - learnt is ``effects``."""
    effects = np.asarray(effects, dtype=float)
    learnt = base + 0.1 * np.arange(effects.size)
    return seed_record(range(effects.size), unit="rad", uniform=learnt + effects, learnt=learnt)


def verdict(effects, **fields):
    c = claim(**fields)
    return assess([c], {c.record: record_of(effects)}, "cpu")[0]


# ---------------------------------------------------------------- verdicts on synthetic effects


def test_clearly_positive_effect_is_reproduced():
    row = verdict([0.9, 1.1, 1.0, 1.05, 0.95])
    assert row.verdict == REPRODUCED
    assert row.n == 5 and row.seeds == [0, 1, 2, 3, 4]
    assert row.effect == pytest.approx(1.0)
    assert row.interval[0] > 0 < row.interval[1]
    assert row.interval_method == "t"


def test_clearly_negative_effect_contradicts_a_greater_claim_and_supports_a_less_claim():
    effects = [-0.9, -1.1, -1.0, -1.05, -0.95]
    assert verdict(effects).verdict == CONTRADICTED
    assert verdict(effects, expect="less").verdict == REPRODUCED
    assert verdict([-e for e in effects], expect="less").verdict == CONTRADICTED


def test_zero_effect_is_inconclusive_with_power_figures():
    row = verdict([-0.5, 0.3, 0.1, -0.2, 0.35])
    assert row.verdict == INCONCLUSIVE
    sd = np.std([-0.5, 0.3, 0.1, -0.2, 0.35], ddof=1)
    assert row.smallest_detectable == pytest.approx(
        _mde_by_simulation(5, sd), rel=0.15
    )  # the closed-form power agrees with a simulation
    assert row.seeds_needed is not None and row.seeds_needed > 5
    assert "80% power" in row.note and f"{row.seeds_needed} seeds" in row.note


def _mde_by_simulation(n, sd, reps=4000):
    # The effect at which a one-sided t-test at 0.025 rejects 80% of the time, by bisection on simulations.
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((reps, n)) * sd
    low, high = 0.0, 10 * sd
    for _ in range(30):
        mid = (low + high) / 2
        p = stats.ttest_1samp(noise + mid, 0.0, axis=1, alternative="greater").pvalue
        low, high = (mid, high) if (p < 0.025).mean() < 0.8 else (low, mid)
    return (low + high) / 2


def test_effect_on_wrong_side_but_not_significant_says_no_seeds_would_help():
    row = verdict([-0.5, 0.3, -0.4, -0.2, 0.35])
    assert row.verdict == INCONCLUSIVE
    assert row.seeds_needed is None and "wrong side" in row.note


def test_equivalence_by_tost():
    assert verdict([0.01, -0.02, 0.015, 0.0, -0.01], expect="equivalent", margin=0.1).verdict == REPRODUCED
    # significantly beyond the margin
    assert verdict([0.5, 0.52, 0.49, 0.51], expect="equivalent", margin=0.1).verdict == CONTRADICTED
    # centred on 0 but too noisy to show equivalence
    row = verdict([0.3, -0.3, 0.25, -0.2, 0.0], expect="equivalent", margin=0.1)
    assert row.verdict == INCONCLUSIVE and "a margin of" in row.note


def test_margin_shifts_the_test():
    effects = [0.9, 1.1, 1.0, 1.05, 0.95]
    assert verdict(effects, margin=0.5).verdict == REPRODUCED
    assert verdict(effects, margin=1.5).verdict == CONTRADICTED


def test_fewer_than_three_seeds_is_always_inconclusive():
    row = verdict([5.0, 5.1])
    assert row.verdict == INCONCLUSIVE and "fewer than 3" in row.note


def test_single_arm_and_log_ratio_effects():
    c = claim(effect={"a": "extra_cost"})
    rec = seed_record([0, 1, 2, 3], unit="%", extra_cost=[150.0, 170.0, 160.0, 180.0])
    assert assess([c], {c.record: rec}, "cpu")[0].verdict == REPRODUCED
    c = claim(effect={"a": "bo_seconds", "b": "learnt_seconds"}, scale="log_ratio", margin=0.0)
    rec = seed_record([0, 1, 2], unit="s", bo_seconds=[100.0, 120.0, 90.0], learnt_seconds=[10.0, 11.0, 9.0])
    row = assess([c], {c.record: rec}, "cpu")[0]
    assert row.effect == pytest.approx(np.mean(np.log([10, 120 / 11, 10])))
    assert row.unit == "log ratio" and row.verdict == REPRODUCED


def test_missing_arm_names_the_arms():
    c = claim(effect={"a": "uniform", "b": "l2"})
    with pytest.warns(UserWarning, match=r"no arm 'l2'.*uniform, learnt"):
        row = assess([c], {c.record: record_of([1, 2, 3])}, "cpu")[0]
    assert row.verdict == INCONCLUSIVE and row.effect is None and "does not fit claim" in row.note


def test_not_run_gives_the_command_and_cost():
    c = claim(
        profiles=["paper"], grid="thesislib batch grids/x.yml --profile paper", cost="about 25 GPU-hours"
    )
    row = assess([c], {}, "cpu")[0]
    assert row.verdict == NOT_RUN
    assert row.command == "thesislib batch grids/x.yml --profile paper" and row.cost == "about 25 GPU-hours"
    assert "grids/x.yml" in row.note and "25 GPU-hours" in row.note
    row = assess([claim()], {}, "cpu")[0]
    assert row.verdict == NOT_RUN and f"notebooks/{NOTEBOOK}.ipynb --profile cpu" in row.note


def test_holm_correction_within_a_family():
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert st.holm([0.5]) == pytest.approx([0.5])
    borderline = np.array([0.5, 0.1, 0.4, 0.0, 0.45, 0.1])  # one-sided p between 0.0125 and 0.025
    p = st.p_value(borderline, "greater")
    assert 0.0125 < p < 0.025
    alone = claim(id="s0-a", record="claim_a")
    null = claim(id="s0-b", record="claim_b")
    records = {"claim_a": record_of(borderline), "claim_b": record_of([0.3, -0.3, 0.1, -0.1, 0.05, 0.0])}
    assert assess([alone, null], records, "cpu")[0].verdict == REPRODUCED
    family = [
        claim(id="s0-a", record="claim_a", family="fig"),
        claim(id="s0-b", record="claim_b", family="fig"),
    ]
    rows = assess(family, records, "cpu")
    assert rows[0].verdict == INCONCLUSIVE and rows[0].p_holm == pytest.approx(2 * p)
    assert "Holm p" in rows[0].note


# ---------------------------------------------------------------- intervals and power


def coverage(n, reps, interval, rng):
    hits = 0
    for _ in range(reps):
        x = rng.standard_normal(n) * 2.0 + 1.0
        low, high = interval(x)
        hits += low < 1.0 < high
    return hits / reps


def test_interval_coverage_at_three_seeds_is_nominal():
    rng = np.random.default_rng(1)
    cover = coverage(3, 1500, lambda x: (lambda i: (i.low, i.high))(st.confidence_interval(x)), rng)
    assert 0.93 <= cover <= 0.97


def test_percentile_bootstrap_at_three_seeds_is_why_small_n_uses_t():
    # The degenerate case the module avoids: 10 distinct resamples, coverage far below 95%.
    rng = np.random.default_rng(2)

    def percentile(x):
        result = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=999, rng=rng)
        return result.confidence_interval

    assert coverage(3, 300, percentile, rng) < 0.85


def test_interval_coverage_of_the_bootstrap_at_many_seeds():
    n = st.BOOTSTRAP_MIN_N + 5
    assert st.confidence_interval(np.arange(n, dtype=float)).method == "bootstrap-bca"
    rng = np.random.default_rng(3)
    cover = coverage(n, 300, lambda x: (lambda i: (i.low, i.high))(st.confidence_interval(x)), rng)
    assert 0.88 <= cover <= 0.99


def test_effects_that_do_not_vary():
    row = verdict([0.0, 0.0, 0.0])
    assert row.verdict == INCONCLUSIVE and row.interval == [0.0, 0.0]
    assert row.smallest_detectable is None or np.isnan(row.smallest_detectable)
    assert "same effect" in row.note
    assert verdict([0.5, 0.5, 0.5]).verdict == REPRODUCED


def test_degenerate_and_tiny_intervals():
    assert st.confidence_interval(np.array([1.0, 1.0, 1.0])).method == "degenerate"
    assert st.confidence_interval(np.array([1.0])).method == "none"


def test_seeds_needed_reaches_the_target_power():
    sd, observed = 1.0, 0.6
    n = st.seeds_needed(observed, sd, "greater")
    assert st.power_one_sided(n, observed, sd) >= 0.8 > st.power_one_sided(n - 1, observed, sd)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4000, n)) * sd + observed
    rate = (stats.ttest_1samp(x, 0.0, axis=1, alternative="greater").pvalue < 0.025).mean()
    assert 0.77 <= rate <= 0.85
    assert st.seeds_needed(-0.1, sd, "greater") is None
    assert st.seeds_needed(0.05, 0.1, "equivalent", margin=0.2) >= 3
    assert st.seeds_needed(0.3, 0.1, "equivalent", margin=0.2) is None


# ---------------------------------------------------------------- records


def test_seed_record_builds_json_safe_records():
    rec = seed_record(np.arange(3), unit="rad", learnt=np.array([0.1, 0.2, 0.3]), uniform=[1, 2, 3])
    assert rec == {
        "seeds": [0, 1, 2],
        "arms": {"learnt": [0.1, 0.2, 0.3], "uniform": [1.0, 2.0, 3.0]},
        "unit": "rad",
    }
    json.dumps(rec)
    assert seed_record(["kodim01/0", "kodim02/0"], learnt=[1, 2])["seeds"] == ["kodim01/0", "kodim02/0"]


@pytest.mark.parametrize(
    ("seeds", "arms", "match"),
    [
        ([0, 1], {"a": [1.0]}, "arm 'a' has 1 values for 2 seeds"),
        ([0, 0], {"a": [1.0, 2.0]}, "unique"),
        ([0, 1], {"a": [1.0, float("nan")]}, "finite"),
        ([0, 1], {"a": [1.0, "x"]}, "not a number"),
        ([0, 1], {}, "non-empty"),
        ([0.5, 1], {"a": [1.0, 2.0]}, "integers or text"),
    ],
)
def test_seed_record_rejects_bad_input(seeds, arms, match):
    with pytest.raises(ValueError, match=match):
        seed_record(seeds, **arms)


def test_merge_records_of_a_seed_grid():
    runs = [seed_record([s], unit="rad", a=[float(s)], b=[0.0]) for s in (0, 1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = merge_records(runs, "claim_x")
    assert merged["seeds"] == [0, 1, 2] and merged["arms"]["a"] == [0.0, 1.0, 2.0]
    with pytest.warns(UserWarning, match="seed 0 appears in more than one run"):
        assert merge_records([runs[0], runs[0]], "claim_x")["seeds"] == [0]
    with pytest.raises(ValueError, match="unit"):
        merge_records([runs[0], seed_record([5], unit="%", a=[1.0], b=[1.0])], "claim_x")


# ---------------------------------------------------------------- registry schema


def write_claims(folder: Path, name: str, entries) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


VALID = {
    "id": "s3.3.1-learnt-beats-uniform",
    "location": "§3.3.1, Fig. 3.5",
    "statement": "A learnt split gives lower test error than a uniform split.",
    "notebook": NOTEBOOK,
    "record": "claim_rotmnist_learnt_vs_uniform",
    "effect": {"a": "uniform", "b": "learnt"},
    "expect": "greater",
    "margin": 0.0,
    "thesis_value": "0.04 rad lower",
    "family": "fig-3.5",
    "profiles": ["cpu", "paper"],
    "protocol": "3 seeds",
}


def test_valid_registry_loads(tmp_path):
    write_claims(
        tmp_path,
        "ch3.yml",
        [VALID, {**VALID, "id": "s3.3.1-other", "expect": "equivalent", "margin": 0.1, "scale": "log_ratio"}],
    )
    write_claims(tmp_path, "empty.yml", None)
    claims = load_claims(tmp_path)
    assert [c.id for c in claims] == ["s3.3.1-learnt-beats-uniform", "s3.3.1-other"]
    assert claims[0].effect_label == "uniform - learnt" and claims[1].effect_label == "log(uniform / learnt)"
    assert claims[0].profiles == ("cpu", "paper") and claims[0].source == "ch3.yml"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"record": None}, "missing required field 'record'"),
        ({"expect": "bigger"}, "expect 'bigger' is not one of greater, less, equivalent"),
        ({"notebook": "99_nowhere"}, "notebook '99_nowhere' does not exist"),
        ({"expect": "equivalent", "margin": 0}, "equivalence claim needs a margin > 0"),
        ({"colour": "red"}, "unknown field"),
        ({"record": "rotmnist"}, "must match 'claim_"),
        ({"id": "S3 Learnt"}, "id must be lowercase"),
        ({"profiles": ["gpu"]}, "profiles must be a non-empty list"),
        ({"effect": {"a": "x", "c": "y"}}, "effect must be"),
        ({"scale": "ratio"}, "scale 'ratio'"),
        ({"margin": "5%"}, "margin must be a number"),
    ],
)
def test_invalid_claims_name_file_claim_and_fix(tmp_path, change, match):
    entry = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    write_claims(tmp_path, "ch3.yml", [entry])
    with pytest.raises(ClaimsError, match=match) as error:
        load_claims(tmp_path)
    assert "ch3.yml" in str(error.value)
    if "id" not in change:
        assert VALID["id"] in str(error.value)


def test_duplicate_ids_and_bad_files(tmp_path):
    write_claims(tmp_path, "a.yml", [VALID])
    write_claims(tmp_path, "b.yml", [VALID])
    with pytest.raises(ClaimsError, match=r"b.yml.*duplicate id.*a.yml"):
        load_claims(tmp_path)
    (tmp_path / "b.yml").write_text("- id: [unclosed\n", encoding="utf-8")
    with pytest.raises(ClaimsError, match=r"b.yml: is not valid YAML"):
        load_claims(tmp_path)
    (tmp_path / "b.yml").write_text("id: x\n", encoding="utf-8")
    with pytest.raises(ClaimsError, match="must be a YAML list"):
        load_claims(tmp_path)


def project_claims():
    if not CLAIMS_DIR.is_dir() or not list(CLAIMS_DIR.glob("*.yml")):
        pytest.skip("the project's claims registry has no files yet")
    return load_claims()


def test_project_registry_is_valid_and_each_record_is_glued_by_its_notebook():
    claims = project_claims()
    for c in claims:
        source = (NOTEBOOKS_DIR / f"{c.notebook}.ipynb").read_text(encoding="utf-8")
        # the name itself, or a stem the notebook extends: "claim_substitutes_at_vs_none" + f"_{method}"
        assert names_record(source, c.record), (
            f"{c.source}: claim {c.id}: notebook {c.notebook} never names {c.record}"
        )
        untestable = not {"smoke", "cpu"} & set(c.profiles)
        assert not untestable or c.grid or c.cost, f"{c.id}: a claim no cpu run tests needs grid and cost"


# ---------------------------------------------------------------- the ledger over a folder of runs


def glue_output(name, data):
    return nbformat.v4.new_output(
        "display_data",
        data={
            "application/scrapbook.scrap.json+json": {
                "name": name,
                "data": data,
                "encoder": "json",
                "version": 1,
            }
        },
        metadata={"scrapbook": {"name": name, "data": True, "display": False}},
    )


def fake_run(path: Path, notebook: str, profile: str, scraps: dict, completed: bool = True) -> Path:
    """An executed-notebook-like file as thesislib's runner leaves it, with glued ``scraps``."""
    cell = nbformat.v4.new_code_cell("sb.glue(...)")
    cell.outputs = [glue_output(name, data) for name, data in scraps.items()]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["thesislib"] = {
        "notebook": f"notebooks/{notebook}.ipynb",
        "profile": profile,
        "parameters": {"profile": profile},
        "seconds": 1.0,
    }
    if completed:
        nb.metadata["thesislib"]["cache_key"] = "0" * 64
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def runs(tmp_path):
    """A registry of four claims and a folder of cpu runs measuring three of them."""
    registry = write_claims(
        tmp_path / "claims",
        "ch3.yml",
        [
            {**VALID, "id": "s0-positive", "record": "claim_positive", "family": None},
            {**VALID, "id": "s0-negative", "record": "claim_negative", "family": None},
            {
                **VALID,
                "id": "s0-equal",
                "record": "claim_equal",
                "expect": "equivalent",
                "margin": 0.2,
                "family": None,
                "effect": {"a": "uniform", "b": "learnt"},
            },
            {**VALID, "id": "s0-zero", "record": "claim_zero", "family": None},
            {
                **VALID,
                "id": "s0-paper",
                "record": "claim_paper",
                "profiles": ["paper"],
                "family": None,
                "grid": "thesislib batch grids/p.yml --profile paper",
                "cost": "3 GPU-hours",
            },
        ],
    ).parent
    folder = tmp_path / "runs"
    rec = {
        "claim_positive": record_of([1.0, 1.2, 0.9, 1.1]),
        "claim_negative": record_of([-1.0, -1.2, -0.9, -1.1]),
        "claim_zero": record_of([0.3, -0.2, 0.1]),
    }
    fake_run(folder / "02_rotational_mnist.ipynb", NOTEBOOK, "cpu", {**rec, "error_learned": 0.1})
    for seed in range(3):  # a seed grid: one record per run
        fake_run(
            folder / "grid" / f"seed{seed}.ipynb",
            NOTEBOOK,
            "cpu",
            {"claim_equal": seed_record([seed], unit="rad", uniform=[1.0 + 0.01 * seed], learnt=[1.0])},
        )
    fake_run(folder / "smoke" / "02.ipynb", NOTEBOOK, "smoke", {"claim_paper": record_of([1.0, 1.1, 1.2])})
    fake_run(folder / ".02_rotational_mnist.ipynb.1234.ipynb", NOTEBOOK, "cpu", rec, completed=False)
    fake_run(folder / "running.ipynb", NOTEBOOK, "cpu", rec, completed=False)
    (folder / "broken.ipynb").write_text("{not json", encoding="utf-8")
    return registry, folder


def test_ledger_on_a_folder_of_runs(runs):
    registry, folder = runs
    with pytest.warns(UserWarning) as caught:
        table = ledger(folder, "cpu", registry)
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.ipynb" in messages and "running.ipynb" in messages
    verdicts = dict(zip(table["id"], table["verdict"], strict=True))
    assert verdicts == {
        "s0-positive": REPRODUCED,
        "s0-negative": CONTRADICTED,
        "s0-equal": REPRODUCED,
        "s0-zero": INCONCLUSIVE,
        "s0-paper": NOT_RUN,
    }
    equal = table.set_index("id").loc["s0-equal"]
    assert equal["seeds"] == [0, 1, 2] and equal["n"] == 3 and len(equal["sources"]) == 3
    assert verdict_counts(table) == {REPRODUCED: 2, CONTRADICTED: 1, INCONCLUSIVE: 1, NOT_RUN: 1}
    records = ledger_records(table)
    json.dumps(records)
    for row in records:
        assert {"id", "verdict", "seeds", "effect", "interval", "n", "note", "link"} <= set(row)
    html_table = ledger_html(table)
    assert html_table.count("<tr>") == len(table) and "not run at this profile" in html_table
    assert '<a href="02_rotational_mnist.html' in html_table
    paper = records[4]
    assert paper["effect"] is None and paper["interval"] is None and paper["seeds"] == []
    assert paper["command"] == "thesislib batch grids/p.yml --profile paper"


def test_ledger_reads_only_the_profile_asked(runs):
    registry, folder = runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smoke = ledger(folder, "smoke", registry).set_index("id")["verdict"]
        with pytest.raises(ValueError, match=r"profiles cpu, smoke.*--profile"):
            collect_records(folder)
        missing = collect_records(folder / "nowhere")
    assert smoke["s0-paper"] == REPRODUCED and smoke["s0-positive"] == NOT_RUN
    assert missing.records == {} and missing.profile == "cpu"


def cli_run(*argv):
    parser = argparse.ArgumentParser()
    claims_cli.add_arguments(parser)
    return claims_cli.run(parser.parse_args([str(a) for a in argv]))


def test_cli_prints_the_ledger_as_text_and_json(runs, capsys):
    registry, folder = runs
    assert cli_run(folder, "--profile", "cpu", "--claims", registry) == 0
    out, err = capsys.readouterr()
    assert "s0-positive" in out and "reproduced" in out and "1 contradicted" in out
    assert "broken.ipynb" in err
    assert cli_run(folder, "--profile", "cpu", "--claims", registry, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"] == "cpu" and data["verdict_counts"][REPRODUCED] == 2
    assert [c["id"] for c in data["claims"]] == [
        "s0-positive",
        "s0-negative",
        "s0-equal",
        "s0-zero",
        "s0-paper",
    ]
    positive = data["claims"][0]
    assert isinstance(positive["n"], int)
    zero = data["claims"][3]
    assert zero["verdict"] == INCONCLUSIVE and isinstance(zero["seeds_needed"], int)
    assert positive["seeds"] == [0, 1, 2, 3] and positive["effect"] == pytest.approx(1.05)
    assert positive["interval"][0] < 1.05 < positive["interval"][1]


def test_cli_reports_a_broken_registry(tmp_path, capsys):
    write_claims(tmp_path, "ch3.yml", [{**VALID, "expect": "bigger"}])
    assert cli_run(tmp_path, "--claims", tmp_path) == 2
    assert "ch3.yml" in capsys.readouterr().err


def test_section_link_points_at_the_heading_above_the_glue(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Title\n\ntext"),
            nbformat.v4.new_markdown_cell("## Learnt vs uniform (Fig. 3.5)"),
            nbformat.v4.new_code_cell('sb.glue("claim_test", record)'),
        ]
    )
    nbformat.write(nb, tmp_path / f"{NOTEBOOK}.ipynb")
    assert section_link(claim(), tmp_path) == f"{NOTEBOOK}.html#learnt-vs-uniform-fig-3-5"
    assert section_link(claim(record="claim_elsewhere"), tmp_path) == f"{NOTEBOOK}.html"
    chosen = parse_claim({**VALID, "section": "Title", "record": "claim_test"}, "t.yml", tmp_path)
    assert section_link(chosen, tmp_path) == f"{NOTEBOOK}.html#title"
    with pytest.raises(ClaimsError, match=r"section 'Nowhere' is not a heading.*Learnt vs uniform"):
        parse_claim({**VALID, "section": "Nowhere"}, "t.yml", tmp_path)
    assert names_record('per_method(seeds, "claim_at_vs_none")', "claim_at_vs_none_rf")
    assert not names_record('glue("claim_at_vs_none_rf")', "claim_at_vs_none")


@pytest.mark.parametrize("heading", ["Learnt vs uniform (Fig. 3.5)", "3.3.1 Results: élan", "Table 4.3 — AT"])
def test_section_id_fallback_matches_docutils(heading, monkeypatch):
    import builtins

    expected = section_id(heading)
    real_import = builtins.__import__

    def no_docutils(name, *args, **kwargs):
        if name.startswith("docutils"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_docutils)
    assert section_id(heading) == expected


def test_forest_plot_renders_with_bokeh(runs):
    import holoviews as hv

    from thesislib.claims.plots import forest_plot

    registry, folder = runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = build_ledger(load_claims(registry), collect_records(folder, "cpu"))
    hv.extension("bokeh", logo=False)
    figure = forest_plot(table)
    assert isinstance(figure, hv.Layout)
    hv.render(figure, backend="bokeh")
    assert isinstance(forest_plot(table[table["verdict"] == NOT_RUN]), hv.Div)


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_ledger_notebook_on_fake_runs(runs, tmp_path):
    import scrapbook

    from thesislib.runs import run_notebook

    registry, folder = runs
    result = run_notebook(
        NOTEBOOKS_DIR / "07_claims_ledger.ipynb",
        "cpu",
        {"runs_dir": str(folder), "claims_dir": str(registry)},
        tmp_path / "07.ipynb",
        force=True,
        progress=False,
    )
    scraps = scrapbook.read_notebook(str(result.output)).scraps
    ledger_rows = scraps["ledger"].data
    assert {row["id"]: row["verdict"] for row in ledger_rows} == {
        "s0-positive": REPRODUCED,
        "s0-negative": CONTRADICTED,
        "s0-equal": REPRODUCED,
        "s0-zero": INCONCLUSIVE,
        "s0-paper": NOT_RUN,
    }
    assert scraps["verdict_counts"].data == {REPRODUCED: 2, CONTRADICTED: 1, INCONCLUSIVE: 1, NOT_RUN: 1}
    text = result.output.read_text(encoding="utf-8")
    assert "02_rotational_mnist.html" in text and "s0-negative — contradicted" in text


def test_thesislib_claims_command(runs):
    import subprocess
    import sys

    registry, folder = runs
    command = [sys.executable, "-m", "thesislib", "claims", str(folder), "--profile", "cpu", "--json"]
    completed = subprocess.run(
        [*command, "--claims", str(registry)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["verdict_counts"] == {REPRODUCED: 2, CONTRADICTED: 1, INCONCLUSIVE: 1, NOT_RUN: 1}
    assert all({"id", "verdict", "seeds", "effect", "interval"} <= set(row) for row in data["claims"])
