"""The ACDC riffle-vs-random-permutation toy regression of §5.2.3 ("Linear Approximation").

Following Moczulski et al. (2016, §6.1): a stack of ACDC layers is fitted by SGD (Adam) to a random
dense linear map, once with the riffle shuffle and once with a fixed random permutation between
layers. The thesis reports that both reach a final mean squared error of 0.02; the exact
hyperparameters of that run are not given, so the defaults here are a small, fast choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from thesislib.compressed.acdc import ACDC
from thesislib.training import StepBatches, TrainConfig, Trainer, progress_enabled

__all__ = ["ToyResult", "acdc_toy_regression"]


@dataclass(frozen=True)
class ToyResult:
    permutation: str
    final_mse: float
    history: list[float]  # training MSE every ``log_every`` steps
    baseline_mse: float  # MSE of predicting zero (the target's variance)


def acdc_toy_regression(
    permutation: str = "riffle",
    n: int = 32,
    layers: int = 32,
    samples: int = 2048,
    steps: int = 1500,
    lr: float = 1e-2,
    init_std: float = 0.1,
    seed: int = 0,
    log_every: int = 50,
) -> ToyResult:
    """Fit an ``layers``-deep ACDC stack to ``y = W x`` (``W`` i.i.d. ``N(0, 1/n)``, ``x ~ N(0, I)``) by
    full-batch Adam steps on the shared :class:`~thesislib.training.Trainer`.

    The target map and data depend only on ``seed`` (not on ``permutation``), so riffle and random
    runs see the same problem. Returns the final full-batch training MSE and its history.
    """
    generator = torch.Generator().manual_seed(seed)
    target = torch.randn(n, n, generator=generator) / n**0.5
    x = torch.randn(samples, n, generator=generator)
    y = x @ target.t()
    torch.manual_seed(seed + 1)
    model = ACDC(n, n, layers, permutation=permutation, seed=seed + 2, init_std=init_std)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    config = TrainConfig(epochs=1, seed=seed, schedule_per="step", device="cpu", progress=progress_enabled())
    trainer = Trainer(
        model,
        optimizer,
        StepBatches(lambda step: (x, y), steps),
        lambda network, batch: F.mse_loss(network(batch[0]), batch[1]),
        config,
        scheduler=scheduler,
        hparams={"toy": "acdc", "permutation": permutation, "n": n, "layers": layers, "samples": samples},
    )
    trainer.fit()
    history = [float(loss) for loss in trainer.step_history["loss"].iloc[::log_every]]
    with torch.no_grad():
        final = float(F.mse_loss(model(x), y))
    history.append(final)
    return ToyResult(permutation, final, history, float(y.pow(2).mean()))
