"""Learning a JPEG table per image, and comparing it with standard JPEG at equal file size (thesis §3.3.3).

Two ways to learn γ on one image (Figs. 3.12–3.13):

- :func:`learn_perceptual` — (a) back-propagate a differentiable perceptual error (PieAPP in
  the thesis; MS-SSIM when PieAPP's weights are unavailable) through the inverse DCT of the
  noisy coefficients;
- :func:`learn_mlp` — (b) decode the noisy coefficients of each block to its pixels with an MLP
  (one hidden layer of 128 units with batch-norm) under squared error, learning γ jointly.

Both use Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) as in the implementation details. The learnt
table is written into a real JPEG file (:mod:`~thesislib.jpeg.codec`) and compared with the
standard-JPEG quality sweep of the same image: metrics of the sweep are regressed on the
size difference and read off at equal size (:func:`equal_size_comparison`, Fig. 3.12's method).
The input of every image is its luma, optionally centre-cropped (:func:`luma_centre_crop`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from thesislib.jpeg.codec import Encoded, encode
from thesislib.jpeg.dct import BLOCK, blocks_to_image, blockwise_dct, idct2, image_to_blocks, luma
from thesislib.jpeg.learnt import LearntQuantisation
from thesislib.jpeg.metrics import PERCEPTUAL, perceptual_error, preference, quality, resolve_perceptual
from thesislib.jpeg.tables import TableClippedWarning, clipped_entries, table_for_jpeg
from thesislib.training import StepBatches, TrainConfig, Trainer, select_device

METHODS = ("perceptual", "mlp")
MIN_MS_SSIM_SIDE = 168  # MS-SSIM's five scales with an 11-tap window need a side > 160


@dataclasses.dataclass
class JPEGSettings:
    """How to learn and compare tables: plain data that the notebook's parameters fill."""

    steps: int = 300
    """Adam steps per learnt table."""
    lr: float = 1e-3
    """Adam learning rate of the MLP decoder (thesis: 0.001)."""
    split_lr: float = 1e-2
    """Adam learning rate of γ (the thesis used 0.001 throughout; larger moves γ in fewer steps)."""
    crop: int = 256
    """Side of the random square crop each perceptual step scores (0: the whole image)."""
    batch_blocks: int = 2048
    """Blocks per MLP step."""
    hidden: int = 128
    beta: float = 8.0
    init: str = "uniform"
    knots: int = 65
    perceptual: str = "auto"
    qualities: tuple[int, ...] = tuple(range(2, 100, 3))
    """The standard-JPEG quality sweep the learnt tables are compared against."""
    neighbours: int = 4
    """Sweep points (nearest in log size) each equal-size regression uses."""
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_blocks < 2 or self.hidden < 1:
            raise ValueError("steps and hidden must be positive and batch_blocks at least 2")
        if self.lr <= 0 or self.split_lr <= 0:
            raise ValueError(f"learning rates must be positive, got lr={self.lr}, split_lr={self.split_lr}")
        if self.crop and (self.crop % BLOCK or self.crop < MIN_MS_SSIM_SIDE):
            raise ValueError(
                f"crop must be 0 or a multiple of 8 of at least {MIN_MS_SSIM_SIDE}, got {self.crop}"
            )
        if self.perceptual not in PERCEPTUAL:
            raise ValueError(f"unknown perceptual error {self.perceptual!r}; valid: {', '.join(PERCEPTUAL)}")
        if not self.qualities or any(not 1 <= int(q) <= 100 for q in self.qualities):
            raise ValueError(
                f"qualities must be a non-empty list of integers in 1..100, got {self.qualities}"
            )
        if self.neighbours < 2:
            raise ValueError(f"neighbours must be at least 2 for a regression, got {self.neighbours}")
        self.qualities = tuple(sorted({int(q) for q in self.qualities}))


@dataclasses.dataclass
class LearntTable:
    """One learnt table: the bits B (Eq. 3.18), the real-valued table Q (Eq. 3.17) and the loss curve."""

    method: str
    bits_per_pixel: float
    bits: Tensor
    table: Tensor
    losses: list[float]
    seconds: float

    @property
    def jpeg_table(self) -> Tensor:
        """The table as written to the file (rounded, clipped to 1..255, no warning)."""
        return table_for_jpeg(self.table, warn=False)


def luma_centre_crop(image: Tensor, crop: int = 0) -> Tensor:
    """The experiment's input from an RGB uint8 image ``[3, H, W]``: its 8-bit luma, centre-cropped.

    The thesis compressed one 8-bit channel (§3.3.3, Fig. 3.14), here the JFIF luma Y
    (:func:`~thesislib.jpeg.dct.luma`). A positive ``crop`` keeps a ``crop`` × ``crop`` square near
    the centre whose top-left corner lies on the 8×8 block grid of the whole image, so the crop's
    blocks are blocks of the original; 0 keeps the whole image. Returns a contiguous uint8 ``[H, W]``.
    """
    y = luma(image)
    if crop:
        h, w = y.shape
        if not 0 < crop <= min(h, w):
            raise ValueError(f"crop must be 0 or a side in 1..{min(h, w)} for a {h}x{w} image, got {crop}")
        top, left = (h - crop) // 2 // BLOCK * BLOCK, (w - crop) // 2 // BLOCK * BLOCK
        y = y[top : top + crop, left : left + crop]
    return y.contiguous()


def _check_image(image: Tensor) -> Tensor:
    if image.dtype != torch.uint8 or image.ndim != 2:
        raise ValueError(
            f"the experiment takes a greyscale uint8 image [H, W], got {image.dtype} {tuple(image.shape)}"
        )
    return image


def _stable_seed(seed: int, method: str, bits_per_pixel: float) -> int:
    return int(
        np.random.SeedSequence([seed, METHODS.index(method), round(bits_per_pixel * 1000)]).generate_state(1)[
            0
        ]
    )


def _coefficients(image: Tensor, device: torch.device) -> Tensor:
    """Blockwise DCT ``[rows, cols, 64]`` (float32) of a greyscale image."""
    coefficients = blockwise_dct(image.to(torch.float64))
    return coefficients.flatten(-2).float().to(device)


def _fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: StepBatches,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    settings: JPEGSettings,
    seed: int,
    progress: bool,
) -> tuple[list[float], float]:
    """``settings.steps`` Adam steps on the shared :class:`~thesislib.training.Trainer`: the losses and seconds."""
    config = TrainConfig(epochs=1, seed=seed, device=settings.device, progress=progress)
    trainer = Trainer(
        model, optimizer, batches, loss_fn, config, hparams={"jpeg": dataclasses.asdict(settings)}
    )
    history = trainer.fit()
    return [float(loss) for loss in trainer.step_history["loss"]], float(history["seconds"].sum())


def learn_perceptual(
    image: Tensor,
    bits_per_pixel: float,
    settings: JPEGSettings,
    error: str = "ms_ssim",
    progress: bool = True,
) -> LearntTable:
    """(a) Learn γ by back-propagating perceptual error through the inverse DCT of the noisy coefficients."""
    image = _check_image(image)
    device = select_device(settings.device)
    seed = _stable_seed(settings.seed, "perceptual", bits_per_pixel)
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    coefficients = _coefficients(image, device)
    rows, cols, _ = coefficients.shape
    quant = LearntQuantisation(
        coefficients.reshape(-1, 64), bits_per_pixel, settings.beta, settings.init, settings.knots
    )
    quant = quant.to(device)
    perceptual = perceptual_error(error)
    optimizer = torch.optim.Adam(quant.parameters(), lr=settings.split_lr, betas=(0.9, 0.999), eps=1e-8)
    reference = image_to_blocks(image.to(device).float())
    side = settings.crop // BLOCK if settings.crop else 0
    crop_rows, crop_cols = (min(side, rows), min(side, cols)) if side else (rows, cols)

    def window(step: int) -> tuple[int, int]:
        r0 = int(torch.randint(rows - crop_rows + 1, (1,), generator=generator, device=device))
        c0 = int(torch.randint(cols - crop_cols + 1, (1,), generator=generator, device=device))
        return r0, c0

    def loss_fn(model: nn.Module, corner: tuple[int, int]) -> Tensor:
        r0, c0 = corner
        noisy = model(coefficients[r0 : r0 + crop_rows, c0 : c0 + crop_cols], generator=generator)
        decoded = blocks_to_image(idct2(noisy.reshape(crop_rows, crop_cols, BLOCK, BLOCK).float()) + 128.0)
        return perceptual(blocks_to_image(reference[r0 : r0 + crop_rows, c0 : c0 + crop_cols]), decoded)

    losses, seconds = _fit(
        quant, optimizer, StepBatches(window, settings.steps), loss_fn, settings, seed, progress
    )
    with torch.no_grad():
        return LearntTable(
            "perceptual",
            float(bits_per_pixel),
            quant.bits().cpu().double(),
            quant.table().cpu().double(),
            losses,
            seconds,
        )


class BlockDecoder(nn.Module):
    """(b) The MLP decoding a block's 64 noisy DCT coefficients to its 64 pixels: 64 → 128 → BN → ReLU → 64."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 64)
        )

    def forward(self, coefficients: Tensor) -> Tensor:
        return self.net(coefficients / 256.0) * 128.0


def learn_mlp(
    image: Tensor, bits_per_pixel: float, settings: JPEGSettings, progress: bool = True
) -> LearntTable:
    """(b) Learn γ jointly with an MLP decoder from noisy DCT coefficients to pixels, under squared error."""
    image = _check_image(image)
    device = select_device(settings.device)
    seed = _stable_seed(settings.seed, "mlp", bits_per_pixel)
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    coefficients = _coefficients(image, device).reshape(-1, 64)
    pixels = image_to_blocks(image.to(device).float() - 128.0).reshape(-1, 64)
    quant = LearntQuantisation(coefficients, bits_per_pixel, settings.beta, settings.init, settings.knots).to(
        device
    )
    decoder = BlockDecoder(settings.hidden).to(device)
    optimizer = torch.optim.Adam(
        [
            {"params": decoder.parameters(), "lr": settings.lr},
            {"params": quant.parameters(), "lr": settings.split_lr},
        ],
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    batch = min(settings.batch_blocks, len(coefficients))

    def blocks(step: int) -> Tensor:
        return torch.randint(len(coefficients), (batch,), generator=generator, device=device)

    def loss_fn(model: nn.Module, index: Tensor) -> Tensor:
        noisy = model["quant"](coefficients[index], generator=generator).float()
        return (model["decoder"](noisy) - pixels[index]).square().mean()

    model = nn.ModuleDict({"quant": quant, "decoder": decoder})
    losses, seconds = _fit(
        model, optimizer, StepBatches(blocks, settings.steps), loss_fn, settings, seed, progress
    )
    with torch.no_grad():
        return LearntTable(
            "mlp",
            float(bits_per_pixel),
            quant.bits().cpu().double(),
            quant.table().cpu().double(),
            losses,
            seconds,
        )


def scored(image: Tensor, encoded: Encoded, metrics: Sequence[str]) -> dict:
    """Stored size and quality metrics of one encoding of ``image``."""
    return {"bits": encoded.bits, "bpp": encoded.bits_per_pixel, **quality(image, encoded.pixels, metrics)}


def standard_sweep(image: Tensor, qualities: Sequence[int], metrics: Sequence[str]) -> pd.DataFrame:
    """Standard JPEG (Annex K tables, libjpeg scaling) at each quality: stored bits, bpp and metrics."""
    image = _check_image(image)
    rows = [{"quality": int(q), **scored(image, encode(image, quality=int(q)), metrics)} for q in qualities]
    return pd.DataFrame(rows)


def equal_size_comparison(
    sweep_bits: Sequence[float], pairwise: Sequence[float], bits: float, neighbours: int = 4
) -> float:
    """Fig. 3.12's method: regress a learnt-vs-standard comparison on the size difference, read it at zero.

    ``pairwise[q]`` compares the learnt encoding (``bits``) with sweep point q (``sweep_bits[q]``):
    a metric difference (learnt − standard) or a preference probability. The ``neighbours`` sweep
    points nearest in log size are fitted with a line in log(sweep bits / bits); its intercept is the
    comparison were the sizes equal.
    """
    sweep_bits = np.asarray(sweep_bits, dtype=float)
    pairwise = np.asarray(pairwise, dtype=float)
    if sweep_bits.shape != pairwise.shape or sweep_bits.ndim != 1 or len(sweep_bits) < 2:
        raise ValueError("sweep_bits and pairwise must be equal-length vectors with at least 2 points")
    if bits <= 0 or bool((sweep_bits <= 0).any()):
        raise ValueError("sizes must be positive")
    offset = np.log(sweep_bits) - math.log(bits)
    nearest = np.argsort(np.abs(offset), kind="stable")[: max(2, min(neighbours, len(offset)))]
    x, y = offset[nearest], pairwise[nearest]
    finite = np.isfinite(y)
    if finite.sum() < 2 or np.ptp(x[finite]) == 0:
        return float(np.nanmean(y))
    _slope, intercept = np.polyfit(x[finite], y[finite], 1)
    return float(intercept)


def compare_at_equal_size(
    sweep: pd.DataFrame, learnt: dict, metrics: Sequence[str], neighbours: int = 4
) -> dict:
    """Learnt − standard of every metric at the learnt file's size (and PieAPP preference when scored)."""
    out = {}
    for metric in metrics:
        if metric == "pieapp":
            pairwise = preference(learnt["pieapp"], torch.tensor(sweep["pieapp"].to_numpy())).numpy()
            out["preference_at_equal_size"] = equal_size_comparison(
                sweep["bits"], pairwise, learnt["bits"], neighbours
            )
        pairwise = learnt[metric] - sweep[metric].to_numpy()
        out[f"delta_{metric}"] = equal_size_comparison(sweep["bits"], pairwise, learnt["bits"], neighbours)
    out["within_sweep"] = bool(sweep["bits"].min() <= learnt["bits"] <= sweep["bits"].max())
    return out


@dataclasses.dataclass
class ImageResult:
    """Everything one image gives: the sweep, one row per (budget, method), the tables and decoded files."""

    name: str
    sweep: pd.DataFrame
    rows: pd.DataFrame
    tables: dict
    decoded: dict

    def closest_in_size(self, method: str, bits: int) -> tuple[float, Encoded]:
        """The budget (bits per pixel) whose file learnt by ``method`` is nearest ``bits`` in size, and that file.

        Nearest in log size ratio, so a file twice as large is as far as one half the size (the
        comparisons of Fig. 3.14 put a learnt table beside the standard table at a similar size).
        """
        files = {budget: file for (budget, learnt_by), file in self.decoded.items() if learnt_by == method}
        if not files:
            raise ValueError(
                f"no files learnt by {method!r}; this image has {sorted({m for _, m in self.decoded})}"
            )
        if bits <= 0:
            raise ValueError(f"bits must be positive, got {bits}")
        budget = min(files, key=lambda b: abs(math.log(files[b].bits / bits)))
        return budget, files[budget]


def run_image(
    image: Tensor,
    name: str,
    budgets: Sequence[float],
    settings: JPEGSettings,
    methods: Sequence[str] = METHODS,
    progress: bool = True,
) -> ImageResult:
    """Learn tables by each method at each budget, encode them, and compare with the standard sweep."""
    image = _check_image(image)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown methods {unknown}; valid methods: {', '.join(METHODS)}")
    if not budgets or any(not (b > 0 and math.isfinite(b)) for b in budgets):
        raise ValueError(f"budgets must be positive bits per pixel, got {list(budgets)}")
    error, _ = resolve_perceptual(settings.perceptual)
    metrics = ["psnr", "ssim", "ms_ssim"] + (["pieapp"] if error == "pieapp" else [])
    sweep = standard_sweep(image, settings.qualities, metrics)
    rows, tables, decoded = [], {}, {}
    for bpp in budgets:
        for method in methods:
            if method == "perceptual":
                learnt = learn_perceptual(image, bpp, settings, error, progress)
            else:
                learnt = learn_mlp(image, bpp, settings, progress)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TableClippedWarning)  # counted in the row instead
                encoded = encode(image, tables=[learnt.table])
            score = scored(image, encoded, metrics)
            rows.append(
                {
                    "image": name,
                    "budget_bpp": float(bpp),
                    "method": method,
                    **score,
                    **compare_at_equal_size(sweep, score, metrics, settings.neighbours),
                    "clipped_entries": clipped_entries(learnt.table),
                    "final_loss": learnt.losses[-1],
                    "seconds": learnt.seconds,
                }
            )
            tables[(float(bpp), method)] = learnt
            decoded[(float(bpp), method)] = encoded
    return ImageResult(name, sweep, pd.DataFrame(rows), tables, decoded)
