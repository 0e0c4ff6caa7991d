"""The project's CIFAR training step against a plain PyTorch loop on the same model (issue 15).

    .venv/bin/python benchmarks/bench_train_step.py [--model wrn-10-2] [--block S] [--resolution 16]
                                                    [--images 2560] [--batch 128] [--rounds 3]
                                                    [--workers 2] [--threads 2] [--compile]

Every variant trains the same network (``build_model(model, block)``, CIFAR-10 head) on the same
images (``cifar10-jpeg``, average-pooled to ``resolution``) for two epochs of ``images`` images with
SGD (lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4, as the cpu profile's recipe); the second
epoch is timed (training steps only, no evaluation). The variants, run in alternating rounds in one
process at the same thread count (the ratios are medians over rounds):

- ``plain``: the reference loop: a torchvision ``DataLoader`` with PIL transforms (pad-4 crop, flip,
  ``ToTensor``, ``Normalize``; ``workers`` processes), NCHW, ``torch.optim.SGD(foreach=False)``,
  ``optimizer.zero_grad()``;
- ``plain + tensor batches``: the same loop fed by :class:`thesislib.data.augment.CifarBatches`
  (crops and flips as tensor ops on whole batches) — what the data pipeline alone pays;
- ``project``: :func:`thesislib.training.train` as the notebooks call it (CifarBatches,
  :class:`thesislib.training.Trainer`, the distillation loss in ``scratch`` mode), NCHW;
- ``project channels_last``: the same with ``channels_last=True`` (notebook 06's setting);
- ``project + foreach SGD`` / ``+ fused SGD``: the Trainer with ``SGD(foreach=True)`` or
  ``SGD(fused=True)`` (CPU fused kernels), channels_last;
- with ``--compile``: ``torch.compile(model)`` in the project loop (compilation excluded: the first
  epoch compiles).

Evaluation under ``torch.inference_mode`` against ``torch.no_grad`` is timed on the test batches.
The script prints images/s per variant and each variant's ratio to ``plain``. On a machine shared
with other jobs absolute numbers drift; the ratios are measured side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from thesislib.data import load_cifar
from thesislib.data.augment import CifarBatches, cifar_normalisation, pil_loader
from thesislib.data.cifar import CifarData, downsample
from thesislib.models import build_model
from thesislib.moonshine.distillation import DistillationLoss, DistillationSettings
from thesislib.training import ModelSpec, Recipe, TrainConfig, Trainer, seed_everything, train

SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True}


def plain_epoch_seconds(model, batches, optimizer) -> float:
    """Two epochs of the plain loop; seconds of the second."""
    seconds = 0.0
    for _ in range(2):
        start = time.perf_counter()
        model.train()
        for x, y in batches:
            logits, _ = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="wrn-10-2")
    parser.add_argument("--block", default="S")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--source", default="cifar10-jpeg")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels = load_cifar(args.source, "train")
    images, labels = downsample(images[: args.images], args.resolution), labels[: args.images]
    test_images, test_labels = load_cifar(args.source, "test")
    test_images, test_labels = downsample(test_images[:1000], args.resolution), test_labels[:1000]
    mean, std = cifar_normalisation("cifar10")
    pad = max(1, args.resolution // 8)
    spec = ModelSpec(args.model, args.block)
    data = CifarData(images, labels, test_images[:100], test_labels[:100], name="cifar10")
    recipe = Recipe(epochs=2, batch_size=args.batch, schedule="constant", **SGD)

    def fresh():
        seed_everything(0)
        return build_model(args.model, block=args.block, num_classes=10)

    def tensor_batches(channels_last: bool) -> CifarBatches:
        return CifarBatches(
            images,
            labels,
            batch_size=args.batch,
            mean=mean,
            std=std,
            padding=pad,
            seed=0,
            channels_last=channels_last,
        )

    def plain() -> float:
        model = fresh()
        loader = pil_loader(images, labels, batch_size=args.batch, mean=mean, std=std, workers=args.workers)
        loader.dataset.transform.transforms[0].padding = pad  # the same crop padding as the tensor pipeline
        return plain_epoch_seconds(model, loader, torch.optim.SGD(model.parameters(), foreach=False, **SGD))

    def plain_tensor() -> float:
        model = fresh()
        optimizer = torch.optim.SGD(model.parameters(), foreach=False, **SGD)
        return plain_epoch_seconds(model, tensor_batches(False), optimizer)

    def project(channels_last: bool) -> Callable[[], float]:
        def run() -> float:
            result = train(spec, data, recipe, device="cpu", progress=False, channels_last=channels_last)
            return float(result.history["seconds"].iloc[-1])

        return run

    def trainer(compile_model: bool = False, **optimizer_flags) -> Callable[[], float]:
        def run() -> float:
            model = fresh().to(memory_format=torch.channels_last)
            if compile_model:
                model = torch.compile(model)
            optimizer = torch.optim.SGD(model.parameters(), **optimizer_flags, **SGD)
            config = TrainConfig(epochs=2, progress=False, device="cpu")
            loss = DistillationLoss(DistillationSettings("scratch"))
            history = Trainer(model, optimizer, tensor_batches(True), loss, config).fit()
            return float(history["seconds"].iloc[-1])

        return run

    variants: dict[str, Callable[[], float]] = {
        "plain": plain,
        "plain + tensor batches": plain_tensor,
        "project": project(False),
        "project channels_last": project(True),
        "project + foreach SGD": trainer(foreach=True),
        "project + fused SGD": trainer(fused=True),
    }
    if args.compile:
        variants["project + compile + foreach"] = trainer(True, foreach=True)
    print(
        f"{spec.label} at {args.resolution}x{args.resolution}, {args.images} images/epoch, batch {args.batch}, "
        f"{torch.get_num_threads()} torch threads, {args.workers} DataLoader workers, load {os.getloadavg()}",
        flush=True,
    )
    rates: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        seconds = {name: run() for name, run in variants.items()}
        for name, s in seconds.items():
            rates[name].append(args.images / s)
            ratios[name].append(seconds["plain"] / s)
        print(
            f"round {r + 1}: " + ", ".join(f"{n} {args.images / s:.0f}/s" for n, s in seconds.items()),
            flush=True,
        )
    print(f"\n{'variant':<28} {'images/s':>9} {'x plain (median, min-max over rounds)':>40}")
    for name in variants:
        print(
            f"{name:<28} {statistics.median(rates[name]):9.1f} {statistics.median(ratios[name]):10.2f} "
            f"({min(ratios[name]):.2f}-{max(ratios[name]):.2f})"
        )
    # evaluation: inference_mode against no_grad on the test images
    model = fresh().eval()
    test = CifarBatches(
        test_images, test_labels, batch_size=500, mean=mean, std=std, augment=False, shuffle=False
    )

    def evaluate(context) -> float:
        start = time.perf_counter()
        with context():
            for x, _ in test:
                model(x)
        return time.perf_counter() - start

    no_grad = statistics.median(evaluate(torch.no_grad) for _ in range(args.rounds))
    inference = statistics.median(evaluate(torch.inference_mode) for _ in range(args.rounds))
    print(
        f"evaluation of {len(test_labels)} images: no_grad {no_grad:.2f} s, inference_mode {inference:.2f} s "
        f"(inference_mode {no_grad / inference:.2f}x)"
    )


if __name__ == "__main__":
    main()
