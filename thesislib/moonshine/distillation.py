"""Distillation losses of thesis §4.3.1: knowledge distillation (Eq. 4.1) and attention transfer (Eq. 4.2).

Both take the student's logits ``s`` (and, for attention transfer, the outputs of its residual groups)
together with the teacher's, and return ``(loss, parts)``: the scalar to minimise and its named terms,
so that :class:`thesislib.training.Trainer` logs each term per step (Figs. 4.5 and 4.6 plot them).

Knowledge distillation (Eq. 4.1), as written in the thesis, averaged over the batch::

    L_KD = (1 − α) L_CE(y, σ(s)) + 2αT² L_CE(σ(t/T), σ(s/T)),     α = 0.9, T = 4

Which weight does the soft term carry? The code behind Table 4.3 computed it with ``F.kl_div`` and its
default element-wise mean, i.e. averaged over the batch *and the K classes*: ``2αT²/K · KL`` (2.88 for
CIFAR-10), a tenth of the printed equation's weight (28.8). Both are offered (``kd_form``):
``"kl_div_mean"`` (default, the code behind the thesis' numbers) and ``"equation"`` (Eq. 4.1 as printed,
summed over classes).

Attention transfer (Eq. 4.2) with Zagoruyko and Komodakis' map ``f(A) = (1/C) Σ_j a_j²`` (channel mean of
the squared activations, flattened over the spatial positions, divided by its L2 norm)::

    L_AT = L_CE(y, σ(s)) + β Σ_i d(f(A_i^t)/‖f(A_i^t)‖₂, f(A_i^s)/‖f(A_i^s)‖₂),   β = 1000 (CIFAR), 750 (ImageNet)

Which distance ``d``, and β or β/2? The thesis and the Moonshine paper print ``‖·‖₂`` of the difference
of the normalised maps, weighted by β; Zagoruyko and Komodakis' paper writes β/2 in front of the same
norm. The code that produced the thesis' numbers (BayesWatch/pytorch-moonshine, ``funcs.at_loss``) and
Zagoruyko and Komodakis' own CIFAR code both compute instead the *mean over the batch and the spatial
positions of the squared difference*, multiplied by β (the thesis' code uses ``β·3/N_L`` for ``N_L``
groups, hence β = 750 = 1000·3/4 for the four ResNet groups on ImageNet, §4.5.1). β = 1000 was tuned
for that form: per example, the printed norm ``‖d‖`` is larger than the code's ``‖d‖²/(H·W)`` by a
factor ``H·W/‖d‖`` — tens for 8×8 maps to thousands for 32×32 maps — so with β = 1000 it would swamp
the cross entropy. :func:`attention_distance` therefore defaults to ``form="mean_squared"`` (the code's,
weighted by β, not β/2) and offers ``form="norm"`` (the printed ``‖·‖₂``, averaged over the batch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ALPHA",
    "AT_FORMS",
    "BETA_CIFAR",
    "BETA_IMAGENET",
    "KD_FORMS",
    "METHODS",
    "TEMPERATURE",
    "DistillationLoss",
    "DistillationSettings",
    "at_beta",
    "at_beta_for_resolution",
    "attention_distance",
    "attention_map",
    "attention_transfer_loss",
    "knowledge_distillation_loss",
    "soft_cross_entropy",
]

ALPHA = 0.9
"""α of Eq. 4.1 (§4.4.1, implementation details)."""
TEMPERATURE = 4.0
"""T of Eq. 4.1 (§4.4.1)."""
BETA_CIFAR = 1000.0
"""β of Eq. 4.2 for the three WRN groups on CIFAR (§4.4.1)."""
BETA_IMAGENET = 750.0
"""β of Eq. 4.2 for the four ResNet groups on ImageNet (§4.5.1): the same total weight, 1000·3/4."""

AT_FORMS = ("mean_squared", "norm")
KD_FORMS = ("kl_div_mean", "equation")
METHODS = ("scratch", "kd", "at")

AtForm = Literal["mean_squared", "norm"]
KdForm = Literal["kl_div_mean", "equation"]
Method = Literal["scratch", "kd", "at"]


def at_beta(num_groups: int, beta: float = BETA_CIFAR, reference_groups: int = 3) -> float:
    """β for ``num_groups`` attention terms with the same total weight as ``beta`` over ``reference_groups``.

    The thesis' code scales β by ``3 / N_L``; for the four groups of a ResNet this gives β = 750 (§4.5.1).
    """
    if num_groups < 1 or reference_groups < 1:
        raise ValueError(f"group counts must be positive, got {num_groups} and {reference_groups}")
    return beta * reference_groups / num_groups


def at_beta_for_resolution(beta: float, resolution: int, reference_resolution: int = 32) -> float:
    """β for inputs of side ``resolution`` with the same weight per attention map as ``beta`` at ``reference_resolution``.

    The distance of Eq. 4.2 as the thesis' code computes it (``form="mean_squared"``) is a mean over
    the map's ``P`` positions of squared differences of unit-norm maps: for the same pair of maps at
    a coarser resolution it is larger by the ratio of position counts (exactly so for
    nearest-neighbour upsampled maps, tested). Zagoruyko and Komodakis define β = 1000 "divided by the
    number of elements in the attention map", so images pooled from 32×32 to 16×16 (the cpu profile)
    keep the thesis' weight with ``β · (16/32)² = 250``.
    """
    if resolution < 1 or reference_resolution < 1:
        raise ValueError(f"resolutions must be positive, got {resolution} and {reference_resolution}")
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got {beta}")
    return beta * (resolution / reference_resolution) ** 2


def soft_cross_entropy(targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``L_CE(p, σ(logits)) = −Σ_k p_k log σ(logits)_k``, averaged over the batch (the thesis' ``L_CE``)."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def knowledge_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = ALPHA,
    temperature: float = TEMPERATURE,
    form: KdForm = "kl_div_mean",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 4.1: ``(1 − α) L_CE(y, σ(s)) + w · KL(σ(t/T) ‖ σ(s/T))``, averaged over the batch.

    ``form="kl_div_mean"`` (default): ``w = 2αT²/K`` for ``K`` classes — the thesis' code (its
    ``F.kl_div`` averaged over classes as well as examples), which produced Table 4.3.
    ``form="equation"``: ``w = 2αT²``, the printed Eq. 4.1 (ten times the weight for CIFAR-10).
    The printed equation uses the cross entropy ``L_CE(σ(t/T), σ(s/T))``; the KL divergence differs from
    it by the teacher's entropy, a constant, so the gradients are the same (we log the KL, 0 for a
    student equal to its teacher). Returns the loss and its two weighted terms ``{"ce", "kd"}``. The
    teacher's logits are detached.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if form not in KD_FORMS:
        raise ValueError(f"unknown knowledge-distillation form {form!r}; valid forms: {', '.join(KD_FORMS)}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs "
            f"{tuple(teacher_logits.shape)}"
        )
    s, t = student_logits.float(), teacher_logits.detach().float()
    ce = (1.0 - alpha) * F.cross_entropy(s, labels)
    log_p = F.log_softmax(s / temperature, dim=1)
    log_q = F.log_softmax(t / temperature, dim=1)
    kl = (log_q.exp() * (log_q - log_p)).sum(dim=1).mean()  # summed over classes, mean over the batch
    weight = 2.0 * alpha * temperature**2
    if form == "kl_div_mean":
        weight /= s.shape[1]
    kd = weight * kl
    return ce + kd, {"ce": ce, "kd": kd}


def attention_map(activations: torch.Tensor) -> torch.Tensor:
    """``f(A)/‖f(A)‖₂`` of Eq. 4.2: the channel mean of squared activations, flattened and L2-normalised.

    ``activations`` is B×C×H×W; the result is B×(H·W) with unit rows (zero rows stay zero). Computed in
    float32, so float16 activations cannot overflow when squared.
    """
    if activations.dim() != 4:
        raise ValueError(f"expected B×C×H×W activations, got shape {tuple(activations.shape)}")
    f = activations.float().pow(2).mean(dim=1).flatten(1)
    return F.normalize(f, p=2, dim=1)


def attention_distance(
    student: torch.Tensor, teacher: torch.Tensor, form: AtForm = "mean_squared"
) -> torch.Tensor:
    """The distance between the normalised attention maps of one group (one summand of Eq. 4.2, without β).

    ``form="mean_squared"`` (default): mean over batch and positions of the squared difference, as in the
    code that produced the thesis' results (see the module docstring). ``form="norm"``: the printed
    ``‖·‖₂`` of the difference, averaged over the batch. Both are 0 for equal maps and invariant to a
    positive rescaling of either network's activations. The teacher's activations are detached.
    """
    if form not in AT_FORMS:
        raise ValueError(f"unknown attention-transfer form {form!r}; valid forms: {', '.join(AT_FORMS)}")
    if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
        raise ValueError(
            "student and teacher activations must share batch size and spatial size (channels may differ), "
            f"got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    difference = attention_map(student) - attention_map(teacher.detach())
    if form == "mean_squared":
        return difference.pow(2).mean()
    return difference.norm(p=2, dim=1).mean()


def attention_transfer_loss(
    student_logits: torch.Tensor,
    student_groups: Sequence[torch.Tensor],
    teacher_groups: Sequence[torch.Tensor],
    labels: torch.Tensor,
    beta: float = BETA_CIFAR,
    form: AtForm = "mean_squared",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 4.2: ``L_CE(y, σ(s)) + β Σ_i d_i`` over the groups (conv2/3/4 of a WRN: ``N_L = 3``).

    Returns the loss and its terms ``{"ce": ..., "at1": β d_1, "at2": β d_2, ...}``: each attention term is
    logged already scaled by β, as plotted in Figs. 4.5 and 4.6.
    """
    if len(student_groups) != len(teacher_groups) or not student_groups:
        raise ValueError(
            f"need the same positive number of student and teacher groups, got {len(student_groups)} "
            f"and {len(teacher_groups)}"
        )
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got {beta}")
    ce = F.cross_entropy(student_logits.float(), labels)
    parts = {"ce": ce}
    loss = ce
    for i, (s, t) in enumerate(zip(student_groups, teacher_groups, strict=True), start=1):
        term = beta * attention_distance(s, t, form)
        parts[f"at{i}"] = term
        loss = loss + term
    return loss, parts


@dataclasses.dataclass(frozen=True)
class DistillationSettings:
    """How a student learns (§4.4): ``"scratch"`` (cross entropy), ``"kd"`` (Eq. 4.1) or ``"at"`` (Eq. 4.2).

    ``kd_form`` weights the KD term as the thesis' code did (``"kl_div_mean"``, default) or as Eq. 4.1 is
    printed (``"equation"``); see :func:`knowledge_distillation_loss`.
    """

    method: Method = "scratch"
    alpha: float = ALPHA
    temperature: float = TEMPERATURE
    beta: float = BETA_CIFAR
    at_form: AtForm = "mean_squared"
    kd_form: KdForm = "kl_div_mean"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(
                f"unknown distillation method {self.method!r}; valid methods: {', '.join(METHODS)}"
            )
        if self.at_form not in AT_FORMS:
            raise ValueError(
                f"unknown attention-transfer form {self.at_form!r}; valid: {', '.join(AT_FORMS)}"
            )
        if self.kd_form not in KD_FORMS:
            raise ValueError(
                f"unknown knowledge-distillation form {self.kd_form!r}; valid: {', '.join(KD_FORMS)}"
            )
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.temperature <= 0 or self.beta < 0:
            raise ValueError(f"need temperature > 0 and beta >= 0, got {self.temperature} and {self.beta}")

    @property
    def needs_teacher(self) -> bool:
        return self.method != "scratch"


class DistillationLoss:
    """``loss_fn(model, (images, labels))`` for :class:`~thesislib.training.Trainer`: scratch, KD or AT.

    The model (and the teacher) follow the Moonshine contract: ``forward(x) -> (logits, [group outputs])``.
    The teacher runs in eval mode without gradients (its batch-norm uses running statistics, as in the
    thesis' code) and is moved to the batch's device on first use. Logged parts: ``ce``, ``kd`` or
    ``at1..atN`` (β-scaled), and ``train_error`` (the batch's top-1 error in %, on the augmented images).
    """

    def __init__(self, settings: DistillationSettings, teacher: nn.Module | None = None) -> None:
        if settings.needs_teacher and teacher is None:
            raise ValueError(f"method {settings.method!r} needs a teacher network")
        self.settings = settings
        self.teacher = teacher
        if teacher is not None:
            teacher.eval()
            for parameter in teacher.parameters():
                parameter.requires_grad_(False)

    def _teacher(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        assert self.teacher is not None
        if next(self.teacher.parameters()).device != x.device:
            self.teacher.to(x.device)
        self.teacher.eval()
        with torch.no_grad():
            logits, groups = self.teacher(x)
        return logits, list(groups)

    def __call__(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch
        logits, groups = model(x)
        settings = self.settings
        if settings.method == "scratch":
            loss = F.cross_entropy(logits.float(), y)
            parts = {"ce": loss}
        elif settings.method == "kd":
            t_logits, _ = self._teacher(x)
            loss, parts = knowledge_distillation_loss(
                logits, t_logits, y, settings.alpha, settings.temperature, settings.kd_form
            )
        else:
            _, t_groups = self._teacher(x)
            loss, parts = attention_transfer_loss(
                logits, groups, t_groups, y, settings.beta, settings.at_form
            )
        error = (logits.detach().argmax(dim=1) != y).float().mean() * 100.0
        return loss, {**parts, "train_error": error}
