"""JPEG's standard quantisation tables (ITU-T T.81 Annex K) and libjpeg's quality scaling (thesis §3.3.3).

Tables are 8×8 in natural (row-major) order, the order Pillow's ``qtables=`` takes and
``Image.quantization`` returns. ``quantise``/``dequantise`` are Eq. 3.16, z = round(X / Q).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Annex K.1, Table K.1: the luminance quantisation table (quality 50 in libjpeg).
LUMINANCE = torch.tensor(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=torch.int64,
)

#: Annex K.1, Table K.2: the chrominance quantisation table.
CHROMINANCE = torch.tensor(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
    ],
    dtype=torch.int64,
)

STANDARD_TABLES = {"luminance": LUMINANCE, "chrominance": CHROMINANCE}


def quality_scale(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling``: percentage scale 5000/q below 50, 200 − 2q from 50 (quality 1–100)."""
    if isinstance(quality, bool) or int(quality) != quality or not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be an integer in 1..100, got {quality!r}")
    quality = int(quality)
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def standard_table(quality: int = 50, kind: str = "luminance") -> Tensor:
    """The table libjpeg (and so Pillow) writes at ``quality``: (base·scale + 50) // 100, clipped to 1..255.

    ``kind`` is ``"luminance"`` or ``"chrominance"`` (Annex K, Tables K.1–K.2). The 255 ceiling is
    libjpeg's ``force_baseline``, which Pillow always sets.
    """
    if kind not in STANDARD_TABLES:
        raise ValueError(f"unknown table kind {kind!r}; valid kinds: {', '.join(STANDARD_TABLES)}")
    scale = quality_scale(quality)
    return ((STANDARD_TABLES[kind] * scale + 50) // 100).clamp(1, 255)


def quantise(coefficients: Tensor, table: Tensor) -> Tensor:
    """Eq. 3.16: z = round(X / Q), elementwise over the trailing 8×8 of ``coefficients``."""
    table = torch.as_tensor(table).to(coefficients.device)
    if table.shape != (8, 8) or bool((table <= 0).any()):
        raise ValueError(f"a quantisation table must be 8x8 and positive, got shape {tuple(table.shape)}")
    return torch.round(coefficients / table)


def dequantise(levels: Tensor, table: Tensor) -> Tensor:
    """The decoder's reconstruction X̂ = z·Q (the inverse step of Eq. 3.16)."""
    table = torch.as_tensor(table).to(levels.device)
    if table.shape != (8, 8):
        raise ValueError(f"a quantisation table must be 8x8, got shape {tuple(table.shape)}")
    return levels * table


def implied_bits(table: Tensor, beta: float = 8.0) -> Tensor:
    """The bit depth β − log₂ Q each entry implies (Eq. 3.17 solved for B), floored at 0."""
    table = torch.as_tensor(table, dtype=torch.float64)
    if bool((table <= 0).any()):
        raise ValueError("a quantisation table must be positive")
    return (beta - torch.log2(table)).clamp_min(0.0)


class TableClippedWarning(UserWarning):
    """A learnt table had entries outside baseline JPEG's 1..255 and was clipped."""


def table_for_jpeg(table: Tensor, warn: bool = True) -> Tensor:
    """A real-valued table rounded to integers and clipped to baseline JPEG's 1..255 (int64, 8×8).

    Clipping changes the bit depth a learnt budget asked for (Q < 1 means more than β bits;
    Q > 255 fewer than β − log₂255 ≈ 0.006 bits), so it warns with the count of clipped entries.
    """
    table = torch.as_tensor(table, dtype=torch.float64).detach()
    if table.shape != (8, 8):
        raise ValueError(f"a quantisation table must be 8x8, got shape {tuple(table.shape)}")
    if not bool(torch.isfinite(table).all()) or bool((table <= 0).any()):
        raise ValueError("a quantisation table must be positive and finite")
    rounded = torch.round(table)
    clipped = int(((rounded < 1) | (rounded > 255)).sum())
    if clipped and warn:
        import warnings

        warnings.warn(
            f"{clipped} of 64 quantisation table entries were outside 1..255 "
            f"(range {float(table.min()):.3g}..{float(table.max()):.3g}) and were clipped",
            TableClippedWarning,
            stacklevel=2,
        )
    return rounded.clamp(1, 255).to(torch.int64)


def clipped_entries(table: Tensor) -> int:
    """How many entries of a real-valued table :func:`table_for_jpeg` would clip."""
    rounded = torch.round(torch.as_tensor(table, dtype=torch.float64))
    return int(((rounded < 1) | (rounded > 255)).sum())
