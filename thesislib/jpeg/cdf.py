"""Gaussianising each DCT coefficient with a piecewise-linear CDF, and back (thesis §3.3.3, Eq. 3.19).

DCT coefficients are far from normal (heavy-tailed AC terms), so adding normal noise to
them would not set a signal-to-noise ratio. Each coefficient is therefore cast into a
normal space, g = Φ⁻¹(F(x)), where F is a piecewise-linear CDF through the coefficient's
empirical quantiles; normal noise is added there, and the result is mapped back by
inverse transform sampling, x' = F⁻¹(Φ(g')) — since Pr(F⁻¹(U) ≤ x) = Pr(U ≤ F(x)) = F(x)
(Eq. 3.19, Devroye 1986). Both directions are differentiable almost everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_normal = torch.distributions.Normal(0.0, 1.0)


class PiecewiseLinearCDF(nn.Module):
    """Per-dimension piecewise-linear CDFs F_d fitted to ``samples`` ``[N, D]`` at ``knots`` quantiles.

    Knot probabilities run evenly over [ε, 1 − ε] with ε = 1/(2N) (at least 1e-4), so Φ⁻¹
    stays finite; values outside the fitted range are clamped to it. Knot values are
    nudged to be strictly increasing, so F is invertible even where a coefficient has ties
    (a flat image region gives many exact zeros).
    """

    def __init__(self, samples: Tensor, knots: int = 65) -> None:
        super().__init__()
        if samples.ndim != 2 or samples.shape[0] < 2:
            raise ValueError(f"samples must be [N, D] with N >= 2, got {tuple(samples.shape)}")
        if int(knots) != knots or knots < 2:
            raise ValueError(f"knots must be an integer >= 2, got {knots}")
        samples = samples.detach().to(torch.float64)
        if not bool(torch.isfinite(samples).all()):
            raise ValueError("samples must be finite")
        eps = max(0.5 / samples.shape[0], 1e-4)
        probabilities = torch.linspace(eps, 1 - eps, int(knots), dtype=torch.float64)
        values = torch.quantile(samples, probabilities, dim=0).T.contiguous()  # [D, K]
        spread = (values[:, -1] - values[:, 0]).clamp_min(1e-6)
        values = torch.cummax(values, dim=1).values + spread[:, None] * 1e-6 * torch.arange(int(knots))
        self.register_buffer("probabilities", probabilities)
        self.register_buffer("values", values)

    @property
    def dims(self) -> int:
        return self.values.shape[0]

    def _check(self, x: Tensor) -> None:
        if x.shape[-1] != self.dims:
            raise ValueError(f"expected [..., {self.dims}] inputs, got {tuple(x.shape)}")

    def cdf(self, x: Tensor) -> Tensor:
        """u = F(x), per dimension, in [ε, 1 − ε]."""
        self._check(x)
        flat = x.reshape(-1, self.dims).to(self.values.dtype).T.contiguous()  # [D, M]
        upper = torch.searchsorted(self.values, flat).clamp(1, self.values.shape[1] - 1)
        lower = upper - 1
        x0, x1 = self.values.gather(1, lower), self.values.gather(1, upper)
        t = ((flat - x0) / (x1 - x0)).clamp(0.0, 1.0)
        p0, p1 = self.probabilities[lower], self.probabilities[upper]
        return (p0 + t * (p1 - p0)).T.reshape(x.shape)

    def quantile(self, u: Tensor) -> Tensor:
        """x = F⁻¹(u), per dimension (u is clamped to the knots' range)."""
        self._check(u)
        first, last = self.probabilities[0], self.probabilities[-1]
        steps = self.values.shape[1] - 1
        position = ((u.to(self.values.dtype) - first) / (last - first)).clamp(0.0, 1.0) * steps
        flat = position.reshape(-1, self.dims).T  # [D, M]
        lower = flat.detach().floor().clamp(0, steps - 1).long()
        t = flat - lower
        x0, x1 = self.values.gather(1, lower), self.values.gather(1, lower + 1)
        return (x0 + t * (x1 - x0)).T.reshape(u.shape)

    def to_normal(self, x: Tensor) -> Tensor:
        """g = Φ⁻¹(F(x)): the coefficient in the Gaussianised space."""
        return _normal.icdf(self.cdf(x))

    def from_normal(self, g: Tensor) -> Tensor:
        """x = F⁻¹(Φ(g)): inverse transform sampling back to the coefficient's space (Eq. 3.19)."""
        return self.quantile(_normal.cdf(g))

    def extra_repr(self) -> str:
        return f"dims={self.dims}, knots={self.values.shape[1]}"
