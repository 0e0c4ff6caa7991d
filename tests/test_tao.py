"""Tests of thesislib.budget.tao: the TAO buoy pipeline of thesis §3.3.2 (Figs. 3.7–3.8).

Unit tests use small hand-built frames; the last tests run the whole pipeline on the REAL
UCI El Niño file (``THESISLIB_DATA``, see tests/conftest.py) and fail, never skip, when it
is missing.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from thesislib.budget.tao import (
    FEATURES,
    NOISE,
    PARTS,
    TAOArray,
    build_array,
    buoy_summary,
    choose_buoys,
    group_locations,
    masked_mse,
    mean_baseline_nmse,
    shared_days,
)
from thesislib.data import DATASETS, DataError, read_tao

START = pd.Timestamp("1993-03-27")

# --- the file format ---------------------------------------------------------------------------------

EXCERPT = """\
31534 93 3 27 930327 0.03 -179.89 -1 -2.1 78.7 27.86 28.6
31535 93 3 28 930328 0.03 -179.89 -1.7 -2.9 78.5 28.1 28.71
31536 93 3 29 930329 0.03 -179.89 -4.2 0.3 79.2 28.18 28.72
100000 95 6 23 950623 4.95 137.01 -1.8 -0.6 . . 29.8
100001 95 6 24 950624 4.94 137 -0.8 1.6 . . 29.93
100002 95 6 25 950625 4.95 137.01 1.8 1 . . 29.68
1 80 3 7 800307 -0.02 -109.46 -6.8 0.7 . 26.14 26.24
"""


def test_read_tao_parses_the_file_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gz excerpt in the real format, read through the data layer (registry digest swapped in)."""
    path = tmp_path / "data" / "tao" / "tao-all2.dat.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(EXCERPT.encode()))
    real = DATASETS["tao"]
    excerpt_file = dataclasses.replace(real.files[0], digest=hashlib.sha256(path.read_bytes()).hexdigest())
    monkeypatch.setitem(DATASETS, "tao", dataclasses.replace(real, files=(excerpt_file,)))
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("THESISLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("THESISLIB_OFFLINE", "1")

    frame = read_tao()
    assert list(frame.columns) == ["obs", "date", "latitude", "longitude", *FEATURES]
    assert len(frame) == 7
    assert frame["obs"].tolist() == [31534, 31535, 31536, 100000, 100001, 100002, 1]
    assert frame["date"].iloc[0] == START and frame["date"].iloc[-1] == pd.Timestamp("1980-03-07")
    assert frame["longitude"].iloc[0] == pytest.approx(-179.89)  # west is negative in the file
    assert frame.loc[3, ["humidity", "air_temperature"]].isna().all()  # '.' is NaN
    assert np.isnan(frame.loc[6, "humidity"]) and frame[list(FEATURES)].isna().sum().sum() == 7
    assert frame.loc[0, list(FEATURES)].tolist() == pytest.approx([-1, -2.1, 78.7, 27.86, 28.6])


# --- DBSCAN grouping ---------------------------------------------------------------------------------


def _drifting_buoy(latitude: float, longitude: float, days: int, seed: int) -> pd.DataFrame:
    """Daily rows of one mooring whose position wanders within ±0.1° (longitude in the file's ±180°)."""
    rng = np.random.default_rng(seed)
    latitudes = latitude + rng.uniform(-0.1, 0.1, days)
    longitudes = (longitude + rng.uniform(-0.1, 0.1, days) + 180.0) % 360.0 - 180.0
    return pd.DataFrame(
        {
            "date": START + pd.to_timedelta(np.arange(days), unit="D"),
            "latitude": latitudes.round(2),
            "longitude": longitudes.round(2),
        }
    )


def test_group_locations_merges_drift_and_keeps_buoys_apart() -> None:
    """Two buoys 5° apart, each drifting by 0.1°; one of them straddles the date line."""
    on_date_line = _drifting_buoy(0.0, 180.0, 200, seed=0)  # positions near +179.9 and -179.9
    assert (on_date_line["longitude"] > 0).any() and (on_date_line["longitude"] < 0).any()
    frame = pd.concat([on_date_line, _drifting_buoy(3.0, 176.0, 200, seed=1)], ignore_index=True)
    # Here one standard deviation is 1.5° of latitude and 2° of longitude: eps 0.3 ≈ 0.5°.
    locations = group_locations(frame, eps=0.3, min_samples=5)
    assert locations.index.equals(frame.index) and locations.dtype == np.int64
    assert sorted(locations.unique()) == [0, 1]
    assert locations[:200].nunique() == 1 and locations[200:].nunique() == 1
    assert locations[0] != locations[200]
    assert locations[0] == 1  # ids run west to east: 176°E is west of the date line


def test_group_locations_marks_sparse_positions_as_noise() -> None:
    stray = pd.DataFrame({"date": [START], "latitude": [-8.0], "longitude": [170.0]})
    frame = pd.concat([_drifting_buoy(0.0, 165.0, 100, seed=2), stray], ignore_index=True)
    locations = group_locations(frame, eps=0.3, min_samples=5)
    assert locations.iloc[-1] == NOISE
    assert set(locations.iloc[:-1]) == {0}


def test_group_locations_rejects_bad_arguments() -> None:
    frame = _drifting_buoy(0.0, 165.0, 10, seed=3)
    with pytest.raises(ValueError, match="eps"):
        group_locations(frame, eps=0)
    with pytest.raises(ValueError, match="min_samples"):
        group_locations(frame, min_samples=0)
    with pytest.raises(ValueError, match="empty"):
        group_locations(frame.iloc[:0])
    with pytest.raises(ValueError, match="longitude"):
        group_locations(frame.drop(columns="longitude"))


# --- greedy choice -----------------------------------------------------------------------------------


def _toy(days_of: dict[int, list[int]]) -> tuple[pd.DataFrame, pd.Series]:
    """A frame with one row per (location, day) and its location series."""
    rows = [(location, day) for location, days in days_of.items() for day in days]
    frame = pd.DataFrame(
        {"date": [START + pd.Timedelta(days=day) for _, day in rows], "latitude": 0.0, "longitude": 0.0}
    )
    return frame, pd.Series([location for location, _ in rows], index=frame.index, name="location")


def test_choose_buoys_is_the_greedy_procedure() -> None:
    a, b, c, e = 3, 0, 2, 1
    frame, locations = _toy(
        {
            a: list(range(10)),  # most days (10): buoy 0
            e: list(range(10, 19)),  # 9 days but none shared with a: never useful
            b: list(range(8)),  # keeps 8 days with a ...
            c: [*range(2, 10), 19],  # ... so does c, which has more days (9) in total: c first
            NOISE: list(range(30)),  # noise rows are no location
        }
    )
    assert choose_buoys(frame, locations, count=2) == [a, c]
    assert choose_buoys(frame, locations, count=3) == [a, c, b]  # b keeps 6 days (2..7), e none
    assert shared_days(frame, locations, [a, c, b]).equals(
        pd.DatetimeIndex([START + pd.Timedelta(days=day) for day in range(2, 8)], name="date")
    )
    summary = buoy_summary(frame, locations, [a, c, b])
    assert summary["location"].tolist() == [a, c, b]
    assert summary["observations"].tolist() == [10, 9, 8]
    assert (summary["shared_days"] == 6).all()
    assert summary["first"].tolist() == [START, START + pd.Timedelta(days=2), START]


def test_choose_buoys_breaks_full_ties_by_smaller_id() -> None:
    frame, locations = _toy({5: [0, 1, 2], 4: [0, 1, 2], 7: [0, 1], 6: [1, 2]})
    assert choose_buoys(frame, locations, count=3) == [4, 5, 6]


def test_choose_buoys_rejects_impossible_counts() -> None:
    frame, locations = _toy({0: [0, 1], 1: [1, 2], NOISE: [0, 1, 2]})
    with pytest.raises(ValueError, match="at least 2"):
        choose_buoys(frame, locations, count=1)
    with pytest.raises(ValueError, match="from 2 locations"):
        choose_buoys(frame, locations, count=3)


# --- the array ---------------------------------------------------------------------------------------


def _toy_array_frame(days: int = 40) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(4)
    frame, locations = _toy({0: list(range(days)), 1: list(range(days))})
    for index, feature in enumerate(FEATURES):
        frame[feature] = rng.normal(10.0 * index, 1.0 + index, len(frame))
    frame.loc[[3, 50, 79], "humidity"] = np.nan
    return frame, locations


def test_build_array_fills_normalises_and_splits_by_date() -> None:
    frame, locations = _toy_array_frame()
    array = build_array(frame, locations, [1, 0])
    assert isinstance(array, TAOArray)
    assert array.values.shape == (40, 2, 5) and array.values.dtype == torch.float32
    assert array.observed.dtype == torch.bool
    assert array.bounds == (28, 34)
    assert array.missing_fraction == pytest.approx(3 / 400)
    assert not array.observed[3, 1, 2] and not array.observed[10, 0, 2] and not array.observed[39, 0, 2]
    assert array.values[3, 1, 2] == 0  # filled with the context's training mean
    raw = frame.loc[locations == 0, "sea_surface_temperature"].to_numpy()
    train = raw[:28]
    assert array.values[:, 1, 4].double().numpy() == pytest.approx(
        (raw - train.mean()) / train.std(), abs=1e-5
    )
    assert array.denormalise(array.values)[:, 1, 4].numpy() == pytest.approx(raw, abs=1e-4)
    for name, length in zip(PARTS, (28, 6, 6), strict=True):
        values, observed = array.part(name)
        assert values.shape == (length, 2, 5) and observed.shape == (length, 2, 5)
    assert array.part_dates("train").max() < array.part_dates("val").min()
    with pytest.raises(ValueError, match="valid parts"):
        array.part("validation")


def test_build_array_rejects_merged_buoys_and_bad_splits() -> None:
    frame, locations = _toy_array_frame()
    with pytest.raises(ValueError, match="split"):
        build_array(frame, locations, [0, 1], split=(0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="unknown location"):
        build_array(frame, locations, [0, 2])
    again = frame[locations == 1].iloc[10:13]  # a second row of location 1 on days 10..12
    doubled = pd.concat([frame, again], ignore_index=True)
    doubled_locations = pd.Series([*locations, 1, 1, 1], index=doubled.index, name="location")
    with pytest.raises(ValueError, match="two rows on 3 shared days"):
        build_array(doubled, doubled_locations, [1, 0])


# --- the loss ----------------------------------------------------------------------------------------


def test_masked_mse_ignores_filled_values() -> None:
    generator = torch.Generator().manual_seed(0)
    prediction = torch.randn(6, 5, generator=generator, requires_grad=True)
    plain = prediction.detach()
    target = torch.randn(6, 5, generator=generator)
    observed = torch.rand(6, 5, generator=generator) > 0.3
    loss = masked_mse(prediction, target, observed)
    (grad,) = torch.autograd.grad(loss, prediction)
    slow = sum(
        (float(plain[i, j]) - float(target[i, j])) ** 2 for i in range(6) for j in range(5) if observed[i, j]
    ) / int(observed.sum())
    assert loss.item() == pytest.approx(slow)

    changed = target.clone()
    changed[~observed] = torch.tensor(float("nan"))  # whatever the filled targets hold
    changed_loss = masked_mse(prediction, changed, observed)
    (changed_grad,) = torch.autograd.grad(changed_loss, prediction)
    assert changed_loss.item() == loss.item()
    assert torch.equal(changed_grad, grad)
    assert (grad[~observed] == 0).all()


def test_masked_mse_with_nothing_observed_is_zero_with_grad() -> None:
    prediction = torch.ones(3, 5, requires_grad=True)
    loss = masked_mse(prediction, torch.zeros(3, 5), torch.zeros(3, 5, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert prediction.grad is not None and (prediction.grad == 0).all()
    with pytest.raises(ValueError, match="one shape"):
        masked_mse(prediction, torch.zeros(3, 4), torch.ones(3, 4, dtype=torch.bool))


def test_mean_baseline_nmse_is_the_normalised_test_mse() -> None:
    frame, locations = _toy_array_frame()
    array = build_array(frame, locations, [0, 1])
    values, observed = array.part("test")
    expected = masked_mse(torch.zeros_like(values[:, 1]), values[:, 1], observed[:, 1])
    assert mean_baseline_nmse(array, 1) == pytest.approx(float(expected))
    with pytest.raises(ValueError, match="buoy"):
        mean_baseline_nmse(array, 2)


# --- the real file -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_tao(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The real UCI file through THESISLIB_DATA (offline, cache in tmp); fails if it is absent."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THESISLIB_OFFLINE", "1")
        patch.setenv("THESISLIB_CACHE", str(tmp_path_factory.mktemp("cache")))
        try:
            return read_tao()
        except DataError as error:
            pytest.fail(
                f"the real TAO file tao/tao-all2.dat.gz is missing or corrupt: set THESISLIB_DATA to the "
                f"folder holding tao/ (now {os.environ.get('THESISLIB_DATA')!r}): {error}"
            )


@pytest.fixture(scope="module")
def real_pipeline(real_tao: pd.DataFrame) -> tuple[pd.Series, list[int], TAOArray]:
    locations = group_locations(real_tao)
    chosen = choose_buoys(real_tao, locations)
    return locations, chosen, build_array(real_tao, locations, chosen)


def test_real_locations_are_plausible(real_tao: pd.DataFrame, real_pipeline) -> None:
    locations, _, _ = real_pipeline
    assert len(real_tao) == 178_080
    count = int(locations.max()) + 1
    assert 60 <= count <= 110, count  # the thesis: "around 70" buoys; the file adds short campaigns
    assert (locations == NOISE).mean() < 0.02
    kept = locations != NOISE
    rows_per_day = real_tao[kept].groupby([locations[kept], real_tao["date"][kept]]).size()
    assert rows_per_day.max() == 1  # no location merges two buoys that report on the same day


def test_real_pipeline(real_pipeline) -> None:
    _, chosen, array = real_pipeline
    assert len(chosen) == len(set(chosen)) == 10
    assert array.values.shape == (array.days, 10, 5) and array.days >= 1
    assert array.summary["location"].tolist() == chosen
    assert array.summary["longitude"].between(0, 360).all()
    assert 0 < array.missing_fraction < 1
    assert torch.isfinite(array.values).all()

    values, observed = array.part("train")
    for buoy in range(10):
        for feature in range(5):
            seen = values[:, buoy, feature][observed[:, buoy, feature]].double()
            assert float(seen.mean()) == pytest.approx(0.0, abs=1e-5)
            assert float(seen.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    assert (values[~observed] == 0).all()

    assert array.dates.is_monotonic_increasing and array.dates.is_unique
    train, val, test = (array.part_dates(name) for name in PARTS)
    assert train.max() < val.min() and val.max() < test.min()
    assert len(train) + len(val) + len(test) == array.days
    assert len(train) == int(0.7 * array.days)
    for buoy in range(10):
        assert mean_baseline_nmse(array, buoy) > 0


def test_month_split_keeps_months_whole_and_spans_the_years() -> None:
    from thesislib import data
    from thesislib.budget.tao import build_array, choose_buoys, group_locations

    frame = data.read_tao()
    locations = group_locations(frame)
    chosen = choose_buoys(frame, locations, count=10)
    array = build_array(frame, locations, chosen, order="months", seed=0)
    months = {name: set(array.part_dates(name).to_period("M")) for name in ("train", "val", "test")}
    assert not (months["train"] & months["val"]) and not (months["train"] & months["test"])
    assert not (months["val"] & months["test"])
    test_years = set(array.part_dates("test").year)
    assert len(test_years) >= 5, "a random deal of months spreads the test part over the years"
    assert len(array.dates) == len(build_array(frame, locations, chosen).dates)
    with pytest.raises(ValueError, match="valid orders"):
        build_array(frame, locations, chosen, order="weekly")


def test_imputation_settings_with_seed_change_only_the_seed() -> None:
    from thesislib.budget.imputation import ImputationSettings

    settings = ImputationSettings(hidden=16, epochs=3, lr=0.01)
    seeded = settings.with_seed(7)
    assert seeded.seed == 7 and seeded == ImputationSettings(hidden=16, epochs=3, lr=0.01, seed=7)
    assert settings.seed == 0
