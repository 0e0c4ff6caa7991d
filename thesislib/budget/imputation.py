"""Imputing one sensor from the others under a learnt sample budget (thesis §3.3.2, Figs. 3.9–3.10).

For a target buoy t, an MLP (3 hidden layers × 96, batch-norm; thesis' implementation
details) predicts its five features from the other buoys' features. The budget is a number
of samples split over the *input* buoys; each input buoy's features are noised as
Eq. 3.11 prescribes (v_c = 1 after per-buoy normalisation), and the split is learnt with
the model. Missing values enter as the buoy's training mean plus a missing indicator; the
indicators are not measurements and get no noise, and missing target values are left out
of the loss and of every error (masked MSE, in normalised units, i.e. an NMSE).

There is one reading per buoy per day, so the test condition is simulated with the noise of
Eq. 3.11 (averaged over several fixed draws) rather than by averaging real samples.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from thesislib.budget.learn import SplitOutcome, fit_budgeted, fit_options
from thesislib.budget.noising import BudgetedModel
from thesislib.budget.split import BudgetSplit
from thesislib.budget.tao import TAOArray, masked_mse
from thesislib.training import TensorBatches, select_device


def imputation_data(values: Tensor, observed: Tensor, target: int) -> tuple[Tensor, Tensor]:
    """Inputs ``[N, C−1, 2F]`` (the other buoys' values, then their missing indicators) and
    targets ``[N, 2, F]`` (the target buoy's values and its observed mask) for buoy ``target``."""
    buoys = values.shape[1]
    if not 0 <= target < buoys:
        raise ValueError(f"target buoy must be in 0..{buoys - 1}, got {target}")
    others = [b for b in range(buoys) if b != target]
    missing = (~observed[:, others]).to(values.dtype)
    inputs = torch.cat([values[:, others], missing], dim=-1)
    targets = torch.stack([values[:, target], observed[:, target].to(values.dtype)], dim=1)
    return inputs, targets


def imputation_loss(prediction: Tensor, targets: Tensor) -> Tensor:
    """Masked MSE of the predicted features against the observed target features only."""
    return masked_mse(prediction, targets[:, 0], targets[:, 1] > 0.5)


def imputation_mlp(contexts: int, features: int, hidden: int = 96, layers: int = 3) -> nn.Sequential:
    """f_θ: ``[N, contexts, 2·features]`` → ``layers`` × (Linear, BatchNorm, ReLU) of ``hidden`` → ``features``."""
    modules: list[nn.Module] = [nn.Flatten()]
    width = contexts * 2 * features
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    modules.append(nn.Linear(width, features))
    return nn.Sequential(*modules)


@dataclass(frozen=True)
class ImputationSettings:
    """One imputation run (thesis: 3 hidden layers of 96 units, batch-norm, Adam 1e-3)."""

    hidden: int = 96
    layers: int = 3
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    split_lr: float = 1e-2
    noise_samples: int = 4
    evaluation_draws: int = 16
    seed: int = 0
    device: str = "auto"

    def with_seed(self, seed: int) -> ImputationSettings:
        """The same settings for seed ``seed`` (§3.3.2: the seeds repeat the whole budget search), all else unchanged."""
        return replace(self, seed=int(seed))


class ImputationExperiment:
    """Train and test imputation models of one target buoy for any split of the input budget."""

    def __init__(self, array: TAOArray, target: int, settings: ImputationSettings) -> None:
        self.array = array
        self.target = target
        self.settings = settings
        self.data = {name: imputation_data(*array.part(name), target) for name in ("train", "val", "test")}
        self.contexts = self.data["train"][0].shape[1]
        self.features = self.data["train"][1].shape[-1]

    def run(self, split: BudgetSplit) -> SplitOutcome:
        """Train from scratch with ``split`` (learnt if γ is a parameter); test under its noise.

        The weights (and split) of the epoch with the lowest validation error are kept: with
        about 1,400 training days the MLP overfits within tens of epochs, and without early
        stopping a larger budget (less noise, hence less regularisation) can even test worse.
        """
        settings = self.settings
        torch.manual_seed(settings.seed)
        predictor = imputation_mlp(self.contexts, self.features, settings.hidden, settings.layers)
        model = BudgetedModel(predictor, split, noisy_features=self.features)
        batches = TensorBatches(
            *self.data["train"],
            batch_size=settings.batch_size,
            seed=settings.seed,
            drop_last=True,
            device=select_device(settings.device),
        )
        best: dict = {"error": math.inf, "state": None}

        def keep_best(module: BudgetedModel) -> dict[str, float]:
            error = self.error(module, "val")
            if error < best["error"]:
                best.update(error=error, state=copy.deepcopy(module.state_dict()))
            return {"val_error": error}

        start = time.perf_counter()
        fit_budgeted(
            model, batches, imputation_loss, **fit_options(settings), progress=False, evaluate=keep_best
        )
        seconds = time.perf_counter() - start
        model.load_state_dict(best["state"])
        model.cpu()
        return SplitOutcome(
            model,
            split.allocation().detach().cpu(),
            validation_error=self.error(model, "val"),
            test_error=self.error(model, "test"),
            seconds=seconds,
        )

    @torch.no_grad()
    def error(self, model: BudgetedModel, part: str) -> float:
        """Masked MSE (normalised units) on ``part``, averaged over fixed draws of the split's noise."""
        device = next(model.parameters()).device
        inputs, targets = (tensor.to(device) for tensor in self.data[part])
        was_training = model.training
        model.eval()
        state = torch.random.get_rng_state()
        torch.manual_seed(10_000 + self.settings.seed)
        try:
            errors = [
                float(imputation_loss(model(inputs), targets)) for _ in range(self.settings.evaluation_draws)
            ]
        finally:
            torch.random.set_rng_state(state)
            model.train(was_training)
        return sum(errors) / len(errors)

    def learnt(self, budget: float) -> SplitOutcome:
        """The split of ``budget`` samples learnt jointly with the model, from uniform."""
        return self.run(BudgetSplit(self.contexts, budget))

    def uniform(self, budget: float) -> SplitOutcome:
        """The uniform split of ``budget`` samples over the input buoys."""
        return self.run(BudgetSplit.uniform(self.contexts, budget))


# -- seeds, budgets and signed extra costs (issue 14) -------------------------------------------------


def run_target(
    array: TAOArray, target: int, budget: float, factors: list[float], settings: ImputationSettings
) -> dict:
    """The learnt split of ``budget`` for buoy ``target`` and uniform splits of ``factor × budget``.

    Every model of the call starts from the same initial weights (``settings.seed``) and is tested
    on the same days under the same noise draws. Returns the learnt outcome, the uniform budgets
    and their test errors.
    """
    if sorted(factors) != list(factors) or min(factors) <= 0:
        raise ValueError(f"uniform factors must be positive and ascending, got {list(factors)}")
    experiment = ImputationExperiment(array, target, settings)
    learnt = experiment.learnt(budget)
    uniform_budgets = [budget * factor for factor in factors]
    return {
        "learnt": learnt,
        "uniform_budgets": uniform_budgets,
        "uniform_errors": [experiment.uniform(b).test_error for b in uniform_budgets],
    }


def signed_extra_cost(
    uniform_budgets: list[float], uniform_errors: list[float], learnt_error: float, budget: float
) -> tuple[float, str]:
    """The extra cost of a uniform split, matched to ``learnt_error`` on a uniform curve (Fig. 3.9).

    Signed: negative when the learnt split is worse than the uniform split of the same budget
    (the curve should then extend below ``budget``, e.g. factors 0.5 and 0.75); ``inf`` with status
    ``"censored"`` when no uniform budget tried reaches it. Returns ``(cost, status)``.
    """
    from thesislib.budget.evaluate import budget_to_match, match_status

    matched = budget_to_match(uniform_budgets, uniform_errors, learnt_error)
    return matched / budget - 1, match_status(uniform_budgets, uniform_errors, learnt_error)


def nearest_share_gain(allocation: Tensor, positions: Tensor | np.ndarray, target: int) -> float:
    """The learnt share of the input buoy nearest to ``target`` minus the uniform share 1/(C−1).

    ``allocation`` is over the input buoys (every buoy but ``target``, in order); ``positions`` the
    ``[C, 2]`` latitude/longitude of all buoys (Fig. 3.10: the learnt splits favour the nearest).
    """
    # a copy: notebook 03 passes DataFrame.to_numpy(), which pandas may hand out read-only
    positions = torch.asarray(positions, dtype=torch.float64, copy=True)
    buoys = positions.shape[0]
    if allocation.shape != (buoys - 1,):
        raise ValueError(
            f"allocation must cover the {buoys - 1} input buoys, got shape {tuple(allocation.shape)}"
        )
    inputs = [b for b in range(buoys) if b != target]
    distance = (positions[inputs] - positions[target]).norm(dim=1)
    nearest = int(distance.argmin())
    shares = allocation / allocation.sum()
    return float(shares[nearest]) - 1.0 / (buoys - 1)
