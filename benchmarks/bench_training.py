"""How much the shared Trainer costs over a bare PyTorch loop, and TensorBatches over a DataLoader.

    .venv/bin/python benchmarks/bench_training.py [--steps-per-epoch 200] [--epochs 3]

Trains the same small MLP on synthetic data four ways and prints microseconds per step. The Trainer's
extra work per step is the device move of the batch, the scheduler/scaler calls and one dict of logs;
its per-epoch work is one device sync and (here) an atomic checkpoint.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from thesislib.training import TensorBatches, TrainConfig, Trainer, seed_everything


def make(width: int = 256) -> tuple[nn.Module, torch.optim.Optimizer]:
    seed_everything(0)
    model = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))
    return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def bare_loop(batches: TensorBatches, epochs: int) -> float:
    model, optimizer = make()
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in batches:
            loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def trainer_loop(batches: object, epochs: int, checkpoint: Path | None) -> float:
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # a finished checkpoint would skip training
    model, optimizer = make()
    config = TrainConfig(epochs=epochs, progress=False, checkpoint=checkpoint, device="cpu")
    start = time.perf_counter()
    Trainer(model, optimizer, batches, loss_fn, config).fit()  # type: ignore[arg-type]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps-per-epoch", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    n = args.steps_per_epoch * args.batch_size
    x, y = torch.randn(n, 64), torch.randint(0, 10, (n,))
    tensor_batches = TensorBatches(x, y, batch_size=args.batch_size)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True)
    steps = args.epochs * args.steps_per_epoch
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "bare loop, TensorBatches": lambda: bare_loop(tensor_batches, args.epochs),
            "Trainer, TensorBatches": lambda: trainer_loop(tensor_batches, args.epochs, None),
            "Trainer, TensorBatches, checkpoints": lambda: trainer_loop(
                tensor_batches, args.epochs, Path(tmp) / "bench.pt"
            ),
            "Trainer, DataLoader(shuffle=True)": lambda: trainer_loop(loader, args.epochs, None),
        }
        print(f"{steps} steps of batch {args.batch_size}, {torch.get_num_threads()} threads")
        for name, run in runs.items():
            seconds = min(run() for _ in range(2))
            print(f"{name:<40} {1e6 * seconds / steps:8.0f} us/step")


if __name__ == "__main__":
    main()
