"""Learn a model and its budget split together with the shared :class:`~thesislib.training.Trainer`.

One optimiser (Adam, as in the thesis' experiments) updates θ and γ on the Monte-Carlo
estimate of the expected loss (Eq. 3.10).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from thesislib.budget.noising import BudgetedModel
from thesislib.training import TrainConfig, Trainer


@dataclass(frozen=True)
class SplitOutcome:
    """A model trained with a split, and its errors under the test condition.

    ``counts`` holds the whole samples per context the test gathered, where the test uses
    real samples (rotational MNIST); ``None`` where it emulates them with noise (TAO).
    """

    model: BudgetedModel
    allocation: Tensor
    validation_error: float
    test_error: float
    seconds: float
    counts: Tensor | None = None


def fit_options(settings: Any) -> dict[str, Any]:
    """The :func:`fit_budgeted` options a chapter's settings hold: ``epochs``, ``lr``, ``split_lr``,
    ``noise_samples`` (L of Eq. 3.10), ``seed`` and ``device``."""
    names = ("epochs", "lr", "split_lr", "noise_samples", "seed", "device")
    return {name: getattr(settings, name) for name in names}


def fit_budgeted(
    model: BudgetedModel,
    batches: Iterable[tuple[Tensor, Tensor]],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    epochs: int,
    lr: float = 1e-3,
    split_lr: float | None = None,
    noise_samples: int = 1,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    evaluate: Callable[[BudgetedModel], dict[str, float]] | None = None,
    split_lr_decay: bool = False,
) -> pd.DataFrame:
    """Minimise the L-sample expected loss (Eq. 3.10, L = ``noise_samples``) over θ and γ with Adam.

    ``batches`` is re-iterable, one pass per epoch, yielding ``(inputs, targets)``:
    :class:`~thesislib.training.TensorBatches` for data in tensors, or a generator of fresh
    examples such as :class:`~thesislib.budget.rotational_mnist.RotationalMNIST`.

    Whatever in ``model`` requires a gradient is learnt: a fixed split (``learnable=False``)
    trains the model alone; a frozen predictor learns the split alone. ``split_lr`` gives γ
    its own learning rate (default: ``lr``); ``split_lr_decay`` decays it linearly to 0 over the
    steps of training (one epoch = ``len(batches)`` steps), so the split settles instead of ending
    on a noisy iterate, while the model's rate stays constant. ``evaluate(model)`` runs after every epoch (e.g. a
    validation error, or keeping the best weights). Returns the per-epoch history: its metrics
    and the split's allocation after each epoch in columns ``r0 … r{C-1}``.
    """
    gamma = [p for p in model.split.parameters() if p.requires_grad]
    others = [p for p in model.parameters() if p.requires_grad and all(p is not g for g in gamma)]
    groups = [{"params": others}] if others else []
    if gamma:
        groups.append({"params": gamma, "lr": split_lr if split_lr is not None else lr})
    if not groups:
        raise ValueError("nothing to learn: neither the model nor the split has parameters that require grad")
    optimiser = torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)

    def loss(module: BudgetedModel, batch: tuple[Tensor, Tensor]) -> Tensor:
        return module.expected_loss(batch[0], batch[1], loss_fn, samples=noise_samples)

    def allocation(module: BudgetedModel) -> dict[str, float]:
        metrics = evaluate(module) if evaluate is not None else {}
        return {**metrics, **{f"r{c}": float(r) for c, r in enumerate(module.split.allocation())}}

    scheduler = None
    if split_lr_decay and gamma:
        total = max(1, epochs * len(batches))  # type: ignore[arg-type]
        lambdas = [lambda step: 1.0] * (len(groups) - 1) + [lambda step: max(0.0, 1.0 - step / total)]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambdas)
    config = TrainConfig(
        epochs=epochs, seed=seed, device=device, progress=progress, log_every=0, schedule_per="step"
    )
    return Trainer(model, optimiser, batches, loss, config, scheduler=scheduler, evaluate=allocation).fit()
