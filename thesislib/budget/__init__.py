"""Budget learning (thesis chapter 3, §3.1–3.2): learn where to spend a test-time budget.

- :mod:`~thesislib.budget.noise` — noise processes σ(r) (Eqs. 3.4–3.6);
- :mod:`~thesislib.budget.split` — :class:`BudgetSplit`, r = B·softmax(γ) and σ(γ) (Eqs. 3.11–3.12);
- :mod:`~thesislib.budget.noising` — g_γ(X, ε) = X + σ(γ)⊙ε and :class:`BudgetedModel` (Eqs. 3.7–3.10);
- :mod:`~thesislib.budget.statistic` — :class:`StatisticNetwork` (Eq. 3.14);
- :mod:`~thesislib.budget.evaluate` — the test condition with real samples, and the uniform budget that
  matches a learnt split;
- :mod:`~thesislib.budget.baselines` — uniform and L2-norm splits;
- :mod:`~thesislib.budget.learn` — :func:`fit_budgeted`, joint learning with the shared trainer;
- :mod:`~thesislib.budget.synthetic` — problems with known answers.
"""

from thesislib.budget.baselines import l2_norm_allocation, uniform_allocation
from thesislib.budget.evaluate import budget_to_match, evaluate_with_samples, integer_allocation, match_status
from thesislib.budget.learn import fit_budgeted
from thesislib.budget.noise import NOISE_PROCESSES, noise_std
from thesislib.budget.noising import BudgetedModel, add_noise
from thesislib.budget.split import BudgetSplit, context_variances
from thesislib.budget.statistic import StatisticNetwork

__all__ = [
    "NOISE_PROCESSES",
    "BudgetSplit",
    "BudgetedModel",
    "StatisticNetwork",
    "add_noise",
    "budget_to_match",
    "context_variances",
    "evaluate_with_samples",
    "fit_budgeted",
    "integer_allocation",
    "l2_norm_allocation",
    "match_status",
    "noise_std",
    "uniform_allocation",
]
