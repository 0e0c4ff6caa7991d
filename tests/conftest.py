"""Shared test set-up: the real offline data.

Tests read the real data sets through ``THESISLIB_DATA``. When the caller has not
set it, the project's workplace convention applies: ``../shared/data`` beside the
project. Notebook kernels started by the tests inherit it.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

if "THESISLIB_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["THESISLIB_DATA"] = str(SHARED_DATA)
