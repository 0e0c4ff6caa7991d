"""Learnt quantisation tables: a bit budget over the 64 DCT coefficients (thesis §3.3.3, Eqs. 3.16–3.19).

The budget split of chapter 3 (:class:`~thesislib.budget.split.BudgetSplit`, Eq. 3.12) spends
B_total = 64·bpp bits per 8×8 block over the coefficients, B = B_total·softmax(γ) (Eq. 3.18),
and each coefficient's bit depth sets its quantisation step Q_ij = 2^(β − B_ij) with β = 8
(Eq. 3.17). During learning, quantisation is emulated by noise added in a Gaussianised space
(:class:`~thesislib.jpeg.cdf.PiecewiseLinearCDF`, Eq. 3.19).

Noise scale. A uniform quantiser of step Q adds error of variance Q²/12; for a coefficient of
standard deviation s_k that is a relative noise 2^β·2^(−B_k)/(√12·s_k). In the Gaussianised
space (unit variance) the noise is therefore σ_k = √v_k·2^(−B_k) with v_k = (2^β/(√12·s_k))²:
exactly the chapter's quantisation process σ = 2^(−r) with per-context variance v_k
(Eqs. 3.6, 3.11–3.12), so the noise matches the JPEG table the same B implies.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from thesislib.budget.split import BudgetSplit
from thesislib.jpeg.cdf import PiecewiseLinearCDF
from thesislib.jpeg.tables import implied_bits, standard_table

COEFFICIENTS = 64
INITS = ("uniform", "jpeg")


def block_budget(bits_per_pixel: float) -> float:
    """B_total for one 8×8 block: 64 × the budget in bits per pixel (positive)."""
    bits_per_pixel = float(bits_per_pixel)
    if not math.isfinite(bits_per_pixel) or bits_per_pixel <= 0:
        raise ValueError(f"the budget in bits per pixel must be positive and finite, got {bits_per_pixel}")
    return COEFFICIENTS * bits_per_pixel


def bits_to_table(bits: Tensor, beta: float = 8.0) -> Tensor:
    """Eq. 3.17: Q_ij = 2^(β − B_ij) (real-valued; see :func:`~thesislib.jpeg.tables.table_for_jpeg`)."""
    return torch.exp2(beta - torch.as_tensor(bits))


class LearntQuantisation(nn.Module):
    """The learnable table of one image: γ → B = B_total·softmax(γ) → Q = 2^(β − B) (Eqs. 3.17–3.18).

    Args:
        coefficients: the image's blockwise DCT coefficients ``[N, 64]`` (level-shifted, 0–255
            scale), used to fit the Gaussianising CDFs and the noise scale.
        bits_per_pixel: the budget; B_total = 64 × bits_per_pixel per block.
        beta: the maximum bit depth β (8 in the thesis).
        init: ``"uniform"`` (γ = 0, no domain knowledge) or ``"jpeg"`` (γ from the bit depths the
            quality-50 Annex K luminance table implies).
        knots: knots of each piecewise-linear CDF.
    """

    def __init__(
        self,
        coefficients: Tensor,
        bits_per_pixel: float,
        beta: float = 8.0,
        init: str = "uniform",
        knots: int = 65,
    ) -> None:
        super().__init__()
        if coefficients.ndim != 2 or coefficients.shape[1] != COEFFICIENTS:
            raise ValueError(
                f"coefficients must be [N, 64] (one row per block), got {tuple(coefficients.shape)}"
            )
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; valid inits: {', '.join(INITS)}")
        if not math.isfinite(beta) or beta <= 0:
            raise ValueError(f"beta must be positive, got {beta}")
        self.beta = float(beta)
        self.cdf = PiecewiseLinearCDF(coefficients, knots=knots)
        spread = coefficients.to(torch.float64).std(dim=0).clamp_min(1e-3)
        variances = (2.0**self.beta / (math.sqrt(12.0) * spread)).square().float()
        gamma = None
        if init == "jpeg":
            gamma = implied_bits(standard_table(50), self.beta).flatten().clamp_min(0.05).log().float()
        self.split = BudgetSplit(COEFFICIENTS, block_budget(bits_per_pixel), "quantisation", variances, gamma)

    @property
    def budget(self) -> float:
        """B_total, bits per block."""
        return self.split.budget

    def bits(self) -> Tensor:
        """B = B_total·softmax(γ) as an 8×8 table (Eq. 3.18); sums to B_total."""
        return self.split.allocation().reshape(8, 8)

    def table(self) -> Tensor:
        """Q = 2^(β − B), real-valued (Eq. 3.17)."""
        return bits_to_table(self.bits(), self.beta)

    def noise_std(self) -> Tensor:
        """σ_k in the Gaussianised space, ``[64]`` (module docstring)."""
        return self.split.std()

    def forward(self, coefficients: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Coefficients ``[..., 64]`` with emulated quantisation: F⁻¹(Φ(Φ⁻¹(F(x)) + σ·ε)) (Eq. 3.19)."""
        normal = self.cdf.to_normal(coefficients)
        noise = torch.randn(normal.shape, generator=generator, dtype=normal.dtype, device=normal.device)
        return self.cdf.from_normal(normal + self.noise_std().to(normal.dtype) * noise)
