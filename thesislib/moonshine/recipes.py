"""The training protocols of chapter 4 as :class:`~thesislib.training.Recipe` data (§4.4.1, §4.5.1).

The thesis reuses Zagoruyko and Komodakis' protocol for every network, teacher or student, which is the
point of the method: no new hyperparameter search for the cheap students.

- :data:`ZAGORUYKO_CIFAR`: batch 128, 200 epochs, momentum 0.9, lr 0.1 multiplied by 0.2 after epochs
  60, 120 and 160, weight decay 5e-4.
- :data:`ZAGORUYKO_IMAGENET`: batch 256, 100 epochs, momentum 0.9, lr 0.1 divided by 10 every 30 epochs,
  weight decay 1e-4.

Both augment with pad-4 crops and flips only; ``Recipe(cutout=16)`` adds Cutout, as chapter 5's WRN-28-10
and DARTS protocols do (§5.3.1, :data:`thesislib.compressed.experiment.PROTOCOLS`). The recipes are
trained by the shared :func:`thesislib.training.train`.
"""

from __future__ import annotations

from collections.abc import Mapping

from thesislib.training import Recipe

__all__ = ["RECIPES", "ZAGORUYKO_CIFAR", "ZAGORUYKO_IMAGENET"]

ZAGORUYKO_CIFAR = Recipe(
    epochs=200, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, milestones=(60, 120, 160), gamma=0.2
)
"""The CIFAR protocol of §4.4.1 (Zagoruyko and Komodakis), used for teacher and students alike."""

ZAGORUYKO_IMAGENET = Recipe(
    epochs=100, batch_size=256, lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=(30, 60, 90), gamma=0.1
)
"""The ImageNet protocol of §4.5.1 (lr ÷10 every 30 epochs; the thesis spread the batch over 4 GPUs)."""

RECIPES: Mapping[str, Recipe] = {"cifar": ZAGORUYKO_CIFAR, "imagenet": ZAGORUYKO_IMAGENET}
