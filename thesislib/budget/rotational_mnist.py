"""Rotational MNIST (thesis §3.3.1, Figs. 3.5–3.6): infer the angle a set of digits was rotated by.

Each example is a *set* with one context per digit class (C = 10). Every image in the
set is rotated by the same angle θ ~ U[0, 2π), and the target is θ discretised into
256 classes (regression as classification). A context contributes a number of images
of its digit; a statistic network summarises them (Eq. 3.14), the budget decides how
many images each context contributes at test time. Induced sparsity zeroes each image
of context c with probability p_c, making some digits less informative.

Data stay on the device as float tensors; sets are drawn and rotated per batch with
tensor ops (``affine_grid``/``grid_sample``), no per-image Python loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.budget.baselines import l2_norm_allocation
from thesislib.budget.bayesopt import bayesian_optimisation
from thesislib.budget.evaluate import evaluate_with_samples, integer_allocation
from thesislib.budget.learn import SplitOutcome, fit_budgeted, fit_options
from thesislib.budget.noising import BudgetedModel, add_noise
from thesislib.budget.split import BudgetSplit
from thesislib.budget.statistic import StatisticNetwork
from thesislib.training import select_device

CONTEXTS = 10
ANGLE_CLASSES = 256
IMAGE_PIXELS = 28 * 28


# -- angles -------------------------------------------------------------------------------------------


def angle_to_class(angle: Tensor, classes: int = ANGLE_CLASSES) -> Tensor:
    """The bin of each angle (radians, any real value) among ``classes`` equal bins of [0, 2π)."""
    fraction = torch.remainder(angle, 2 * math.pi) / (2 * math.pi)
    return (fraction * classes).floor().long().remainder(classes)


def class_to_angle(label: Tensor, classes: int = ANGLE_CLASSES) -> Tensor:
    """The centre of each bin, in radians."""
    return (label.to(torch.get_default_dtype()) + 0.5) * (2 * math.pi / classes)


def angular_error(predicted: Tensor, true: Tensor) -> Tensor:
    """The distance between ``predicted`` and ``true`` on the circle, in radians, in [0, π]."""
    difference = predicted - true
    return torch.atan2(torch.sin(difference), torch.cos(difference)).abs()


def rotate(images: Tensor, angles: Tensor) -> Tensor:
    """Rotate ``images [M, H, W]`` anticlockwise by ``angles [M]`` (radians) about their centres."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(cos)
    # affine_grid maps output to input coordinates, so the inverse rotation goes in the matrix.
    matrix = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)
    grid = F.affine_grid(matrix, [len(images), 1, *images.shape[-2:]], align_corners=False)
    return F.grid_sample(images.unsqueeze(1), grid, align_corners=False).squeeze(1)


# -- sparsity -----------------------------------------------------------------------------------------


def sparsity_profile(level: float, contexts: int = CONTEXTS) -> Tensor:
    """Per-context zeroing probabilities with mean ``level``, rising linearly over the digits.

    p_c = 2·level·c/(C−1), clipped to [0, 1]: digit 0 is never zeroed, the last digit most
    often, so the contexts differ in how informative they are.
    """
    if not 0 <= level <= 1:
        raise ValueError(f"a sparsity level is a probability in [0, 1], got {level}")
    ramp = torch.linspace(0, 2 * level, contexts)
    return ramp.clamp(max=1.0)


def spread_sparsity(seed: int, clean: int = 3, high: float = 0.9, contexts: int = CONTEXTS) -> Tensor:
    """``clean`` contexts never blanked and the rest blanked with probability ``high``; which
    digits are clean is drawn from ``seed``, so informativeness is not tied to digit identity.

    The review of issue 14: under :func:`sparsity_profile`'s ramp the possible extra cost of a uniform
    split is capped at p̄/(1 − p̄), and the cleanest digits are always 0 and 1 (nearly symmetric under
    a half turn). With 3 clean digits and 7 at p = 0.9 the bound is about 170%.
    """
    if not 0 <= high <= 1:
        raise ValueError(f"the blanking probability `high` must lie in [0, 1], got {high}")
    if int(clean) != clean or not 0 <= clean <= contexts:
        raise ValueError(f"clean must be an integer number of contexts in 0..{contexts}, got {clean}")
    order = torch.randperm(contexts, generator=torch.Generator().manual_seed(int(seed)))
    profile = torch.full((contexts,), float(high))
    profile[order[: int(clean)]] = 0.0
    return profile


def sparsity_condition(condition: str, level: float, seed: int) -> Tensor:
    """The blanking profile of an experimental condition: ``"spread"`` (:func:`spread_sparsity`
    with 3 clean digits and the others at ``level``) or ``"ramp"`` (:func:`sparsity_profile` of mean
    ``level``)."""
    if condition == "spread":
        return spread_sparsity(seed, high=level)
    if condition == "ramp":
        return sparsity_profile(level)
    raise ValueError(f"unknown sparsity condition {condition!r}; valid: 'spread', 'ramp'")


# -- the data -----------------------------------------------------------------------------------------


@dataclass
class RotationalMNIST:
    """Batches of rotated digit sets drawn from per-digit pools of MNIST images.

    Args:
        images: uint8 ``[N, 28, 28]`` digits and ``labels [N]`` (0–9): the pools.
        batch_size: sets per batch.
        samples_per_context: images each context contributes to a set.
        sparsity: per-context zeroing probabilities ``[10]`` (see :func:`sparsity_profile`).
        batches_per_epoch: how many batches one pass yields (each pass draws new sets).
        seed: batches depend only on ``(seed, epoch)``, so training resumes exactly.
        device: where the pools live and the sets are built.

    Iterating yields ``(sets [B, 10, I, 784], target classes [B])`` in [0, 1]; :meth:`draw`
    also returns the angles.
    """

    images: Tensor
    labels: Tensor
    batch_size: int
    samples_per_context: int
    sparsity: Tensor
    batches_per_epoch: int = 100
    seed: int = 0
    device: torch.device | str = "cpu"

    def __post_init__(self) -> None:
        if self.samples_per_context < 1 or self.batch_size < 1 or self.batches_per_epoch < 1:
            raise ValueError("batch_size, samples_per_context and batches_per_epoch must be positive")
        self.sparsity = torch.as_tensor(self.sparsity, dtype=torch.float32)
        if self.sparsity.shape != (CONTEXTS,) or bool(((self.sparsity < 0) | (self.sparsity > 1)).any()):
            raise ValueError(
                f"sparsity must be {CONTEXTS} probabilities, one per digit; got {self.sparsity.tolist()}"
            )
        images = self.images.to(self.device, torch.float32).div_(255).flatten(1)
        labels = self.labels.to(self.device)
        self.pools = [images[labels == digit] for digit in range(CONTEXTS)]
        if any(len(pool) == 0 for pool in self.pools):
            raise ValueError("every digit 0-9 needs at least one image in the pool")
        self.sparsity = self.sparsity.to(self.device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        generator = self._generator(epoch)
        for _ in range(self.batches_per_epoch):
            sets, angles = self.draw(self.batch_size, self.samples_per_context, generator)
            yield sets, angle_to_class(angles)

    def _generator(self, stream: int) -> torch.Generator:
        seed = int(np.random.SeedSequence([self.seed, stream]).generate_state(1, np.uint64)[0])
        return torch.Generator(device="cpu").manual_seed(seed)

    def draw(self, sets: int, samples_per_context: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``sets`` new sets of ``samples_per_context`` images per digit, and their angles.

        Random numbers come from ``generator`` (on the CPU), so a set is the same on every device.
        """
        angles = torch.rand(sets, generator=generator) * (2 * math.pi)
        chosen = []
        for pool in self.pools:
            index = torch.randint(len(pool), (sets * samples_per_context,), generator=generator)
            chosen.append(pool[index.to(pool.device)].view(sets, samples_per_context, -1))
        batch = torch.stack(chosen, dim=1)  # [sets, C, I, 784]
        keep = torch.rand(sets, CONTEXTS, samples_per_context, generator=generator).to(self.device)
        batch = batch * (keep >= self.sparsity.view(1, -1, 1)).unsqueeze(-1)
        per_image = angles.to(self.device).repeat_interleave(CONTEXTS * samples_per_context)
        rotated = rotate(batch.view(-1, 28, 28), per_image).view(sets, CONTEXTS, samples_per_context, -1)
        return rotated, angles.to(self.device)

    def evaluation_generator(self, stream: int) -> torch.Generator:
        """A generator for reproducible evaluation sets, independent of every training epoch's."""
        return self._generator(10_000 + stream)


# -- the model (thesis' implementation details, §3.3.1) -----------------------------------------------


def statistic_network(hidden: int = 800, statistics: int = 32, dropout: float = 0.5) -> StatisticNetwork:
    """h_φ: MLP 784 → hidden → hidden → ``statistics``, batch-norm + ReLU + dropout (thesis: 800, 32, 0.5).

    A final batch-norm without affine parameters fixes the statistics' overall scale, so the
    network cannot outgrow the noise by scaling them up. It does *not* give each digit the same
    per-image variance: the v_c of Eq. 3.11 is estimated per context by :class:`RotationModel`.
    """
    return StatisticNetwork(
        nn.Sequential(
            nn.Linear(IMAGE_PIXELS, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, statistics),
            nn.BatchNorm1d(statistics, affine=False),
        )
    )


def angle_predictor(hidden: int = 800, statistics: int = 32) -> nn.Module:
    """f_θ: the noisy statistics of the 10 contexts → one hidden layer → 256 angle-class logits."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(CONTEXTS * statistics, hidden),
        nn.ReLU(),
        nn.Linear(hidden, ANGLE_CLASSES),
    )


NOISE_FORMS = ("excess", "total")


class RotationModel(BudgetedModel):
    """Statistic network, per-context noise of Eq. 3.11, angle classifier (Fig. 3.3).

    Each training set holds I = ``train_samples`` real images per digit, and the statistic
    x̄_c is their mean embedding. The noise emulating a test-time budget of r_c images is
    σ²_c = v_c·(1/r_c − 1/I)₊ (``noise_form="excess"``: the mean of I images already carries
    v_c/I, so the total is v_c/r_c for r_c ≤ I, what the test sees) or v_c/r_c (``"total"``).
    v_c is the within-set variance of one image's embedding in context c (Eq. 3.11's per-context
    variance), a running estimate detached from the graph, so γ gets no gradient through it.

    At test time a context given no images gets its running-mean statistic (tracked in
    training), not the zero vector, which no context ever produces in training.
    """

    def __init__(
        self,
        predictor: nn.Module,
        split: BudgetSplit,
        encoder: StatisticNetwork,
        train_samples: int,
        statistics: int,
        momentum: float = 0.05,
        noise_form: str = "excess",
    ) -> None:
        super().__init__(predictor, split, encoder)
        if noise_form not in NOISE_FORMS:
            raise ValueError(f"unknown noise_form {noise_form!r}; valid: {', '.join(NOISE_FORMS)}")
        if int(train_samples) != train_samples or train_samples < 1:
            raise ValueError(f"train_samples must be a positive integer, got {train_samples}")
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must lie in (0, 1], got {momentum}")
        self.train_samples = int(train_samples)
        self.momentum = float(momentum)
        self.noise_form = noise_form
        self.register_buffer("context_variance", torch.ones(split.contexts))
        self.register_buffer("context_mean", torch.zeros(split.contexts, statistics))
        self.register_buffer("tracked", torch.zeros((), dtype=torch.long))

    def noise_std(self) -> Tensor:
        """σ_c from the running v_c and the split's allocation r_c (see the class docstring)."""
        inverse = 1.0 / self.split.allocation()
        if self.noise_form == "excess":
            inverse = inverse - 1.0 / self.train_samples
        return (self.context_variance * inverse).clamp(min=1e-12).sqrt()

    @torch.no_grad()
    def _track(self, embedded: Tensor) -> None:
        """Update the running v_c and mean statistic from embeddings ``[N, C, I, D]``."""
        if embedded.shape[2] < 2:
            return
        variance = embedded.var(dim=2).mean(dim=(0, 2))  # within-set variance of one image, per context
        mean = embedded.mean(dim=(0, 2))
        rate = 1.0 if int(self.tracked) == 0 else self.momentum
        self.context_variance.lerp_(variance.clamp(min=1e-6), rate)
        self.context_mean.lerp_(mean, rate)
        self.tracked += 1

    def features(self, inputs: Tensor, counts: Tensor | None = None) -> Tensor:
        if counts is None:
            return self.encoder(inputs)
        statistics = self.encoder(inputs, counts)
        counts = torch.as_tensor(counts, device=statistics.device).expand(statistics.shape[:2])
        empty = (counts == 0).unsqueeze(-1)
        return torch.where(empty, self.context_mean.unsqueeze(0).to(statistics.dtype), statistics)

    def forward(self, inputs: Tensor, counts: Tensor | None = None, noisy: bool = True) -> Tensor:
        features = self.features(inputs, counts)
        if noisy:
            features = add_noise(features, self.noise_std(), self.context_dim)
        return self.predictor(features)

    def expected_loss(self, inputs, targets, loss_fn, samples: int = 1) -> Tensor:
        """Eq. 3.10 with the per-context noise of :meth:`noise_std`; updates the running v_c first."""
        if int(samples) != samples or samples < 1:
            raise ValueError(
                f"samples (L, the Monte-Carlo draws of ε) must be a positive integer, got {samples}"
            )
        n, contexts, available = inputs.shape[:3]
        embedded = self.encoder.embed(inputs.flatten(0, 2)).view(n, contexts, available, -1)
        if self.training:
            self._track(embedded.detach())
        features = embedded.mean(dim=2)
        repeated = features.unsqueeze(0).expand(samples, *features.shape).reshape(-1, *features.shape[1:])
        noisy = add_noise(repeated, self.noise_std(), self.context_dim)
        targets = targets.unsqueeze(0).expand(samples, *targets.shape).reshape(-1, *targets.shape[1:])
        return loss_fn(self.predictor(noisy), targets)


def rotation_model(
    split: BudgetSplit,
    hidden: int = 800,
    statistics: int = 32,
    dropout: float = 0.5,
    train_samples: int = 5,
    noise_form: str = "excess",
) -> RotationModel:
    """The full model of Fig. 3.3: statistic network, noise g_γ on the statistics, angle classifier."""
    if split.contexts != CONTEXTS:
        raise ValueError(f"rotational MNIST has {CONTEXTS} contexts (digits); the split has {split.contexts}")
    return RotationModel(
        angle_predictor(hidden, statistics),
        split,
        statistic_network(hidden, statistics, dropout),
        train_samples,
        statistics,
        noise_form=noise_form,
    )


def first_layer_weight(model: BudgetedModel) -> Tensor:
    """The ``[hidden, 10·32]`` weight that reads the statistics: what the L2 heuristic inspects."""
    return model.predictor[1].weight


def mean_angular_error(
    model: BudgetedModel, sets: Tensor, angles: Tensor, counts: Sequence[int] | Tensor, batch_size: int = 256
) -> float:
    """Mean absolute angular error (radians) with each digit's statistic from ``counts[c]`` real images.

    The thesis' test condition (:func:`~thesislib.budget.evaluate.evaluate_with_samples`): no noise
    is added; a context given no images gets its running-mean statistic (:class:`RotationModel`).
    """
    batches = [
        (sets[i : i + batch_size], angles[i : i + batch_size]) for i in range(0, len(sets), batch_size)
    ]
    return evaluate_with_samples(
        model, batches, torch.as_tensor(counts).to(sets.device), _angular_error_of_logits
    )


def _angular_error_of_logits(logits: Tensor, angles: Tensor) -> Tensor:
    return angular_error(class_to_angle(logits.argmax(dim=1)), angles)


# -- the experiment (Fig. 3.6) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationSettings:
    """Sizes and optimiser settings of one rotational-MNIST training run (plain data for papermill).

    The thesis' values: hidden 800, 32 statistics, dropout 0.5, Adam(1e-3, β=(0.9, 0.999), ε=1e-8).
    """

    hidden: int = 800
    statistics: int = 32
    dropout: float = 0.5
    batch_size: int = 64
    train_samples: int = 5
    batches_per_epoch: int = 100
    epochs: int = 20
    lr: float = 1e-3
    split_lr: float = 1e-3
    split_lr_decay: bool = True
    noise_form: str = "excess"
    noise_samples: int = 1
    seed: int = 0
    device: str = "auto"

    def with_seed(self, seed: int) -> RotationSettings:
        """The same settings for paired seed ``seed`` (§3.3.1: every method of a seed shares its
        data stream, initial weights and blanked digits), everything else unchanged."""
        return replace(self, seed=int(seed))


class RotationExperiment:
    """Train and test rotation models on one data source and sparsity profile, for any split.

    Pools: the ``train`` split trains (fresh sets every batch); fixed sets drawn from the
    ``val`` and ``test`` splits measure errors. Each evaluation set holds ``images_per_digit``
    images of every digit, of which each digit uses as many as its split allots, so splits of
    different budgets are tested on the same sets.
    """

    def __init__(
        self,
        splits: dict[str, tuple[Tensor, Tensor]],
        sparsity: Tensor,
        settings: RotationSettings,
        images_per_digit: int,
        evaluation_sets: int = 500,
        validation_sets: int | None = None,
    ) -> None:
        self.settings = settings
        self.images_per_digit = int(images_per_digit)
        self.evaluation_sets = evaluation_sets
        self.validation_sets = evaluation_sets if validation_sets is None else int(validation_sets)
        self.device = select_device(settings.device)
        self.sparsity = torch.as_tensor(sparsity, dtype=torch.float32)
        images, labels = splits["train"]
        self.train = RotationalMNIST(
            images,
            labels,
            settings.batch_size,
            settings.train_samples,
            self.sparsity,
            settings.batches_per_epoch,
            settings.seed,
            self.device,
        )
        self.pools = {
            name: RotationalMNIST(*splits[name], 1, 1, self.sparsity, seed=settings.seed, device=self.device)
            for name in ("val", "test")
        }

    def error(self, model: BudgetedModel, counts: Tensor, split_name: str, chunk: int = 50) -> float:
        """Mean angular error on the fixed ``val`` or ``test`` sets with ``counts`` images per digit."""
        if int(counts.max()) > self.images_per_digit:
            raise ValueError(
                f"the evaluation sets hold {self.images_per_digit} images per digit; counts {counts.tolist()}"
            )
        pool = self.pools[split_name]
        generator = pool.evaluation_generator(("val", "test").index(split_name))
        number = self.validation_sets if split_name == "val" else self.evaluation_sets
        total = 0.0
        for start in range(0, number, chunk):
            size = min(chunk, number - start)
            sets, angles = pool.draw(size, self.images_per_digit, generator)
            total += mean_angular_error(model, sets, angles, counts) * size
        return total / number

    def run(self, split: BudgetSplit, progress: bool = False) -> SplitOutcome:
        """Train a model from scratch with ``split`` (learnt if γ is a parameter), then test it with
        ``round(B)`` real images split as its allocation says."""
        settings = self.settings
        torch.manual_seed(settings.seed)
        model = rotation_model(
            split,
            settings.hidden,
            settings.statistics,
            settings.dropout,
            settings.train_samples,
            settings.noise_form,
        )
        start = time.perf_counter()
        options = fit_options(settings)
        fit_budgeted(
            model,
            self.train,
            F.cross_entropy,
            **options,
            progress=progress,
            split_lr_decay=settings.split_lr_decay,
        )
        seconds = time.perf_counter() - start
        allocation = split.allocation().detach().cpu()
        counts = integer_allocation(allocation, round(split.budget))
        return SplitOutcome(
            model,
            allocation,
            validation_error=self.error(model, counts, "val"),
            test_error=self.error(model, counts, "test"),
            seconds=seconds,
            counts=counts,
        )

    def uniform(self, budget: int) -> SplitOutcome:
        """A model trained and tested with the uniform split of ``budget`` images."""
        return self.run(BudgetSplit.uniform(CONTEXTS, budget))

    def learnt(self, budget: int, progress: bool = False) -> SplitOutcome:
        """A model whose split of ``budget`` is learnt jointly with it, from the uniform start γ = 0."""
        return self.run(BudgetSplit(CONTEXTS, budget), progress)

    def l2_heuristic(self, uniform: SplitOutcome) -> SplitOutcome:
        """The split ∝ the L2 norms of the uniform model's weights reading each digit's statistics."""
        budget = float(uniform.allocation.sum())
        allocation = l2_norm_allocation(first_layer_weight(uniform.model).cpu(), CONTEXTS, budget)
        return self.run(BudgetSplit.from_allocation(allocation))

    def bayesian_search(self, budget: int, trials: int, initial_trials: int = 3, bound: float = 3.0):
        """GPyOpt over γ ∈ [−bound, bound]^10: each trial trains from scratch with the fixed split
        B·softmax(γ) and scores its validation error. Returns the search and the best trial's outcome."""
        outcomes: list[SplitOutcome] = []

        def objective(gamma: np.ndarray) -> float:
            outcomes.append(self.run(BudgetSplit(CONTEXTS, budget, gamma=gamma, learnable=False)))
            return outcomes[-1].validation_error

        search = bayesian_optimisation(
            objective, [(-bound, bound)] * CONTEXTS, trials, initial_trials, self.settings.seed
        )
        search.trials["test_error"] = [outcome.test_error for outcome in outcomes]
        best = min(outcomes, key=lambda outcome: outcome.validation_error)
        return search, best


# -- one seed of the paired comparison (issue 14) ------------------------------------------------------


def compare_on_seed(
    splits: dict[str, tuple[Tensor, Tensor]],
    settings: RotationSettings,
    sparsity: Tensor,
    budget: int,
    uniform_budgets: Sequence[int],
    evaluation_sets: int,
    validation_sets: int | None = None,
    l2: bool = True,
) -> dict:
    """One seed of §3.3.1's comparison: learnt, uniform and L2-heuristic splits of ``budget`` and
    uniform splits of ``uniform_budgets``, all trained from the same initial weights (``settings.seed``)
    and tested on the same fixed sets (paired). Returns plain numbers (and the experiment/outcomes).

    ``extra_cost`` is the signed extra cost of a uniform split: the uniform budget that matches the
    learnt error on this seed's uniform curve (:func:`~thesislib.budget.evaluate.budget_to_match`,
    extrapolated below the smallest budget), divided by ``budget``, minus one; ``inf`` if censored.
    """
    from thesislib.budget.evaluate import budget_to_match, match_status

    if budget not in uniform_budgets:
        raise ValueError(f"uniform_budgets {list(uniform_budgets)} must include the budget {budget}")
    images_per_digit = max(budget, -(-max(uniform_budgets) // CONTEXTS))
    experiment = RotationExperiment(
        splits, sparsity, settings, images_per_digit, evaluation_sets, validation_sets
    )
    uniform = {b: experiment.uniform(b) for b in uniform_budgets}
    learnt = experiment.learnt(budget)
    l2_outcome = experiment.l2_heuristic(uniform[budget]) if l2 else None
    curve = [uniform[b].test_error for b in uniform_budgets]
    matched = budget_to_match(uniform_budgets, curve, learnt.test_error)
    return {
        "experiment": experiment,
        "learnt": learnt,
        "uniform": uniform[budget],
        "l2": l2_outcome,
        "uniform_curve": dict(zip(uniform_budgets, curve, strict=True)),
        "matched_budget": matched,
        "match_status": match_status(uniform_budgets, curve, learnt.test_error),
        "extra_cost": matched / budget - 1,
        # the uniform model scored with the learnt split's counts: separates the split from the training
        "uniform_model_learnt_counts": experiment.error(uniform[budget].model, learnt.counts, "test"),
    }
