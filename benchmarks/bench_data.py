"""Benchmark: a CIFAR split from the on-disk tensor cache vs decoding it from the JPEG zip.

Prints the seconds of each and their ratio. Needs the offline data (THESISLIB_DATA).
Run: ``.venv/bin/python benchmarks/bench_data.py [--split test|train]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from thesislib import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        os.environ["THESISLIB_CACHE"] = cache  # a cold cache: the first load decodes every JPEG
        start = time.perf_counter()
        images, _ = data.load_cifar("cifar10-jpeg", args.split)
        decode = time.perf_counter() - start
        cached = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            data.load_cifar("cifar10-jpeg", args.split)
            cached.append(time.perf_counter() - start)
    warm = statistics.median(cached)
    print(f"cifar10-jpeg {args.split}: {tuple(images.shape)} uint8")
    print(f"decode from zip : {decode:8.3f} s")
    print(f"load from cache : {warm:8.3f} s (median of {args.repeats})")
    print(f"ratio decode/cache: {decode / warm:.1f}x")


if __name__ == "__main__":
    main()
