"""The ACDC fast path (Eq. 5.4, §5.2.3): real-FFT DCT, fused diagonals, chunks; equal to the dense W."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from thesislib.compressed import ACDC
from thesislib.dct import dct, dct_matrix, fft_tables, idct


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9, 64, 100, 127])
def test_real_fft_dct_is_the_dct_matrix_and_idct_inverts_it(n):
    torch.manual_seed(n)
    x = torch.randn(5, n, dtype=torch.float64)
    c = dct_matrix(n, torch.float64)
    torch.testing.assert_close(dct(x), x @ c.t(), atol=1e-12, rtol=0)
    torch.testing.assert_close(idct(x), x @ c, atol=1e-12, rtol=0)
    torch.testing.assert_close(idct(dct(x)), x, atol=1e-12, rtol=0)


def test_dct_matches_scipy_on_a_leading_batch():
    scipy_fft = pytest.importorskip("scipy.fft")
    x = torch.randn(2, 3, 16, dtype=torch.float64)
    torch.testing.assert_close(dct(x), torch.from_numpy(scipy_fft.dct(x.numpy(), norm="ortho")))
    torch.testing.assert_close(idct(x), torch.from_numpy(scipy_fft.idct(x.numpy(), norm="ortho")))


SHAPES = [(1, 1, 1), (2, 2, 3), (7, 7, 2), (8, 8, 1), (16, 64, 3), (64, 16, 2), (33, 33, 5), (64, 64, 12)]


@pytest.mark.parametrize("in_channels,out_channels,layers", SHAPES)
@pytest.mark.parametrize("permutation", ["riffle", "random"])
def test_fast_path_equals_dense_in_float64_and_float32(in_channels, out_channels, layers, permutation):
    torch.manual_seed(0)
    module = ACDC(in_channels, out_channels, layers, permutation=permutation, seed=1).double().eval()
    module.chunk_rows = 5  # several chunks and a ragged last one
    x = torch.randn(23, in_channels, dtype=torch.float64)
    with torch.no_grad():
        dense = x @ module.dense_matrix().t()
        assert (module.fast_forward(x) - dense).abs().max() < 1e-10
        m32, x32 = module.float(), x.float()
        assert (m32.fast_forward(x32) - dense).abs().max() < 1e-5


def test_fast_path_on_feature_maps_and_under_inference_mode():
    torch.manual_seed(0)
    module = ACDC(32, 64, 3, fast_path=True).eval()
    x = torch.randn(3, 32, 5, 4)
    dense = F.conv2d(x, module.dense_matrix()[:, :, None, None])
    with torch.inference_mode():
        fast = module(x)
    assert fast.shape == dense.shape == (3, 64, 5, 4)
    assert (fast - dense).abs().max() < 1e-5
    channels_last = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert (module(channels_last) - dense).abs().max() < 1e-5


@pytest.mark.parametrize("inference", [True, False])
def test_fast_path_gives_the_same_bits_on_one_thread_and_on_several(inference):
    torch.manual_seed(0)
    module = ACDC(48, 48, 4).eval()
    module.chunk_rows = 7  # 15 chunks, a ragged last one, shared out to the threads
    x = torch.randn(101, 48)
    threads = torch.get_num_threads()
    outputs = []
    try:
        for count in (1, 3):
            torch.set_num_threads(count)
            with torch.inference_mode(inference), torch.no_grad():
                outputs.append(module.fast_forward(x))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(outputs[0], outputs[1])
    assert (outputs[1] - x @ module.dense_matrix().t()).abs().max() < 1e-5


def test_fast_path_leaves_the_callers_thread_count_as_it_was():
    """The pool threads run their operations on one intra-op thread each; nobody else does."""
    module = ACDC(32, 32, 2).eval()
    module.chunk_rows = 4
    threads = torch.get_num_threads()
    results = []
    try:
        torch.set_num_threads(2)
        with torch.no_grad():
            module.fast_forward(torch.randn(40, 32))
        fresh = threading.Thread(target=lambda: results.append(torch.get_num_threads()))
        fresh.start()
        fresh.join()
        assert (torch.get_num_threads(), results) == (2, [2])
    finally:
        torch.set_num_threads(threads)


def test_unchunked_path_of_a_gpu_equals_the_dense_result():
    """Off the CPU all rows go through one pass that gathers from the input where it is."""
    torch.manual_seed(0)
    module = ACDC(24, 48, 3).double().eval()
    x = torch.randn(9, 24, dtype=torch.float64)
    with torch.no_grad():
        y = module._fast_rows(x, module.fused_coefficients(), x.new_empty(9, 48))
        assert (y - x @ module.dense_matrix().t()).abs().max() < 1e-10


def test_fast_path_is_differentiable_and_matches_the_dense_gradients():
    torch.manual_seed(0)
    module = ACDC(16, 16, 4).double()
    x = torch.randn(6, 16, dtype=torch.float64, requires_grad=True)
    (module.fast_forward(x) ** 2).sum().backward()
    grads = [t.grad.clone() for t in (x, module.A, module.D)]
    for t in (x, module.A, module.D):
        t.grad = None
    (F.linear(x, module.dense_matrix()) ** 2).sum().backward()
    for fast, dense in zip(grads, (x.grad, module.A.grad, module.D.grad), strict=True):
        torch.testing.assert_close(fast, dense, atol=1e-10, rtol=0)


def test_fast_path_follows_changed_diagonals_and_dtype_round_trips():
    torch.manual_seed(0)
    module = ACDC(12, 12, 2).eval()
    x = torch.randn(4, 12)
    with torch.no_grad():
        module.A.mul_(2.0)
        assert (module.fast_forward(x) - x @ module.dense_matrix().t()).abs().max() < 1e-5
        m64 = module.float().double()  # buffers are indices: no precision is lost on the way
        x64 = x.double()
        assert (m64.fast_forward(x64) - x64 @ m64.dense_matrix().t()).abs().max() < 1e-10


def test_fast_path_rejects_the_wrong_channel_count():
    with pytest.raises(ValueError, match="expects 8 input channels"):
        ACDC(8, 8, 1).fast_forward(torch.randn(2, 9))


def test_tables_first_built_under_inference_mode_still_serve_autograd():
    fft_tables.cache_clear()
    module = ACDC(10, 10, 2)
    with torch.inference_mode():
        ACDC(10, 10, 1).eval().fast_forward(torch.randn(2, 10))
    fft_tables.cache_clear()
    with torch.inference_mode():
        module.eval().fast_forward(torch.randn(2, 10))  # the tables are built here
    module.fast_forward(torch.randn(3, 10)).sum().backward()
    assert module.A.grad is not None


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_the_shared_dct_matrix_refuses_a_length_that_is_not_a_positive_integer(bad):
    with pytest.raises(ValueError, match="positive integer"):
        dct_matrix(bad)
