"""How fast is the on-device CIFAR pipeline, and how fast do the Moonshine networks train on this machine?

    .venv/bin/python benchmarks/bench_cifar_pipeline.py [--images 10000] [--workers 2] [--steps 5]

1. Images/s of :class:`thesislib.data.augment.CifarBatches` (pad-4 crop + flip + normalise with tensor ops
   on the device) against a torchvision ``DataLoader`` with PIL transforms (the thesis code's pipeline:
   ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``) over the same
   images, and their ratio.
2. Training-step images/s (forward, backward, SGD step, batch 128) of WRN-40-2 with S and G(N/4) blocks
   (§4.4.1), fed by the tensor pipeline.

Numbers depend on the machine and on what else runs on it; the script prints the device, the thread count
and the load average. On a machine shared with other jobs, ``--threads 1`` avoids the large slow-down of
PyTorch's multi-threaded kernels competing for busy cores.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from thesislib.data import load_cifar
from thesislib.data.augment import CifarBatches, pipeline_speed
from thesislib.training import seed_everything, select_device


def train_step_rate(name: str, block: str, batches: CifarBatches, steps: int, device: torch.device) -> float:
    """Images/s of full training steps (after one warm-up step) of ``name`` with ``block``."""
    from thesislib.models import build_model

    seed_everything(0)
    model = build_model(name, block=block, num_classes=10).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    iterator = iter(batches)
    count, start = 0, 0.0
    for step in range(steps + 1):
        x, y = next(iterator)
        if step == 1:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 1:
            count += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="cifar10-jpeg", help="cifar10-jpeg (offline) or cifar10")
    parser.add_argument("--images", type=int, default=10000, help="images of the training set to use")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per network")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: torch's default); 1 is best on a busy machine",
    )
    parser.add_argument("--skip-models", action="store_true", help="only time the data pipelines")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    images, labels = load_cifar(args.source, "train")
    images, labels = images[: args.images], labels[: args.images]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"device: {device}; torch threads: {torch.get_num_threads()}; load average {load}; {len(images)} images"
    )

    speed = pipeline_speed(images, labels, batch_size=128, workers=args.workers, device=device)
    print(f"tensor pipeline (CifarBatches):             {speed['tensor_pipeline']:>12,.0f} images/s")
    print(
        f"torchvision DataLoader + PIL ({args.workers} workers): {speed['pil_dataloader']:>12,.0f} images/s"
    )
    print(f"speed-up:                                   {speed['speedup']:>12,.1f}x")

    if args.skip_models:
        return
    batches = CifarBatches(images, labels, batch_size=128, seed=0, device=device)
    for block in ("S", "G(N/4)"):
        rate = train_step_rate("wrn-40-2", block, batches, args.steps, device)
        print(f"train step WRN-40-2 {block:<7} batch 128:        {rate:>12,.1f} images/s")


if __name__ == "__main__":
    main()
