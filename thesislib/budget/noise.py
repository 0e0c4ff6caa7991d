"""Noise processes: how the resources r_c spent on a context set its noise σ_c (thesis §3.2.1).

- ``standard_error``: σ_c = 1/√r_c (Eq. 3.4) — r_c samples averaged into a statistic;
- ``sampling_rate``: σ_c = 1/r_c (Eq. 3.5) — event timings at sampling rate r_c;
- ``quantisation``: σ_c = 2^(−r_c) (Eq. 3.6) — a feature quantised with r_c bits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

NOISE_PROCESSES: dict[str, Callable[[Tensor], Tensor]] = {
    "standard_error": torch.rsqrt,  # Eq. 3.4
    "sampling_rate": torch.reciprocal,  # Eq. 3.5
    "quantisation": lambda resources: torch.exp2(-resources),  # Eq. 3.6
}
"""Noise processes by name: resources r_c -> noise standard deviation σ_c (Eqs. 3.4-3.6)."""


def check_process(process: str) -> str:
    """Return ``process`` if it names a noise process, else raise ``ValueError`` listing them."""
    if process not in NOISE_PROCESSES:
        raise ValueError(f"unknown noise process {process!r}; valid processes: {', '.join(NOISE_PROCESSES)}")
    return process


def noise_std(process: str, resources: Tensor) -> Tensor:
    """σ_c(r_c) of ``process`` for resources ``resources`` (Eqs. 3.4–3.6); resources must be positive."""
    check_process(process)
    resources = torch.as_tensor(resources)
    if not resources.is_floating_point():
        resources = resources.to(torch.get_default_dtype())
    if bool((resources <= 0).any()):
        raise ValueError(f"resources must be positive, got {resources.tolist()}")
    return NOISE_PROCESSES[process](resources)
