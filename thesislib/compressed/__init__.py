"""Compressed linear transforms substituted into separable convolutions (thesis chapter 5).

One module per method, one interface (:class:`~thesislib.compressed.base.Substitute`):

========== ============================================== ===================================
method     module                                         setting (one tuning parameter)
========== ============================================== ===================================
rf         :mod:`~thesislib.compressed.rf` (Eqs. 5.2–5.3)   bottleneck width
acdc       :mod:`~thesislib.compressed.acdc` (Eq. 5.4)      number of ACDC layers
hashed     :mod:`~thesislib.compressed.hashed` (Eq. 5.5)    number of real weights
tt         :mod:`~thesislib.compressed.tensor_train`        rank scale (or ranks)
tucker     :mod:`~thesislib.compressed.tucker`              rank scale (or ranks)
shufflenet :mod:`~thesislib.compressed.shufflenet`          number of groups
========== ============================================== ===================================

plus separable convolutions and WRN block factories (:mod:`~thesislib.compressed.separable`), CRS
weight decay (:mod:`~thesislib.compressed.crs`, Eq. 5.18), the parameter-budget solver
(:mod:`~thesislib.compressed.budget`, §5.2.4) and the ACDC toy regression (:mod:`~thesislib.compressed.toy`).
"""

from thesislib.compressed.acdc import ACDC
from thesislib.compressed.base import (
    SUBSTITUTES,
    DensePointwise,
    Substitute,
    SubstituteSpec,
    TuningRange,
    build_substitute,
    parse_substitute,
    riffle_permutation,
    substitute_class,
)
from thesislib.compressed.budget import (
    OPEN_ENDED,
    BudgetHit,
    budgets_in_support,
    common_support,
    count_parameters,
    parse_count,
    solve_budget,
    tuning_curves,
)
from thesislib.compressed.crs import crs_factor, crs_param_groups, network_compression_ratio
from thesislib.compressed.hashed import (
    HashedNet,
    empirical_unused_fraction,
    unused_fraction,
    unused_fraction_limit,
)
from thesislib.compressed.rf import RankFactorised
from thesislib.compressed.separable import (
    SeparableBlock,
    SeparableConv2d,
    separable_block_factory,
    separable_conv_factory,
)
from thesislib.compressed.shufflenet import LinearShuffleNet, bottleneck_width, valid_groups
from thesislib.compressed.tensor_train import TensorTrain, near_equal_shape
from thesislib.compressed.toy import ToyResult, acdc_toy_regression
from thesislib.compressed.tucker import Tucker

__all__ = [
    "ACDC",
    "OPEN_ENDED",
    "SUBSTITUTES",
    "BudgetHit",
    "DensePointwise",
    "HashedNet",
    "LinearShuffleNet",
    "RankFactorised",
    "SeparableBlock",
    "SeparableConv2d",
    "Substitute",
    "SubstituteSpec",
    "TensorTrain",
    "ToyResult",
    "Tucker",
    "TuningRange",
    "acdc_toy_regression",
    "bottleneck_width",
    "budgets_in_support",
    "build_substitute",
    "common_support",
    "count_parameters",
    "crs_factor",
    "crs_param_groups",
    "empirical_unused_fraction",
    "near_equal_shape",
    "network_compression_ratio",
    "parse_count",
    "parse_substitute",
    "riffle_permutation",
    "separable_block_factory",
    "separable_conv_factory",
    "solve_budget",
    "substitute_class",
    "tuning_curves",
    "unused_fraction",
    "unused_fraction_limit",
    "valid_groups",
]
