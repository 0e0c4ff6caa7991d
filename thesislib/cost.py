"""Cost measured, not only counted: latency and training throughput beside parameters and mult-adds.

The thesis compares networks by parameters and mult-adds (Tables 4.3, 5.1) and says itself that
mult-adds are a proxy (§4.6: grouped and depthwise convolutions are memory-bound; §5.3.4: ACDC is
fast "in theory"). This module measures what the counts stand for, on the machine it runs on:

- :func:`table43_candidates`: every network of Table 4.3 (WRN-40-2 with each Table 4.1 block, and
  the shrunk standard WRNs), built by :func:`thesislib.models.build_model` at 32×32;
- :func:`chapter5_candidates`: every chapter-5 substitute (§5.2.3) at its network-wide WRN-28-10
  setting for a parameter budget (§5.2.4, default the thesis' 0.6M, the only one ACDC reaches), as
  the layer it replaces in WRN-28-10's last group (640 → 640 channels on 8×8 maps), and the dense
  pointwise convolution; ACDC runs its O(N log N) fast path at test time;
- :func:`cost_table`: per candidate the parameters and mult-adds (:func:`thesislib.counting.count`),
  the inference latency at each batch size and the training throughput (forward, backward and SGD
  step), each the median and quartiles of repeated runs timed with ``torch.utils.benchmark``, on CPU
  or CUDA with the same code;
- :func:`rank_agreement`: Spearman's rank correlation of latency against mult-adds
  (:func:`scipy.stats.spearmanr`) and the candidates whose latency contradicts their mult-add
  ranking: slower, beyond the measured spread, than a candidate with more mult-adds;
- :func:`cost_scatter`: an interactive log-log scatter of latency against mult-adds, one colour per
  family;
- :func:`acdc_speed`: ACDC's fast path against the dense matmul it replaces, timed side by side.

Timings depend on the machine and on its load: on a shared machine compare ratios measured side by
side in one process, not absolute numbers from different runs.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from thesislib.counting import count
from thesislib.training import progress_enabled, select_device

# ``torch.utils.benchmark`` imports ``torch.utils.cpp_extension``, which warns "No CUDA runtime is found" on any
# machine with an nvcc but no GPU. The timer compiles nothing, so that warning only clutters the pages that measure
# cost; it is silenced for this import alone.
_cpp_extension_log = logging.getLogger("torch.utils.cpp_extension")
_cpp_extension_level = _cpp_extension_log.level
_cpp_extension_log.setLevel(logging.ERROR)
try:
    from torch.utils import benchmark
finally:
    _cpp_extension_log.setLevel(_cpp_extension_level)

__all__ = [
    "FAMILY_COLOURS",
    "Candidate",
    "Timing",
    "acdc_speed",
    "block_family",
    "chapter5_candidates",
    "cost_scatter",
    "cost_table",
    "latency",
    "rank_agreement",
    "table43_candidates",
    "time_call",
    "train_throughput",
]

FAMILY_COLOURS: Mapping[str, str] = {
    "S (shrunk)": "#d62728",
    "S-2x2": "#7f7f7f",
    "S": "#000000",
    "G": "#2ca02c",
    "B": "#1f77b4",
    "BG": "#17becf",
    "dense": "#000000",
    "rf": "#1f77b4",
    "acdc": "#ff7f0e",
    "hashed": "#2ca02c",
    "tt": "#d62728",
    "tucker": "#9467bd",
    "shufflenet": "#8c564b",
}
"""One colour per block family (chapter 4, as Fig. 4.4) and per substitute method (chapter 5)."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A network or layer to measure: ``build()`` returns a fresh module taking ``(B, *input_shape)``."""

    label: str
    family: str
    chapter: int
    build: Callable[[], nn.Module] = dataclasses.field(repr=False, compare=False)
    input_shape: tuple[int, ...] = (3, 32, 32)
    num_classes: int | None = None
    """Classes of the network's logits (training uses cross entropy); ``None``: a layer (mean square)."""


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call over repeated runs: median and quartiles (the spread), and how many runs."""

    median: float
    q25: float
    q75: float
    runs: int

    @classmethod
    def of(cls, times: Sequence[float]) -> Timing:
        q25, median, q75 = np.quantile(np.asarray(times, dtype=float), [0.25, 0.5, 0.75])
        return cls(float(median), float(q25), float(q75), len(times))


# ----------------------------------------------------------------------------------------------------------
# Candidates


def block_family(block: str) -> str:
    from thesislib.moonshine import parse_block

    kind = parse_block(block).kind
    return "S (shrunk)" if kind == "S" else kind


def table43_candidates(labels: Iterable[str] | None = None) -> list[Candidate]:
    """The networks of Table 4.3 (``data/reference/ch4_table43.csv``), CIFAR-10 heads, 32×32 inputs.

    ``labels`` picks rows by name (e.g. ``["wrn-40-2 S", "wrn-40-2 G(N/4)"]``); default all 26.
    The family is the block kind of Table 4.1 (``S (shrunk)`` for the standard networks).
    """
    from thesislib import reference
    from thesislib.models import build_model

    table = reference.table("ch4_table43")
    chosen = list(table.index) if labels is None else list(labels)
    if unknown := [label for label in chosen if label not in table.index]:
        raise ValueError(f"not rows of Table 4.3: {unknown}; valid: {', '.join(table.index)}")
    out = []
    for label in chosen:
        model, block = table.loc[label, "model"], table.loc[label, "block"]
        family = block_family(block)
        if label == "wrn-40-2 S":
            family = "S"
        out.append(
            Candidate(
                label,
                family,
                4,
                lambda m=model, b=block: build_model(m, block=b, num_classes=10),
                (3, 32, 32),
                10,
            )
        )
    return out


def chapter5_candidates(
    settings: Mapping[str, float] | None = None,
    *,
    budget: float = 0.6e6,
    channels: int = 640,
    resolution: int = 8,
    methods: Iterable[str] | None = None,
) -> list[Candidate]:
    """Every chapter-5 substitute as one WRN-28-10 pointwise layer (``channels`` → ``channels``).

    ``settings`` maps a method to its network-wide tuning (e.g. from
    :func:`thesislib.compressed.networks.budget_grid`); missing ones are solved for ``budget``
    parameters of the whole WRN-28-10 (§5.2.4; :func:`~thesislib.models.solve_setting`).
    The default layer is the last group's (640 channels at 8×8 for a 32×32 input). ACDC uses its
    test-time fast path. A ``dense`` candidate (the 1×1 convolution) comes first.
    """
    from thesislib.compressed import SUBSTITUTES, substitute_class
    from thesislib.compressed.networks import substitute_spec
    from thesislib.models import solve_setting

    if channels < 1 or resolution < 1:
        raise ValueError(f"channels and resolution must be positive, got {channels} and {resolution}")
    chosen = list(SUBSTITUTES) if methods is None else [str(m).lower() for m in methods]
    if unknown := [m for m in chosen if m not in SUBSTITUTES]:
        raise ValueError(f"unknown substitute methods {unknown}; valid: {', '.join(SUBSTITUTES)}")
    settings = dict(settings or {})
    shape = (channels, resolution, resolution)
    out = [
        Candidate(
            f"dense 1x1 ({channels})",
            "dense",
            5,
            lambda: nn.Conv2d(channels, channels, 1, bias=False),
            shape,
        )
    ]
    for method in chosen:
        tuning = settings.get(method)
        if tuning is None:
            tuning = solve_setting("wrn-28-10", method, budget).tuning
        options = substitute_class(method).inference_options
        spec = substitute_spec(method, float(tuning), substitute_options=options)
        out.append(
            Candidate(
                f"{method} ({float(tuning):.4g})",
                method,
                5,
                lambda s=spec: s.build(channels, channels),
                shape,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------------------
# Timing


def time_call(fn: Callable[[], Any], *, repeats: int = 5, min_run_time: float = 0.2) -> Timing:
    """Seconds per call of ``fn()``: ``torch.utils.benchmark`` blocks, at least ``repeats`` of them.

    ``blocked_autorange`` picks the calls per block and runs blocks for ``min_run_time`` seconds
    (after a warm-up call); more blocks are timed until there are ``repeats``. The Timer synchronises
    CUDA around each block.
    """
    if repeats < 1 or min_run_time < 0:
        raise ValueError(f"repeats must be >= 1 and min_run_time >= 0, got {repeats} and {min_run_time}")
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    times = list(measurement.times)
    while len(times) < repeats:
        times.extend(timer.timeit(measurement.number_per_run).times)
    return Timing.of(times)


def _output(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple | list) else out


def latency(
    model: nn.Module, input_shape: Sequence[int], batch: int, *, device: Any = None, **kw: Any
) -> Timing:
    """Inference seconds per batch of ``batch`` inputs: eval mode, ``torch.inference_mode``."""
    device = torch.device("cpu") if device is None else torch.device(device)
    model = model.to(device).eval()
    x = torch.randn(batch, *input_shape, device=device)

    def run() -> None:
        with torch.inference_mode():
            model(x)

    return time_call(run, **kw)


def train_throughput(
    model: nn.Module,
    input_shape: Sequence[int],
    batch: int,
    num_classes: int | None = None,
    *,
    device: Any = None,
    **kw: Any,
) -> Timing:
    """Seconds per training step on ``batch`` inputs: forward, loss, backward, SGD (momentum) step.

    The loss is cross entropy against random labels for a network (``num_classes``), the mean
    square of the output for a layer. Images per second are ``batch / seconds``.
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    model = model.to(device).train()
    x = torch.randn(batch, *input_shape, device=device)
    y = None if num_classes is None else torch.randint(0, num_classes, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step() -> None:
        out = _output(model(x))
        loss = out.square().mean() if y is None else F.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_call(step, **kw)


def cost_table(
    candidates: Sequence[Candidate],
    *,
    batch_sizes: Sequence[int] = (1, 128),
    train_batch: int | None = 128,
    repeats: int = 5,
    min_run_time: float = 0.2,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Counted and measured cost of every candidate, one row each (index: the label).

    Columns: ``chapter``, ``family``, ``params``, ``mult_adds`` (per input, batch 1), for each batch
    size ``b`` ``latency_b{b}_ms`` with its quartiles ``latency_b{b}_q25_ms``/``_q75_ms``,
    ``train_images_per_s`` with its quartiles (when ``train_batch``), ``device``, ``threads`` and
    ``runs`` (timed blocks per measurement). ``device`` is ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """
    if not candidates:
        raise ValueError("cost_table needs at least one candidate")
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise ValueError(f"batch_sizes must be positive integers, got {list(batch_sizes)}")
    if train_batch is not None and train_batch < 1:
        raise ValueError(f"train_batch must be positive or None, got {train_batch}")
    run_device = select_device(device)
    rows = []
    for candidate in tqdm(candidates, desc="measuring", disable=not progress_enabled(progress)):
        torch.manual_seed(seed)
        model = candidate.build()
        counts = count(model, candidate.input_shape)
        row: dict[str, Any] = {
            "label": candidate.label,
            "chapter": candidate.chapter,
            "family": candidate.family,
            "params": counts.parameters,
            "mult_adds": counts.mult_adds,
        }
        timing = Timing(float("nan"), float("nan"), float("nan"), 0)
        for b in batch_sizes:
            timing = latency(
                model,
                candidate.input_shape,
                int(b),
                device=run_device,
                repeats=repeats,
                min_run_time=min_run_time,
            )
            row[f"latency_b{b}_ms"] = 1e3 * timing.median
            row[f"latency_b{b}_q25_ms"] = 1e3 * timing.q25
            row[f"latency_b{b}_q75_ms"] = 1e3 * timing.q75
        if train_batch is not None:
            timing = train_throughput(
                model,
                candidate.input_shape,
                train_batch,
                candidate.num_classes,
                device=run_device,
                repeats=repeats,
                min_run_time=min_run_time,
            )
            row["train_images_per_s"] = train_batch / timing.median
            row["train_images_per_s_q25"] = train_batch / timing.q75
            row["train_images_per_s_q75"] = train_batch / timing.q25
        row.update(device=str(run_device), threads=torch.get_num_threads(), runs=timing.runs)
        rows.append(row)
        del model
    return pd.DataFrame(rows).set_index("label")


# ----------------------------------------------------------------------------------------------------------
# Latency against mult-adds


def rank_agreement(
    frame: pd.DataFrame, latency_column: str = "latency_b1_ms", counted: str = "mult_adds"
) -> dict[str, Any]:
    """Spearman's rank correlation of ``latency_column`` against ``counted``, and the contradictions.

    A candidate *contradicts* its mult-add ranking when some other candidate has more mult-adds yet
    is faster beyond both spreads (its upper quartile of latency below this one's lower quartile;
    columns ``<name>_q25_ms``/``<name>_q75_ms`` when present, else the medians). Returns
    ``{"spearman", "p_value", "n", "contradictions": {label: [faster labels with more mult-adds]}}``.
    """
    from scipy.stats import spearmanr

    for column in (latency_column, counted):
        if column not in frame.columns:
            raise ValueError(f"column {column!r} not in the table; columns: {', '.join(frame.columns)}")
    if len(frame) < 3:
        raise ValueError(f"a rank correlation needs at least 3 rows, got {len(frame)}")
    stem = latency_column.removesuffix("_ms")
    low = frame.get(f"{stem}_q25_ms", frame[latency_column])
    high = frame.get(f"{stem}_q75_ms", frame[latency_column])
    result = spearmanr(frame[counted], frame[latency_column])
    contradictions: dict[str, list[str]] = {}
    for label in frame.index:
        faster = [
            other
            for other in frame.index
            if frame.at[other, counted] > frame.at[label, counted] and high[other] < low[label]
        ]
        if faster:
            contradictions[str(label)] = [str(o) for o in faster]
    return {
        "spearman": float(result.statistic),
        "p_value": float(result.pvalue),
        "n": len(frame),
        "contradictions": contradictions,
    }


def describe_contradictions(agreement: dict[str, Any], unit: str = "network") -> str:
    """One sentence for a :func:`rank_agreement` result: its correlation and the contradicting blocks."""
    named = "; ".join(
        f"{label} is slower than {', '.join(faster)}" for label, faster in agreement["contradictions"].items()
    )
    return (
        f"Spearman rank correlation with mult-adds {agreement['spearman']:.2f} "
        f"(p = {agreement['p_value']:.2g}, {agreement['n']} {unit}s); "
        + (named or f"no {unit} is slower, beyond the measured spread, than one with more mult-adds")
    )


def cost_scatter(frame: pd.DataFrame, latency_column: str = "latency_b1_ms", title: str | None = None):
    """Interactive log-log scatter of ``latency_column`` against mult-adds, one colour per family."""
    import holoviews as hv

    data = frame.reset_index()
    data = data.assign(
        spread=data.get(latency_column.removesuffix("_ms") + "_q75_ms", data[latency_column])
        - data.get(latency_column.removesuffix("_ms") + "_q25_ms", data[latency_column])
    )
    layers = []
    for family, part in data.groupby("family", sort=False):
        layers.append(
            hv.Scatter(
                part, "mult_adds", [latency_column, "label", "params", "spread"], label=str(family)
            ).opts(color=FAMILY_COLOURS.get(str(family), "#444444"), size=9, tools=["hover"])
        )
    return hv.Overlay(layers).opts(
        logx=True,
        logy=True,
        xlabel="mult-adds per input (log)",
        ylabel=f"{latency_column.replace('_', ' ')} (log)",
        legend_position="right",
        width=720,
        height=430,
        title=title or "Measured latency against counted mult-adds",
    )


# ----------------------------------------------------------------------------------------------------------
# ACDC's fast path against the dense matmul


def acdc_speed(
    sizes: Sequence[int] = (1024, 4096),
    layers: Sequence[int] = (1, 12),
    *,
    batch: int = 8192,
    rounds: int = 3,
    min_run_time: float = 0.5,
    seed: int = 0,
    error_rows: int = 256,
) -> pd.DataFrame:
    """ACDC's eval-mode fast path (Eq. 5.4) against one dense ``batch × N`` by ``N × N`` matmul.

    Both run under ``torch.inference_mode`` at the current thread count, in ``rounds`` alternating
    rounds of :func:`time_call`, so both see the same load. Rows per ``(N, layers)``:
    ``dense_ms``, ``fast_ms`` (medians), ``fast_over_dense`` (median of the per-round ratios; < 1:
    the fast path wins), ``ratio_min``/``ratio_max``, ``max_abs_error`` against
    ``x @ dense_matrix().T`` on ``error_rows`` rows (float32; skipped, NaN, for N > 2048 where building
    W costs O(L·N³)), and ``madds_ratio`` (counted fast/dense mult-adds).
    """
    from thesislib.compressed import ACDC

    if batch < 1 or rounds < 1:
        raise ValueError(f"batch and rounds must be positive, got {batch} and {rounds}")
    rows = []
    for n in sizes:
        for count_layers in layers:
            torch.manual_seed(seed)
            module = ACDC(n, n, count_layers).eval()
            x = torch.randn(batch, n)
            w = torch.randn(n, n) / n**0.5  # a matmul's time does not depend on W's values
            dense_times, fast_times, ratios = [], [], []
            with torch.inference_mode():
                module.fast_forward(x[:64])  # warm-up: tables and FFT plans
                for _ in range(rounds):
                    dense = time_call(lambda x=x, w=w: F.linear(x, w), repeats=1, min_run_time=min_run_time)
                    fast = time_call(
                        lambda m=module, x=x: m.fast_forward(x), repeats=1, min_run_time=min_run_time
                    )
                    dense_times.append(dense.median)
                    fast_times.append(fast.median)
                    ratios.append(fast.median / dense.median)
            error = float("nan")
            if n <= 2048:
                with torch.no_grad():
                    xe = x[:error_rows]
                    error = float((module.fast_forward(xe) - xe @ module.dense_matrix().t()).abs().max())
            rows.append(
                {
                    "N": n,
                    "layers": count_layers,
                    "dense_ms": 1e3 * statistics.median(dense_times),
                    "fast_ms": 1e3 * statistics.median(fast_times),
                    "fast_over_dense": statistics.median(ratios),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                    "max_abs_error": error,
                    "madds_ratio": module.per_position_mult_adds() / n**2,
                    "threads": torch.get_num_threads(),
                }
            )
    return pd.DataFrame(rows).set_index(["N", "layers"])
