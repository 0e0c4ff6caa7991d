"""The TAO buoy array as an imputation data set (thesis §3.3.2, Figs. 3.7–3.8).

The thesis' pipeline (§3.3.2, "Implementation Details"), one function per step:

1. :func:`group_locations`: the rows of :func:`thesislib.data.read_tao` are grouped into
   locations ("local contexts") with DBSCAN on normalised latitude/longitude, so that the
   slightly drifting daily positions of one moored buoy become one location;
2. :func:`choose_buoys`: 10 locations are chosen greedily to keep as many temporally
   concurrent observations as possible, starting with the location with the most
   observations (Fig. 3.8 shows them);
3. :func:`build_array`: the days shared by the chosen buoys become a tensor
   ``[days, buoys, 5 features]``; missing features (8.3% in the thesis) are replaced by that
   feature's mean in that buoy and flagged in a mask, each (buoy, feature) context is
   normalised, and the days are split into train/validation/test (chronologically, or by whole
   months dealt at random);
4. :func:`masked_mse`: the loss leaves out the features that were filled in, and
   :func:`mean_baseline_nmse` is the "predict the mean" error the thesis quotes per buoy
   (2.88, 2.697 and 0.83 for its buoys 2, 8 and 5).

>>> from thesislib.data import read_tao
>>> frame = read_tao()
>>> locations = group_locations(frame)
>>> chosen = choose_buoys(frame, locations)          # 10 location ids, buoy 0 first
>>> array = build_array(frame, locations, chosen)
>>> values, observed = array.part("train")           # [days, 10, 5] float32 and bool
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

FEATURES: tuple[str, ...] = (
    "zonal_winds",
    "meridional_winds",
    "humidity",
    "air_temperature",
    "sea_surface_temperature",
)
"""The five measurements of every buoy and day, in the order of the feature axis."""

PARTS: tuple[str, ...] = ("train", "val", "test")
"""The parts of :class:`TAOArray`, in the order they are stored."""

DBSCAN_EPS = 0.01
"""Default DBSCAN radius, in standard deviations of the frame's positions (see :func:`group_locations`)."""

DBSCAN_MIN_SAMPLES = 60
"""Default DBSCAN density: daily rows within the radius that make a position a core point."""

NOISE = -1
"""The location id of rows that belong to no location (DBSCAN noise)."""


def east_longitude(longitude: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """Longitude in degrees east, 0–360 (the file's west is negative): the array spans the date line."""
    return longitude % 360.0


def normalised_positions(frame: pd.DataFrame) -> pd.DataFrame:
    """Standardised latitude and east longitude of every row (the units of Fig. 3.8).

    Each coordinate is centred and divided by its standard deviation over the rows of
    ``frame`` (population std), after converting longitude to 0–360 east.
    """
    _require_columns(frame, ("latitude", "longitude"))
    positions = pd.DataFrame(
        {"latitude": frame["latitude"].astype(float), "longitude": east_longitude(frame["longitude"])},
        index=frame.index,
    )
    spread = positions.std(ddof=0).replace(0.0, 1.0)  # one row, or all rows on one parallel/meridian
    return (positions - positions.mean()) / spread


def group_locations(
    frame: pd.DataFrame, eps: float = DBSCAN_EPS, min_samples: int = DBSCAN_MIN_SAMPLES
) -> pd.Series:
    """The location of every row: DBSCAN (Ester et al., 1996) on normalised positions (§3.3.2).

    Positions are :func:`normalised_positions` (each coordinate standardised over the
    rows, longitude in 0–360 east so the array does not straddle the date line). Each
    distinct position is one DBSCAN point weighted by its number of rows (days), so
    ``min_samples`` counts daily rows: a position is a core point when at least
    ``min_samples`` rows lie within ``eps`` of it. This is exactly DBSCAN on the rows, with
    one point per distinct position instead of one per row.

    Choice of the defaults (``eps=0.01``, ``min_samples=60``), on the real file: one
    standard deviation is 4.6° of latitude but 36.7° of longitude, so ``eps = 0.01`` is
    0.046° of latitude and 0.37° of longitude. Drifting moorings are still merged, because
    DBSCAN chains dense neighbouring positions: a buoy's cloud of positions (up to about
    ±0.5°) is one location. What sets the upper limit is not the 2–15° grid but the
    TOGA-COARE moorings on the equator near 156°E: buoys at 156.0°E and 157.5°E were
    deployed at the same time (about 410 common days), only 0.041 standard deviations
    apart, with adrift buoys' tracks in between. From ``eps ≈ 0.011`` on, some location
    holds two rows on the same day (two buoys merged); at ``eps = 0.02`` the 156°E and
    157.5°E moorings are one location with two rows on 410 days, at ``eps = 0.03`` the
    154°E mooring joins them. ``min_samples = 60`` keeps the tracks of buoys
    adrift (a few rows per position) from seeding or bridging locations. The price of the
    small radius: a mooring redeployed about 0.3–0.5° away from its old position (e.g.
    0°, 190.5°E in 1988–92 and 0°, 190.0°E in 1992–98) becomes a second location. On the
    real file this gives 94 locations (the thesis counts "around 70" buoys; the file also
    holds short campaigns), no location has two rows on one day, and about 1% of the rows
    (1,728, mostly drifting tracks) are noise.

    Noise rows get the id :data:`NOISE` (−1): they belong to no location and
    :func:`choose_buoys` ignores them. Location ids are 0, 1, … numbered by DBSCAN over
    positions sorted west to east (then south to north), so low ids lie in the west.

    Note that ``eps`` is relative to the spread of ``frame``: a frame holding only a few
    buoys needs its own ``eps``.

    Returns:
        int64 Series aligned with ``frame.index``, named ``"location"``.
    """
    from sklearn.cluster import DBSCAN

    if len(frame) == 0:
        raise ValueError("cannot group the locations of an empty frame")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if int(min_samples) != min_samples or min_samples < 1:
        raise ValueError(f"min_samples must be a positive integer, got {min_samples}")
    normalised = normalised_positions(frame)
    points = normalised[["longitude", "latitude"]].to_numpy()  # lexicographic: west to east
    positions, inverse, days = np.unique(points, axis=0, return_inverse=True, return_counts=True)
    labels = DBSCAN(eps=eps, min_samples=int(min_samples)).fit(positions, sample_weight=days).labels_
    return pd.Series(labels[inverse.reshape(-1)].astype(np.int64), index=frame.index, name="location")


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the columns {missing}; read it with thesislib.data.read_tao()")


def _presence(frame: pd.DataFrame, locations: pd.Series) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """``(dates, ids, present)``: the sorted dates and location ids (noise left out) and the bool
    table ``present[date, location]``, True where the location has a row on that date."""
    _require_columns(frame, ("date",))
    if not locations.index.equals(frame.index):
        raise ValueError("locations must be aligned with the frame (use group_locations(frame))")
    labels = locations.to_numpy()
    kept = labels != NOISE
    dates, date_codes = np.unique(frame["date"].to_numpy()[kept], return_inverse=True)
    ids, id_codes = np.unique(labels[kept], return_inverse=True)
    present = np.zeros((len(dates), len(ids)), dtype=bool)
    present[date_codes.reshape(-1), id_codes.reshape(-1)] = True
    return pd.DatetimeIndex(dates, name="date"), ids, present


def choose_buoys(frame: pd.DataFrame, locations: pd.Series, count: int = 10) -> list[int]:
    """The thesis' greedy choice of ``count`` locations with many concurrent observations (§3.3.2).

    Start with the location observed on the most days; then, ``count − 1`` times, add the
    location that keeps the most days on which every chosen location has a row. A day
    counts when the location has a row that day, whatever its missing features.

    Ties are broken deterministically: first by the location's total number of observed
    days (more first), then by the smaller location id.

    Returns:
        Location ids in the order chosen: buoy 0, 1, … of the notebook and of :func:`build_array`.

    Raises:
        ValueError: if ``count < 2`` or fewer than ``count`` locations exist (noise excluded).
    """
    if int(count) != count or count < 2:
        raise ValueError(f"count must be an integer of at least 2 buoys, got {count}")
    _, ids, present = _presence(frame, locations)
    if len(ids) < count:
        raise ValueError(f"cannot choose {count} buoys from {len(ids)} locations")
    totals = present.sum(axis=0)
    shared = np.ones(len(present), dtype=bool)
    chosen: list[int] = []
    for _ in range(int(count)):
        kept = (present & shared[:, None]).sum(axis=0)
        best = max(
            (j for j in range(len(ids)) if int(ids[j]) not in chosen),
            key=lambda j: (int(kept[j]), int(totals[j]), -int(ids[j])),
        )
        chosen.append(int(ids[best]))
        shared &= present[:, best]
    return chosen


def _check_chosen(locations: pd.Series, chosen: Sequence[int]) -> list[int]:
    chosen = [int(location) for location in chosen]
    if len(chosen) < 1 or len(set(chosen)) != len(chosen):
        raise ValueError(f"chosen must be distinct location ids, got {chosen}")
    unknown = sorted(set(chosen) - set(locations.unique()) | ({NOISE} & set(chosen)))
    if unknown:
        raise ValueError(f"unknown location ids {unknown}: choose among the ids of group_locations()")
    return chosen


def shared_days(frame: pd.DataFrame, locations: pd.Series, chosen: Sequence[int]) -> pd.DatetimeIndex:
    """The sorted dates on which every chosen location has a row (temporally concurrent observations)."""
    chosen = _check_chosen(locations, chosen)
    dates, ids, present = _presence(frame, locations)
    columns = np.searchsorted(ids, chosen)
    return dates[present[:, columns].all(axis=1)]


def buoy_summary(frame: pd.DataFrame, locations: pd.Series, chosen: Sequence[int]) -> pd.DataFrame:
    """One row per chosen buoy, in the chosen order (buoys 0, 1, … as in the notebook and Fig. 3.8).

    Columns: ``location`` (id), mean ``latitude`` and ``longitude`` (degrees; longitude east,
    0–360), the mean normalised position ``latitude_z``/``longitude_z`` (Fig. 3.8's units,
    :func:`normalised_positions` over the whole frame), ``observations`` (rows of the
    location), ``first``/``last`` date, and ``shared_days`` (the same for every buoy: days on
    which all chosen buoys have a row).
    """
    chosen = _check_chosen(locations, chosen)
    normalised = normalised_positions(frame)
    days = len(shared_days(frame, locations, chosen))
    rows = []
    for location in chosen:
        at = (locations == location).to_numpy()
        rows.append(
            {
                "location": location,
                "latitude": float(frame["latitude"].to_numpy()[at].mean()),
                "longitude": float(east_longitude(frame["longitude"].to_numpy()[at]).mean()),
                "latitude_z": float(normalised["latitude"].to_numpy()[at].mean()),
                "longitude_z": float(normalised["longitude"].to_numpy()[at].mean()),
                "observations": int(at.sum()),
                "first": frame["date"].to_numpy()[at].min(),
                "last": frame["date"].to_numpy()[at].max(),
                "shared_days": days,
            }
        )
    summary = pd.DataFrame(rows)
    summary.index.name = "buoy"
    return summary


@dataclass
class TAOArray:
    """The chosen buoys on their shared days, normalised per context, split into parts (§3.3.2).

    Built by :func:`build_array`. Axis order everywhere: ``[days, buoys, features]`` with
    features :data:`FEATURES` and buoys in :func:`choose_buoys` order.

    Attributes:
        values: float32, normalised per (buoy, feature) context with the mean and std of its
            observed *training* values; a missing value is the context's training mean, i.e. 0.
        observed: bool, False where the file had ``.`` (the value was filled in).
        dates: the shared days, sorted.
        summary: :func:`buoy_summary` of the chosen buoys.
        mean: float64 ``[buoys, features]``, the training means in the file's units.
        std: float64 ``[buoys, features]``, the training standard deviations (population).
        bounds: ``(train_end, val_end)``: days ``[0, train_end)`` are the training part,
            ``[train_end, val_end)`` validation and ``[val_end, days)`` test.
    """

    values: Tensor
    observed: Tensor
    dates: pd.DatetimeIndex
    summary: pd.DataFrame
    mean: Tensor
    std: Tensor
    bounds: tuple[int, int]

    @property
    def days(self) -> int:
        return int(self.values.shape[0])

    @property
    def buoys(self) -> int:
        return int(self.values.shape[1])

    @property
    def missing_fraction(self) -> float:
        """Fraction of missing entries over all days, buoys and features (the thesis: 8.3%)."""
        return float(1.0 - self.observed.double().mean())

    def part_slice(self, name: str) -> slice:
        """The days of part ``name`` (``"train"``, ``"val"`` or ``"test"``) as a slice of the day axis."""
        train_end, val_end = self.bounds
        slices = {
            "train": slice(0, train_end),
            "val": slice(train_end, val_end),
            "test": slice(val_end, self.days),
        }
        if name not in slices:
            raise ValueError(f"unknown part {name!r}; valid parts: {', '.join(PARTS)}")
        return slices[name]

    def part(self, name: str) -> tuple[Tensor, Tensor]:
        """``(values, observed)`` of part ``name``: ``"train"``, ``"val"`` or ``"test"``."""
        days = self.part_slice(name)
        return self.values[days], self.observed[days]

    def part_dates(self, name: str) -> pd.DatetimeIndex:
        """The dates of part ``name``."""
        return self.dates[self.part_slice(name)]

    def denormalise(self, values: Tensor) -> Tensor:
        """Normalised ``[..., buoys, features]`` values back in the file's units (float64)."""
        return values.double() * self.std + self.mean


def _split_bounds(days: int, split: Sequence[float]) -> tuple[int, int]:
    fractions = [float(fraction) for fraction in split]
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"split must be three positive fractions summing to 1 (train, val, test), got {split}"
        )
    train_end = int(np.floor(days * fractions[0] + 1e-9))
    val_end = int(np.floor(days * (fractions[0] + fractions[1]) + 1e-9))
    if not 0 < train_end < val_end < days:
        raise ValueError(f"{days} shared days are too few for the split {tuple(fractions)}: a part is empty")
    return train_end, val_end


def build_array(
    frame: pd.DataFrame,
    locations: pd.Series,
    chosen: Sequence[int],
    split: Sequence[float] = (0.7, 0.15, 0.15),
    order: str = "chronological",
    seed: int = 0,
) -> TAOArray:
    """The imputation data of §3.3.2: chosen buoys × shared days × :data:`FEATURES`.

    - Days: those on which every chosen buoy has a row (:func:`shared_days`), sorted by date.
    - Split, ``order="chronological"``: the first 70% of the days are the training part,
      the next 15% validation, the last 15% test (``split`` fractions, floored); the test part
      is then the 1997–98 El Niño, unlike any training year.
      ``order="months"``: whole calendar months are shuffled (seeded by ``seed``) and dealt to
      the parts in those proportions, so every part spans the years while consecutive days
      (which are strongly correlated) stay in one part; days are then ordered part by part,
      chronologically within each part.
    - Statistics: each (buoy, feature) context's mean and population std over its observed
      values in the training part only, so nothing of the validation/test days leaks in.
    - Missing values (``.`` in the file) are replaced by that feature's training mean in that
      buoy (context), as the thesis does, and flagged in ``observed``; after normalisation
      they are exactly 0.
    - Values are normalised per context: (x − mean) / std.

    Raises:
        ValueError: no shared day, a part would be empty, a chosen location has two rows on
            one day (two buoys merged by a too large DBSCAN radius), or a context has fewer
            than two observed training values or a zero training std (it cannot be normalised).
    """
    _require_columns(frame, ("date", *FEATURES))
    chosen = _check_chosen(locations, chosen)
    dates = shared_days(frame, locations, chosen)
    if len(dates) == 0:
        raise ValueError(f"the locations {chosen} have no day in common")
    if order == "months":
        dates, (train_end, val_end) = _deal_months(dates, split, seed)
    elif order == "chronological":
        train_end, val_end = _split_bounds(len(dates), split)
    else:
        raise ValueError(f"unknown split order {order!r}; valid orders: chronological, months")

    raw = np.empty((len(dates), len(chosen), len(FEATURES)))
    labels = locations.to_numpy()
    on_shared_day = frame["date"].isin(dates).to_numpy()
    for buoy, location in enumerate(chosen):
        rows = frame.loc[(labels == location) & on_shared_day]
        repeated = rows["date"].duplicated()
        if repeated.any():
            raise ValueError(
                f"location {location} has two rows on {int(repeated.sum())} shared days (first on "
                f"{rows['date'][repeated].min().date()}): two buoys were merged; group with a smaller eps"
            )
        raw[:, buoy] = rows.set_index("date").reindex(dates)[list(FEATURES)].to_numpy(dtype=float)
    observed = ~np.isnan(raw)

    train = raw[:train_end]
    counts = (~np.isnan(train)).sum(axis=0)
    if (counts < 2).any():
        buoy, feature = np.argwhere(counts < 2)[0]
        raise ValueError(
            f"buoy {buoy} (location {chosen[buoy]}) has {counts[buoy, feature]} observed training values "
            f"of {FEATURES[feature]}: cannot normalise it"
        )
    mean = np.nanmean(train, axis=0)
    std = np.nanstd(train, axis=0)
    if (std == 0).any():
        buoy, feature = np.argwhere(std == 0)[0]
        raise ValueError(
            f"buoy {buoy} (location {chosen[buoy]}): {FEATURES[feature]} is constant in training"
        )
    normalised = np.where(observed, (raw - mean) / std, 0.0)  # 0 = the context's training mean

    return TAOArray(
        values=torch.from_numpy(normalised.astype(np.float32)),
        observed=torch.from_numpy(observed),
        dates=dates,
        summary=buoy_summary(frame, locations, chosen),
        mean=torch.from_numpy(mean),
        std=torch.from_numpy(std),
        bounds=(train_end, val_end),
    )


def _deal_months(
    dates: pd.DatetimeIndex, split: Sequence[float], seed: int
) -> tuple[pd.DatetimeIndex, tuple[int, int]]:
    """``dates`` reordered as train months, then validation months, then test months, and the two
    part boundaries (see :func:`build_array`)."""
    months = dates.to_period("M")
    unique = months.unique()
    order = np.random.default_rng(seed).permutation(len(unique))
    train_end, val_end = _split_bounds(len(unique), split)
    part_of = {
        unique[index]: 0 if rank < train_end else 1 if rank < val_end else 2
        for rank, index in enumerate(order)
    }
    parts = np.array([part_of[month] for month in months])
    sizes = [int((parts == part).sum()) for part in range(3)]
    if min(sizes) == 0:
        raise ValueError(f"{len(unique)} months are too few for the split {tuple(split)}: a part is empty")
    reordered = pd.DatetimeIndex(np.concatenate([dates[parts == part] for part in range(3)]))
    return reordered, (sizes[0], sizes[0] + sizes[1])


def masked_mse(prediction: Tensor, target: Tensor, observed: Tensor) -> Tensor:
    """Mean squared error over the observed entries only (§3.3.2, "Implementation Details").

    Σ observed·(prediction − target)² / Σ observed: entries whose value was filled in with
    the mean contribute neither to the loss nor to its gradient (whatever the target holds
    there, even NaN). With nothing observed the loss is 0, still attached to the graph.
    """
    if prediction.shape != target.shape or observed.shape != target.shape:
        raise ValueError(
            f"prediction, target and observed must have one shape, got {tuple(prediction.shape)}, "
            f"{tuple(target.shape)} and {tuple(observed.shape)}"
        )
    observed = observed.bool()
    error = torch.where(observed, prediction - target, torch.zeros_like(prediction))
    return error.square().sum() / observed.sum().clamp(min=1)


def mean_baseline_nmse(array: TAOArray, buoy: int) -> float:
    """NMSE of predicting the training mean for ``buoy``'s observed test values (§3.3.2).

    The thesis quotes this baseline per buoy (2.88 and 2.697 for its buoys 2 and 8, 0.83 for
    buoy 5). In :class:`TAOArray`'s normalised units the training mean is 0 and each feature
    is divided by its training std, so the MSE of predicting 0, pooled over the buoy's
    observed test entries of all five features, *is* the squared error normalised by the
    training variance: mean over those entries of (x − mean_train)² / std_train². It is
    above 1 when the test period differs from the training period (drift, El Niño years).
    """
    if not 0 <= buoy < array.buoys:
        raise ValueError(f"buoy must be in 0..{array.buoys - 1}, got {buoy}")
    values, observed = array.part("test")
    entries = values[:, buoy][observed[:, buoy]].double()
    if entries.numel() == 0:
        raise ValueError(f"buoy {buoy} has no observed test value")
    return float(entries.square().mean())
