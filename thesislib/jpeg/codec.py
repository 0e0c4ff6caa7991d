"""Real JPEG files through Pillow/libjpeg, with their actual stored size (thesis §3.3.3, Fig. 3.14).

The thesis could only estimate the size a learnt table implies; here every table — standard
or learnt — is written into a baseline JPEG file by libjpeg (``qtables=``) and the size is the
file's length in bits, headers included (the same Huffman tables and headers for both, so the
comparison is fair).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from thesislib.jpeg.tables import table_for_jpeg

SUBSAMPLINGS = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def _to_pil(image: Tensor) -> Image.Image:
    if image.dtype != torch.uint8:
        raise ValueError(f"images to encode must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return Image.fromarray(image.cpu().numpy(), mode=None)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        array = image.cpu().numpy()
        return Image.fromarray(
            array[0] if image.shape[0] == 1 else np.ascontiguousarray(array.transpose(1, 2, 0))
        )
    raise ValueError(f"an image must be uint8 [H, W], [1, H, W] or [3, H, W], got {tuple(image.shape)}")


@dataclass(frozen=True)
class Encoded:
    """A JPEG file: its bytes, its stored size and its decoded pixels."""

    data: bytes
    pixels: Tensor
    """Decoded uint8 image, same layout as the input ([H, W] or [3, H, W])."""

    @property
    def bits(self) -> int:
        """Stored size in bits (the file's length × 8)."""
        return 8 * len(self.data)

    @property
    def bits_per_pixel(self) -> float:
        height, width = self.pixels.shape[-2:]
        return self.bits / (height * width)


def encode(
    image: Tensor,
    quality: int | None = None,
    tables: Sequence[Tensor] | None = None,
    subsampling: str = "4:2:0",
    optimize: bool = False,
) -> Encoded:
    """Encode ``image`` (uint8 [H, W] grey or [3, H, W] RGB) as a baseline JPEG and decode it again.

    Exactly one of ``quality`` (libjpeg's standard tables, 1–100) and ``tables`` (one 8×8 table
    for grey; luma then chroma for colour) is given. Real-valued tables are rounded and clipped
    to 1..255 with a :class:`~thesislib.jpeg.tables.TableClippedWarning`.
    """
    if (quality is None) == (tables is None):
        raise ValueError("give exactly one of quality (1..100) or tables (a list of 8x8 tables)")
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"unknown subsampling {subsampling!r}; valid: {', '.join(SUBSAMPLINGS)}")
    pil = _to_pil(image)
    options: dict = {"format": "JPEG", "optimize": optimize}
    if pil.mode == "RGB":
        options["subsampling"] = SUBSAMPLINGS[subsampling]
    if quality is not None:
        if isinstance(quality, bool) or int(quality) != quality or not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be an integer in 1..100, got {quality!r}")
        options["quality"] = int(quality)
    else:
        tables = list(tables)
        if not 1 <= len(tables) <= 4:
            raise ValueError(f"give 1 to 4 quantisation tables, got {len(tables)}")
        options["qtables"] = [table_for_jpeg(t).flatten().tolist() for t in tables]
    buffer = io.BytesIO()
    pil.save(buffer, **options)
    data = buffer.getvalue()
    return Encoded(data, decode(data, like=image))


def decode(data: bytes, like: Tensor | None = None) -> Tensor:
    """Decode JPEG bytes to uint8 [H, W] (grey) or [3, H, W] (colour); ``like`` keeps a [1, H, W] layout."""
    with Image.open(io.BytesIO(data)) as pil:
        array = np.asarray(pil)
    pixels = torch.from_numpy(array.copy())
    if pixels.ndim == 3:
        pixels = pixels.permute(2, 0, 1).contiguous()
    if like is not None and like.ndim == 3 and like.shape[0] == 1 and pixels.ndim == 2:
        pixels = pixels[None]
    return pixels


def read_tables(data: bytes) -> list[Tensor]:
    """The quantisation tables stored in a JPEG file (natural order, 8×8 int64), as libjpeg wrote them."""
    with Image.open(io.BytesIO(data)) as pil:
        stored = pil.quantization
    return [torch.tensor(list(stored[key]), dtype=torch.int64).reshape(8, 8) for key in sorted(stored)]
