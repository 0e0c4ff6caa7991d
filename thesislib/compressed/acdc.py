"""ACDC: a stack of structured efficient linear layers ``W = Π_l A_l C D_l C⁻¹ P`` (Eq. 5.4).

``A_l``, ``D_l`` are learnt diagonals, ``C`` the orthonormal DCT-II (so ``C⁻¹ = Cᵀ``) and ``P`` a
fixed permutation — the riffle shuffle of §5.2.3 (or, for the toy comparison, a fixed random one).

Training (§5.2.3): applying the ``5L`` component operations in sequence would make autograd store
an activation tensor at every stage, so in training the module builds the dense ``W`` from the
diagonals and backpropagates through that construction. At test time :meth:`ACDC.fast_forward`
applies the layers in O(N log N), equal to the dense result (float64 to 1e-10, float32 to 1e-5).
Test-time mult-adds are counted as ``4N + 5N·log2 N`` per layer (Moczulski et al., 2016).

The DCT is :mod:`thesislib.dct` (one real FFT of length ``N`` after Makhoul's reordering); its
precomputed tables also drive the fused fast path. The fast path fuses what the layers share:

- the IDCT's output reordering and the next DCT's input reordering cancel, so ``D_l`` is applied
  in Makhoul order (``D_l[order]``) between ``irfft`` and ``rfft`` and no reordering is done;
- the permutation ``P``, the DCT scales ``s``, the sign of the upper half and ``A_{l-1}`` are folded
  into one gather (indices precomputed as buffers) that writes each frequency's pair of values
  side by side, a real scaling of the pairs and one complex rotation per frequency: read as complex
  numbers, the scaled pairs rotated are the next IDCT's half spectrum, built directly from the
  previous DCT's spectrum. Every operation has one dtype (a real operand of a complex product
  would first be copied to complex: at N = 1024 the two mixed products this replaces took 0.76 ms
  per 2**19 elements, the real scaling and the rotation take 0.39 ms);
- the batch is processed in cache-sized chunks, in place and into reused work buffers when autograd
  is off; each chunk is first copied into the cache in one sequential pass, because the first
  gather's scattered reads from memory cost more (at N = 1024, batch 8192, one thread: 18.9 ms
  without the copy, 10.2 ms with it). On CPU the chunks are shared out to one Python thread per
  torch thread, each running its operations on one intra-op thread (a chunk's operations are too
  small for torch's own threads to pay, while the threads release the GIL inside every operation).

Channel changes: ``N = max(in, out)``. More output channels repeat the input along the channel
dimension (``out`` must then be a multiple of ``in``, §5.2.3); fewer keep the first ``out`` outputs.
The fast path folds both into its first and last gathers (no repeated copy of the input).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.compressed.base import Substitute, TuningRange, riffle_permutation
from thesislib.dct import complex_dtype, dct_matrix, fft_tables

__all__ = ["ACDC"]

#: elements per chunk of the fast path (2 MB of float32, at least 16 rows). With one thread per
#: core working on its own chunks and reusing its work buffers, 2**19 was the fastest on this
#: project's 2-core machine at batch 8192 (fast/dense at N = 1024, L = 1 and N = 4096, L = 12:
#: 2**17 0.49 and 1.02, 2**18 0.46 and 0.94, 2**19 0.44 and 0.81, 2**20 0.58 and 0.86;
#: benchmarks/bench_acdc.py --chunk)
CHUNK_ELEMENTS = 2**19


_chunk_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (process id, workers, pool)


def _chunk_threads(workers: int) -> ThreadPoolExecutor:
    """The fast path's thread pool (recreated after a fork, whose child has none of the threads).

    Each pool thread runs its torch operations on one intra-op thread: a chunk's operations are too
    small to share, and two threads each starting a team of two would oversubscribe the cores.
    """
    global _chunk_pool
    if _chunk_pool is None or _chunk_pool[:2] != (os.getpid(), workers):
        threads = torch.get_num_threads()
        pool = ThreadPoolExecutor(
            workers, thread_name_prefix="acdc", initializer=torch.set_num_threads, initargs=(1,)
        )
        started = threading.Barrier(workers)  # every task waits for the others: one thread each
        for done in [pool.submit(started.wait) for _ in range(workers)]:
            done.result()
        torch.set_num_threads(threads)  # the count set in a thread is also the default of later threads
        _chunk_pool = (os.getpid(), workers, pool)
    return _chunk_pool[2]


class ACDC(Substitute):
    """A stack of ``L`` ACDC layers as a pointwise substitute (Eq. 5.4).

    Setting: the number of layers ``L`` (integer >= 1). Parameters ``2NL`` (the diagonals ``A_l``,
    ``D_l``); test-time mult-adds ``L·(4N + 5N·log2 N)`` per position, ``N = max(in, out)``.
    ``permutation`` is ``"riffle"`` (thesis) or ``"random"`` (a fixed random permutation drawn from
    ``seed``). With ``fast_path=True`` the module uses :meth:`fast_forward` in eval mode.
    ``count_cheaper=True`` counts ``min(ACDC, dense)`` mult-adds, as SECL assumes (seed 004, §4).
    """

    method = "acdc"
    setting_range = (
        "number of ACDC layers: an integer L >= 1 (out_channels a multiple of in_channels if larger)"
    )
    tuning_range = TuningRange(1, 32, integer=True)
    inference_options = MappingProxyType({"fast_path": True})

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        setting: int,
        *,
        permutation: Literal["riffle", "random"] = "riffle",
        seed: int | None = None,
        init_std: float = 0.1,
        fast_path: bool = False,
        count_cheaper: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, setting)
        if isinstance(setting, bool) or not float(setting).is_integer() or int(setting) < 1:
            raise self._invalid(setting)
        if out_channels > in_channels and out_channels % in_channels:
            raise ValueError(
                f"ACDC({in_channels}→{out_channels}): channels increase by repeating the input, so "
                f"out_channels must be a multiple of in_channels; valid: {self.setting_range}"
            )
        self.layers = int(setting)
        self.setting = self.layers
        n = max(in_channels, out_channels)
        self.n = n
        if permutation == "riffle":
            perm = riffle_permutation(n)
        elif permutation == "random":
            if seed is None:
                seed = int(torch.randint(0, 2**31 - 1, ()).item())
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        else:
            raise ValueError(f"permutation must be 'riffle' or 'random', got {permutation!r}")
        self.permutation = permutation
        self.register_buffer("perm", perm, persistent=True)
        # Gathers of the fast path (module docstring), precomputed once: the first layer reads the
        # (repeated) input, the others the real view of the previous layer's twiddled spectrum. Each
        # frequency k takes a pair: the sources of coefficients N-k and k (fused_coefficients).
        t = fft_tables(n, perm.device)
        sources = torch.stack([perm[t["hi"]], perm[t["lo"]]], -1).flatten()
        self.register_buffer("_gather_first", sources % in_channels, persistent=False)
        self.register_buffer("_gather_next", t["position"][sources], persistent=False)
        self.register_buffer("_gather_last", t["position"][:out_channels].clone(), persistent=False)
        self.A = nn.Parameter(torch.empty(self.layers, n))
        self.D = nn.Parameter(torch.empty(self.layers, n))
        nn.init.normal_(self.A, 1.0, init_std)
        nn.init.normal_(self.D, 1.0, init_std)
        self.fast_path = fast_path
        self.count_cheaper = count_cheaper
        self.chunk_rows = max(16, CHUNK_ELEMENTS // n)
        """Rows (positions) per chunk of :meth:`fast_forward` when autograd is off."""

    @classmethod
    def from_tuning(cls, in_channels: int, out_channels: int, tuning: float, **kwargs: Any) -> ACDC:
        return cls(in_channels, out_channels, round(tuning), **kwargs)

    # -- the N×N stack and the in/out adaptors ----------------------------------------------------
    def square_matrix(self) -> torch.Tensor:
        """``W_N = M_L ⋯ M_1`` with ``M_l = A_l C D_l Cᵀ P`` (layer 1 acts first)."""
        c = dct_matrix(self.n, self.A.dtype, self.A.device)  # O(N²), cheap next to the O(L·N³) products
        y = torch.eye(self.n, dtype=self.A.dtype, device=self.A.device)
        for a, d in zip(self.A, self.D, strict=True):
            y = a[:, None] * (c @ (d[:, None] * (c.t() @ y[self.perm])))
        return y

    def dense_matrix(self) -> torch.Tensor:
        w = self.square_matrix()
        if self.out_channels > self.in_channels:  # repeat the input: W_eff = W_N [I; I; …]
            return w.view(self.n, self.n // self.in_channels, self.in_channels).sum(1)
        return w[: self.out_channels]

    # -- the fast path ----------------------------------------------------------------------------
    def fused_coefficients(self) -> dict[str, Any]:
        """The per-layer constants of the fused fast path, from the diagonals (O(L·N), float64 inside).

        Layer ``l`` gathers its input into pairs ``(u_hi, u_lo)`` per frequency ``k`` (the values
        that become coefficients ``N-k`` and ``k`` of its IDCT input), read as complex numbers
        ``w_k = u_hi + i·u_lo``. Its IDCT half spectrum is ``Z_k = e^{iπk/2N}(a_k u_lo - i b_k u_hi)
        = -i e^{iπk/2N}(b_k u_hi + i a_k u_lo)``, where ``a``, ``b`` fold in ``A_{l-1}``, the DCT
        scales ``s`` and sign (module docstring). Per layer (lists of length ``L``): ``slot`` is
        the real ``(b_k, a_k)`` pair scaling (``None`` for the first layer, whose ``a_k = b_k``
        except at ``k = 0``, where the imaginary part of ``Z_0`` is ignored by the inverse real
        FFT); ``rotate`` the complex ``-i e^{iπk/2N}`` (times ``a_k`` for the first layer);
        ``middle`` is ``D_l`` in Makhoul order. ``twiddle`` is ``e^{-iπk/2N}`` and ``out`` scales
        the last gather (``A_L · s · sign``).
        """
        t = fft_tables(self.n, self.A.device)
        a, d = self.A.to(torch.float64), self.D.to(torch.float64)
        scale, lo, hi = t["scale"], t["lo"], t["hi"]
        rotate = -1j * t["twiddle"].conj()  # -i e^{+iπk/2N}
        fold = a[:-1] * scale * t["sign"]  # x_j = fold_j · (real view of the spectrum)[position_j]
        a_lo = fold[:, self.perm[lo]] / scale[lo]
        b_hi = fold[:, self.perm[hi]] / scale[hi] * t["hi_valid"]
        dtype, ctype = self.A.dtype, complex_dtype(self.A.dtype)
        slots = torch.stack([b_hi, a_lo], -1).flatten(-2).to(dtype)
        middle = d[:, t["order"]].to(dtype)
        return {
            "slot": [None, *slots],
            "rotate": [(rotate / scale[lo]).to(ctype)] + [rotate.to(ctype)] * (self.layers - 1),
            "middle": list(middle),
            "out": (a[-1] * scale * t["sign"])[: self.out_channels].to(dtype),
            "twiddle": t["twiddle"].to(ctype),
        }

    def _fast_rows(
        self,
        x: torch.Tensor,
        k: dict[str, Any],
        out: torch.Tensor | None,
        work: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """All ``L`` layers on rows ``x`` (``M × in``).

        With ``out`` (no autograd) the result goes into ``out``, and ``work`` (:meth:`_work_buffers`,
        at least ``M`` rows) is reused by every layer and chunk: a fresh buffer per operation costs
        more than the multiply-add itself. The input is first copied into the cache in one sequential
        pass (the first gather's scattered reads from memory cost more than twice that), and the
        gathered pairs are scaled and rotated in place into the IDCT half spectrum. Every operation
        is on one dtype (a real operand of a complex product would be copied to complex first).
        """
        n, half = self.n, self.n // 2 + 1
        h, gather = x, self._gather_first
        layers = zip(k["slot"], k["rotate"], k["middle"], strict=True)
        if out is None:
            for slot, rotate, middle in layers:
                u = h.index_select(-1, gather)
                u = u if slot is None else u * slot
                z = torch.view_as_complex(u.view(*u.shape[:-1], half, 2)) * rotate
                spectrum = torch.fft.rfft(torch.fft.irfft(z, n=n, dim=-1) * middle, dim=-1)
                h, gather = torch.view_as_real(spectrum * k["twiddle"]).flatten(-2), self._gather_next
            return h.index_select(-1, self._gather_last) * k["out"]
        if work is None:  # all rows at once (a GPU): the gather reads the input where it is
            u, h = x.new_empty(x.shape[0], 2 * half), x
        else:
            u, h = work[0][: x.shape[0]], work[1][: x.shape[0]].copy_(x)
        z = torch.view_as_complex(u.view(u.shape[0], half, 2))
        for slot, rotate, middle in layers:
            torch.index_select(h, -1, gather, out=u)
            if slot is not None:
                u.mul_(slot)
            v = torch.fft.irfft(z.mul_(rotate), n=n, dim=-1).mul_(middle)
            spectrum = torch.fft.rfft(v, dim=-1).mul_(k["twiddle"])
            h, gather = torch.view_as_real(spectrum).flatten(-2), self._gather_next
        torch.index_select(h, -1, self._gather_last, out=out)
        return out.mul_(k["out"])

    def _work_buffers(self, rows: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gathered pairs (``rows × 2K`` real; also the half spectrum) and the input's copy."""
        return like.new_empty(rows, 2 * (self.n // 2 + 1)), like.new_empty(rows, self.in_channels)

    def _fast_chunks(self, rows: torch.Tensor, k: dict[str, Any], y: torch.Tensor) -> None:
        """All rows into ``y`` without autograd: cache-sized chunks, shared out to threads on CPU.

        Each thread (:func:`_chunk_threads`) reuses one set of work buffers for all its chunks. Each
        row is computed by the same operations whatever the chunking or the thread, so the result
        does not depend on the number of threads (tested).
        """
        if rows.device.type != "cpu":  # a GPU is better served by one launch per operation
            with torch.no_grad():
                self._fast_rows(rows, k, y)
            return
        starts = list(range(0, rows.shape[0], self.chunk_rows))
        workers = min(torch.get_num_threads(), len(starts))
        inference = torch.is_inference_mode_enabled()
        queue = iter(starts)  # shared: each thread takes the next chunk when free (a busy core takes fewer)
        lock = threading.Lock()

        def run() -> None:
            with torch.inference_mode(inference), torch.no_grad():  # thread-local modes
                work = self._work_buffers(min(self.chunk_rows, rows.shape[0]), rows)
                while True:
                    with lock:
                        start = next(queue, None)
                    if start is None:
                        return
                    end = start + self.chunk_rows
                    self._fast_rows(rows[start:end], k, y[start:end], work)

        if workers <= 1:
            run()
            return
        for done in [_chunk_threads(workers).submit(run) for _ in range(workers)]:
            done.result()

    def fast_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference path: ``L`` layers of diagonal · DCT · diagonal · IDCT · permutation, O(N log N).

        Takes ``(..., in)`` vectors or ``(B, in, H, W)`` feature maps. With autograd off the positions
        are processed in place, on CPU in chunks of :attr:`chunk_rows`; otherwise out of place and
        differentiable.
        """
        if x.shape[1 if x.dim() == 4 else -1] != self.in_channels:
            raise ValueError(f"ACDC expects {self.in_channels} input channels, got shape {tuple(x.shape)}")
        rows = x.movedim(1, -1) if x.dim() == 4 else x
        lead = rows.shape[:-1]
        rows = rows.reshape(-1, self.in_channels)
        k = self.fused_coefficients()
        grad = torch.is_grad_enabled() and (x.requires_grad or self.A.requires_grad or self.D.requires_grad)
        if grad:
            y = self._fast_rows(rows, k, None)
        else:
            y = rows.new_empty(rows.shape[0], self.out_channels)
            self._fast_chunks(rows, k, y)
        y = y.view(*lead, self.out_channels)
        return y.movedim(-1, 1) if x.dim() == 4 else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast_path and not self.training:
            return self.fast_forward(x)
        w = self.dense_matrix()
        return F.linear(x, w) if x.dim() == 2 else F.conv2d(x, w[:, :, None, None])

    def per_position_mult_adds(self) -> int:
        n = self.n
        cost = self.layers * (4 * n + 5 * n * math.log2(n)) if n > 1 else self.layers * 4
        cost = round(cost)
        if self.count_cheaper:
            cost = min(cost, self.in_channels * self.out_channels)
        return cost
