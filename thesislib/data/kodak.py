"""The Kodak Lossless True Color Image Suite: 24 PNG photos, the standard image-compression benchmark.

Each image is 768x512 (landscape) or 512x768 (portrait: kodim04, 09, 10, 17, 18, 19).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from thesislib.data.registry import get_dataset
from thesislib.data.store import locate

if TYPE_CHECKING:
    import torch


def kodak_paths() -> list[Path]:
    """Verified paths of kodim01.png ... kodim24.png, in order."""
    paths = locate("kodak")
    return [paths[file.path] for file in get_dataset("kodak").files]


def load_kodak() -> list[torch.Tensor]:
    """The 24 Kodak images, in order, as uint8 tensors 3xHxW (RGB)."""
    import torch
    from PIL import Image

    images = []
    for path in kodak_paths():
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        images.append(torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous())
    return images
