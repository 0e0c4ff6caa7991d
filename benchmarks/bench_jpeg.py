"""Cost of learning a JPEG table (§3.3.3): seconds per Adam step, perceptual error vs MLP decoder.

    .venv/bin/python benchmarks/bench_jpeg.py [--image kodim03] [--crops 192 256 0] [--threads 1 2] [--steps 10]

The perceptual path (a) runs MS-SSIM forward and backward on a crop every step; the MLP path (b)
decodes a batch of blocks. On shared cores, small-kernel convolutions (MS-SSIM's 11×11 Gaussian)
can be several times faster on one torch thread than on two, which is why the notebook exposes
``threads``. Prints one JSON line per setting.
"""

from __future__ import annotations

import argparse
import json

import torch

from thesislib.data import kodak_paths, load_kodak
from thesislib.jpeg import luma
from thesislib.jpeg.experiment import JPEGSettings, learn_mlp, learn_perceptual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="kodim03")
    parser.add_argument("--crops", type=int, nargs="+", default=[192, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--budget", type=float, default=1.0)
    args = parser.parse_args()
    names = [path.stem for path in kodak_paths()]
    if args.image not in names:
        raise SystemExit(f"unknown image {args.image!r}; valid: {', '.join(names)}")
    image = luma(load_kodak()[names.index(args.image)])
    for threads in args.threads:
        torch.set_num_threads(threads)
        for crop in args.crops:
            settings = JPEGSettings(steps=args.steps, crop=crop, device="cpu")
            learnt = learn_perceptual(image, args.budget, settings, "ms_ssim", progress=False)
            print(
                json.dumps(
                    {
                        "method": "perceptual",
                        "threads": threads,
                        "crop": crop,
                        "seconds_per_step": learnt.seconds / args.steps,
                    }
                )
            )
        learnt = learn_mlp(image, args.budget, JPEGSettings(steps=args.steps, device="cpu"), progress=False)
        print(
            json.dumps(
                {
                    "method": "mlp",
                    "threads": threads,
                    "batch_blocks": 2048,
                    "seconds_per_step": learnt.seconds / args.steps,
                }
            )
        )


if __name__ == "__main__":
    main()
