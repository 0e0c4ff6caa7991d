"""Tests of thesislib.moonshine.distillation: Eq. 4.1 (KD) and Eq. 4.2 (AT) against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from thesislib.moonshine.distillation import (
    ALPHA,
    BETA_CIFAR,
    BETA_IMAGENET,
    TEMPERATURE,
    DistillationLoss,
    DistillationSettings,
    at_beta,
    at_beta_for_resolution,
    attention_distance,
    attention_map,
    attention_transfer_loss,
    knowledge_distillation_loss,
)

# ----------------------------------------------------------------------------------------------------------
# Slow, obvious versions written from the equations


def softmax(values: list[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def kd_by_hand(
    s: list[list[float]],
    t: list[list[float]],
    y: list[int],
    alpha: float,
    temp: float,
    per_class: bool = False,
) -> float:
    """Eq. 4.1 (with KL for the soft term) averaged over the items; ``per_class`` also divides it by K."""
    total = 0.0
    for s_row, t_row, label in zip(s, t, y, strict=True):
        hard = -math.log(softmax(s_row)[label])
        p_t = softmax([v / temp for v in t_row])
        q_s = softmax([v / temp for v in s_row])
        soft = sum(p * math.log(p / q) for p, q in zip(p_t, q_s, strict=True))
        weight = 2 * alpha * temp**2 / (len(s_row) if per_class else 1)
        total += (1 - alpha) * hard + weight * soft
    return total / len(s)


def attention_by_hand(a: torch.Tensor) -> list[list[float]]:
    """f(A) = (1/C) Σ_j a_j² per position, then divided by its L2 norm, one example at a time."""
    b, c, h, w = a.shape
    maps = []
    for n in range(b):
        f = [sum(float(a[n, j, i, k]) ** 2 for j in range(c)) / c for i in range(h) for k in range(w)]
        norm = math.sqrt(sum(v * v for v in f))
        maps.append([v / norm for v in f])
    return maps


# ----------------------------------------------------------------------------------------------------------
# Knowledge distillation (Eq. 4.1)


def test_constants_are_the_thesis_values() -> None:
    assert (ALPHA, TEMPERATURE, BETA_CIFAR, BETA_IMAGENET) == (0.9, 4.0, 1000.0, 750.0)
    assert at_beta(3) == BETA_CIFAR and at_beta(4) == BETA_IMAGENET  # §4.5.1: same total AT weight
    with pytest.raises(ValueError, match="positive"):
        at_beta(0)


def test_kd_matches_hand_computation() -> None:
    s = [[1.0, -0.5, 2.0], [0.3, 0.2, -1.0]]
    t = [[2.0, 0.0, 1.0], [-1.0, 3.0, 0.5]]
    y = [2, 0]
    loss, parts = knowledge_distillation_loss(
        torch.tensor(s), torch.tensor(t), torch.tensor(y), form="equation"
    )
    assert loss.item() == pytest.approx(kd_by_hand(s, t, y, 0.9, 4.0), rel=1e-5)
    assert (parts["ce"] + parts["kd"]).item() == pytest.approx(loss.item(), rel=1e-6)
    loss_other, _ = knowledge_distillation_loss(
        torch.tensor(s), torch.tensor(t), torch.tensor(y), 0.5, 2.0, form="equation"
    )
    assert loss_other.item() == pytest.approx(kd_by_hand(s, t, y, 0.5, 2.0), rel=1e-5)


def test_kd_default_is_the_thesis_code_kl_div_mean() -> None:
    """The default weights the soft term as F.kl_div's element-wise mean did: 2αT²/K, not 2αT² (defect fix)."""
    torch.manual_seed(3)
    s, t, y = torch.randn(6, 10), torch.randn(6, 10), torch.randint(0, 10, (6,))
    _, default = knowledge_distillation_loss(s, t, y)
    _, printed = knowledge_distillation_loss(s, t, y, form="equation")
    torch.testing.assert_close(default["kd"] * 10, printed["kd"])
    # The code behind Table 4.3, written with torch's own kl_div (reduction "mean": over B·K elements).
    code = nn.functional.kl_div(
        nn.functional.log_softmax(s / 4, 1), nn.functional.softmax(t / 4, 1), reduction="mean"
    ) * (2 * 0.9 * 16)
    torch.testing.assert_close(default["kd"], code)
    assert default["kd"].item() == pytest.approx(
        kd_by_hand(s.tolist(), t.tolist(), y.tolist(), 0.9, 4.0, per_class=True)
        - kd_by_hand(s.tolist(), t.tolist(), y.tolist(), 0.0, 4.0) * 0.1,
        rel=1e-5,
    )
    assert DistillationSettings("kd").kd_form == "kl_div_mean"
    with pytest.raises(ValueError, match="knowledge-distillation form"):
        knowledge_distillation_loss(s, t, y, form="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="knowledge-distillation form"):
        DistillationSettings("kd", kd_form="sum")  # type: ignore[arg-type]


def test_kd_gradient_is_the_closed_form() -> None:
    """d/ds of 2αT² L_CE(σ(t/T), σ(s/T)) is 2αT (σ(s/T) − σ(t/T)) / B; α = 1 leaves only that term."""
    torch.manual_seed(0)
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 5)
    loss, _ = knowledge_distillation_loss(
        s, t, torch.zeros(4, dtype=torch.long), alpha=1.0, temperature=4.0, form="equation"
    )
    loss.backward()
    expected = 2 * 1.0 * 4.0 * (torch.softmax(s.detach() / 4, 1) - torch.softmax(t / 4, 1)) / 4
    torch.testing.assert_close(s.grad, expected)


def test_kd_alpha_zero_is_cross_entropy_and_validation() -> None:
    s, t, y = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 1, 3])
    loss, parts = knowledge_distillation_loss(s, t, y, alpha=0.0)
    torch.testing.assert_close(loss, nn.functional.cross_entropy(s, y))
    assert parts["kd"].item() == 0.0
    with pytest.raises(ValueError, match="alpha"):
        knowledge_distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        knowledge_distillation_loss(s, t, y, temperature=0.0)
    with pytest.raises(ValueError, match="shape"):
        knowledge_distillation_loss(s, t[:, :3], y)


# ----------------------------------------------------------------------------------------------------------
# Attention transfer (Eq. 4.2)


def test_attention_map_matches_hand_computation() -> None:
    torch.manual_seed(1)
    a = torch.randn(2, 3, 4, 5)
    ours = attention_map(a)
    assert ours.shape == (2, 20)
    torch.testing.assert_close(ours, torch.tensor(attention_by_hand(a)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(2))


def test_attention_distance_matches_hand_computation() -> None:
    torch.manual_seed(2)
    s, t = torch.randn(3, 4, 4, 4), torch.randn(3, 6, 4, 4)  # channel counts may differ
    ms, mt = attention_by_hand(s), attention_by_hand(t)
    squared = [[(a - b) ** 2 for a, b in zip(rs, rt, strict=True)] for rs, rt in zip(ms, mt, strict=True)]
    mean_squared = sum(sum(row) for row in squared) / (3 * 16)
    norm = sum(math.sqrt(sum(row)) for row in squared) / 3
    assert attention_distance(s, t).item() == pytest.approx(mean_squared, rel=1e-5)
    assert attention_distance(s, t, form="norm").item() == pytest.approx(norm, rel=1e-5)
    with pytest.raises(ValueError, match="valid forms"):
        attention_distance(s, t, form="l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spatial"):
        attention_distance(s, torch.randn(3, 4, 2, 2))


@pytest.mark.parametrize("form", ["mean_squared", "norm"])
def test_attention_zero_for_identical_and_scale_invariant(form: str) -> None:
    torch.manual_seed(3)
    a, b = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    assert attention_distance(a, a.clone(), form).item() == pytest.approx(0.0, abs=1e-12)
    base = attention_distance(a, b, form).item()
    assert base > 0
    assert attention_distance(3.7 * a, b, form).item() == pytest.approx(base, rel=1e-5)
    assert attention_distance(a, 0.01 * b, form).item() == pytest.approx(base, rel=1e-5)
    assert attention_distance(-a, b, form).item() == pytest.approx(base, rel=1e-5)  # squares: sign-blind


def test_attention_transfer_loss_terms() -> None:
    torch.manual_seed(4)
    logits, y = torch.randn(2, 10), torch.tensor([1, 7])
    groups_s = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4), torch.randn(2, 16, 2, 2)]
    groups_t = [torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4), torch.randn(2, 32, 2, 2)]
    loss, parts = attention_transfer_loss(logits, groups_s, groups_t, y, beta=1000.0)
    assert list(parts) == ["ce", "at1", "at2", "at3"]
    for i in range(3):
        expected = 1000.0 * attention_distance(groups_s[i], groups_t[i])
        torch.testing.assert_close(parts[f"at{i + 1}"], expected)
    torch.testing.assert_close(loss, sum(parts.values()))
    torch.testing.assert_close(parts["ce"], nn.functional.cross_entropy(logits, y))
    same, _ = attention_transfer_loss(logits, groups_t, groups_t, y)
    torch.testing.assert_close(same, parts["ce"])
    with pytest.raises(ValueError, match="same positive number"):
        attention_transfer_loss(logits, groups_s[:2], groups_t, y)


def test_attention_gradient_flows_to_student_only() -> None:
    s = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, 4, requires_grad=True)
    attention_distance(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


# ----------------------------------------------------------------------------------------------------------
# The Trainer hook


class TinyNet(nn.Module):
    """A stand-in with the Moonshine contract: forward(x) -> (logits, [three group outputs])."""

    def __init__(self, width: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.g1 = nn.Conv2d(3, width, 3, padding=1)
        self.g2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.g3 = nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        a = self.g1(x)
        b = self.g2(torch.relu(a))
        c = self.g3(torch.relu(b))
        return self.fc(torch.relu(c).mean((2, 3))), [a, b, c]


@pytest.mark.parametrize(
    ("method", "names"),
    [("scratch", ["ce"]), ("kd", ["ce", "kd"]), ("at", ["ce", "at1", "at2", "at3"])],
)
def test_distillation_loss_hook(method: str, names: list[str]) -> None:
    torch.manual_seed(5)
    student, teacher = TinyNet(4), TinyNet(8)
    x, y = torch.randn(6, 3, 16, 16), torch.randint(0, 10, (6,))
    hook = DistillationLoss(DistillationSettings(method=method), teacher if method != "scratch" else None)
    loss, parts = hook(student, (x, y))
    assert list(parts) == [*names, "train_error"]
    assert 0 <= parts["train_error"].item() <= 100
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    if method != "scratch":
        assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    if method == "at":
        logits, groups = student(x)
        with torch.no_grad():
            _, t_groups = teacher(x)
        expected, _ = attention_transfer_loss(logits, groups, t_groups, y)
        torch.testing.assert_close(loss, expected)


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="valid methods"):
        DistillationSettings(method="fitnets")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a teacher"):
        DistillationLoss(DistillationSettings(method="at"))
    assert not DistillationSettings().needs_teacher


def test_resolution_scaled_beta_gives_the_same_attention_term_at_both_resolutions():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 8, 16, 16), torch.randn(4, 8, 16, 16)
    coarse = at_beta_for_resolution(1000.0, 16) * attention_distance(student, teacher)
    upsampled = [
        torch.nn.functional.interpolate(a, scale_factor=2, mode="nearest") for a in (student, teacher)
    ]
    fine = 1000.0 * attention_distance(*upsampled)
    torch.testing.assert_close(coarse, fine)
    assert 3.9 < float(attention_distance(student, teacher) / attention_distance(*upsampled)) < 4.1
    assert at_beta_for_resolution(1000.0, 16) == 250.0 and at_beta_for_resolution(1000.0, 32) == 1000.0
    with pytest.raises(ValueError, match="resolutions must be positive"):
        at_beta_for_resolution(1000.0, 0)
