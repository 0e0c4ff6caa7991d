"""Several processes (DistributedDataParallel on Gloo, CPU) train exactly like one (issue 16).

- Equivalence: 2 processes with the same *global* batch give the same per-step losses and final weights
  as 1 process, within float32 reduction-order rounding (atol 1e-6, rtol 1e-5), for a network without
  batch norm (under DDP each process normalises its own half-batch, as the thesis' multi-GPU runs did;
  SyncBatchNorm needs CUDA).
- Resume: a 2-process ``thesislib experiments run`` killed right after epoch 1's checkpoint (fault
  injection: ``THESISLIB_FAULT_AFTER_EPOCH``) and run again ends with exactly the history and metrics of
  an uninterrupted 2-process run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from thesislib.training import FAULT_ENV, ShardedBatches, TensorBatches, TrainConfig, Trainer

pytestmark = pytest.mark.experiments

ATOL, RTOL = 1e-6, 1e-5


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)
    )


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    x, y = batch
    loss = nn.functional.cross_entropy(model(x), y)
    return loss, {"ce": loss}


def _train(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group(
            "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world
        )
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(24, 3, 8, 8, generator=generator), torch.randint(0, 3, (24,), generator=generator)
    batches = ShardedBatches(TensorBatches(x, y, batch_size=8, seed=3), rank, world)
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    trainer = Trainer(
        model, optimizer, batches, _loss, TrainConfig(epochs=2, seed=0, device="cpu", progress=False)
    )
    trainer.fit()
    if rank == 0:
        trainer.step_history.to_csv(f"{folder}/steps-{world}.csv", index=False)
        torch.save(model.state_dict(), f"{folder}/weights-{world}.pt")
    if world > 1:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one(tmp_path: Path) -> None:
    _train(0, 1, str(tmp_path))
    mp.start_processes(_train, args=(2, str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    one, two = (pd.read_csv(tmp_path / f"steps-{w}.csv") for w in (1, 2))
    assert len(one) == len(two) == 6
    pd.testing.assert_series_equal(one["loss"], two["loss"], atol=ATOL, rtol=RTOL)
    pd.testing.assert_series_equal(one["ce"], two["ce"], atol=ATOL, rtol=RTOL)
    w1, w2 = (torch.load(tmp_path / f"weights-{w}.pt") for w in (1, 2))
    for name in w1:
        torch.testing.assert_close(w1[name], w2[name], atol=ATOL, rtol=RTOL)


def _cli(out: Path, data: Path, fault: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "THESISLIB_DATA": str(data), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    env.pop(FAULT_ENV, None)
    if fault is not None:
        env[FAULT_ENV] = str(fault)
    command = [sys.executable, "-m", "thesislib", "experiments", "run", "secl-wrn-40-2-acdc-scratch"]
    command += ["--profile", "smoke", "--epochs", "2", "--nproc", "2", "--device", "cpu", "--out", str(out)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_ddp_run_killed_after_an_epoch_resumes_to_the_same_result(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    whole = _cli(tmp_path / "whole", data)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _cli(tmp_path / "killed", data, fault=1)
    assert killed.returncode != 0
    folder = tmp_path / "killed" / "secl-wrn-40-2-acdc-scratch"
    assert (folder / "checkpoint.pt").is_file() and not (folder / "result.json").exists()
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["epoch"] == 1
    resumed = _cli(tmp_path / "killed", data)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    results = [
        json.loads((tmp_path / run / "secl-wrn-40-2-acdc-scratch" / "result.json").read_text())
        for run in ("whole", "killed")
    ]
    assert results[0]["world_size"] == results[1]["world_size"] == 2
    assert results[0]["metrics"] == results[1]["metrics"]
    histories = [
        pd.read_csv(tmp_path / run / "secl-wrn-40-2-acdc-scratch" / "history.csv")
        for run in ("whole", "killed")
    ]
    pd.testing.assert_frame_equal(histories[0].drop(columns="seconds"), histories[1].drop(columns="seconds"))
