"""The 8×8 blockwise 2-D DCT-II that JPEG applies to every patch (thesis §3.3.3, Eq. 3.15, Fig. 3.11).

The DCT here is orthonormal (``scipy.fft.dctn(norm="ortho")``; the matrix is :func:`thesislib.dct.dct_matrix`): for 8×8 blocks it is exactly
JPEG's forward DCT, F(u, v) = ¼ C(u) C(v) Σ f(x, y) cos(…) cos(…) with C(0) = 1/√2, so a
quantisation table Q divides these coefficients just as it divides libjpeg's (Eq. 3.16).
Images are padded to whole blocks by repeating their last row and column (as libjpeg does),
and colour goes through JFIF's YCbCr (luma first).
"""

from __future__ import annotations

import torch
from torch import Tensor

from thesislib.dct import dct_matrix

BLOCK = 8
"""JPEG's block size."""


def _check_blocks(blocks: Tensor) -> None:
    if blocks.ndim < 2 or blocks.shape[-2:] != (BLOCK, BLOCK):
        raise ValueError(f"blocks must have shape [..., {BLOCK}, {BLOCK}], got {tuple(blocks.shape)}")


def dct2(blocks: Tensor) -> Tensor:
    """The 2-D DCT of every 8×8 block, ``[..., 8, 8] -> [..., 8, 8]`` (rows, then columns)."""
    _check_blocks(blocks)
    matrix = dct_matrix(BLOCK, blocks.dtype if blocks.is_floating_point() else torch.float32, blocks.device)
    blocks = blocks.to(matrix.dtype)
    return matrix @ blocks @ matrix.T


def idct2(coefficients: Tensor) -> Tensor:
    """The inverse of :func:`dct2`: patches from their DCT coefficients (the basis of Fig. 3.11)."""
    _check_blocks(coefficients)
    matrix = dct_matrix(BLOCK, coefficients.dtype, coefficients.device)
    return matrix.T @ coefficients @ matrix


def basis_patterns() -> Tensor:
    """The 64 DCT basis patterns of Fig. 3.11, ``[8, 8, 8, 8]``: entry ``[u, v]`` is the patch of coefficient (u, v)."""
    eye = torch.eye(BLOCK * BLOCK, dtype=torch.float64).reshape(BLOCK * BLOCK, BLOCK, BLOCK)
    return idct2(eye).reshape(BLOCK, BLOCK, BLOCK, BLOCK)


def pad_to_blocks(image: Tensor) -> Tensor:
    """``image`` ``[..., H, W]`` padded at the bottom and right to multiples of 8 by edge replication."""
    if image.ndim < 2:
        raise ValueError(f"an image needs at least 2 dimensions [..., H, W], got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    if height < 1 or width < 1:
        raise ValueError(f"an image must be non-empty, got {height}x{width}")
    pad_h, pad_w = -height % BLOCK, -width % BLOCK
    if pad_h:
        image = torch.cat(
            [image, image[..., -1:, :].expand(*image.shape[:-2], pad_h, image.shape[-1])], dim=-2
        )
    if pad_w:
        image = torch.cat([image, image[..., :, -1:].expand(*image.shape[:-1], pad_w)], dim=-1)
    return image


def image_to_blocks(image: Tensor) -> Tensor:
    """``[..., H, W] -> [..., H'/8, W'/8, 8, 8]`` after padding to ``H' × W'`` (multiples of 8)."""
    image = pad_to_blocks(image)
    *lead, height, width = image.shape
    blocks = image.reshape(*lead, height // BLOCK, BLOCK, width // BLOCK, BLOCK)
    return blocks.transpose(-3, -2)


def blocks_to_image(blocks: Tensor, height: int | None = None, width: int | None = None) -> Tensor:
    """The inverse of :func:`image_to_blocks`, cropped to ``height × width`` when given."""
    if blocks.ndim < 4 or blocks.shape[-2:] != (BLOCK, BLOCK):
        raise ValueError(f"blocks must have shape [..., rows, cols, 8, 8], got {tuple(blocks.shape)}")
    *lead, rows, cols, _, _ = blocks.shape
    image = blocks.transpose(-3, -2).reshape(*lead, rows * BLOCK, cols * BLOCK)
    height = rows * BLOCK if height is None else height
    width = cols * BLOCK if width is None else width
    if not (0 < height <= rows * BLOCK and 0 < width <= cols * BLOCK):
        raise ValueError(f"cannot crop {rows * BLOCK}x{cols * BLOCK} blocks to {height}x{width}")
    return image[..., :height, :width]


def blockwise_dct(image: Tensor, level_shift: float = 128.0) -> Tensor:
    """JPEG's forward transform of an image ``[..., H, W]`` (0–255 scale): DCT of ``image − 128`` per block."""
    return dct2(image_to_blocks(image.to(torch.float64) - level_shift))


def blockwise_idct(coefficients: Tensor, height: int, width: int, level_shift: float = 128.0) -> Tensor:
    """The image ``[..., height, width]`` whose blocks have DCT ``coefficients`` (inverse of :func:`blockwise_dct`)."""
    return blocks_to_image(idct2(coefficients), height, width) + level_shift


# JFIF (ITU-T T.871) YCbCr, as Pillow/libjpeg convert colour before the DCT.
_RGB_TO_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=torch.float64
)
_CHROMA_OFFSET = torch.tensor([0.0, 128.0, 128.0], dtype=torch.float64)


def rgb_to_ycbcr(image: Tensor) -> Tensor:
    """JFIF YCbCr of an RGB image ``[..., 3, H, W]`` on the 0–255 scale; channel 0 is the luma Y."""
    if image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(f"an RGB image must have shape [..., 3, H, W], got {tuple(image.shape)}")
    matrix = _RGB_TO_YCBCR.to(image.device)
    pixels = image.to(torch.float64).movedim(-3, -1)
    return (pixels @ matrix.T + _CHROMA_OFFSET.to(image.device)).movedim(-1, -3)


def ycbcr_to_rgb(image: Tensor) -> Tensor:
    """The inverse of :func:`rgb_to_ycbcr` (not clipped or rounded)."""
    if image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(f"a YCbCr image must have shape [..., 3, H, W], got {tuple(image.shape)}")
    inverse = torch.linalg.inv(_RGB_TO_YCBCR).to(image.device)
    pixels = image.to(torch.float64).movedim(-3, -1) - _CHROMA_OFFSET.to(image.device)
    return (pixels @ inverse.T).movedim(-1, -3)


def luma(image: Tensor) -> Tensor:
    """The 8-bit luma (JFIF Y, rounded) of an RGB uint8 image ``[3, H, W]``, as uint8 ``[H, W]``.

    This is the greyscale image the experiment compresses: the thesis' original in Fig. 3.14 is
    stored in 3 145 728 bits = 768 × 512 × 8, one 8-bit channel.
    """
    return rgb_to_ycbcr(image)[..., 0, :, :].round().clamp(0, 255).to(torch.uint8)
