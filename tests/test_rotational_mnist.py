"""Rotational MNIST (thesis §3.3.1): the set generator, angle classes, the metric, the BO wrapper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from thesislib.budget import BudgetSplit
from thesislib.budget.bayesopt import bayesian_optimisation
from thesislib.budget.rotational_mnist import (
    ANGLE_CLASSES,
    CONTEXTS,
    RotationalMNIST,
    angle_to_class,
    angular_error,
    class_to_angle,
    mean_angular_error,
    rotate,
    rotation_model,
    sparsity_profile,
)


def marked_pools() -> tuple[torch.Tensor, torch.Tensor]:
    """One asymmetric image per digit: digit d lights a bar of d + 3 pixels from the top-left corner."""
    images = torch.zeros(CONTEXTS, 28, 28, dtype=torch.uint8)
    for digit in range(CONTEXTS):
        images[digit, 4, 4 : 4 + digit + 3] = 255
        images[digit, 4 : 10 + digit, 4] = 255
    return images, torch.arange(CONTEXTS)


def test_every_image_of_a_set_shares_the_angle_and_contexts_are_digits() -> None:
    images, labels = marked_pools()
    generator = RotationalMNIST(
        images, labels, batch_size=4, samples_per_context=3, sparsity=torch.zeros(CONTEXTS)
    )
    sets, angles = generator.draw(6, 3, torch.Generator().manual_seed(0))
    assert sets.shape == (6, CONTEXTS, 3, 28 * 28)
    for s in range(6):
        expected = rotate(images.float().div(255), angles[s].repeat(CONTEXTS)).flatten(1)
        for sample in range(3):
            assert torch.allclose(sets[s, :, sample], expected, atol=1e-5), (
                "context c holds digit c rotated by θ_s"
            )


def test_rotation_by_a_quarter_turn_moves_pixels_as_expected() -> None:
    image = torch.zeros(1, 28, 28)
    image[0, 2, 14] = 1.0  # top centre
    turned = rotate(image, torch.tensor([math.pi / 2]))  # anticlockwise: top goes to the left
    row, column = divmod(int(turned.flatten().argmax()), 28)
    assert (row, column) == (13, 2)


def test_sparsity_rate_matches_each_contexts_probability() -> None:
    images, labels = marked_pools()
    sparsity = sparsity_profile(0.4)
    generator = RotationalMNIST(images, labels, batch_size=4, samples_per_context=8, sparsity=sparsity)
    sets, _ = generator.draw(2000, 8, torch.Generator().manual_seed(1))
    zeroed = (sets.abs().sum(dim=-1) == 0).float().mean(dim=(0, 2))
    assert zeroed.tolist() == pytest.approx(sparsity.tolist(), abs=0.015)
    assert float(sparsity.mean()) == pytest.approx(0.4)


def test_invalid_settings_are_refused() -> None:
    images, labels = marked_pools()
    with pytest.raises(ValueError, match="probability"):
        sparsity_profile(1.5)
    with pytest.raises(ValueError, match="10 probabilities"):
        RotationalMNIST(images, labels, 4, 2, sparsity=torch.zeros(3))
    with pytest.raises(ValueError, match="every digit"):
        RotationalMNIST(images[:5], labels[:5], 4, 2, sparsity=torch.zeros(CONTEXTS))
    with pytest.raises(ValueError, match="10 contexts"):
        rotation_model(BudgetSplit(4, 10.0), hidden=8, statistics=2)


def test_batches_are_reproducible_per_epoch() -> None:
    images, labels = marked_pools()
    one = RotationalMNIST(images, labels, 3, 2, torch.full((CONTEXTS,), 0.3), batches_per_epoch=2, seed=5)
    two = RotationalMNIST(images, labels, 3, 2, torch.full((CONTEXTS,), 0.3), batches_per_epoch=2, seed=5)
    two.set_epoch(1)
    first_epoch, second_epoch = list(one), list(one)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(second_epoch, list(two), strict=True))
    assert not torch.equal(first_epoch[0][0], second_epoch[0][0])


def test_angle_classes_round_trip() -> None:
    labels = torch.arange(ANGLE_CLASSES)
    assert torch.equal(angle_to_class(class_to_angle(labels)), labels)
    angles = torch.rand(1000, dtype=torch.float64) * 20 - 10
    centres = class_to_angle(angle_to_class(angles)).double()
    assert float(angular_error(centres, angles).max()) <= math.pi / ANGLE_CLASSES + 1e-9
    assert int(angle_to_class(torch.tensor([-1e-3]))) == ANGLE_CLASSES - 1


def test_circular_error() -> None:
    predicted = torch.tensor([0.0, 0.1, 3.0, 1.0], dtype=torch.float64)
    true = torch.tensor(
        [2 * math.pi - 0.1, 0.1 + 4 * math.pi, 3.0 - math.pi, 1.0 + math.pi / 2], dtype=torch.float64
    )
    assert angular_error(predicted, true).tolist() == pytest.approx([0.1, 0.0, math.pi, math.pi / 2])


def test_mean_angular_error_uses_the_prescribed_images() -> None:
    torch.manual_seed(0)
    images, labels = marked_pools()
    model = rotation_model(BudgetSplit.uniform(CONTEXTS, 10.0), hidden=16, statistics=4)
    generator = RotationalMNIST(images, labels, 4, 3, torch.zeros(CONTEXTS))
    sets, angles = generator.draw(20, 3, torch.Generator().manual_seed(2))
    counts = torch.tensor([3, 0, 1, 1, 1, 1, 1, 1, 1, 0])
    error = mean_angular_error(model, sets, angles, counts, batch_size=7)
    model.eval()
    with torch.no_grad():
        statistics = model.encoder(sets, counts)
        manual = angular_error(class_to_angle(model.predictor(statistics).argmax(1)), angles).mean()
    assert error == pytest.approx(float(manual), rel=1e-6)
    assert 0 <= error <= math.pi


def test_bayesian_optimisation_runs_its_trials_and_returns_the_best() -> None:
    calls = []

    def objective(x: np.ndarray) -> float:
        calls.append(x.copy())
        return float(((x - 0.25) ** 2).sum())

    result = bayesian_optimisation(objective, [(0.0, 1.0), (-1.0, 1.0)], trials=3, initial_trials=2, seed=0)
    assert len(calls) == 3 and len(result.trials) == 3
    assert result.best_value == pytest.approx(min(objective(c) for c in calls[:3]))
    assert result.best_value == result.trials["value"].min()
    assert np.allclose(result.best_parameters, calls[int(result.trials["value"].idxmin())])
    with pytest.raises(ValueError, match="low < high"):
        bayesian_optimisation(objective, [(1.0, 0.0)], trials=2)


def test_experiment_trains_tests_and_searches_end_to_end() -> None:
    from thesislib.budget.rotational_mnist import RotationExperiment, RotationSettings

    images, labels = marked_pools()
    pools = {name: (images, labels) for name in ("train", "val", "test")}
    settings = RotationSettings(
        hidden=16,
        statistics=4,
        batch_size=8,
        train_samples=2,
        batches_per_epoch=3,
        epochs=1,
        split_lr=0.1,
        device="cpu",
    )
    experiment = RotationExperiment(
        pools, sparsity_profile(0.3), settings, images_per_digit=4, evaluation_sets=20
    )
    learnt = experiment.learnt(10)
    assert int(learnt.counts.sum()) == 10 and 0 <= learnt.test_error <= math.pi
    assert not torch.allclose(learnt.allocation, torch.ones(CONTEXTS)), "the split moved from uniform"
    uniform = experiment.uniform(20)
    assert uniform.counts.tolist() == [2] * CONTEXTS
    l2 = experiment.l2_heuristic(uniform)
    assert float(l2.allocation.sum()) == pytest.approx(20.0, rel=1e-5)
    search, best = experiment.bayesian_search(10, trials=2, initial_trials=1)
    assert len(search.trials) == 2 and best.validation_error == search.trials["value"].min()
    with pytest.raises(ValueError, match="4 images per digit"):
        experiment.error(learnt.model, torch.tensor([10] + [0] * 9), "test")
    again = RotationExperiment(pools, sparsity_profile(0.3), settings, 4, 20).learnt(10)
    assert again.test_error == learnt.test_error, "same seed, same result"


# -- issue 14: the defects the chapter-3 review found -----------------------------------------------------


def test_spread_sparsity_is_not_tied_to_digit_identity() -> None:
    from thesislib.budget.rotational_mnist import sparsity_condition, spread_sparsity

    profiles = [spread_sparsity(seed) for seed in range(6)]
    for profile in profiles:
        assert sorted(profile.tolist()) == pytest.approx([0.0] * 3 + [0.9] * 7)
    clean_sets = {tuple(torch.nonzero(p == 0).flatten().tolist()) for p in profiles}
    assert len(clean_sets) > 1, "which digits are clean must change with the seed"
    assert torch.equal(spread_sparsity(3), spread_sparsity(3))
    assert torch.equal(sparsity_condition("ramp", 0.5, 0), sparsity_profile(0.5))
    with pytest.raises(ValueError, match="valid: 'spread', 'ramp'"):
        sparsity_condition("steps", 0.5, 0)
    with pytest.raises(ValueError, match="high"):
        spread_sparsity(0, high=1.5)


def _trained_rotation_model(noise_form: str = "excess"):
    """A tiny model whose running statistics have seen sets where digit 0 varies a lot within a set
    and digit 1 not at all."""
    torch.manual_seed(0)
    model = rotation_model(
        BudgetSplit(CONTEXTS, 10.0),
        hidden=8,
        statistics=4,
        dropout=0.0,
        train_samples=4,
        noise_form=noise_form,
    )
    sets = torch.rand(16, CONTEXTS, 4, 28 * 28)
    sets[:, 1] = sets[:, 1, :1]  # digit 1: four identical images per set -> no within-set variance
    sets[:, 0] *= 3.0
    model.train()
    for _ in range(5):
        model.expected_loss(sets, torch.zeros(16, dtype=torch.long), torch.nn.functional.cross_entropy)
    return model, sets


def test_noise_variance_is_the_per_context_within_set_variance() -> None:
    model, sets = _trained_rotation_model()
    v = model.context_variance
    assert float(v[1]) < 1e-5, "identical images within a set have no within-set variance"
    assert float(v[0]) > float(v[2:].mean()), "the most variable digit has the largest v_c"
    assert not model.context_variance.requires_grad
    # sigma_c^2 = v_c (1/r_c - 1/I) for the uniform start r_c = 1, I = 4
    assert model.noise_std().square().tolist() == pytest.approx(
        (v * (1 - 1 / 4)).tolist(), rel=1e-4, abs=1e-9
    )
    total, _ = _trained_rotation_model("total")
    assert total.noise_std().square().tolist() == pytest.approx(
        total.context_variance.tolist(), rel=1e-4, abs=1e-9
    )
    # gamma gets gradients through r_c only
    loss = model.expected_loss(sets, torch.zeros(16, dtype=torch.long), torch.nn.functional.cross_entropy)
    loss.backward()
    assert model.split.gamma.grad is not None and bool(torch.isfinite(model.split.gamma.grad).all())


def test_a_context_given_no_images_gets_its_running_mean_statistic() -> None:
    model, sets = _trained_rotation_model()
    model.eval()
    counts = torch.tensor([0, 2, 1, 1, 1, 1, 1, 1, 1, 1])
    features = model.features(sets, counts)
    assert torch.allclose(features[:, 0], model.context_mean[0].expand(16, -1))
    assert float(model.context_mean[0].abs().sum()) > 0, "the running mean is not the zero statistic"
    assert not torch.allclose(features[:, 1], model.context_mean[1].expand(16, -1))


def test_split_learning_rate_decays() -> None:
    from thesislib.budget import BudgetedModel, fit_budgeted
    from thesislib.training import TensorBatches

    def movement(decay: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        x = torch.randn(256, 3, 1)
        y = x[:, 0] * 3
        split = BudgetSplit(3, 6.0)
        model = BudgetedModel(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 1)), split)
        history = fit_budgeted(
            model,
            TensorBatches(x, y, batch_size=16, seed=0),
            torch.nn.functional.mse_loss,
            epochs=4,
            lr=1e-2,
            split_lr=0.05,
            split_lr_decay=decay,
            device="cpu",
            progress=False,
        )
        r = history[["r0", "r1", "r2"]].to_numpy()
        return float(abs(r[1] - r[0]).sum()), float(abs(r[3] - r[2]).sum())

    early, late = movement(decay=True)
    assert late < 0.5 * early, "with the decay the split barely moves in the last epoch"
    with pytest.raises(ValueError, match="noise_form"):
        rotation_model(BudgetSplit(CONTEXTS, 10.0), hidden=8, statistics=4, noise_form="pooled")
