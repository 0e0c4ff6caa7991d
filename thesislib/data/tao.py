"""The UCI El Niño data set: daily readings of the Tropical Atmosphere Ocean (TAO) buoys, 1980-1998.

``tao-all2.dat.gz`` has one space-separated row per buoy and day, 12 columns and
no header: obs, year (two digits), month, day, date (``yymmdd``), latitude,
longitude, zonal winds, meridional winds, humidity, air temperature, sea surface
temperature; ``.`` marks a missing value. Rows are grouped by buoy, not sorted
by date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from thesislib.data.registry import get_dataset
from thesislib.data.store import DataError, locate

if TYPE_CHECKING:
    import pandas as pd

TAO_FILE_COLUMNS = (
    "obs",
    "year",
    "month",
    "day",
    "yymmdd",
    "latitude",
    "longitude",
    "zonal_winds",
    "meridional_winds",
    "humidity",
    "air_temperature",
    "sea_surface_temperature",
)
TAO_MEASUREMENTS = TAO_FILE_COLUMNS[5:]
TAO_COLUMNS = ("obs", "date", *TAO_MEASUREMENTS)
"""Columns of :func:`read_tao`'s frame."""


def read_tao() -> pd.DataFrame:
    """The TAO buoy readings as a tidy frame, one row per buoy and day (178,080 rows).

    Columns: ``obs`` (int, the file's row number), ``date`` (datetime64), then floats
    ``latitude``, ``longitude`` (degrees; west is negative), ``zonal_winds``,
    ``meridional_winds`` (m/s; west/south negative), ``humidity`` (%),
    ``air_temperature``, ``sea_surface_temperature`` (°C), NaN where the file has ``.``.
    """
    import pandas as pd

    path = locate("tao")[get_dataset("tao").files[0].path]
    dtypes = {name: "int64" for name in TAO_FILE_COLUMNS[:5]} | {name: "float64" for name in TAO_MEASUREMENTS}
    raw = pd.read_csv(
        path, sep=r"\s+", header=None, names=list(TAO_FILE_COLUMNS), na_values=["."], dtype=dtypes
    )
    date = pd.to_datetime(
        pd.DataFrame({"year": 1900 + raw["year"], "month": raw["month"], "day": raw["day"]})
    )
    inconsistent = raw["yymmdd"] != raw["year"] * 10_000 + raw["month"] * 100 + raw["day"]
    if inconsistent.any():
        raise DataError(f"{path}: {int(inconsistent.sum())} rows whose yymmdd disagrees with year/month/day")
    frame = raw[list(TAO_MEASUREMENTS)].copy()
    frame.insert(0, "date", date)
    frame.insert(0, "obs", raw["obs"])
    return frame
