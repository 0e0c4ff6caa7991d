"""Image quality metrics: PSNR, SSIM, MS-SSIM, and PieAPP when its weights are available (thesis §3.3.3).

The thesis scored and trained with PieAPP (Prashnani et al., 2018), a network of human
preference. ``piq`` downloads its weights on first use; on a machine without internet that
fails, and this module says so and falls back to MS-SSIM (Wang et al., 2003) as the
differentiable perceptual error. :func:`resolve_perceptual` reports which one runs.

All functions take images on the 0–255 scale, ``[H, W]``, ``[C, H, W]`` or ``[N, C, H, W]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import piq
import torch
from torch import Tensor

METRICS = ("psnr", "ssim", "ms_ssim", "pieapp")
PERCEPTUAL = ("auto", "pieapp", "ms_ssim")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "ms_ssim": True, "pieapp": False}


def _batch(image: Tensor) -> Tensor:
    image = torch.as_tensor(image)
    if image.ndim == 2:
        image = image[None, None]
    elif image.ndim == 3:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(f"images must be [H, W], [C, H, W] or [N, C, H, W], got {tuple(image.shape)}")
    return (image.to(torch.float32) / 255.0).clamp(0.0, 1.0)


def pieapp_weights_path() -> Path:
    """Where ``torch.hub`` keeps piq's PieAPP weights."""
    url = piq.PieAPP._weights_url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


@functools.lru_cache(maxsize=1)
def _pieapp_or_reason() -> tuple[torch.nn.Module | None, str]:
    try:
        model = piq.PieAPP(reduction="none", data_range=1.0, stride=27, enable_grad=True)
    except (OSError, RuntimeError, ValueError) as error:  # URLError is an OSError
        return None, f"PieAPP weights unavailable ({type(error).__name__}: {error})"
    return model.eval(), "PieAPP weights loaded"


def pieapp_available(download: bool = True) -> bool:
    """Whether PieAPP can run: its weights are cached, or (``download``) can be downloaded now."""
    if not download and not pieapp_weights_path().is_file():
        return False
    return _pieapp_or_reason()[0] is not None


def resolve_perceptual(requested: str = "auto") -> tuple[str, str]:
    """The perceptual error to use and why: ``("pieapp" | "ms_ssim", reason)``.

    ``"auto"`` takes PieAPP when its weights load, else MS-SSIM; ``"pieapp"`` raises
    ``RuntimeError`` if they do not; ``"ms_ssim"`` always uses MS-SSIM.
    """
    if requested not in PERCEPTUAL:
        raise ValueError(f"unknown perceptual error {requested!r}; valid: {', '.join(PERCEPTUAL)}")
    if requested == "ms_ssim":
        return "ms_ssim", "MS-SSIM requested"
    model, reason = _pieapp_or_reason()
    if model is not None:
        return "pieapp", reason
    if requested == "pieapp":
        raise RuntimeError(f"PieAPP was requested but cannot run: {reason}")
    return "ms_ssim", f"{reason}; falling back to MS-SSIM"


def _pieapp(reference: Tensor, distorted: Tensor) -> Tensor:
    model, reason = _pieapp_or_reason()
    if model is None:
        raise RuntimeError(reason)
    if reference.shape[1] == 1:
        reference, distorted = reference.expand(-1, 3, -1, -1), distorted.expand(-1, 3, -1, -1)
    return model(distorted, reference)


def perceptual_error(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """A differentiable error ``(reference, distorted) -> scalar`` on the 0–255 scale, lower is better.

    ``"ms_ssim"``: 1 − MS-SSIM; ``"pieapp"``: the PieAPP score (its predicted perceptual error).
    """
    if name == "ms_ssim":
        return lambda ref, dist: (
            1.0 - piq.multi_scale_ssim(_batch(dist.clamp(0, 255)), _batch(ref), data_range=1.0)
        )
    if name == "pieapp":
        return lambda ref, dist: _pieapp(_batch(ref), _batch(dist.clamp(0, 255))).mean()
    raise ValueError(f"unknown perceptual error {name!r}; valid: ms_ssim, pieapp")


def quality(
    reference: Tensor, distorted: Tensor, metrics: Sequence[str] = ("psnr", "ssim", "ms_ssim")
) -> dict:
    """Full-reference metrics of ``distorted`` against ``reference`` (0–255 scale): a dict name → float."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; valid metrics: {', '.join(METRICS)}")
    ref, dist = _batch(reference), _batch(distorted)
    if ref.shape != dist.shape:
        raise ValueError(f"images differ in shape: {tuple(ref.shape)} vs {tuple(dist.shape)}")
    out = {}
    with torch.no_grad():
        for metric in metrics:
            if metric == "psnr":
                out[metric] = float(piq.psnr(dist, ref, data_range=1.0))
            elif metric == "ssim":
                out[metric] = float(piq.ssim(dist, ref, data_range=1.0))
            elif metric == "ms_ssim":
                out[metric] = float(piq.multi_scale_ssim(dist, ref, data_range=1.0))
            else:
                out[metric] = float(_pieapp(ref, dist).mean())
    return out


def preference(score_a: float | Tensor, score_b: float | Tensor) -> Tensor:
    """PieAPP's probability that A is preferred over B given their error scores: σ(S_B − S_A) (Prashnani 2018)."""
    return torch.sigmoid(
        torch.as_tensor(score_b, dtype=torch.float64) - torch.as_tensor(score_a, dtype=torch.float64)
    )
