"""Learning JPEG quantisation tables with a bit budget (thesis §3.3.3, Eqs. 3.15–3.19, Figs. 3.11–3.14).

- :mod:`~thesislib.jpeg.dct` — 8×8 blockwise orthonormal DCT-II and inverse, image ↔ blocks, YCbCr;
- :mod:`~thesislib.jpeg.tables` — Annex K tables, libjpeg quality scaling, Eq. 3.16, clipping to 1..255;
- :mod:`~thesislib.jpeg.cdf` — the piecewise-linear CDF that Gaussianises each coefficient (Eq. 3.19);
- :mod:`~thesislib.jpeg.learnt` — :class:`LearntQuantisation`, Q = 2^(β − B), B = B_total·softmax(γ);
- :mod:`~thesislib.jpeg.codec` — real JPEG files through Pillow, with their stored size in bits;
- :mod:`~thesislib.jpeg.metrics` — PSNR, SSIM, MS-SSIM, and PieAPP when its weights load;
- :mod:`~thesislib.jpeg.experiment` — learning γ per image (perceptual error or MLP decoder) and the
  equal-size comparison with the standard-JPEG quality sweep (Fig. 3.12);
- :mod:`~thesislib.jpeg.report` — the page's rate–distortion panels, table heatmaps and per-image
  claim scores (imported on its own: it needs holoviews).
"""

from thesislib.jpeg.cdf import PiecewiseLinearCDF
from thesislib.jpeg.codec import Encoded, decode, encode, read_tables
from thesislib.jpeg.dct import (
    basis_patterns,
    blockwise_dct,
    blockwise_idct,
    dct2,
    idct2,
    luma,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)
from thesislib.jpeg.experiment import (
    JPEGSettings,
    equal_size_comparison,
    learn_mlp,
    learn_perceptual,
    luma_centre_crop,
    run_image,
    standard_sweep,
)
from thesislib.jpeg.learnt import LearntQuantisation, bits_to_table, block_budget
from thesislib.jpeg.metrics import quality, resolve_perceptual
from thesislib.jpeg.tables import (
    TableClippedWarning,
    dequantise,
    quantise,
    standard_table,
    table_for_jpeg,
)

__all__ = [
    "Encoded",
    "JPEGSettings",
    "LearntQuantisation",
    "PiecewiseLinearCDF",
    "TableClippedWarning",
    "basis_patterns",
    "bits_to_table",
    "block_budget",
    "blockwise_dct",
    "blockwise_idct",
    "dct2",
    "decode",
    "dequantise",
    "encode",
    "equal_size_comparison",
    "idct2",
    "learn_mlp",
    "learn_perceptual",
    "luma",
    "luma_centre_crop",
    "quality",
    "quantise",
    "read_tables",
    "resolve_perceptual",
    "rgb_to_ycbcr",
    "run_image",
    "standard_sweep",
    "standard_table",
    "table_for_jpeg",
    "ycbcr_to_rgb",
]
