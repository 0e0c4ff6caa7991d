"""ACDC (Eq. 5.4): the O(N log N) fast path against a dense matmul, and training memory (§5.2.3).

    .venv/bin/python benchmarks/bench_acdc.py [--sizes 256 1024 4096] [--batch 8192] [--layers 1 12]
                                              [--rounds 3] [--threads 2] [--memory-batch 1024] [--json]

Speed: for each N and L, the time to apply ``L`` ACDC layers in eval mode with
:meth:`thesislib.compressed.ACDC.fast_forward` (real-FFT DCT, fused diagonals, chunked, in place) to
``batch`` vectors, against one dense ``batch × N`` by ``N × N`` matmul (``F.linear``) with a
precomputed ``W``, both under ``torch.inference_mode`` at the same thread count. Each is timed with
``torch.utils.benchmark`` (``blocked_autorange``) in ``rounds`` alternating rounds, so both see the
same machine load; the script prints the median of each and the median over rounds of the per-round
ratio fast/dense (< 1: the fast path wins; the issue's targets are <= 0.5 at N = 1024, L = 1 and
<= 1 at N = 4096, L = 12), with the spread (min–max) over rounds. The fast path is also checked
against ``x @ dense_matrix().T`` (max abs error, float32).

Memory: bytes of the tensors autograd saves for the backward pass (unique storages, counted with
``torch.autograd.graph.saved_tensors_hooks``) when training (a) through the dense ``W`` built from
the diagonals, as the thesis does, and (b) through the sequence of component operations. The
thesis' argument: (b) grows with ``L`` times the activation size, (a) stores the activation plus
``O(L·N²)`` for the construction of ``W``.

Timings are of this machine at the time of the run: on a machine shared with other jobs they are
noisy, which is why only ratios measured side by side are reported. Both paths run at
``torch.get_num_threads()`` threads (``--threads``; ``torch.utils.benchmark.Timer`` would otherwise
use one). On an oversubscribed machine the fast path's many small operations suffer far more from
a second intra-op thread than one large matmul does: compare ``--threads 1`` and ``--threads 2``.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from thesislib.compressed import ACDC


def timed(fn, min_run_time: float) -> float:
    """Median seconds per call of ``fn()`` (``torch.utils.benchmark.Timer.blocked_autorange``)."""
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def saved_bytes(loss_of) -> int:
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_of()
    loss.backward()
    return sum(storages.values())


def speed(
    n: int, layers: int, batch: int, rounds: int, min_run_time: float, chunk_elements: int | None = None
) -> dict[str, float]:
    """Side-by-side timings of the fast path and the dense matmul (see the module docstring)."""
    torch.manual_seed(0)
    module = ACDC(n, n, layers).eval()
    if chunk_elements:
        module.chunk_rows = max(16, chunk_elements // n)
    x = torch.randn(batch, n)
    w = torch.randn(n, n) / n**0.5  # the matmul's time does not depend on W's values
    dense_times, fast_times, ratios = [], [], []
    with torch.inference_mode():
        module.fast_forward(x[:64])  # warm-up (tables, FFT plans)
        for _ in range(rounds):
            dense = timed(lambda: F.linear(x, w), min_run_time)
            fast = timed(lambda: module.fast_forward(x), min_run_time)
            dense_times.append(dense)
            fast_times.append(fast)
            ratios.append(fast / dense)
    return {
        "dense_ms": 1e3 * statistics.median(dense_times),
        "fast_ms": 1e3 * statistics.median(fast_times),
        "fast_over_dense": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "speedup": 1 / statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 12])
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds per (N, L)")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per blocked_autorange")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--memory-batch", type=int, default=1024)
    parser.add_argument(
        "--memory-sizes",
        type=int,
        nargs="+",
        default=[256, 1024],
        help="N for the memory test and the error check (W costs O(L·N³))",
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="elements per fast-path chunk (default: thesislib.compressed.acdc.CHUNK_ELEMENTS)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON record instead of a table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.json:
        print(f"batch {args.batch}, {torch.get_num_threads()} torch threads for both paths", flush=True)
    rows = []
    for n in args.sizes:
        for layers in args.layers:
            row = {
                "N": n,
                "layers": layers,
                **speed(n, layers, args.batch, args.rounds, args.min_run_time, args.chunk),
            }
            error = through_w = through_layers = float("nan")
            if n in args.memory_sizes:
                module = ACDC(n, n, layers).eval()
                x = torch.randn(256, n)
                with torch.no_grad():
                    error = (module.fast_forward(x) - x @ module.dense_matrix().t()).abs().max().item()
                xm = torch.randn(args.memory_batch, n)
                through_w = saved_bytes(lambda m=module, x=xm: F.linear(x, m.dense_matrix()).square().sum())
                through_layers = saved_bytes(lambda m=module, x=xm: m.fast_forward(x).square().sum())
            row.update(
                max_abs_error=error,
                memory_batch=args.memory_batch,
                saved_MB_dense_W=through_w / 2**20,
                saved_MB_layers=through_layers / 2**20,
                activation_MB=args.memory_batch * n * 4 / 2**20,
            )
            rows.append(row)
            if not args.json:
                r = row
                print(
                    f"N={n:5d} L={layers:2d}  dense {r['dense_ms']:9.1f} ms  fast {r['fast_ms']:9.1f} ms  "
                    f"fast/dense {r['fast_over_dense']:6.3f} (rounds {r['ratio_min']:.3f}–{r['ratio_max']:.3f}; "
                    f"{r['speedup']:.2f}x)  err {error:.1e}  |  saved for backward (batch "
                    f"{args.memory_batch}): dense W {r['saved_MB_dense_W']:8.1f} MB, layers "
                    f"{r['saved_MB_layers']:8.1f} MB (activation {r['activation_MB']:.1f} MB)",
                    flush=True,
                )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
