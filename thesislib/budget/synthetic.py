"""Synthetic problems where the best budget split is known or easy to see (the "Budget learning" page).

- :class:`LinearProblem`: a fixed linear predictor y = w·x on independent features
  with variances v_c under the standard-error noise of Eq. 3.11. The expected loss
  Σ_c w_c² v_c / r_c, minimised subject to Σ_c r_c = B (a Lagrange multiplier),
  gives r_c ∝ abs(w_c)·√v_c. :func:`learn_linear_split` learns γ alone for its frozen
  predictor (:func:`frozen_linear_model`), to check the learnt split against that optimum.
- :class:`InteractionProblem`: a nonlinear target that reads only some contexts,
  some of them through products, so a good split is uneven but not linear in any
  obvious weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from thesislib.budget.baselines import l2_norm_allocation
from thesislib.budget.evaluate import evaluate_with_samples, integer_allocation
from thesislib.budget.learn import fit_budgeted
from thesislib.budget.noise import NOISE_PROCESSES, check_process
from thesislib.budget.noising import BudgetedModel
from thesislib.budget.split import BudgetSplit
from thesislib.budget.statistic import StatisticNetwork
from thesislib.training import TensorBatches, progress_enabled, select_device


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class LinearProblem:
    """y = w·x with x_c ~ N(0, v_c) independent; contexts are single features."""

    weights: Tensor
    variances: Tensor

    @classmethod
    def random(cls, contexts: int = 8, seed: int = 0) -> LinearProblem:
        """Weights ~ N(0, 1) and variances log-uniform in [0.1, 10]: uneven in both."""
        generator = _generator(seed)
        weights = torch.randn(contexts, generator=generator)
        variances = torch.exp(torch.empty(contexts).uniform_(-2.3026, 2.3026, generator=generator))
        return cls(weights, variances)

    @property
    def contexts(self) -> int:
        return len(self.weights)

    def sample(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` examples: features ``[n, C, 1]`` (one feature per context) and targets ``[n, 1]``."""
        x = torch.randn(n, self.contexts, generator=_generator(seed)) * self.variances.sqrt()
        return x.unsqueeze(-1), (x @ self.weights).unsqueeze(-1)

    def analytic_allocation(self, budget: float, process: str = "standard_error") -> Tensor:
        """The split minimising :meth:`expected_loss` subject to Σ_c r_c = B (Lagrange / KKT).

        With a_c = w_c² v_c: standard error (σ² = v/r, Eq. 3.11) gives r_c ∝ √a_c; sampling
        rate (σ² = v/r²) gives r_c ∝ a_c^(1/3); quantisation (σ² = v·2^(−2r)) gives reverse
        water-filling, r_c = max(0, ½ log₂(a_c/μ)) with μ set by the budget.
        """
        importance = self.weights.square() * self.variances
        if process == "standard_error":
            return budget * importance.sqrt() / importance.sqrt().sum()
        if process == "sampling_rate":
            return budget * importance.pow(1 / 3) / importance.pow(1 / 3).sum()
        if process == "quantisation":
            half_log = 0.5 * importance.log2()
            order = torch.argsort(half_log, descending=True)
            for active in range(len(order), 0, -1):
                chosen = order[:active]
                level = (half_log[chosen].sum() - budget) / active  # ½ log₂ μ
                if bool((half_log[chosen] > level).all()):
                    return (half_log - level).clamp(min=0)
        check_process(process)
        raise AssertionError("unreachable: the single most important context is always active")

    def expected_loss(self, allocation: Tensor, process: str = "standard_error") -> Tensor:
        """E[(w·x̃ − w·x)²] = Σ_c w_c² v_c σ(r_c)²: the exact loss of a split (Eqs. 3.4–3.6, 3.11)."""
        std = NOISE_PROCESSES[check_process(process)](allocation)
        return (self.weights.square() * self.variances * std.square()).sum()


def frozen_linear_model(
    problem: LinearProblem, budget: float, process: str = "standard_error"
) -> BudgetedModel:
    """The fixed predictor y = w·x of ``problem`` behind a learnable split of ``budget`` (§3.2.1).

    The predictor's weights are ``problem.weights`` and do not require a gradient, so training
    the returned model learns γ alone: r = B·softmax(γ) starts uniform (γ = 0), and each context's
    noise is √v_c·σ(r_c) for the noise ``process`` (Eqs. 3.4–3.6, 3.11) with v_c = ``problem.variances``.
    Its inputs are features ``[N, C, 1]`` as :meth:`LinearProblem.sample` draws them.
    """
    contexts = problem.contexts
    predictor = nn.Sequential(nn.Flatten(), nn.Linear(contexts, 1, bias=False))
    with torch.no_grad():
        predictor[1].weight.copy_(problem.weights.view(1, -1))
    predictor.requires_grad_(False)  # only the split is learnt
    return BudgetedModel(predictor, BudgetSplit(contexts, budget, process, variances=problem.variances))


def learn_linear_split(
    problem: LinearProblem,
    budget: float,
    examples: int,
    epochs: int,
    process: str = "standard_error",
    lr: float = 0.05,
    noise_samples: int = 4,
    batch_size: int = 500,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> tuple[Tensor, pd.DataFrame]:
    """Learn the split of ``budget`` for the frozen predictor of ``problem``: does it find the optimum?

    Draws ``examples`` examples (data seed ``seed + 1``, so that they do not reuse the stream that
    drew a problem of seed ``seed``) and minimises the Monte-Carlo expected squared error of
    Eq. 3.10 (L = ``noise_samples``) over γ alone with Adam at learning rate ``lr``, for ``epochs``
    passes in batches of ``batch_size`` (:func:`~thesislib.budget.learn.fit_budgeted`). Compare the
    result with :meth:`LinearProblem.analytic_allocation` of the same ``budget`` and ``process``.

    Returns the learnt allocation r = B·softmax(γ) ``[C]`` (on the CPU) and the per-epoch history
    of :func:`~thesislib.budget.learn.fit_budgeted` (columns ``epoch``, ``r0 … r{C-1}``, ...).
    """
    x, y = problem.sample(examples, seed=seed + 1)
    model = frozen_linear_model(problem, budget, process)
    history = fit_budgeted(
        model,
        TensorBatches(x, y, batch_size=batch_size, seed=seed),
        nn.functional.mse_loss,
        epochs=epochs,
        lr=lr,
        noise_samples=noise_samples,
        seed=seed,
        device=device,
        progress=progress,
    )
    return model.split.allocation().detach().cpu(), history


@dataclass(frozen=True)
class InteractionProblem:
    """y = 2 sin(x₀)·x₁ + x₂·x₃ + ½ x₄ with x_c ~ N(0, v_c); contexts 5 and up are irrelevant."""

    variances: Tensor

    @classmethod
    def default(cls, contexts: int = 8) -> InteractionProblem:
        if contexts < 5:
            raise ValueError(f"the interaction problem reads five contexts; got contexts={contexts}")
        variances = torch.ones(contexts)
        variances[1], variances[3] = 0.5, 2.0
        return cls(variances)

    @property
    def contexts(self) -> int:
        return len(self.variances)

    @staticmethod
    def target(x: Tensor) -> Tensor:
        """The noise-free target of clean features ``[n, C]`` → ``[n, 1]``."""
        y = 2 * torch.sin(x[:, 0]) * x[:, 1] + x[:, 2] * x[:, 3] + 0.5 * x[:, 4]
        return y.unsqueeze(-1)

    def sample(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` examples: clean features ``[n, C, 1]`` and targets ``[n, 1]``."""
        x = torch.randn(n, self.contexts, generator=_generator(seed)) * self.variances.sqrt()
        return x.unsqueeze(-1), self.target(x)


def draw_samples(features: Tensor, variances: Tensor, samples: int, seed: int) -> Tensor:
    """Noisy observations of clean features ``[n, C, 1]``: ``[n, C, samples, 1]``, each N(x_c, v_c).

    Averaging r of them gives a statistic of variance v_c / r, the noise Eq. 3.11 models:
    the real test-time condition of the synthetic problems.
    """
    n, contexts = features.shape[:2]
    noise = torch.randn(n, contexts, samples, 1, generator=_generator(seed))
    return features.unsqueeze(2) + variances.sqrt().view(1, -1, 1, 1) * noise


def interaction_predictor(contexts: int, hidden: int = 64) -> nn.Module:
    """The MLP f_θ for :class:`InteractionProblem`: per-context statistics ``[N, C, 1]`` → ``[N, 1]``."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(contexts, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
    )


def compare_splits(
    problem: InteractionProblem,
    budgets: Sequence[int],
    train_examples: int,
    test_examples: int,
    epochs: int,
    hidden: int = 64,
    lr: float = 1e-3,
    split_lr: float = 1e-2,
    noise_samples: int = 4,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[tuple[str, int], Tensor]]:
    """Learnt vs uniform vs L2-heuristic splits at each total budget, tested with real samples.

    For each budget B: a model is trained with the uniform split; the L2 heuristic reads that
    model's first layer and a second model is trained with the split it gives; a third model
    learns its split jointly (Eqs. 3.10–3.11). Each is tested by averaging, per context, as many
    real noisy samples as its split allots (rounded to whole samples summing to B). Returns the
    table (method, budget, test_mse) and each method's real-valued allocation.
    """
    contexts = problem.contexts
    x_train, y_train = problem.sample(train_examples, seed=seed)
    x_test, y_test = problem.sample(test_examples, seed=seed + 1)
    observations = draw_samples(x_test, problem.variances, max(budgets), seed=seed + 2)
    squared_error = lambda prediction, target: (prediction - target).square().squeeze(-1)  # noqa: E731
    rows, allocations = [], {}

    def run(method: str, budget: int, split: BudgetSplit) -> BudgetedModel:
        torch.manual_seed(seed)
        model = BudgetedModel(interaction_predictor(contexts, hidden), split, StatisticNetwork(nn.Identity()))
        batches = TensorBatches(x_train, y_train, batch_size=256, seed=seed, device=select_device(device))
        fit_budgeted(
            model,
            batches,
            nn.functional.mse_loss,
            epochs,
            lr=lr,
            split_lr=split_lr,
            noise_samples=noise_samples,
            seed=seed,
            device=device,
            progress=progress,
        )
        model.cpu()
        allocation = split.allocation().detach()
        counts = integer_allocation(allocation, budget)
        mse = evaluate_with_samples(model, [(observations, y_test)], counts, squared_error)
        rows.append({"method": method, "budget": budget, "test_mse": mse})
        allocations[method, budget] = allocation
        return model

    for budget in tqdm(budgets, desc="budgets", disable=not progress_enabled(progress)):
        uniform = run("uniform", budget, BudgetSplit.uniform(contexts, budget, variances=problem.variances))
        l2 = l2_norm_allocation(uniform.predictor[1].weight, contexts, budget)
        run("L2 heuristic", budget, BudgetSplit.from_allocation(l2, variances=problem.variances))
        run("learnt", budget, BudgetSplit(contexts, budget, variances=problem.variances))
    return pd.DataFrame(rows), allocations
