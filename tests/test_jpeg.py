"""Thesis §3.3.3: blockwise DCT, JPEG tables, learnt tables (Eqs. 3.15–3.19), real JPEG files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.fft
import torch
from PIL import Image

from thesislib.budget.split import BudgetSplit
from thesislib.jpeg import codec, dct, metrics, tables
from thesislib.jpeg.cdf import PiecewiseLinearCDF
from thesislib.jpeg.experiment import JPEGSettings, equal_size_comparison, learn_mlp, learn_perceptual
from thesislib.jpeg.learnt import LearntQuantisation, bits_to_table, block_budget


def _image(height: int = 64, width: int = 80, seed: int = 0) -> torch.Tensor:
    """A smooth-ish greyscale test image (gradients + texture), uint8."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    base = (
        128
        + 60 * torch.sin(x / 9.0) * torch.cos(y / 13.0)
        + 20 * torch.randn(height, width, generator=generator)
    )
    return base.round().clamp(0, 255).to(torch.uint8)


# -- the DCT (Eq. 3.15) ----------------------------------------------------------------------------------


def test_dct_matches_scipy_orthonormal_dctn_and_inverts() -> None:
    blocks = torch.randn(5, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 50
    expected = scipy.fft.dctn(blocks.numpy(), type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(dct.dct2(blocks).numpy(), expected, atol=1e-10)
    torch.testing.assert_close(dct.idct2(dct.dct2(blocks)), blocks)
    matrix = dct.dct_matrix(8)
    torch.testing.assert_close(matrix @ matrix.T, torch.eye(8, dtype=torch.float64))


def test_dct_matches_the_slow_sum_of_eq_3_15() -> None:
    x = torch.randn(8, dtype=torch.float64)
    n = torch.arange(8, dtype=torch.float64)
    slow = torch.stack([(x * torch.cos(torch.pi / 8 * (n + 0.5) * k)).sum() for k in range(8)])
    scale = torch.full((8,), (2 / 8) ** 0.5, dtype=torch.float64)
    scale[0] = (1 / 8) ** 0.5
    torch.testing.assert_close(dct.dct_matrix(8) @ x, scale * slow)


def test_blockwise_round_trip_with_padding() -> None:
    image = _image(13, 21)
    blocks = dct.image_to_blocks(image.double())
    assert blocks.shape == (2, 3, 8, 8)
    padded = dct.pad_to_blocks(image)
    assert padded.shape == (16, 24) and bool((padded[13:, :21] == image[-1]).all())
    coefficients = dct.blockwise_dct(image)
    torch.testing.assert_close(dct.blockwise_idct(coefficients, 13, 21), image.double())


def test_basis_patterns_of_fig_3_11() -> None:
    patterns = dct.basis_patterns()
    assert patterns.shape == (8, 8, 8, 8)
    torch.testing.assert_close(patterns[0, 0], torch.full((8, 8), 1 / 8, dtype=torch.float64))
    flat = patterns.reshape(64, 64)
    torch.testing.assert_close(flat @ flat.T, torch.eye(64, dtype=torch.float64))


def test_ycbcr_round_trip_and_luma_matches_pillow() -> None:
    rgb = torch.randint(0, 256, (3, 16, 24), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    torch.testing.assert_close(dct.ycbcr_to_rgb(dct.rgb_to_ycbcr(rgb)), rgb.double())
    pillow = torch.from_numpy(np.asarray(Image.fromarray(rgb.permute(1, 2, 0).numpy()).convert("L")).copy())
    assert (dct.luma(rgb).int() - pillow.int()).abs().max() <= 1


# -- standard tables and quantisation (Eq. 3.16) -----------------------------------------------------------


def test_quality_50_is_annex_k() -> None:
    assert tables.standard_table(50, "luminance").tolist()[0] == [16, 11, 10, 16, 24, 40, 51, 61]
    assert torch.equal(tables.standard_table(50, "luminance"), tables.LUMINANCE)
    assert torch.equal(tables.standard_table(50, "chrominance"), tables.CHROMINANCE)
    # well-known corners of Tables K.1-K.2; the full tables are checked against libjpeg's own below
    assert [int(tables.LUMINANCE[i, j]) for i, j in [(0, 0), (4, 5), (6, 5), (7, 7)]] == [16, 109, 121, 99]
    assert [int(tables.CHROMINANCE[i, j]) for i, j in [(0, 0), (3, 0), (2, 2), (7, 7)]] == [17, 47, 56, 99]


@pytest.mark.parametrize("quality", [1, 5, 10, 25, 50, 75, 90, 100])
def test_quality_scaling_matches_what_pillow_writes(quality: int) -> None:
    rgb = torch.randint(0, 256, (3, 16, 16), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    stored = codec.read_tables(codec.encode(rgb, quality=quality).data)
    assert torch.equal(stored[0], tables.standard_table(quality, "luminance"))
    assert torch.equal(stored[1], tables.standard_table(quality, "chrominance"))


def test_quantise_is_eq_3_16_and_matches_libjpeg_decoding() -> None:
    coefficients = torch.randn(4, 8, 8, dtype=torch.float64) * 100
    table = tables.standard_table(30)
    slow = torch.tensor(
        [[[round(float(c[i, j] / table[i, j])) for j in range(8)] for i in range(8)] for c in coefficients]
    )
    assert torch.equal(tables.quantise(coefficients, table), slow.double())
    # the library's quantise -> dequantise -> inverse DCT reproduces what libjpeg decodes
    image = _image(64, 64)
    decoded = codec.encode(image, quality=30).pixels
    levels = tables.quantise(dct.blockwise_dct(image), table)
    simulated = dct.blockwise_idct(tables.dequantise(levels, table), 64, 64).round().clamp(0, 255)
    assert (simulated - decoded.double()).abs().mean() < 0.6


def test_learnt_table_round_trips_through_pillow() -> None:
    table = torch.rand(8, 8, generator=torch.Generator().manual_seed(4)) * 250 + 1
    encoded = codec.encode(_image(), tables=[table])
    (stored,) = codec.read_tables(encoded.data)
    assert torch.equal(stored, tables.table_for_jpeg(table))
    assert encoded.bits == 8 * len(encoded.data) and encoded.pixels.shape == (64, 80)
    colour = codec.encode(torch.stack([_image()] * 3), tables=[table, table.flip(0)], subsampling="4:4:4")
    assert [t.tolist() for t in codec.read_tables(colour.data)] == [
        tables.table_for_jpeg(table).tolist(),
        tables.table_for_jpeg(table.flip(0)).tolist(),
    ]


def test_clipping_warns_and_clamps_to_baseline_range() -> None:
    table = torch.full((8, 8), 20.0)
    table[0, 0], table[7, 7] = 0.3, 300.0
    with pytest.warns(tables.TableClippedWarning, match="2 of 64"):
        clipped = tables.table_for_jpeg(table)
    assert clipped[0, 0] == 1 and clipped[7, 7] == 255 and clipped[3, 3] == 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tables.table_for_jpeg(torch.full((8, 8), 255.2))  # rounds into range: no warning


# -- learnt tables (Eqs. 3.17-3.19) ----------------------------------------------------------------------


def test_piecewise_linear_cdf_inverse_round_trip() -> None:
    samples = torch.distributions.Laplace(0.0, torch.tensor([1.0, 5.0, 30.0])).sample((4000,)).double()
    samples[:500, 0] = 0.0  # ties, as in flat image regions
    cdf = PiecewiseLinearCDF(samples, knots=65)
    inside = samples.clamp(cdf.values[:, 0], cdf.values[:, -1])
    torch.testing.assert_close(cdf.quantile(cdf.cdf(inside)), inside, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(cdf.from_normal(cdf.to_normal(inside)), inside, atol=1e-5, rtol=1e-5)
    normal = cdf.to_normal(samples)[:, 1:]
    assert abs(float(normal.mean())) < 0.05 and abs(float(normal.std()) - 1) < 0.1
    u = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)[:, None].expand(50, 3)
    assert bool((cdf.quantile(u).diff(dim=0) >= 0).all())


def test_bit_budget_sums_to_b_total_and_sets_q() -> None:
    coefficients = dct.blockwise_dct(_image()).reshape(-1, 64)
    quant = LearntQuantisation(coefficients, bits_per_pixel=1.5)
    with torch.no_grad():
        quant.split.gamma.copy_(torch.randn(64, generator=torch.Generator().manual_seed(5)))
        bits = quant.bits()
        assert isinstance(quant.split, BudgetSplit)
        torch.testing.assert_close(bits.sum(), torch.tensor(64 * 1.5))
        torch.testing.assert_close(bits.flatten(), 96 * torch.softmax(quant.split.gamma, 0))
        torch.testing.assert_close(quant.table(), 2.0 ** (8 - bits))
        spread = coefficients.std(dim=0).clamp_min(1e-3)
        expected = 256 / (12**0.5 * spread) * 2.0 ** (-bits.flatten().double())
        torch.testing.assert_close(quant.noise_std().double(), expected, rtol=1e-5, atol=0)
    assert block_budget(0.25) == 16.0
    torch.testing.assert_close(bits_to_table(torch.tensor([8.0, 0.0])), torch.tensor([1.0, 256.0]))


def test_noise_emulates_quantisation_of_matching_size() -> None:
    """Fine quantisation: the Gaussianised noise has the uniform quantiser's error variance Q²/12."""
    generator = torch.Generator().manual_seed(6)
    coefficients = torch.randn(20000, 64, generator=generator, dtype=torch.float64) * 40
    quant = LearntQuantisation(coefficients, bits_per_pixel=6.0, knots=257)
    with torch.no_grad():
        noisy = quant(coefficients, generator=generator)
        q = quant.table().flatten()
        error = (noisy - coefficients).std(dim=0)
    ratio = error / (q / 12**0.5)
    assert 0.8 < float(ratio.median()) < 1.25


def test_invalid_inputs_raise_value_error() -> None:
    coefficients = dct.blockwise_dct(_image()).reshape(-1, 64)
    cases = [
        lambda: tables.quality_scale(0),
        lambda: tables.quality_scale(101),
        lambda: tables.standard_table(50, "cyan"),
        lambda: tables.quantise(coefficients, torch.ones(4, 4)),
        lambda: block_budget(0),
        lambda: LearntQuantisation(coefficients, 1.0, init="random"),
        lambda: LearntQuantisation(coefficients[:, :10], 1.0),
        lambda: codec.encode(_image()),
        lambda: codec.encode(_image(), quality=50, tables=[torch.ones(8, 8)]),
        lambda: codec.encode(_image().float(), quality=50),
        lambda: dct.dct2(torch.ones(4, 4)),
        lambda: JPEGSettings(crop=100),
        lambda: JPEGSettings(perceptual="lpips"),
        lambda: metrics.resolve_perceptual("lpips"),
        lambda: metrics.quality(_image(), _image(), ["vmaf"]),
        lambda: tables.table_for_jpeg(torch.zeros(8, 8)),
    ]
    for case in cases:
        with pytest.raises(ValueError):
            case()


# -- learning, metrics and the equal-size comparison ------------------------------------------------------


def test_same_seed_same_learnt_table() -> None:
    image = _image(176, 176)
    settings = JPEGSettings(steps=4, crop=168, batch_blocks=64, seed=3)
    for learn in (
        lambda s: learn_mlp(image, 1.0, s, progress=False),
        lambda s: learn_perceptual(image, 1.0, s, "ms_ssim", progress=False),
    ):
        first, again = learn(settings), learn(settings)
        other = learn(JPEGSettings(steps=4, crop=168, batch_blocks=64, seed=4))
        assert torch.equal(first.table, again.table) and first.losses == again.losses
        assert not torch.equal(first.table, other.table)
        torch.testing.assert_close(first.bits.sum(), torch.tensor(64.0, dtype=torch.float64))


def test_equal_size_comparison_reads_the_regression_at_equal_size() -> None:
    sweep_bits = np.array([1e4, 2e4, 4e4, 8e4, 16e4])
    standard = 20 + 3 * np.log(sweep_bits)  # metric linear in log size
    learnt_bits, learnt_metric = 3e4, 20 + 3 * np.log(3e4) + 0.7
    delta = equal_size_comparison(sweep_bits, learnt_metric - standard, learnt_bits, neighbours=3)
    assert delta == pytest.approx(0.7)


def test_metrics_and_pieapp_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image(176, 176)
    scores = metrics.quality(image, image)
    assert scores["ssim"] == pytest.approx(1.0) and scores["ms_ssim"] == pytest.approx(1.0, abs=1e-5)
    assert float(metrics.preference(1.0, 1.0)) == 0.5
    monkeypatch.setattr(metrics, "_pieapp_or_reason", lambda: (None, "PieAPP weights unavailable (offline)"))
    name, reason = metrics.resolve_perceptual("auto")
    assert name == "ms_ssim" and "offline" in reason and "MS-SSIM" in reason
    with pytest.raises(RuntimeError, match="offline"):
        metrics.resolve_perceptual("pieapp")
    noisy = (image.float() + 10 * torch.randn(image.shape)).clamp(0, 255).requires_grad_()
    loss = metrics.perceptual_error("ms_ssim")(image.float(), noisy)
    loss.backward()
    assert float(loss.detach()) > 0 and noisy.grad is not None


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_notebook_profiles_build_valid_settings(profile: str) -> None:
    from thesislib.paths import PROJECT_ROOT
    from thesislib.runs.profiles import notebook_parameters, parse_value, resolve_parameters

    notebook = PROJECT_ROOT / "notebooks" / "04_jpeg_quantisation.ipynb"
    p = {name: parse_value(text) for name, text in notebook_parameters(notebook).items()}
    p.update(resolve_parameters(notebook, profile))
    settings = JPEGSettings(
        steps=p["steps"],
        lr=p["lr"],
        split_lr=p["split_lr"],
        crop=p["train_crop"],
        batch_blocks=p["batch_blocks"],
        hidden=p["hidden"],
        init=p["init"],
        perceptual=p["perceptual"],
        qualities=tuple(p["qualities"]),
        neighbours=p["neighbours"],
        seed=p["seed"],
    )
    assert settings.hidden == 128 and all(b > 0 for b in p["budgets"])
    kodak = {f"kodim{i:02d}" for i in range(1, 25)}
    assert set(p["images"]) <= kodak
    if profile == "paper":
        assert set(p["images"]) == kodak and p["lr"] == 0.001 and p["split_lr"] == 0.001 and p["crop"] == 0
