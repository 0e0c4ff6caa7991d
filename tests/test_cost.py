"""thesislib.cost: measured latency and throughput beside counted parameters and mult-adds."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from thesislib import cost


def tiny_candidates() -> list[cost.Candidate]:
    def conv(width: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 1))

    return [
        cost.Candidate(f"conv{w}", "G" if w < 16 else "S", 4, lambda w=w: conv(w), (3, 8, 8))
        for w in (4, 8, 16, 32)
    ]


def test_time_call_gives_median_and_quartiles_over_repeats():
    timing = cost.time_call(lambda: torch.ones(10).sum(), repeats=4, min_run_time=0.0)
    assert timing.runs >= 4
    assert 0 < timing.q25 <= timing.median <= timing.q75
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        cost.time_call(lambda: None, repeats=0)


def test_cost_table_counts_and_measures_every_candidate():
    frame = cost.cost_table(
        tiny_candidates(), batch_sizes=(1, 4), train_batch=4, repeats=2, min_run_time=0.0, progress=False
    )
    assert list(frame.index) == ["conv4", "conv8", "conv16", "conv32"]
    assert frame.loc["conv4", "params"] == sum(p.numel() for p in tiny_candidates()[0].build().parameters())
    # mult-adds of the counter: 3x3 conv + ReLU + 1x1 conv at 8x8
    assert frame.loc["conv8", "mult_adds"] == 64 * (8 * 27 + 8 + 8 * 8)
    for column in ("latency_b1_ms", "latency_b4_ms", "train_images_per_s"):
        assert (frame[column] > 0).all()
    assert (frame["latency_b1_q25_ms"] <= frame["latency_b1_q75_ms"]).all()
    assert set(frame["device"]) == {"cpu"}
    with pytest.raises(ValueError, match="batch_sizes must be positive"):
        cost.cost_table(tiny_candidates(), batch_sizes=(0,))


def test_rank_agreement_finds_the_contradictions_beyond_the_spread():
    frame = pd.DataFrame(
        {
            "mult_adds": [1, 2, 3, 4],
            "latency_b1_ms": [1.0, 5.0, 3.0, 4.0],
            "latency_b1_q25_ms": [0.9, 4.9, 2.9, 3.95],
            "latency_b1_q75_ms": [1.1, 5.1, 3.1, 4.05],
        },
        index=["a", "b", "c", "d"],
    )
    result = cost.rank_agreement(frame)
    assert result["spearman"] == pytest.approx(0.4)
    assert result["contradictions"] == {"b": ["c", "d"]}  # b is slower than c and d, which count more
    overlapping = frame.assign(latency_b1_q25_ms=[0.9, 2.0, 2.9, 3.95])  # b's spread reaches below c and d
    assert cost.rank_agreement(overlapping)["contradictions"] == {}
    with pytest.raises(ValueError, match="column 'nope'"):
        cost.rank_agreement(frame, "nope")


def test_scatter_has_one_layer_per_family():
    hv = pytest.importorskip("holoviews")
    hv.extension("bokeh", logo=False)
    frame = pd.DataFrame(
        {
            "family": ["G", "G", "B"],
            "params": [1, 2, 3],
            "mult_adds": [10, 20, 30],
            "latency_b1_ms": [1.0, 2.0, 3.0],
        },
        index=pd.Index(["x", "y", "z"], name="label"),
    )
    overlay = cost.cost_scatter(frame)
    assert [layer.label for layer in overlay] == ["G", "B"]


def test_candidates_cover_table_43_and_every_substitute():
    rows = cost.table43_candidates()
    assert len(rows) == 26 and rows[0].label == "wrn-40-2 S"
    assert {c.family for c in rows} == {"S", "S (shrunk)", "S-2x2", "G", "B", "BG"}
    with pytest.raises(ValueError, match=r"not rows of Table 4\.3"):
        cost.table43_candidates(["wrn-99 S"])
    settings = {"rf": 0.03, "acdc": 2, "hashed": 0.06, "tt": 0.24, "tucker": 0.35, "shufflenet": 8}
    layers = cost.chapter5_candidates(settings, channels=32, resolution=4)
    assert layers[0].family == "dense" and sorted(c.family for c in layers[1:]) == sorted(settings)
    acdc = next(c for c in layers if c.family == "acdc").build()
    assert acdc.fast_path and acdc.layers == 2
    with pytest.raises(ValueError, match="unknown substitute methods"):
        cost.chapter5_candidates(settings, methods=["svd"])


def test_acdc_speed_reports_ratios_and_the_error():
    frame = cost.acdc_speed([64], [1, 2], batch=128, rounds=2, min_run_time=0.0)
    assert list(frame.index) == [(64, 1), (64, 2)]
    assert (frame["fast_over_dense"] > 0).all() and (frame["max_abs_error"] < 1e-4).all()
    assert (frame["ratio_min"] <= frame["ratio_max"]).all()


def test_trainer_evaluates_under_inference_mode_and_training_continues():
    from thesislib.training import TensorBatches, TrainConfig, Trainer

    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    cached = {}

    def evaluate(m: nn.Module) -> dict[str, float]:
        cached["logits"] = m(x)  # an inference tensor: it must not leak into training
        return {"inference": float(torch.is_inference_mode_enabled())}

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(m(batch[0]), batch[1])

    config = TrainConfig(epochs=2, progress=False, device="cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = Trainer(
        model, optimizer, TensorBatches(x, y, batch_size=8), loss_fn, config, evaluate=evaluate
    ).fit()
    assert history["inference"].tolist() == [1.0, 1.0]
    assert cached["logits"].is_inference()


def test_describe_contradictions_names_each_slower_block():
    agreement = {"spearman": 0.5, "p_value": 0.2, "n": 4, "contradictions": {"G(4)": ["S"]}}
    text = cost.describe_contradictions(agreement)
    assert "0.50" in text and "G(4) is slower than S" in text and "4 networks" in text
    quiet = cost.describe_contradictions({**agreement, "contradictions": {}}, unit="layer")
    assert "no layer is slower" in quiet


def test_importing_cost_logs_no_cuda_warning_and_leaves_the_logger_as_it_was() -> None:
    """The pages that measure cost import it; torch's "No CUDA runtime" warning (nvcc but no GPU) is noise there."""
    import subprocess
    import sys

    script = "import logging, thesislib.cost\nprint(logging.getLogger('torch.utils.cpp_extension').level)\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "No CUDA runtime" not in done.stderr
    assert done.stdout.strip() == "0"
