"""TAO imputation under a budget (thesis §3.3.2): the data layout, the loss, and one short run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from thesislib.budget.imputation import (
    ImputationExperiment,
    ImputationSettings,
    imputation_data,
    imputation_loss,
    imputation_mlp,
)
from thesislib.budget.tao import TAOArray


def toy_array(days: int = 120, buoys: int = 4, seed: int = 0) -> TAOArray:
    """Buoy 0 copies buoy 1 (plus a little noise); the others are independent; some values are missing."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(days, buoys, 5, generator=generator)
    values[:, 0] = values[:, 1] + 0.1 * torch.randn(days, 5, generator=generator)
    observed = torch.rand(days, buoys, 5, generator=generator) > 0.1
    values = torch.where(observed, values, torch.zeros(()))
    return TAOArray(
        values=values,
        observed=observed,
        dates=pd.date_range("1990-01-01", periods=days),
        summary=pd.DataFrame(),
        mean=torch.zeros(buoys, 5, dtype=torch.float64),
        std=torch.ones(buoys, 5, dtype=torch.float64),
        bounds=(80, 100),
    )


def test_inputs_hold_the_other_buoys_and_their_missing_indicators() -> None:
    array = toy_array()
    inputs, targets = imputation_data(array.values, array.observed, target=2)
    assert inputs.shape == (120, 3, 10) and targets.shape == (120, 2, 5)
    assert torch.equal(inputs[:, :, :5], array.values[:, [0, 1, 3]])
    assert torch.equal(inputs[:, :, 5:], (~array.observed[:, [0, 1, 3]]).float())
    assert torch.equal(targets[:, 0], array.values[:, 2])
    with pytest.raises(ValueError, match="target buoy"):
        imputation_data(array.values, array.observed, target=4)


def test_loss_ignores_missing_targets() -> None:
    prediction = torch.zeros(3, 5)
    targets = torch.stack([torch.ones(3, 5), torch.ones(3, 5)], dim=1)
    targets[0, 1, :] = 0  # the first day's target values are missing
    changed = targets.clone()
    changed[0, 0, :] = 100.0
    assert float(imputation_loss(prediction, targets)) == float(imputation_loss(prediction, changed)) == 1.0


def test_mlp_shape() -> None:
    assert imputation_mlp(9, 5)(torch.zeros(4, 9, 10)).shape == (4, 5)


def test_learnt_split_favours_the_informative_buoy_and_beats_uniform() -> None:
    settings = ImputationSettings(
        hidden=32, epochs=15, batch_size=20, split_lr=5e-2, evaluation_draws=4, device="cpu"
    )
    experiment = ImputationExperiment(toy_array(), target=0, settings=settings)
    learnt = experiment.learnt(6.0)
    assert int(learnt.allocation.argmax()) == 0, "input 0 is buoy 1, the copy of the target"
    assert float(learnt.allocation.sum()) == pytest.approx(6.0, rel=1e-5)
    uniform = experiment.uniform(6.0)
    assert learnt.test_error < uniform.test_error
    assert experiment.error(learnt.model, "test") == learnt.test_error, "fixed noise draws: repeatable"


def test_signed_extra_cost_can_be_negative_and_censored() -> None:
    from thesislib.budget.imputation import signed_extra_cost

    budgets, errors = [9.0, 13.5, 18.0, 27.0], [1.0, 0.9, 0.8, 0.7]
    cost, status = signed_extra_cost(budgets, errors, 0.85, 18.0)  # between the 0.75x and 1x budgets
    assert cost < 0 and status == "interpolated"
    cost, status = signed_extra_cost(budgets, errors, 0.75, 18.0)
    assert 0 < cost < 0.5 and status == "interpolated"
    cost, status = signed_extra_cost(budgets, errors, 0.5, 18.0)
    assert cost == float("inf") and status == "censored"
    cost, status = signed_extra_cost(budgets, errors, 1.1, 18.0)
    assert cost < -0.5 and status == "below"


def test_nearest_share_gain() -> None:
    from thesislib.budget.imputation import nearest_share_gain

    positions = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 5.0], [0.0, 9.0]])
    # target 0: inputs 1, 2, 3; buoy 1 is nearest
    assert nearest_share_gain(torch.tensor([2.0, 1.0, 1.0]), positions, 0) == pytest.approx(0.5 - 1 / 3)
    assert nearest_share_gain(torch.tensor([1.0, 1.0, 1.0]), positions, 0) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="input buoys"):
        nearest_share_gain(torch.ones(4), positions, 0)


def test_nearest_share_gain_takes_a_read_only_array_without_a_warning() -> None:
    """Notebook 03 passes ``DataFrame.to_numpy()``, which pandas may hand out read-only."""
    import warnings

    from thesislib.budget.imputation import nearest_share_gain

    positions = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 5.0], [0.0, 9.0]])
    positions.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gain = nearest_share_gain(torch.tensor([2.0, 1.0, 1.0]), positions, 0)
    assert gain == pytest.approx(0.5 - 1 / 3)
