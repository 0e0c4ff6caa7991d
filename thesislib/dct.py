"""The orthonormal DCT-II of length ``N``, shared by JPEG (§3.3.3, Eq. 3.15) and ACDC (§5.2.3, Eq. 5.4).

:func:`dct_matrix` is ``C[k, m] = s_k cos(π(2m+1)k / 2N)`` with ``s_0 = √(1/N)``, else ``√(2/N)``, so
``X = C x`` and ``x = Cᵀ X`` (orthonormal: ``scipy.fft.dct(norm="ortho")``). :func:`dct` and
:func:`idct` apply it along the last dimension in O(N log N): one real FFT of length ``N``
(``torch.fft.rfft``/``irfft``, half the work of a complex FFT) after Makhoul's (1980) even/odd
reordering ``v = [x₀, x₂, …, …, x₃, x₁]``: ``DCT(x)_k = s_k Re(e^{-iπk/2N} V_k)``, where the
Hermitian half ``V_{N-k} = conj(V_k)`` gives the upper coefficients as ``-s_k Im(e^{-iπk/2N} V_k)``.
:func:`fft_tables` exposes the precomputed indices and twiddles (ACDC's fused fast path uses them).
JPEG's 8×8 blocks use the matrix (:mod:`thesislib.jpeg.dct`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

__all__ = ["complex_dtype", "dct", "dct_matrix", "fft_tables", "idct"]


def dct_matrix(n: int, dtype: torch.dtype = torch.float64, device: Any = None) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``C[k, m] = s_k cos(π(2m+1)k / 2n)`` (``s_0 = √(1/n)``, else ``√(2/n)``).

    Rows are frequencies: ``X = C x`` and ``x = Cᵀ X`` (Eq. 3.15 for ``n = 8``).
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"the DCT length must be a positive integer, got {n!r}")
    n = int(n)
    k = torch.arange(n, dtype=torch.float64, device=device)[:, None]
    m = torch.arange(n, dtype=torch.float64, device=device)[None, :]
    c = torch.cos(math.pi * (2 * m + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c.to(dtype)


@functools.lru_cache(maxsize=64)
def fft_tables(n: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Float64 tables of the length-``n`` DCT by real FFT (computed once per ``n`` and device).

    ``K = n//2 + 1`` frequencies of the real FFT. ``scale`` is ``s`` (length n); ``twiddle`` is
    ``e^{-iπk/2n}`` (length K, complex); ``lo``/``hi`` index the coefficients ``k`` and ``n-k`` that
    frequency ``k`` holds (``hi_valid`` is 0 where ``n-k`` is not a coefficient: ``k = 0``);
    ``order`` is Makhoul's reordering; ``position``/``sign`` locate coefficient ``j`` in the real
    view of the twiddled spectrum (``Re`` at ``2j`` for ``j < K``, ``-Im`` at ``2(n-j)+1`` above).
    """
    with torch.inference_mode(False):  # cached tables must be usable by autograd later
        return _make_tables(n, device)


def _make_tables(n: int, device: torch.device) -> dict[str, torch.Tensor]:
    k_count = n // 2 + 1
    k = torch.arange(k_count, dtype=torch.float64)
    j = torch.arange(n)
    scale = torch.full((n,), math.sqrt(2.0 / n), dtype=torch.float64)
    scale[0] = math.sqrt(1.0 / n)
    hi = (n - torch.arange(k_count)) % n
    hi_valid = torch.ones(k_count, dtype=torch.float64)
    hi_valid[0] = 0.0
    order = torch.cat([torch.arange(0, n, 2), torch.arange(1, n, 2).flip(0)])
    tables = {
        "scale": scale,
        "twiddle": torch.polar(torch.ones_like(k), -math.pi * k / (2 * n)),
        "lo": torch.arange(k_count),
        "hi": hi,
        "hi_valid": hi_valid,
        "order": order,
        "inverse_order": torch.argsort(order),
        "position": torch.where(j < k_count, 2 * j, 2 * (n - j) + 1),
        "sign": torch.where(j < k_count, 1.0, -1.0).to(torch.float64),
    }
    return {name: t.to(device) for name, t in tables.items()}


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype matching a real one (complex128 for float64, else complex64)."""
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def dct(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II along the last dimension in O(N log N): one real FFT (Makhoul's reordering)."""
    n = x.shape[-1]
    t = fft_tables(n, x.device)
    spectrum = torch.fft.rfft(x[..., t["order"]], dim=-1) * t["twiddle"].to(complex_dtype(x.dtype))
    halves = torch.view_as_real(spectrum).flatten(-2)  # Re₀, Im₀, Re₁, Im₁, …
    return halves[..., t["position"]] * (t["sign"] * t["scale"]).to(x.dtype)


def idct(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct` (orthonormal DCT-III) along the last dimension: one inverse real FFT."""
    n = y.shape[-1]
    t = fft_tables(n, y.device)
    c = y / t["scale"].to(y.dtype)
    lo, hi = c[..., t["lo"]], c[..., t["hi"]] * t["hi_valid"].to(y.dtype)  # c_k and c_{n-k} (c_n = 0)
    half = torch.complex(lo, -hi) * t["twiddle"].conj().to(complex_dtype(y.dtype))
    v = torch.fft.irfft(half, n=n, dim=-1)
    return v[..., t["inverse_order"]]
