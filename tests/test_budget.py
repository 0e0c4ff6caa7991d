"""Budget learning (thesis §3.1–3.2): every equation against a direct computation, gradients, baselines."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from thesislib.budget import (
    BudgetedModel,
    BudgetSplit,
    StatisticNetwork,
    add_noise,
    budget_to_match,
    context_variances,
    evaluate_with_samples,
    fit_budgeted,
    integer_allocation,
    l2_norm_allocation,
    match_status,
    noise_std,
    uniform_allocation,
)
from thesislib.budget.synthetic import InteractionProblem, LinearProblem, draw_samples
from thesislib.training import TensorBatches

torch.set_default_dtype(torch.float32)


# -- noise processes (Eqs. 3.4-3.6) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("process", "direct"),
    [
        ("standard_error", lambda r: 1 / math.sqrt(r)),  # Eq. 3.4
        ("sampling_rate", lambda r: 1 / r),  # Eq. 3.5
        ("quantisation", lambda r: 2.0**-r),  # Eq. 3.6
    ],
)
def test_noise_processes_match_their_equations(process, direct) -> None:
    resources = [0.25, 1.0, 3.0, 17.5]
    got = noise_std(process, torch.tensor(resources, dtype=torch.float64))
    assert got.tolist() == pytest.approx([direct(r) for r in resources], rel=1e-12)


def test_unknown_noise_process_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="standard_error, sampling_rate, quantisation"):
        noise_std("gaussian", torch.ones(2))
    with pytest.raises(ValueError, match="valid processes"):
        BudgetSplit(3, 5.0, process="bits")


def test_noise_needs_positive_resources() -> None:
    with pytest.raises(ValueError, match="positive"):
        noise_std("standard_error", torch.tensor([1.0, 0.0]))


# -- budget splits (Eqs. 3.11-3.12) ------------------------------------------------------------------


def test_sample_budget_is_equation_3_11() -> None:
    gamma = [0.3, -1.2, 2.0, 0.0]
    variances = [1.5, 0.2, 3.0, 1.0]
    split = BudgetSplit(4, 12.0, "standard_error", variances=variances, gamma=gamma)
    exps = [math.exp(g) for g in gamma]
    softmax = [e / sum(exps) for e in exps]
    expected = [v / (12.0 * s) for v, s in zip(variances, softmax, strict=True)]
    assert split.variance().tolist() == pytest.approx(expected, rel=1e-5)
    assert float(split.allocation().sum().detach()) == pytest.approx(12.0, rel=1e-6)


def test_bit_budget_is_equation_3_12() -> None:
    gamma = [1.0, 0.0, -0.5]
    split = BudgetSplit(3, 6.0, "quantisation", gamma=gamma)
    exps = [math.exp(g) for g in gamma]
    expected = [2 ** (-2 * 6.0 * e / sum(exps)) for e in exps]
    assert split.variance().tolist() == pytest.approx(expected, rel=1e-5)


def test_fixed_splits_uniform_and_from_allocation() -> None:
    uniform = BudgetSplit.uniform(5, 10.0)
    assert uniform.allocation().tolist() == pytest.approx([2.0] * 5)
    assert list(uniform.parameters()) == [], "a fixed split has nothing to learn"
    hand_set = BudgetSplit.from_allocation([1.0, 3.0, 6.0])
    assert hand_set.budget == pytest.approx(10.0)
    assert hand_set.allocation().tolist() == pytest.approx([1.0, 3.0, 6.0], rel=1e-6)
    learnable = BudgetSplit(3, 10.0)
    learnable.set_allocation([5.0, 3.0, 2.0])
    assert learnable.allocation().tolist() == pytest.approx([5.0, 3.0, 2.0], rel=1e-6)
    loaded = BudgetSplit(3, 10.0)
    loaded.load_state_dict(learnable.state_dict())
    assert torch.equal(loaded.allocation(), learnable.allocation())


@pytest.mark.parametrize("budget", [0, -3.0, math.inf, math.nan])
def test_budget_must_be_positive(budget: float) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        BudgetSplit(4, budget)


def test_gamma_and_variances_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        BudgetSplit(4, 8.0, gamma=[0.0, 1.0])
    split = BudgetSplit(4, 8.0)
    with pytest.raises(ValueError, match="gamma must have shape"):
        split.set_allocation([1.0, 2.0])
    with pytest.raises(ValueError, match="4 positive numbers"):
        BudgetSplit(4, 8.0, variances=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        BudgetSplit.from_allocation([1.0, 0.0])


def test_context_variances_estimates_per_context() -> None:
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.5, 1.0, 3.0])
    features = torch.randn(20000, 3, 2, generator=generator) * scales.view(1, 3, 1)
    assert context_variances(features).tolist() == pytest.approx((scales**2).tolist(), rel=0.05)


# -- reparameterised noising (Eqs. 3.7-3.10) --------------------------------------------------------


def test_add_noise_gives_each_context_its_sigma() -> None:
    torch.manual_seed(0)
    std = torch.tensor([0.1, 1.0, 4.0])
    clean = torch.zeros(40000, 3, 2)
    noisy = add_noise(clean, std)
    assert noisy.std(dim=(0, 2)).tolist() == pytest.approx(std.tolist(), rel=0.03)
    with pytest.raises(ValueError, match="contexts"):
        add_noise(torch.zeros(5, 4), std)


def test_gradient_reaches_gamma_and_matches_finite_differences() -> None:
    torch.set_default_dtype(torch.float64)
    try:
        problem = LinearProblem.random(4, seed=3)
        x, y = problem.sample(64, seed=4)
        predictor = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
        model = BudgetedModel(
            predictor, BudgetSplit(4, 6.0, variances=problem.variances, gamma=[0.2, -0.1, 0.4, 0.0])
        )

        def loss() -> torch.Tensor:
            torch.manual_seed(11)  # the same ε every call: the loss is a deterministic function of γ
            return model.expected_loss(x, y, nn.functional.mse_loss, samples=3)

        loss().backward()
        analytic = model.split.gamma.grad.clone()
        assert predictor[1].weight.grad is not None, "θ gets gradients too"
        numeric = torch.zeros(4)
        with torch.no_grad():
            for c in range(4):
                step = torch.zeros(4)
                step[c] = 1e-6
                model.split.gamma += step
                up = loss()
                model.split.gamma -= 2 * step
                down = loss()
                model.split.gamma += step
                numeric[c] = (up - down) / 2e-6
        assert analytic.tolist() == pytest.approx(numeric.tolist(), rel=1e-5, abs=1e-8)
    finally:
        torch.set_default_dtype(torch.float32)


def test_expected_loss_estimates_the_closed_form() -> None:
    torch.manual_seed(0)
    problem = LinearProblem.random(6, seed=1)
    x, y = problem.sample(4000, seed=2)
    predictor = nn.Sequential(nn.Flatten(), nn.Linear(6, 1, bias=False))
    with torch.no_grad():
        predictor[1].weight.copy_(problem.weights.view(1, -1))
    split = BudgetSplit.from_allocation([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], variances=problem.variances)
    estimate = BudgetedModel(predictor, split).expected_loss(x, y, nn.functional.mse_loss, samples=16)
    assert float(estimate.detach()) == pytest.approx(
        float(problem.expected_loss(split.allocation())), rel=0.03
    )
    with pytest.raises(ValueError, match="positive integer"):
        BudgetedModel(predictor, split).expected_loss(x, y, nn.functional.mse_loss, samples=0)


# -- statistic networks (Eq. 3.14) --------------------------------------------------------------------


def test_statistic_network_is_invariant_to_sample_order() -> None:
    torch.manual_seed(0)
    network = StatisticNetwork(
        nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))
    ).eval()
    samples = torch.randn(5, 2, 7, 3)
    permuted = samples[:, :, torch.randperm(7)]
    assert torch.allclose(network(samples), network(permuted), atol=1e-6)


def test_statistic_network_counts_use_the_first_samples() -> None:
    torch.manual_seed(0)
    embed = nn.Linear(3, 4)
    network = StatisticNetwork(embed)
    samples = torch.randn(5, 3, 6, 3)
    counts = torch.tensor([2, 0, 6])
    statistics = network(samples, counts)
    assert torch.allclose(statistics[:, 0], embed(samples[:, 0, :2]).mean(dim=1), atol=1e-6)
    assert torch.equal(statistics[:, 1], torch.zeros(5, 4)), "no samples: the zero statistic"
    assert torch.allclose(statistics[:, 2], embed(samples[:, 2]).mean(dim=1), atol=1e-6)
    with pytest.raises(ValueError, match=r"0\.\.6"):
        network(samples, torch.tensor([1, 7, 1]))


# -- the test condition and baselines ------------------------------------------------------------------


def test_integer_allocation_sums_to_the_budget() -> None:
    counts = integer_allocation(torch.tensor([0.5, 2.6, 6.9]), 10)
    assert counts.tolist() == [0, 3, 7]
    assert int(integer_allocation(torch.rand(9) + 0.01, 37).sum()) == 37
    with pytest.raises(ValueError, match="non-negative integer"):
        integer_allocation(torch.ones(3), -1)


def test_evaluation_with_real_samples_matches_a_direct_computation() -> None:
    problem = InteractionProblem.default()
    clean, targets = problem.sample(300, seed=0)
    samples = draw_samples(clean, problem.variances, 5, seed=1)
    predictor = nn.Sequential(nn.Flatten(), nn.Linear(problem.contexts, 1))
    model = BudgetedModel(predictor, BudgetSplit(problem.contexts, 16.0), StatisticNetwork(nn.Identity()))
    counts = torch.tensor([5, 4, 3, 2, 1, 1, 0, 0])
    error = evaluate_with_samples(
        model,
        [(samples[:150], targets[:150]), (samples[150:], targets[150:])],
        counts,
        lambda prediction, target: (prediction - target).square().squeeze(-1),
    )
    statistic = torch.stack(
        [samples[:, c, : int(k), 0].mean(dim=1) if k else torch.zeros(300) for c, k in enumerate(counts)],
        dim=1,
    )
    direct = (predictor[1](statistic) - targets).square().mean()
    assert error == pytest.approx(float(direct.detach()), rel=1e-5)


def test_l2_norm_allocation_follows_each_contexts_weight_block() -> None:
    weight = torch.zeros(2, 6)
    weight[:, 0:2] = 1.0  # context 0: norm 2
    weight[0, 4] = 6.0  # context 2: norm 6
    weight[1, 2] = 2.0  # context 1: norm 2
    assert l2_norm_allocation(weight, 3, 10.0).tolist() == pytest.approx([2.0, 2.0, 6.0])
    with pytest.raises(ValueError, match="dividing"):
        l2_norm_allocation(weight, 4, 10.0)
    assert uniform_allocation(4, 10.0).tolist() == [2.5] * 4
    with pytest.raises(ValueError, match="positive finite"):
        uniform_allocation(4, -1.0)


def test_budget_to_match_interpolates_in_log_budget() -> None:
    budgets, losses = [2.0, 4.0, 8.0, 16.0], [1.0, 0.8, 0.6, 0.4]
    assert budget_to_match(budgets, losses, 0.7) == pytest.approx(math.sqrt(32))
    assert budget_to_match(budgets, losses, 1.5, extrapolate=False) == 2.0
    assert budget_to_match(budgets, losses, 0.1) == math.inf
    assert match_status(budgets, losses, 0.7) == "interpolated"
    assert match_status(budgets, losses, 0.1) == "censored"


def test_budget_to_match_is_signed_below_the_smallest_budget() -> None:
    """A split worse than the smallest uniform budget gets a negative extra cost, not 0 (issue 14)."""
    budgets, losses = [2.0, 4.0, 8.0], [1.0, 0.8, 0.6]
    matched = budget_to_match(budgets, losses, 1.1)  # half a segment above the first point
    assert matched == pytest.approx(2.0 / math.sqrt(2.0))
    assert matched / 2.0 - 1 < 0
    assert match_status(budgets, losses, 1.1) == "below"
    # a flat first segment cannot be extrapolated: the smallest budget is returned
    assert budget_to_match([2.0, 4.0], [1.0, 1.0], 1.1) == 2.0


# -- learning -------------------------------------------------------------------------------------------


def _linear_split_learner(seed: int) -> tuple[LinearProblem, BudgetedModel]:
    problem = LinearProblem.random(6, seed=0)
    predictor = nn.Sequential(nn.Flatten(), nn.Linear(6, 1, bias=False))
    with torch.no_grad():
        predictor[1].weight.copy_(problem.weights.view(1, -1))
    predictor.requires_grad_(False)
    return problem, BudgetedModel(predictor, BudgetSplit(6, 12.0, variances=problem.variances))


def test_linear_case_recovers_the_analytic_split() -> None:
    problem, model = _linear_split_learner(0)
    x, y = problem.sample(16000, seed=1)
    fit_budgeted(
        model,
        TensorBatches(x, y, batch_size=500),
        nn.functional.mse_loss,
        epochs=25,
        lr=0.05,
        noise_samples=4,
        device="cpu",
        progress=False,
    )
    learned, analytic = model.split.allocation().detach(), problem.analytic_allocation(12.0)
    assert float(((learned - analytic).abs() / analytic).max()) < 0.05


def test_same_seed_same_split() -> None:
    results = []
    for _ in range(2):
        problem, model = _linear_split_learner(0)
        x, y = problem.sample(2000, seed=1)
        history = fit_budgeted(
            model,
            TensorBatches(x, y, batch_size=250, seed=7),
            nn.functional.mse_loss,
            epochs=2,
            lr=0.05,
            seed=7,
            device="cpu",
            progress=False,
        )
        results.append((model.split.allocation().detach(), history.drop(columns="seconds")))
    assert torch.equal(results[0][0], results[1][0])
    assert results[0][1].equals(results[1][1])


def test_nothing_to_learn_is_an_error() -> None:
    problem, model = _linear_split_learner(0)
    model.split = BudgetSplit.uniform(6, 12.0)
    x, y = problem.sample(10, seed=1)
    with pytest.raises(ValueError, match="nothing to learn"):
        fit_budgeted(
            model,
            TensorBatches(x, y, batch_size=5),
            nn.functional.mse_loss,
            epochs=1,
            device="cpu",
            progress=False,
        )


# -- the synthetic problems' closed forms -----------------------------------------------------------------


@pytest.mark.parametrize("process", ["standard_error", "sampling_rate", "quantisation"])
def test_analytic_linear_splits_satisfy_the_kkt_conditions(process: str) -> None:
    """At the optimum every funded context has the same marginal loss; unfunded ones gain less."""
    problem = LinearProblem.random(8, seed=0)
    allocation = problem.analytic_allocation(10.0, process).double()
    assert float(allocation.sum()) == pytest.approx(10.0, rel=1e-6)
    funded = allocation > 1e-9
    at = allocation.clamp(min=1e-9).requires_grad_(True)
    problem_64 = LinearProblem(problem.weights.double(), problem.variances.double())
    (gradient,) = torch.autograd.grad(problem_64.expected_loss(at, process), at)
    marginal = -gradient
    assert marginal[funded].tolist() == pytest.approx(
        [float(marginal[funded][0])] * int(funded.sum()), rel=1e-5
    )
    if process == "quantisation":
        assert bool((marginal[~funded] <= marginal[funded][0] + 1e-9).all())
        assert int((~funded).sum()) > 0, (
            "this problem is chosen so that water-filling leaves contexts unfunded"
        )
    else:
        assert bool(funded.all())


def test_standard_error_closed_form_is_abs_w_sqrt_v() -> None:
    problem = LinearProblem(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([4.0, 1.0, 1.0]))
    assert problem.analytic_allocation(9.0).tolist() == pytest.approx([4.0, 4.0, 1.0], rel=1e-6)


def test_auxiliary_features_stay_clean() -> None:
    torch.manual_seed(0)
    features = torch.zeros(2000, 3, 4)
    noisy = add_noise(features, torch.ones(3), noisy_features=2)
    assert float(noisy[..., :2].std()) == pytest.approx(1.0, rel=0.05)
    assert torch.equal(noisy[..., 2:], features[..., 2:])
    with pytest.raises(ValueError, match="noisy_features"):
        add_noise(features, torch.ones(3), noisy_features=5)
