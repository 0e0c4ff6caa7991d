"""Tests of the chapter-5 compressed linear transforms (thesislib.compressed)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import thesislib.compressed as C
import thesislib.dct as shared_dct
from thesislib.compressed.base import riffle_permutation

SETTINGS = {"rf": 6, "acdc": 3, "hashed": 200, "tt": 0.5, "tucker": 0.6, "shufflenet": 2, "conv1x1": None}
SHAPES = [(16, 16), (16, 32), (32, 16)]


def test_registry_is_the_six_methods():
    assert set(C.SUBSTITUTES) == {"rf", "acdc", "hashed", "tt", "tucker", "shufflenet"}


@pytest.mark.parametrize("method", sorted(SETTINGS))
@pytest.mark.parametrize("shape", SHAPES)
def test_dense_kernel_equals_module_output(method, shape):
    torch.manual_seed(0)
    cin, cout = shape
    module = C.build_substitute(method, cin, cout, SETTINGS[method])
    x = torch.randn(3, cin, 6, 5)
    k = module.dense_kernel()
    assert k.shape == (cout, cin, module.kernel_size, module.kernel_size)
    expected = F.conv2d(x, k, padding=module.padding)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)
    # dense_matrix is the out×in W of Eq. 5.1: exact on vectors (1×1 inputs for ShuffleNet)
    v = torch.randn(4, cin)
    torch.testing.assert_close(
        module(v[:, :, None, None])[:, :, 0, 0], v @ module.dense_matrix().t(), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(module(v), v @ module.dense_matrix().t(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_mult_adds_protocol_and_parameter_count(method):
    module = C.build_substitute(method, 16, 32, SETTINGS[method])
    x = torch.randn(1, 16, 7, 7)
    y = module(x)
    assert module.mult_adds(x, y) == module.per_position_mult_adds() * 49
    assert module.parameter_count == sum(p.numel() for p in module.parameters())


def test_closed_form_parameter_counts():
    # RF, Eq. 5.3: d_out·d_bn + d_bn·d_in, i.e. 2d²/b when d_in = d_out = d, d_bn = d/b
    d, b = 64, 8
    assert C.RankFactorised(d, d, d // b).parameter_count == 2 * d * d // b
    assert C.RankFactorised(16, 48, 5).parameter_count == 5 * (16 + 48)
    # ACDC: storage 2N per layer
    assert C.ACDC(64, 64, 12).parameter_count == 2 * 64 * 12
    assert C.ACDC(32, 128, 4).parameter_count == 2 * 128 * 4
    # HashedNet: the real weights only (the index map is a buffer)
    h = C.HashedNet(32, 32, 100)
    assert h.parameter_count == 100 and h.index.shape == (32, 32)
    # TT: n1 r1 + r1 n2 r2 + r2 n3 ; Tucker: R1 R2 R3 + Σ n_k R_k
    tt = C.TensorTrain(16, 64, (3, 5))
    n1, n2, n3 = tt.shape
    assert tt.parameter_count == n1 * 3 + 3 * n2 * 5 + 5 * n3
    tk = C.Tucker(16, 64, (2, 3, 4))
    assert tk.parameter_count == 2 * 3 * 4 + sum(n * r for n, r in zip(tk.shape, (2, 3, 4), strict=True))
    # linear ShuffleNet: in·b/g + 9b + b·out/g, b = in/4
    s = C.LinearShuffleNet(64, 128, 4)
    assert s.parameter_count == 64 * 16 // 4 + 9 * 16 + 16 * 128 // 4


def test_closed_form_mult_adds():
    n, layers = 64, 12
    assert C.ACDC(n, n, layers).per_position_mult_adds() == layers * (4 * n + 5 * n * int(math.log2(n)))
    assert C.ACDC(n, n, layers, count_cheaper=True).per_position_mult_adds() == n * n
    for method in ("hashed", "tt", "tucker"):  # cost of the dense pointwise they replace (§5.3.3)
        assert C.build_substitute(method, 24, 48, SETTINGS[method]).per_position_mult_adds() == 24 * 48
    assert C.RankFactorised(24, 48, 5).per_position_mult_adds() == 5 * (24 + 48)
    s = C.LinearShuffleNet(64, 64, 4, stride=2)
    x = torch.randn(1, 64, 8, 8)
    assert s.mult_adds(x, s(x)) == 64 * 16 // 4 * 64 + (9 * 16 + 16 * 64 // 4) * 16


# -- ACDC -------------------------------------------------------------------------------------------


def test_fast_dct_matches_scipy_and_matrix():
    scipy_fft = pytest.importorskip("scipy.fft")
    for n in (1, 2, 7, 64, 100):
        x = torch.randn(3, n, dtype=torch.float64)
        torch.testing.assert_close(
            shared_dct.dct(x), torch.from_numpy(scipy_fft.dct(x.numpy(), norm="ortho"))
        )
        torch.testing.assert_close(
            shared_dct.idct(x), torch.from_numpy(scipy_fft.idct(x.numpy(), norm="ortho"))
        )
        torch.testing.assert_close(shared_dct.dct(x), x @ shared_dct.dct_matrix(n, torch.float64).t())


@pytest.mark.parametrize("shape,layers", [((64, 64), 12), ((32, 128), 4), ((96, 48), 3), ((33, 33), 5)])
def test_acdc_fast_path_equals_dense(shape, layers):
    torch.manual_seed(0)
    module = C.ACDC(*shape, layers).eval()
    x = torch.randn(4, shape[0], 3, 3)
    dense = module(x)
    assert (module.fast_forward(x) - dense).abs().max() < 1e-5
    module.fast_path = True
    assert (module(x) - dense).abs().max() < 1e-5
    m64 = module.double()
    assert (m64.fast_forward(x.double()) - F.conv2d(x.double(), m64.dense_kernel())).abs().max() < 1e-10


def test_acdc_dense_matrix_is_the_product_of_eq_5_4():
    torch.manual_seed(0)
    n, layers = 8, 3
    m = C.ACDC(n, n, layers).double()
    c = shared_dct.dct_matrix(n, torch.float64)
    p = torch.eye(n, dtype=torch.float64)[m.perm]  # (P x) = x[perm]
    w = torch.eye(n, dtype=torch.float64)
    for a, d in zip(m.A, m.D, strict=True):
        w = torch.diag(a) @ c @ torch.diag(d) @ torch.linalg.inv(c) @ p @ w
    torch.testing.assert_close(m.dense_matrix(), w)


def test_acdc_random_permutation_is_seeded():
    a = C.ACDC(16, 16, 2, permutation="random", seed=3)
    b = C.ACDC(16, 16, 2, permutation="random", seed=3)
    assert torch.equal(a.perm, b.perm) and sorted(a.perm.tolist()) == list(range(16))


# -- riffle -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,groups", [(8, 2), (9, 2), (12, 3), (40, 4), (16, 1)])
def test_riffle_is_a_permutation(n, groups):
    perm = riffle_permutation(n, groups)
    assert sorted(perm.tolist()) == list(range(n))
    if groups > 1 and n % groups == 0:  # consecutive outputs come from different groups
        group_of = perm // (n // groups)
        assert all(group_of[i] != group_of[i + 1] for i in range(n - 1) if (i + 1) % groups)


def test_riffle_interleaves_halves():
    assert riffle_permutation(6).tolist() == [0, 3, 1, 4, 2, 5]
    assert riffle_permutation(6, 2).tolist() == torch.arange(6).view(2, 3).t().reshape(-1).tolist()
    s = C.LinearShuffleNet(32, 32, 4)
    assert sorted(s.shuffle.tolist()) == list(range(8))


# -- HashedNet ---------------------------------------------------------------------------------------


def test_hashed_index_map_is_determined_by_seed():
    a, b, c = (
        C.HashedNet(16, 24, 50, seed=1),
        C.HashedNet(16, 24, 50, seed=1),
        C.HashedNet(16, 24, 50, seed=2),
    )
    assert torch.equal(a.index, b.index) and not torch.equal(a.index, c.index)
    assert "index" in a.state_dict()
    torch.manual_seed(5)
    d = C.HashedNet(16, 24, 50)
    torch.manual_seed(5)
    e = C.HashedNet(16, 24, 50)
    assert torch.equal(d.index, e.index)


def test_hashed_gradient_accumulates_on_shared_weights():
    torch.manual_seed(0)
    h = C.HashedNet(8, 12, 10, seed=0)
    g = torch.randn(12, 8)
    (h.dense_matrix() * g).sum().backward()
    expected = torch.bincount(h.index.reshape(-1), weights=g.reshape(-1), minlength=10)
    torch.testing.assert_close(h.weight.grad, expected.float())


def test_hashed_unused_fraction_formula_limit_and_sampling():
    for c in (0.05, 0.2, 0.5, 1.0):
        assert C.unused_fraction(c, 10**6) == pytest.approx(C.unused_fraction_limit(c), rel=1e-4)
        assert C.unused_fraction_limit(c) == pytest.approx(math.exp(-1 / c))
    for c in (0.2, 0.5, 1.0):
        empirical = C.empirical_unused_fraction(c, 20_000, trials=4, seed=0)
        assert empirical == pytest.approx(C.unused_fraction(c, 20_000), abs=0.01)
    h = C.HashedNet(64, 64, 4096, seed=0)  # c = 1: about exp(-1) of the real weights unused
    assert h.unused_weights() / 4096 == pytest.approx(math.exp(-1), abs=0.03)


# -- TT / Tucker -------------------------------------------------------------------------------------


def test_near_equal_shape():
    assert C.near_equal_shape(64 * 64) == (16, 16, 16)
    assert C.near_equal_shape(160 * 160) == (25, 32, 32)
    s = C.near_equal_shape(16 * 48)
    assert math.prod(s) == 16 * 48 and max(s) / min(s) <= 2
    assert C.near_equal_shape(7) == (1, 1, 7)


def test_tensor_train_reconstruction_vs_slow_loop_and_tensorly():
    torch.manual_seed(0)
    tt = C.TensorTrain(8, 12, (3, 4)).double()
    full = tt.full_tensor()
    n1, n2, n3 = tt.shape
    slow = torch.empty(n1, n2, n3, dtype=torch.float64)
    for i in range(n1):
        for j in range(n2):
            for k in range(n3):
                slow[i, j, k] = tt.core1[i] @ tt.core2[:, j, :] @ tt.core3[:, k]
    torch.testing.assert_close(full, slow)
    tl = pytest.importorskip("tensorly")
    ref = tl.tt_to_tensor([core.detach().numpy() for core in tt.cores()])
    torch.testing.assert_close(full.detach(), torch.from_numpy(ref))


def test_tucker_reconstruction_vs_slow_loop_and_tensorly():
    torch.manual_seed(0)
    tk = C.Tucker(8, 12, (2, 3, 3)).double()
    full = tk.full_tensor()
    u1, u2, u3 = tk.factors
    slow = torch.zeros_like(full)
    for a in range(2):
        for b in range(3):
            for c in range(3):
                slow += tk.core[a, b, c] * u1[:, a, None, None] * u2[None, :, b, None] * u3[None, None, :, c]
    torch.testing.assert_close(full, slow)
    tl = pytest.importorskip("tensorly")
    ref = tl.tucker_to_tensor((tk.core.detach().numpy(), [u.detach().numpy() for u in tk.factors]))
    torch.testing.assert_close(full.detach(), torch.from_numpy(ref))


def test_rank_scale_sets_ranks():
    tt = C.TensorTrain(64, 64, 0.25)  # sides 16, 16, 16
    assert tt.ranks == (4, 4)
    tk = C.Tucker(64, 64, 0.5)
    assert tk.ranks == (8, 8, 8)
    assert C.TensorTrain(64, 64, 1e-6).ranks == (1, 1)  # never rank 0


# -- invalid settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,cin,cout,setting",
    [
        ("rf", 16, 16, 0),
        ("rf", 16, 16, 17),
        ("acdc", 16, 16, 0),
        ("acdc", 16, 24, 2),  # channel increase must be by whole repeats
        ("hashed", 4, 4, 17),  # more real weights than virtual
        ("hashed", 4, 4, 0),
        ("tt", 16, 16, 0),  # rank 0
        ("tt", 16, 16, (0, 2)),
        ("tucker", 16, 16, (1, 0, 1)),
        ("tucker", 16, 16, -0.5),
        ("shufflenet", 16, 16, 3),  # groups not dividing the channels
        ("shufflenet", 32, 20, 8),  # 8 divides 32 and the bottleneck 8 but not 20
    ],
)
def test_invalid_settings_raise_with_valid_range(method, cin, cout, setting):
    with pytest.raises(ValueError, match="valid"):
        C.build_substitute(method, cin, cout, setting)


def test_unknown_method_lists_choices():
    with pytest.raises(ValueError, match=r"valid.*acdc"):
        C.build_substitute("fourier", 8, 8, 1)
    with pytest.raises(ValueError, match="valid"):
        C.parse_substitute("nope:0.5")
    with pytest.raises(ValueError, match="tuning"):
        C.parse_substitute("tt")
    assert C.parse_substitute("TT:0.25") == C.SubstituteSpec("tt", 0.25)


@pytest.mark.parametrize(
    ("kernel_size", "stride", "dilation"), [(1, 1, 1), (1, 2, 1), (3, 2, 1), (3, 1, 2), (5, 2, 2)]
)
def test_shufflenet_kernel_stride_dilation(kernel_size, stride, dilation):
    """The unit's depthwise conv takes the replaced conv's kernel size, stride and dilation (thesis code):
    it is one k×k conv ``dense_kernel()`` (slow obvious check), with ``in·b/g + k²b + b·out/g``
    parameters and mult-adds (B1 at the input resolution, D and B2 at the output's)."""
    torch.manual_seed(0)
    s = C.LinearShuffleNet(16, 32, 2, kernel_size=kernel_size, stride=stride, dilation=dilation)
    x = torch.randn(2, 16, 9, 8)
    y = s(x)
    kernel = s.dense_kernel()
    assert (
        kernel.shape == (32, 16, kernel_size, kernel_size) and s.padding == dilation * (kernel_size - 1) // 2
    )
    expected = F.conv2d(x, kernel, stride=stride, padding=s.padding, dilation=dilation)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    assert y.shape[-2:] == (-(-9 // stride), -(-8 // stride))  # "same" padding
    b, g = 4, 2
    assert s.parameter_count == 16 * b // g + kernel_size**2 * b + b * 32 // g
    assert s.per_position_mult_adds() == s.parameter_count
    hw_in, hw_out = 9 * 8, y.shape[-2] * y.shape[-1]
    assert s.mult_adds(x, y) == 16 * b // g * hw_in + (kernel_size**2 * b + b * 32 // g) * hw_out
    # what it replaces (N of Eq. 5.18): a separable k×k conv, or a plain 1×1 conv for k = 1
    assert s.dense_parameter_count == (kernel_size**2 * 16 if kernel_size > 1 else 0) + 16 * 32
    if kernel_size == 1:  # no spatial mixing: W = B2 P diag(D) B1 exactly (Eq. 5.12)
        v = torch.randn(3, 16)
        torch.testing.assert_close(s(v), v @ s.dense_matrix().t())
        torch.testing.assert_close(
            y, F.conv2d(x[:, :, ::stride, ::stride], s.dense_matrix()[:, :, None, None]), atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("kernel_size", 2),
        ("kernel_size", 0),
        ("kernel_size", 1.5),
        ("dilation", 0),
        ("stride", -1),
        ("dilation", True),
    ],
)
def test_shufflenet_rejects_invalid_kernel_options(option, value):
    with pytest.raises(ValueError, match=option):
        C.LinearShuffleNet(16, 16, 1, **{option: value})


def test_shufflenet_tuning_falls_back_to_a_valid_group_count():
    s = C.SubstituteSpec("shufflenet", 8).build(48, 48)  # bottleneck 12: 8 invalid, 6 is the largest valid
    assert s.groups == 6
    assert C.valid_groups(48, 48) == [1, 2, 3, 4, 6, 12]
    out = C.SubstituteSpec("shufflenet", 4).build(16, 64, bottleneck="out")
    assert out.bottleneck == 16 and out.groups == 4
    assert out.parameter_count == 16 * 16 // 4 + 9 * 16 + 16 * 64 // 4
    with pytest.raises(ValueError, match="'in', 'out'"):
        C.LinearShuffleNet(16, 16, 1, bottleneck="mid")


# -- separable convolutions and blocks ---------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_separable_conv_is_depthwise_then_substitute(method):
    torch.manual_seed(0)
    spec = (
        "conv1x1"
        if method == "conv1x1"
        else f"{method}:{ {'rf': 0.5, 'acdc': 2, 'hashed': 0.3, 'tt': 0.5, 'tucker': 0.5, 'shufflenet': 2}[method] }"
    )
    for k in (3, 5):
        conv = C.SeparableConv2d(16, 32, spec, kernel_size=k, stride=2)
        x = torch.randn(2, 16, 8, 8)
        y = conv(x)
        assert y.shape == (2, 32, 4, 4)
        if conv.depthwise is None:  # ShuffleNet holds its own depthwise k×k
            assert conv.pointwise.kernel_size == k
            expected = F.conv2d(x, conv.pointwise.dense_kernel(), stride=2, padding=k // 2)
        else:
            expected = F.conv2d(conv.depthwise(x), conv.pointwise.dense_kernel())
        torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


def test_block_factory_builds_preact_blocks():
    make = C.separable_block_factory("tt:0.5")
    block = make(16, 32, 2)
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    assert isinstance(block.conv1.pointwise, C.TensorTrain) and isinstance(block.shortcut, nn.Conv2d)
    same = make(32, 32, 1)
    assert same.shortcut is None and same(torch.randn(1, 32, 4, 4)).shape == (1, 32, 4, 4)


def small_network(spec) -> nn.Module:
    make = C.separable_block_factory(spec)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False), make(32, 32, 1), make(32, 64, 2), make(64, 128, 2)
    )


def small_network_counter(method: str, tuning: float) -> int:
    """``count(method, tuning)`` of :func:`small_network`, by building it on the meta device."""
    spec = C.SubstituteSpec("conv1x1") if method == "conv1x1" else C.SubstituteSpec(method, float(tuning))
    return C.count_parameters(lambda: small_network(spec))


# -- CRS weight decay --------------------------------------------------------------------------------


def test_crs_groups_carry_compression_ratio_factors():
    model = small_network("hashed:0.25")
    groups = C.crs_param_groups(model, 5e-4, scope="layer")
    covered = [id(p) for g in groups for p in g["params"]]
    assert sorted(covered) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    substitutes = [m for m in model.modules() if isinstance(m, C.Substitute)]
    assert len(groups) == len(substitutes) + 1
    for group, module in zip(groups[:-1], substitutes, strict=True):
        expected = module.real / (module.in_channels * module.out_channels)  # M / N of Eq. 5.18
        assert group["weight_decay"] == pytest.approx(5e-4 * expected)
        assert group["crs_factor"] == pytest.approx(expected)
    assert groups[-1]["weight_decay"] == 5e-4
    off = C.crs_param_groups(model, 5e-4, enabled=False)
    assert all(g["weight_decay"] == 5e-4 for g in off)
    torch.optim.SGD(groups, lr=0.1, momentum=0.9)  # valid optimiser groups


def test_crs_default_is_one_network_wide_ratio():
    """The thesis' code scales every compressed layer by one ratio: network params / full-conv network params."""
    model = small_network("hashed:0.25")
    groups = C.crs_param_groups(model, 5e-4)
    ratio = C.network_compression_ratio(model)
    full = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False),
        *[
            nn.Sequential(
                nn.BatchNorm2d(i),
                nn.Conv2d(i, o, 3, bias=False),
                nn.BatchNorm2d(o),
                nn.Conv2d(o, o, 3, bias=False),
            )
            for i, o in ((32, 32), (32, 64), (64, 128))
        ],
    )
    shortcuts = 32 * 64 + 64 * 128  # the dense 1x1 projections of the two strided blocks
    total = sum(p.numel() for p in model.parameters())
    assert ratio == pytest.approx(total / (sum(p.numel() for p in full.parameters()) + shortcuts))
    assert all(g["crs_factor"] == pytest.approx(ratio) for g in groups[:-1])
    assert all(g["weight_decay"] == pytest.approx(5e-4 * ratio) for g in groups[:-1])
    layer = C.crs_param_groups(small_network("rf:0.25"), 5e-4, scope="layer")
    assert len({round(g["crs_factor"], 9) for g in layer[:-1]}) > 1  # per-layer factors differ
    assert C.crs_param_groups(model, 5e-4, ratio=0.5)[0]["weight_decay"] == pytest.approx(2.5e-4)
    with pytest.raises(ValueError, match="scope"):
        C.crs_param_groups(model, 5e-4, scope="block")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ratio"):
        C.crs_param_groups(model, 5e-4, ratio=0.0)


def test_crs_factor_for_shufflenet_counts_the_replaced_separable_conv():
    s = C.LinearShuffleNet(64, 64, 2)
    assert C.crs_factor(s) == pytest.approx(s.parameter_count / (9 * 64 + 64 * 64))


# -- budget solver -----------------------------------------------------------------------------------


def test_meta_device_count_equals_real_count():
    for spec in ("rf:0.3", "acdc:4", "hashed:0.1", "tt:0.4", "tucker:0.4", "shufflenet:4"):
        real = sum(p.numel() for p in small_network(spec).parameters())
        assert C.count_parameters(lambda s=spec: small_network(s)) == real


def test_solver_hits_targets_within_tolerance():
    count = small_network_counter
    curves = C.tuning_curves(count, points=5)
    low, high = C.common_support(curves)
    budgets = C.budgets_in_support(low, high)
    assert budgets[0] == high and budgets[-1] == low
    assert abs(budgets[1] - math.sqrt(low * high)) <= 0.5
    for method in ("rf", "hashed", "tt", "tucker"):  # continuous tunings: close hits
        hit = C.solve_budget(count, method, budgets[1], iterations=20)
        assert hit.supported and abs(hit.relative_error) < 0.05, hit
        assert count(method, hit.tuning) == hit.parameters
    for method in ("acdc", "shufflenet"):  # integer tunings: the closest of all valid values
        hit = C.solve_budget(count, method, budgets[1])
        rng = C.SUBSTITUTES[method].tuning_range
        best = min(abs(count(method, v) - budgets[1]) for v in range(int(rng.low), int(rng.high) + 1))
        assert abs(hit.parameters - budgets[1]) == best


def test_solver_reports_unsupported_targets():
    count = small_network_counter
    hit = C.solve_budget(count, "rf", 10**9)
    assert not hit.supported and hit.tuning == pytest.approx(1.0)
    with pytest.raises(ValueError, match="valid"):
        C.solve_budget(count, "fourier", 1000)


def test_solver_support_tolerance():
    """A target within ``tolerance`` (default 0.5%: printed budgets are rounded) of a method's range
    counts as supported; further out it does not."""
    count = small_network_counter
    largest = count("shufflenet", 1.0)
    assert C.solve_budget(count, "shufflenet", largest * 1.004).supported
    assert not C.solve_budget(count, "shufflenet", largest * 1.004, tolerance=0.0).supported
    assert not C.solve_budget(count, "shufflenet", largest * 1.01).supported
    with pytest.raises(ValueError, match="tolerance"):
        C.solve_budget(count, "rf", 1000, tolerance=1.5)


def test_common_support_ignores_open_ended_maxima():
    """Fig. 5.5: the support is bounded by every method's smallest network, and by the largest network
    of every method but the open-ended ones (ACDC: more layers can always be stacked)."""
    import pandas as pd

    curves = pd.DataFrame(
        [("rf", 60), ("rf", 900), ("shufflenet", 30), ("shufflenet", 238), ("acdc", 35), ("acdc", 93)],
        columns=["method", "parameters"],
    )
    from thesislib.compressed.budget import OPEN_ENDED

    assert {"acdc"} == OPEN_ENDED
    assert C.common_support(curves) == (60, 238)
    assert C.common_support(curves, open_ended=()) == (60, 93)
    assert C.common_support(curves, methods=["rf", "acdc"]) == (60, 900)
    with pytest.raises(ValueError, match="no common support"):
        C.common_support(
            pd.DataFrame([("rf", 10), ("rf", 20), ("tt", 30), ("tt", 40)], columns=curves.columns)
        )
    with pytest.raises(ValueError, match="open-ended"):
        C.common_support(curves, methods=["acdc"])


def test_rf_range_is_the_thesis_rank_scales():
    """RF's normalised range runs from the thesis' smallest rank scale, 0.03, to 1 (both ends exact)."""
    rng = C.RankFactorised.tuning_range
    assert (rng.value(0.0), rng.value(1.0)) == (0.03, 1.0)


def test_tuning_range_normalisation():
    rng = C.TuningRange(0.01, 1.0, log=True)
    assert rng.value(0) == pytest.approx(0.01) and rng.value(1) == pytest.approx(1.0)
    assert rng.value(0.5) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rng.value(1.5)


# -- ACDC toy ----------------------------------------------------------------------------------------


def test_acdc_toy_regression_learns_with_both_permutations():
    riffle = C.acdc_toy_regression("riffle", n=16, layers=8, samples=256, steps=120, lr=2e-2)
    random = C.acdc_toy_regression("random", n=16, layers=8, samples=256, steps=120, lr=2e-2)
    for result in (riffle, random):
        assert result.final_mse < 0.5 * result.history[0] and result.final_mse < result.baseline_mse
        assert result.history[-1] == result.final_mse
    assert riffle.baseline_mse == random.baseline_mse  # same problem for both


# -- golden: the §5.2.4 budgets ----------------------------------------------------------------------


def wrn(depth: int, width: int, spec, **substitute_kwargs) -> nn.Module:
    """A pre-activation WRN-depth-width skeleton with separable substituted blocks (for counting)."""
    n = (depth - 4) // 6
    make = C.separable_block_factory(spec, **substitute_kwargs)
    layers, cin = [nn.Conv2d(3, 16, 3, padding=1, bias=False)], 16
    for channels, stride in zip((16 * width, 32 * width, 64 * width), (1, 2, 2), strict=True):
        for i in range(n):
            layers.append(make(cin, channels, stride if i == 0 else 1))
            cin = channels
    return nn.Sequential(*layers, nn.BatchNorm2d(cin), nn.Flatten(), nn.Linear(cin, 10))


def test_wrn_28_10_upper_budget_is_the_largest_linear_shufflenet():
    # §5.2.4: the upper limit of the WRN-28-10 budgets (2.38M) is the largest linear ShuffleNet (g = 1);
    # it is reproduced with the thesis code's out // 4 bottleneck
    params = C.count_parameters(lambda: wrn(28, 10, "shufflenet:1", bottleneck="out"))
    assert params == pytest.approx(2.38e6, rel=0.005)
    # and the middle budget is the geometric mean of the extremes (1.2M ≈ √(2.38M·0.6M))
    assert C.budgets_in_support(0.6e6, 2.38e6)[1] == pytest.approx(1.2e6, rel=0.005)
    assert C.budgets_in_support(0.49e6, 1.42e6)[1] == pytest.approx(0.83e6, rel=0.005)  # DARTS
