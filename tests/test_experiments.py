"""The GPU-scale experiments (issue 16): registry, provenance, fake data laid out like the real sets, smoke runs.

The fake ImageNet (2 classes x 4 JPEGs per split) and Cityscapes (2 images with label maps per split)
are built in a temporary folder with the exact real layout and found through THESISLIB_DATA; CIFAR jobs
use CIFAR-shaped random tensors. Every code path (data set x model family x method x substitute) runs
end to end: loading, model, loss, an optimisation step, the real metric, the record notebook the
results store reads. ``THESISLIB_EXHAUSTIVE=1`` runs every registered job the same way (minutes).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from thesislib.data import DataError, DataUnavailableError
from thesislib.data.folders import (
    CITYSCAPES_TRAIN_IDS,
    CITYSCAPES_VOID,
    cityscapes_train_ids,
    locate_folder,
)
from thesislib.experiments import EXPERIMENTS, get_experiment
from thesislib.experiments.data import GlobalBatchSampler, confusion, iou_from_confusion
from thesislib.experiments.runner import run_experiment
from thesislib.runs.results import collect_results

pytestmark = pytest.mark.experiments


def make_fake_imagenet(root: Path, classes: int = 2, per_class: int = 4) -> Path:
    """``root/imagenet/{train,val}/<wnid>/*.JPEG``: the ILSVRC-2012 class-folder layout, tiny JPEGs."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / "imagenet" / split / f"n0144{c:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"n0144{c:04d}_{i}.JPEG", format="JPEG")
    return root


def make_fake_cityscapes(root: Path, images: int = 2) -> Path:
    """``leftImg8bit/{train,val}/<city>/*_leftImg8bit.png`` with ``gtFine/.../*_gtFine_labelIds.png``."""
    from PIL import Image

    rng = np.random.default_rng(1)
    ids = np.array([*CITYSCAPES_TRAIN_IDS, 0, 1, 4])  # evaluated classes and some void ones
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        for i in range(images):
            stem = f"{city}_{i:06d}_000019"
            image_dir = root / "cityscapes" / "leftImg8bit" / split / city
            label_dir = root / "cityscapes" / "gtFine" / split / city
            image_dir.mkdir(parents=True, exist_ok=True)
            label_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(
                image_dir / f"{stem}_leftImg8bit.png"
            )
            labels = rng.choice(ids, size=(32, 64)).astype(np.uint8)
            Image.fromarray(labels).save(label_dir / f"{stem}_gtFine_labelIds.png")
    return root


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fake-data")
    make_fake_imagenet(root)
    make_fake_cityscapes(root)
    return root


@pytest.fixture
def data_path(fake_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("THESISLIB_DATA", str(fake_data))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    return fake_data


# --------------------------------------------------------------------------------------------------------
# The data registry


def test_user_supplied_sets_are_found_and_checked(data_path: Path, tmp_path: Path, monkeypatch) -> None:
    assert locate_folder("imagenet") == data_path / "imagenet"
    assert locate_folder("cityscapes") == data_path / "cityscapes"
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(
        DataUnavailableError, match=r"(?s)never downloaded.*image-net\.org.*imagenet/train/<wnid>"
    ):
        locate_folder("imagenet")
    (tmp_path / "imagenet" / "train" / "n1").mkdir(parents=True)
    with pytest.raises(DataError, match="no val/ folder"):
        locate_folder("imagenet")
    broken = make_fake_cityscapes(tmp_path / "c")
    next((broken / "cityscapes" / "gtFine" / "val").rglob("*.png")).unlink()
    monkeypatch.setenv("THESISLIB_DATA", str(broken))
    with pytest.raises(DataError, match="lack their gtFine label map"):
        locate_folder("cityscapes")


def test_data_cli_lists_and_verifies_user_sets(data_path: Path, capsys) -> None:
    from thesislib.data import cli_data

    assert cli_data("verify", "imagenet") == 0
    assert "layout checked" in capsys.readouterr().out
    assert cli_data("list", None) == 0
    assert "cityscapes" in capsys.readouterr().out


def test_cityscapes_train_ids() -> None:
    ids = np.array([[7, 26, 0], [33, 255, 24]], dtype=np.uint8)
    assert cityscapes_train_ids(ids).tolist() == [[0, 13, CITYSCAPES_VOID], [18, CITYSCAPES_VOID, 11]]


# --------------------------------------------------------------------------------------------------------
# Metrics and sampling


def test_mean_iou_matches_the_definition() -> None:
    """Eq. 4.5 per class against a slow set computation; void pixels ignored, absent classes left out."""
    rng = np.random.default_rng(3)
    labels = torch.from_numpy(rng.integers(0, 4, (2, 6, 7)))
    labels[0, 0, :3] = CITYSCAPES_VOID
    logits = torch.randn(2, 20, 6, 7)
    matrix = confusion(logits, labels, 20)
    mean, per_class = iou_from_confusion(matrix)
    predicted = logits.argmax(1)
    keep = labels != CITYSCAPES_VOID
    expected = []
    for c in range(19):
        a, b = (labels == c) & keep, (predicted == c) & keep
        union = int((a | b).sum())
        if union:
            expected.append(int((a & b).sum()) / union * 100)
            assert per_class[c] == pytest.approx(expected[-1])
    assert mean == pytest.approx(sum(expected) / len(expected))


def test_global_batches_are_the_same_for_any_number_of_processes() -> None:
    one = list(GlobalBatchSampler(10, 4, seed=5))
    for world in (2, 4):
        shards = [list(GlobalBatchSampler(10, 4, rank=r, world=world, seed=5)) for r in range(world)]
        joined = [[index for shard in shards for index in shard[i]] for i in range(len(one))]
        assert joined == one
    evaluation = [list(GlobalBatchSampler(7, 2, rank=r, world=2, shuffle=False)) for r in range(2)]
    assert sorted(i for shard in evaluation for batch in shard for i in batch) == list(range(7))


# --------------------------------------------------------------------------------------------------------
# The registry and its labels


def test_registry_covers_the_thesis_experiments() -> None:
    locations = " ".join(e.location for e in EXPERIMENTS.values())
    for where in ("Table 4.3 (CIFAR-100)", "Table 4.4", "Fig. 4.7", "Table 4.5", "Table 5.1", "Fig. 5.9",
                  "Figs. 5.8, 5.12", "5.11", "5.13", "5.14", "5.15", "5.16", "SECL Table 1", "SECL-LR"):  # fmt: skip
        assert where in locations, where
    # Table 4.3: 25 students x 3 methods + the teacher, per data set
    assert sum(e.name.startswith("t43-c100-") for e in EXPERIMENTS.values()) == 76
    assert get_experiment("c5-wrn-28-10-hashed-b3-scratch-nocrs").value("crs") is False


def test_every_setting_is_labelled_and_every_job_is_estimated() -> None:
    for experiment in EXPERIMENTS.values():
        for row in experiment.provenance():
            assert row["source"] in ("thesis", "delegated", "chosen") and row["where"], (experiment.name, row)
        assert experiment.gpu_hours > 0 or experiment.blocked, experiment.name
        assert math.isfinite(experiment.gpu_hours)
        if experiment.reference is not None:
            from thesislib import reference

            table, row, column = experiment.reference
            assert row in reference.table(table).index, (experiment.name, row)
            assert column in reference.table(table).columns
    assert get_experiment("t44-resnet34-gn-at").settings["lr"].source == "thesis"
    assert get_experiment("c5-wrn-28-10-rf-b1-at-crs").settings["cutout"].source == "chosen"
    with pytest.raises(ValueError, match="did you mean"):
        get_experiment("t43-c100-wrn-40-2-gn4-atx")


def test_cli_lists_runs_and_explains(data_path: Path, tmp_path: Path, capsys) -> None:
    from thesislib.cli import main

    assert main(["experiments", "--match", "t45-*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["t45-erfnet-s-scratch", "t45-erfnet-gn-scratch", "t45-erfnet-gn-at"]
    assert all(r["gpu_hours"] > 0 and r["data"] == "cityscapes" for r in rows)
    assert main(["experiments", "settings", "c5-darts-tt-b2-at-crs"]) == 0
    assert "delegated" in capsys.readouterr().out
    assert main(["experiments", "run", "secl-lr-wrn-40-2-acdc-at", "--profile", "smoke"]) == 2
    assert "not implemented" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------
# Smoke runs


def _path_key(name: str) -> tuple:
    e = get_experiment(name)
    return (e.dataset, e.model.kind, e.model.name.split("-")[0], e.model.substitute, e.model.linear, e.method)


def _representatives() -> list[str]:
    """One runnable experiment per code path, the cheapest network of each."""
    chosen: dict[tuple, str] = {}
    for name, experiment in EXPERIMENTS.items():
        if experiment.blocked:
            continue
        key = _path_key(name)
        if key not in chosen or experiment.mult_adds[0] < get_experiment(chosen[key]).mult_adds[0]:
            chosen[key] = name
    return sorted(chosen.values())


# The WRN-28-10 and WRN-50-2 substitutes differ only in the substituted method from the DARTS/WRN-40-2
# paths tested below; a few of them keep the big networks covered.
_BIG = {"c5-wrn-28-10-scratch", "c5-wrn-28-10-hashed-b3-at-crs", "c5-wrn-50-2-shufflenet-low-linear-at-crs"}


def _quick() -> list[str]:
    names = [n for n in _representatives() if not n.startswith(("c5-wrn-28-10", "c5-wrn-50-2-"))]
    names.remove("c5-darts-acdc-b1-at-crs")  # ~30 s on a CPU; ACDC runs in the SECL jobs
    return sorted({*names, *_BIG, "c5-wrn-50-2-pretrained-eval"})


def _check_run(name: str, out: Path) -> None:
    experiment = get_experiment(name)
    result = run_experiment(name, out, profile="smoke", device="cpu", progress=False)
    assert experiment.metric in result.metrics and math.isfinite(result.metrics[experiment.metric])
    if experiment.metric.endswith("error"):
        assert 0 <= result.metrics[experiment.metric] <= 100
    if experiment.method != "eval":
        assert (result.folder / "model.pt").is_file()
        assert len(result.history) >= 1 and np.isfinite(result.history["loss"]).all()
    table = collect_results(out)
    mine = table[table["notebook"] == name]
    assert mine.set_index("name").loc[experiment.metric, "value"] == pytest.approx(
        result.metrics[experiment.metric]
    )


@pytest.mark.parametrize("name", _quick())
def test_smoke_run_end_to_end(name: str, data_path: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _check_run(name, tmp_path)


@pytest.mark.exhaustive
@pytest.mark.skipif(os.environ.get("THESISLIB_EXHAUSTIVE") != "1", reason="set THESISLIB_EXHAUSTIVE=1")
def test_every_experiment_smoke(data_path: Path, tmp_path: Path) -> None:
    failures = []
    for name, experiment in EXPERIMENTS.items():
        if experiment.blocked:
            continue
        try:
            _check_run(name, tmp_path)
        except Exception as error:  # report them all
            failures.append(f"{name}: {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures)


def test_resume_and_teacher_lookup(data_path: Path, tmp_path: Path) -> None:
    """A finished job re-run just reloads; a student reads its trained teacher's weights from the teacher's folder."""
    torch.set_num_threads(1)
    first = run_experiment(
        "secl-wrn-40-2-acdc-scratch", tmp_path, profile="smoke", device="cpu", progress=False
    )
    again = run_experiment(
        "secl-wrn-40-2-acdc-scratch", tmp_path, profile="smoke", device="cpu", progress=False
    )
    assert again.metrics == first.metrics and again.run_id == first.run_id
    with pytest.raises(FileNotFoundError, match="run `thesislib experiments run t43-c10-wrn-40-2-s-scratch"):
        run_experiment("secl-wrn-40-2-acdc-at", tmp_path / "p", device="cpu", epochs=1, progress=False)


def test_batch_grid_runs_experiment_jobs(data_path: Path, tmp_path: Path) -> None:
    """``thesislib batch`` grids take ``experiment:`` entries; their records go into the results store."""
    from thesislib.runs.batch import _execute, expand_grid
    from thesislib.runs.results import read_sqlite, store_notebook

    grid = tmp_path / "grid.yml"
    grid.write_text(
        "profile: smoke\nruns:\n  - experiment: t44-resnet18-0.5-s-scratch\n    parameters:\n      seed: [0, 1]\n"
    )
    runs = expand_grid(grid, tmp_path / "out")
    assert [r.output.name for r in runs] == [
        "t44-resnet18-0.5-s-scratch.ipynb",
        "t44-resnet18-0.5-s-scratch__seed=1.ipynb",
    ]
    torch.set_num_threads(1)
    for run in runs:
        outcome = _execute(run)
        assert outcome.status == "executed", outcome.error
        store_notebook(tmp_path / "results.sqlite", run.output)
    table = read_sqlite(tmp_path / "results.sqlite")
    errors = table[(table["notebook"] == "t44-resnet18-0.5-s-scratch") & (table["name"] == "top1_error")]
    assert len(errors) == 2 and sorted(json.loads(p)["seed"] for p in errors["parameters"]) == [0, 1]
    bad = tmp_path / "bad.yml"
    bad.write_text("profile: smoke\nruns:\n  - experiment: secl-lr-wrn-40-2-acdc-at\n")
    with pytest.raises(ValueError, match="cannot run yet"):
        expand_grid(bad, tmp_path / "out")


def test_chapter_table_shows_runs_and_commands(data_path: Path, tmp_path: Path) -> None:
    """Paper-profile records found are shown beside the thesis; the others get their command and cost."""
    import pandas as pd

    from thesislib.experiments import chapter_table
    from thesislib.experiments.runner import _write_outputs

    experiment = get_experiment("t45-erfnet-gn-at")
    history = pd.DataFrame([{"epoch": 1, "loss": 1.0, "mean_iou": 67.5}])
    extra = {"run_id": "abc", "seconds": 1.0, "world_size": 4}
    _write_outputs(
        tmp_path / experiment.name, experiment, "paper", 0, None, history, {"mean_iou": 67.5}, extra
    )
    table = chapter_table("4", [tmp_path, tmp_path / "missing"]).set_index("experiment")
    row = table.loc["t45-erfnet-gn-at"]
    assert row["thesis"] == pytest.approx(68.11) and row["this project"] == pytest.approx(67.5)
    assert row["status"] == "ran (1 seed)"
    other = table.loc["t45-erfnet-gn-scratch"]
    assert (
        pd.isna(other["this project"])
        and "thesislib experiments run t45-erfnet-gn-scratch --profile paper" in other["status"]
    )
    assert (
        "cannot run yet"
        in chapter_table("secl").set_index("experiment").loc["secl-lr-wrn-40-2-acdc-at", "status"]
    )
    with pytest.raises(ValueError, match="valid: 4, 5, secl"):
        chapter_table("6")


def test_chapter_table_of_several_chapters_and_its_summary(tmp_path: Path) -> None:
    """Several chapters' rows come in the order asked; the summary line counts runs and blocked jobs."""
    from thesislib.experiments.table import chapter_table, status_summary

    five, secl = chapter_table("5", [tmp_path]), chapter_table("secl", [tmp_path])
    both = chapter_table(("5", "secl"), [tmp_path])
    assert list(both["experiment"]) == [*five["experiment"], *secl["experiment"]]
    blocked = int(both["status"].str.startswith("cannot run").sum())
    assert blocked >= 1
    assert (
        status_summary(both) == f"{len(both)} jobs: 0 with paper-profile runs here, {blocked} cannot run yet"
    )
    with pytest.raises(ValueError, match="unknown chapter '6'"):
        chapter_table(("5", "6"))
