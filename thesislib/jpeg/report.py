"""The JPEG page's figures and claim scores (thesis §3.3.3, Figs. 3.12–3.13).

What ``notebooks/04_jpeg_quantisation.ipynb`` draws and records from the per-image results of
:func:`~thesislib.jpeg.experiment.run_image`, kept here so the page only calls it:

- :func:`rate_distortion_panel`: one image's standard-JPEG quality sweep as a rate–distortion curve,
  with the learnt tables as points (above the curve: better than JPEG at the same stored size);
- :func:`table_heatmap`: a quantisation table Q (Eqs. 3.16–3.18) as an 8×8 heatmap of log₂ Q,
  the bit depth each coefficient drops;
- :func:`per_image_scores`: each image's learnt and standard score at equal stored size, averaged
  over the budgets: the paired units of the claims ledger's records of Fig. 3.12.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import holoviews as hv
import numpy as np
import pandas as pd
from torch import Tensor

from thesislib.jpeg.dct import BLOCK
from thesislib.jpeg.experiment import METHODS, ImageResult

__all__ = ["METHOD_COLOURS", "per_image_scores", "rate_distortion_panel", "table_heatmap"]

METHOD_COLOURS: Mapping[str, str] = {"perceptual": "#1f77b4", "mlp": "#ff7f0e"}
"""The colour of each way of learning a table (``METHODS``) in the figures."""


def rate_distortion_panel(result: ImageResult, metric: str, label: str) -> hv.Overlay:
    """One image's rate–distortion plane for ``metric`` (a column of the sweep and the rows, e.g. ``psnr``).

    The standard quality sweep (Annex K tables scaled by quality) is a black curve of ``metric``
    against stored bits per pixel; each learnt table of ``METHODS``
    is a point at its real file's size, hovering its budget. ``label`` names the metric on the axis
    and in the title. The x axis is logarithmic.
    """
    curve = hv.Curve(result.sweep, "bpp", [metric, "quality"], label="standard JPEG (quality sweep)").opts(
        color="black", tools=["hover"]
    )
    overlay = curve
    for method in METHODS:
        part = result.rows[result.rows.method == method]
        overlay = overlay * hv.Scatter(part, "bpp", [metric, "budget_bpp"], label=f"learnt ({method})").opts(
            color=METHOD_COLOURS[method], size=10, tools=["hover"]
        )
    return overlay.opts(
        title=f"{result.name}: {label}",
        xlabel="stored bits per pixel",
        ylabel=label,
        width=420,
        height=330,
        legend_position="bottom_right",
        logx=True,
    )


def table_heatmap(table: Tensor | np.ndarray, title: str) -> hv.HeatMap:
    """An 8×8 quantisation table Q as a heatmap of log₂ Q (Eqs. 3.16–3.18), low frequencies top left.

    With Q = 2^(β − B) (Eq. 3.17, β = 8), log₂ Q = β − B is the bit depth a coefficient drops, so
    the colour scale runs over 0..8. Each cell is ``(column j, row i, log2 Q, Q)``, Q as an integer
    (the table as written to a file: :attr:`~thesislib.jpeg.experiment.LearntTable.jpeg_table`).
    """
    table = np.asarray(table, dtype=float)
    if table.shape != (BLOCK, BLOCK) or not bool((table > 0).all()):
        raise ValueError(f"a quantisation table is 8x8 and positive, got shape {table.shape}")
    grid = [(j, i, float(np.log2(table[i, j])), int(table[i, j])) for i in range(BLOCK) for j in range(BLOCK)]
    return hv.HeatMap(grid, ["column j", "row i"], ["log2 Q", "Q"]).opts(
        title=title,
        cmap="magma",
        clim=(0, 8),
        invert_yaxis=True,
        width=260,
        height=240,
        colorbar=False,
        tools=["hover"],
        fontsize={"title": 8},
    )


def per_image_scores(
    rows: pd.DataFrame, method: str, images: Sequence[str], use_preference: bool = False
) -> tuple[list[float], list[float]]:
    """Per image (in the order of ``images``), the learnt and the standard score at equal stored size.

    Fig. 3.12 compares each learnt file with the standard quality sweep at the same size
    (:func:`~thesislib.jpeg.experiment.equal_size_comparison`). For the claims ledger an image is
    one paired unit, its scores averaged over the budgets of ``method``'s rows (rows of
    :class:`~thesislib.jpeg.experiment.ImageResult`, concatenated over images):

    - ``use_preference`` and PieAPP was scored: the learnt file's probability of being preferred
      (``preference_at_equal_size``) against 0.5, an even preference, for the standard file;
    - otherwise MS-SSIM: the learnt file's ``ms_ssim`` against the sweep's read off at the same
      size, ``ms_ssim − delta_ms_ssim``.

    An image without rows scores NaN.
    """
    part = rows[rows.method == method]
    if use_preference and "preference_at_equal_size" in part:
        learnt = part.groupby("image")["preference_at_equal_size"].mean()
        return learnt.reindex(images).tolist(), [0.5] * len(images)
    learnt = part.groupby("image")["ms_ssim"].mean()
    standard = (part["ms_ssim"] - part["delta_ms_ssim"]).groupby(part["image"]).mean()
    return learnt.reindex(images).tolist(), standard.reindex(images).tolist()
