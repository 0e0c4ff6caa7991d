"""ACDC (Eq. 5.4): the O(N log N) fast path against a dense matmul, and training memory (§5.2.3).

    .venv/bin/python benchmarks/bench_acdc.py [--sizes 256 1024 4096] [--batch 8192] [--layers 1 12]
                                              [--memory-batch 1024] [--repeats 3]

Speed: for each N, the time to apply ``L`` ACDC layers with the FFT-based DCT
(:meth:`thesislib.compressed.ACDC.fast_forward` on channel-last vectors) to ``batch`` vectors,
divided by the time of one dense ``batch × N`` by ``N × N`` matmul with the precomputed ``W``
(ratio < 1: the fast path wins).

Memory: bytes of the tensors autograd saves for the backward pass (unique storages, counted with
``torch.autograd.graph.saved_tensors_hooks``) when training (a) through the dense ``W`` built from
the diagonals, as the thesis does, and (b) through the sequence of ``5L`` component operations. The
thesis' argument: (b) grows as ``5L × S`` with ``S`` the activation size, (a) stores ``S`` plus
``O(L·N²)`` for the construction of ``W``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from thesislib.compressed import ACDC


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 12])
    parser.add_argument("--memory-batch", type=int, default=1024)
    parser.add_argument(
        "--memory-sizes",
        type=int,
        nargs="+",
        default=[256, 1024],
        help="N for the memory test (W costs O(L·N³))",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON record instead of a table")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for n in args.sizes:
        x = torch.randn(args.batch, n)
        for layers in args.layers:
            module = ACDC(n, n, layers).eval()
            with torch.no_grad():
                # the matmul's time does not depend on W's values; building the real W costs O(L·N³)
                w = torch.randn(n, n) / n**0.5
                dense = best_time(lambda x=x, w=w: x @ w.t(), args.repeats)
                fast = best_time(lambda m=module, x=x: m.fast_forward(x), args.repeats)
            error = through_w = through_layers = float("nan")
            if n in args.memory_sizes:
                with torch.no_grad():
                    error = (
                        (module.fast_forward(x[:256]) - x[:256] @ module.dense_matrix().t())
                        .abs()
                        .max()
                        .item()
                    )
                xm = torch.randn(args.memory_batch, n)
                through_w = saved_bytes(lambda m=module, x=xm: F.linear(x, m.dense_matrix()).square().sum())
                through_layers = saved_bytes(lambda m=module, x=xm: m.fast_forward(x).square().sum())
            rows.append(
                {
                    "N": n,
                    "layers": layers,
                    "dense_ms": 1e3 * dense,
                    "fast_ms": 1e3 * fast,
                    "fast_over_dense": fast / dense,
                    "max_abs_error": error,
                    "memory_batch": args.memory_batch,
                    "saved_MB_dense_W": through_w / 2**20,
                    "saved_MB_layers": through_layers / 2**20,
                    "activation_MB": args.memory_batch * n * 4 / 2**20,
                }
            )
            r = rows[-1]
            if not args.json:
                print(
                    f"N={n:5d} L={layers:2d}  dense {r['dense_ms']:9.1f} ms  fast {r['fast_ms']:9.1f} ms  "
                    f"ratio {r['fast_over_dense']:6.3f}  err {error:.1e}  |  saved for backward "
                    f"(batch {args.memory_batch}): dense W {r['saved_MB_dense_W']:8.1f} MB, layers "
                    f"{r['saved_MB_layers']:8.1f} MB (activation {r['activation_MB']:.1f} MB)",
                    flush=True,
                )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
