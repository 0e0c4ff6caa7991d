"""Tests of the chapter-3 helpers that notebooks 01, 02 and 04 used to define in their cells (issue 12).

- ``frozen_linear_model`` and ``learn_linear_split`` (notebook 01, §3.1–3.2) on a three-context linear
  problem whose optimal split has a closed form;
- ``RotationSettings.with_seed`` (notebook 02, §3.3.1);
- ``luma_centre_crop``, ``rate_distortion_panel``, ``table_heatmap`` and ``per_image_scores``
  (notebook 04, §3.3.3) on tiny images and hand-made result tables.
"""

from __future__ import annotations

import dataclasses

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import torch

from thesislib.budget.rotational_mnist import RotationSettings
from thesislib.budget.synthetic import LinearProblem, frozen_linear_model, learn_linear_split
from thesislib.jpeg.codec import Encoded
from thesislib.jpeg.experiment import ImageResult, luma_centre_crop
from thesislib.jpeg.report import METHOD_COLOURS, per_image_scores, rate_distortion_panel, table_heatmap

# w = (2, 1, 1/4), v = (4, 1, 1): a_c = w_c² v_c = (16, 1, 1/16), so under the standard-error process
# r*_c = B √a_c / Σ_k √a_k = B (4, 1, 1/4) / 5.25, i.e. (10.667, 2.667, 0.667) for B = 14.
PROBLEM = LinearProblem(torch.tensor([2.0, 1.0, 0.25]), torch.tensor([4.0, 1.0, 1.0]))
BUDGET = 14.0
OPTIMUM = torch.tensor([32.0, 8.0, 2.0]) / 3


# -- notebook 01: the frozen linear predictor and its learnt split ----------------------------------------


def test_frozen_linear_model_predicts_w_dot_x_and_learns_only_the_split() -> None:
    model = frozen_linear_model(PROBLEM, BUDGET, "sampling_rate")
    x = torch.tensor([[[1.0], [2.0], [4.0]], [[-1.0], [0.0], [8.0]]])  # [N=2, C=3, 1]
    assert torch.allclose(model.predictor(x), torch.tensor([[5.0], [0.0]]))
    learnt = [name for name, p in model.named_parameters() if p.requires_grad]
    assert learnt == ["split.gamma"]
    assert model.split.process == "sampling_rate" and model.split.budget == BUDGET
    assert torch.equal(model.split.variances, PROBLEM.variances)
    assert torch.allclose(model.split.allocation(), torch.full((3,), BUDGET / 3))  # γ = 0: uniform


def test_learn_linear_split_finds_the_closed_form_optimum() -> None:
    allocation, history = learn_linear_split(
        PROBLEM, BUDGET, 1000, 10, lr=0.1, batch_size=100, seed=0, device="cpu", progress=False
    )
    assert torch.allclose(PROBLEM.analytic_allocation(BUDGET), OPTIMUM)
    assert allocation.device.type == "cpu" and float(allocation.sum()) == pytest.approx(BUDGET, rel=1e-5)
    assert torch.allclose(allocation, OPTIMUM, rtol=0.05)
    optimal, uniform = PROBLEM.expected_loss(OPTIMUM), PROBLEM.expected_loss(torch.full((3,), BUDGET / 3))
    assert float(optimal) == pytest.approx(1.96875)  # Σ a_c / r*_c = 5.25² / 14
    assert float(PROBLEM.expected_loss(allocation)) < 1.01 * float(optimal) < float(uniform)
    assert list(history["epoch"]) == list(range(1, 11))  # one row per epoch, the split after it
    last = torch.tensor(history[["r0", "r1", "r2"]].iloc[-1].to_numpy(), dtype=allocation.dtype)
    assert torch.allclose(last, allocation)


# -- notebook 02: one set of settings, one run per paired seed ---------------------------------------------


def test_rotation_settings_with_seed_changes_only_the_seed() -> None:
    settings = RotationSettings(hidden=32, epochs=1, split_lr=0.05, noise_samples=2, seed=0, device="cpu")
    other = settings.with_seed(3)
    assert other.seed == 3 and settings.seed == 0
    assert dataclasses.replace(other, seed=0) == settings
    assert settings.with_seed(0) == settings


# -- notebook 04: the image, the figures and the claim scores ---------------------------------------------


def _grey_rgb(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An RGB image with R = G = B (so its luma is that grey) whose grey encodes each pixel's position."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    grey = (rows * 5 + cols).to(torch.uint8)
    return grey.expand(3, height, width).contiguous(), grey


def test_luma_centre_crop_keeps_a_block_aligned_square_near_the_centre() -> None:
    image, grey = _grey_rgb(40, 48)
    assert torch.equal(luma_centre_crop(image), grey)
    crop = luma_centre_crop(image, 16)
    # top = (40 − 16) // 2 = 12 → 8 on the block grid; left = (48 − 16) // 2 = 16, already on it
    assert crop.dtype == torch.uint8 and crop.is_contiguous()
    assert torch.equal(crop, grey[8:24, 16:32])
    assert torch.equal(luma_centre_crop(image, 40), grey[:, :40])  # left = 4 → 0
    with pytest.raises(ValueError, match="crop"):
        luma_centre_crop(image, 41)


def _image_result() -> ImageResult:
    sweep = pd.DataFrame(
        {
            "quality": [10, 50, 90],
            "bpp": [0.2, 0.8, 2.4],
            "psnr": [25.0, 31.0, 38.0],
            "ms_ssim": [0.8, 0.9, 0.99],
        }
    )
    rows = pd.DataFrame(
        {
            "image": ["kodim03"] * 4,
            "method": ["perceptual", "mlp", "perceptual", "mlp"],
            "budget_bpp": [0.5, 0.5, 1.0, 1.0],
            "bpp": [0.4, 0.45, 0.9, 1.1],
            "psnr": [29.0, 28.5, 32.0, 33.0],
            "ms_ssim": [0.88, 0.87, 0.93, 0.94],
        }
    )
    return ImageResult("kodim03", sweep, rows, {}, {})


def _file(size_bytes: int) -> Encoded:
    return Encoded(bytes(size_bytes), torch.zeros(8, 8, dtype=torch.uint8))


def test_closest_in_size_is_nearest_in_log_ratio_among_one_methods_files() -> None:
    decoded = {
        (0.25, "perceptual"): _file(40),  # 320 bits: half of 640
        (0.5, "perceptual"): _file(130),  # 1040 bits: 1.6x, nearer than half in ratio, farther in bits
        (1.0, "perceptual"): _file(400),
        (0.5, "mlp"): _file(80),  # 640 bits exactly, but another method's
    }
    result = ImageResult("kodim03", pd.DataFrame(), pd.DataFrame(), {}, decoded)
    budget, file = result.closest_in_size("perceptual", 640)
    assert budget == 0.5 and file is decoded[(0.5, "perceptual")]
    assert result.closest_in_size("mlp", 10_000) == (0.5, decoded[(0.5, "mlp")])
    with pytest.raises(ValueError, match="no files learnt by 'pieapp'"):
        result.closest_in_size("pieapp", 640)
    with pytest.raises(ValueError, match="bits must be positive"):
        result.closest_in_size("mlp", 0)


def test_rate_distortion_panel_draws_the_sweep_and_each_methods_tables() -> None:
    hv.extension("bokeh", logo=False)
    panel = rate_distortion_panel(_image_result(), "psnr", "PSNR (dB)")
    curve, perceptual, mlp = panel
    assert isinstance(curve, hv.Curve) and curve.label == "standard JPEG (quality sweep)"
    assert list(curve.dimension_values("bpp")) == [0.2, 0.8, 2.4]
    assert list(curve.dimension_values("psnr")) == [25.0, 31.0, 38.0]
    assert list(curve.dimension_values("quality")) == [10, 50, 90]
    assert perceptual.label == "learnt (perceptual)" and mlp.label == "learnt (mlp)"
    assert list(perceptual.dimension_values("bpp")) == [0.4, 0.9]
    assert list(mlp.dimension_values("psnr")) == [28.5, 33.0]
    assert list(mlp.dimension_values("budget_bpp")) == [0.5, 1.0]
    assert mlp.opts.get().kwargs["color"] == METHOD_COLOURS["mlp"]
    options = panel.opts.get().kwargs
    assert options["title"] == "kodim03: PSNR (dB)" and options["ylabel"] == "PSNR (dB)" and options["logx"]


def test_table_heatmap_colours_log2_of_each_entry_at_its_row_and_column() -> None:
    hv.extension("bokeh", logo=False)
    table = np.ones((8, 8))
    table[0, 1], table[7, 0] = 4.0, 255.0  # row 0, column 1; row 7, column 0
    heatmap = table_heatmap(torch.tensor(table), "a table")
    cells = {
        (int(j), int(i)): (float(log_q), int(q))
        for j, i, log_q, q in zip(
            heatmap.dimension_values("column j"),
            heatmap.dimension_values("row i"),
            heatmap.dimension_values("log2 Q"),
            heatmap.dimension_values("Q"),
            strict=True,
        )
    }
    assert len(cells) == 64 and cells[(0, 0)] == (0.0, 1)
    assert cells[(1, 0)] == (2.0, 4)
    assert cells[(0, 7)] == (pytest.approx(np.log2(255.0)), 255)
    options = heatmap.opts.get().kwargs
    assert options["title"] == "a table" and options["clim"] == (0, 8) and options["invert_yaxis"]
    with pytest.raises(ValueError, match="8x8"):
        table_heatmap(np.ones((4, 4)), "too small")


def test_per_image_scores_average_the_budgets_of_each_image_in_the_given_order() -> None:
    rows = pd.DataFrame(
        {
            "image": ["a", "a", "b", "b", "a"],
            "method": ["mlp", "mlp", "mlp", "mlp", "perceptual"],
            "ms_ssim": [0.90, 0.80, 0.70, 0.75, 0.5],
            "delta_ms_ssim": [0.02, -0.04, 0.10, 0.05, 0.0],
            "preference_at_equal_size": [0.6, 0.8, 0.3, 0.5, 0.9],
        }
    )
    learnt, standard = per_image_scores(rows, "mlp", ["b", "a", "c"])
    assert learnt[:2] == pytest.approx([0.725, 0.85]) and np.isnan(learnt[2])
    # the sweep at equal size: ms_ssim − delta_ms_ssim = (0.60, 0.70) for b, (0.88, 0.84) for a
    assert standard[:2] == pytest.approx([0.65, 0.86]) and np.isnan(standard[2])
    learnt, standard = per_image_scores(rows, "mlp", ["a", "b"], use_preference=True)
    assert learnt == pytest.approx([0.7, 0.4]) and standard == [0.5, 0.5]
    # no preference scored (PieAPP unavailable): MS-SSIM even when preference is asked for
    learnt, _ = per_image_scores(rows.drop(columns="preference_at_equal_size"), "perceptual", ["a"], True)
    assert learnt == pytest.approx([0.5])
