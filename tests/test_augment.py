"""Tests of thesislib.data.augment: the on-device CIFAR pipeline of §4.4.1 (pad-4 crop + flip + normalise)
and Cutout (§5.3.1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from thesislib.data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CifarBatches,
    cifar_normalisation,
    crop_flip,
    cutout,
    cutout_mask,
    images_per_second,
    normalise,
    pil_loader,
    pipeline_speed,
)
from thesislib.training import TensorBatches


def random_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=generator, dtype=torch.uint8)


def unnormalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


def find_window(image: torch.Tensor, original: torch.Tensor, padding: int = 4) -> list[tuple[int, int, bool]]:
    """Every (dy, dx, flip) whose window of the zero-padded original equals ``image`` (slow, obvious)."""
    padded = torch.zeros(3, 32 + 2 * padding, 32 + 2 * padding, dtype=torch.uint8)
    padded[:, padding : padding + 32, padding : padding + 32] = original
    found = []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            window = padded[:, dy : dy + 32, dx : dx + 32]
            for flip in (False, True):
                if torch.equal(window.flip(-1) if flip else window, image):
                    found.append((dy, dx, flip))
    return found


def test_crop_flip_matches_torchvision_pil_transforms() -> None:
    images = random_images(6)
    dy = torch.tensor([0, 8, 4, 3, 8, 0])
    dx = torch.tensor([0, 8, 4, 7, 0, 8])
    flip = torch.tensor([False, True, False, True, True, False])
    ours = normalise(crop_flip(images, dy, dx, flip))
    for k in range(len(images)):
        pil = Image.fromarray(images[k].permute(1, 2, 0).numpy())
        pil = TF.crop(TF.pad(pil, 4), int(dy[k]), int(dx[k]), 32, 32)
        if flip[k]:
            pil = TF.hflip(pil)
        expected = TF.normalize(TF.to_tensor(pil), list(CIFAR10_MEAN), list(CIFAR10_STD))
        torch.testing.assert_close(ours[k], expected, atol=1e-5, rtol=1e-5)


def test_crop_flip_identity_and_validation() -> None:
    images = random_images(3)
    centre = torch.full((3,), 4)
    assert torch.equal(crop_flip(images, centre, centre, torch.zeros(3, dtype=torch.bool)), images)
    assert torch.equal(crop_flip(images, centre, centre, torch.ones(3, dtype=torch.bool)), images.flip(-1))
    with pytest.raises(ValueError, match=r"\[0, 8\]"):
        crop_flip(images, torch.full((3,), 9), centre, torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="one offset"):
        crop_flip(images, centre[:2], centre, torch.zeros(3, dtype=torch.bool))


def test_batches_keep_labels_aligned_and_crops_in_bounds() -> None:
    images = random_images(40, seed=1)
    labels = torch.arange(40)  # label = index, so every output can be traced to its source image
    batches = CifarBatches(images, labels, batch_size=16, seed=3)
    seen = []
    flips = 0
    for x, y in batches:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32)
        restored = unnormalise(x)
        for image, label in zip(restored, y, strict=True):
            windows = find_window(image, images[label])
            assert windows, f"output for label {int(label)} is not a pad-4 window of its source image"
            dy, dx, flip = windows[0]
            assert 0 <= dy <= 8 and 0 <= dx <= 8
            flips += flip
        seen.extend(y.tolist())
    assert sorted(seen) == list(range(40))  # a permutation: each image once per epoch
    assert 5 <= flips <= 35  # flips happen, about half the time


def test_batches_follow_the_epoch_seed() -> None:
    images, labels = random_images(50, seed=2), torch.arange(50)

    def epoch(seed: int, number: int) -> list[torch.Tensor]:
        batches = CifarBatches(images, labels, batch_size=20, seed=seed)
        batches.set_epoch(number)
        return [x for x, _ in batches]

    first, again = epoch(0, 3), epoch(0, 3)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], epoch(0, 4)[0])
    assert not torch.equal(first[0], epoch(1, 3)[0])
    # The shuffle is TensorBatches' own: same order of labels for the same (seed, epoch).
    plain = TensorBatches(images, labels, batch_size=20, seed=0)
    plain.set_epoch(3)
    ours = CifarBatches(images, labels, batch_size=20, seed=0)
    ours.set_epoch(3)
    for (_, a), (_, b) in zip(plain, ours, strict=True):
        assert torch.equal(a, b)


def test_no_augmentation_is_plain_normalisation_in_order() -> None:
    images, labels = random_images(10, seed=4), torch.arange(10)
    batches = CifarBatches(images, labels, batch_size=4, augment=False, shuffle=False)
    assert len(batches) == 3
    x = torch.cat([x for x, _ in batches])
    expected = (images.float() / 255 - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        CIFAR10_STD
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(x, expected, atol=1e-5, rtol=1e-5)
    cl = CifarBatches(images, labels, batch_size=4, augment=False, shuffle=False, channels_last=True)
    assert next(iter(cl))[0].is_contiguous(memory_format=torch.channels_last)


def test_validation_errors() -> None:
    images = random_images(4)
    with pytest.raises(ValueError, match="uint8"):
        CifarBatches(images.float(), torch.arange(4), batch_size=2)
    with pytest.raises(ValueError, match="positive"):
        CifarBatches(images, torch.arange(4), batch_size=2, std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="valid names"):
        cifar_normalisation("svhn")
    assert cifar_normalisation("cifar10-jpeg") == (CIFAR10_MEAN, CIFAR10_STD)


def test_pil_loader_and_speed_measurement() -> None:
    images, labels = random_images(64, seed=5), torch.arange(64) % 10
    loader = pil_loader(images, labels, batch_size=16, workers=0)
    x, y = next(iter(loader))
    assert x.shape == (16, 3, 32, 32) and y.shape == (16,)
    restored = unnormalise(x)
    for image, label in zip(restored[:4], y[:4], strict=True):
        candidates = [k for k in range(64) if labels[k] == label and find_window(image, images[k])]
        assert candidates
    assert images_per_second(CifarBatches(images, labels, batch_size=16), max_batches=2) > 0
    speed = pipeline_speed(images, labels, batch_size=16, workers=0)
    assert set(speed) == {"tensor_pipeline", "pil_dataloader", "speedup"}
    assert np.isclose(speed["speedup"], speed["tensor_pipeline"] / speed["pil_dataloader"])


# ----------------------------------------------------------------------------------------------------------
# Cutout (DeVries and Taylor, 2017; §5.3.1)


def papers_cutout_mask(y: int, x: int, length: int, h: int = 32, w: int = 32) -> np.ndarray:
    """The mask of DeVries and Taylor's code (uoguelph-mlrg/Cutout ``util/cutout.py``), True where cut."""
    y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
    x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
    mask = np.zeros((h, w), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def test_cutout_mask_is_the_papers_for_every_centre() -> None:
    centres = torch.tensor([(y, x) for y in range(32) for x in range(32)])
    mask = cutout_mask(centres[:, 0], centres[:, 1], 16, 32, 32)
    expected = np.stack([papers_cutout_mask(int(y), int(x), 16) for y, x in centres])
    assert np.array_equal(mask.numpy(), expected)
    # odd sides are exactly that wide when inside (the paper's code would give size − 1)
    odd = cutout_mask(torch.tensor([10]), torch.tensor([20]), 5, 32, 32)[0]
    assert odd.sum() == 25 and odd[8:13, 18:23].all()
    assert not cutout_mask(centres[:3, 0], centres[:3, 1], 0, 32, 32).any()


def test_cutout_zeroes_one_clipped_square_and_leaves_the_rest() -> None:
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) + 5.0  # no zeros anywhere
    cy, cx = torch.tensor([16, 0, 31, 8]), torch.tensor([16, 0, 20, 31])
    out = cutout(x, cy, cx, 16)
    cut = out == 0
    assert torch.equal(cut, cut[:, :1].expand_as(cut))  # the same square in every channel
    # fully inside: rows 8..23, columns 8..23; at the corner (0, 0): 8×8; at the bottom edge: 9 rows
    assert cut[0, 0, 8:24, 8:24].all() and cut[0, 0].sum() == 256
    assert cut[1, 0, :8, :8].all() and cut[1, 0].sum() == 64
    assert cut[2, 0, 23:, 12:28].all() and cut[2, 0].sum() == 9 * 16
    assert cut[3, 0, 0:16, 23:].all() and cut[3, 0].sum() == 16 * 9
    assert torch.equal(out[~cut], x[~cut])  # every other pixel untouched
    assert torch.equal(cutout(x, cy, cx, 0), x)
    assert torch.equal(cutout(x.to(torch.uint8), cy, cx, 16), x.to(torch.uint8).masked_fill(cut, 0))
    with pytest.raises(ValueError, match="one centre per image"):
        cutout(x, cy[:2], cx, 16)
    with pytest.raises(ValueError, match="non-negative"):
        cutout(x, cy, cx, -1)


def bounding_box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def epoch_batches(images: torch.Tensor, epoch: int = 2, **kwargs: object) -> torch.Tensor:
    batches = CifarBatches(images, torch.arange(len(images)), batch_size=16, **kwargs)  # type: ignore[arg-type]
    batches.set_epoch(epoch)
    return torch.cat([x for x, _ in batches])


def test_batches_cut_exactly_one_square_per_image_after_the_same_crops_and_flips() -> None:
    images = random_images(48, seed=6).clamp(1, 254)  # no pixel normalises to exactly 0
    plain = epoch_batches(images, seed=3)
    cut = epoch_batches(images, seed=3, cutout=16)
    inside = 0
    for a, b in zip(plain, cut, strict=True):
        zero = b == 0
        assert torch.equal(zero, zero[:1].expand_as(zero)) and zero[0].any()  # all channels
        assert torch.equal(b[~zero], a[~zero])  # same crop and flip, pixels outside untouched
        top, bottom, left, right = bounding_box(zero[0])
        assert zero[0].sum() == (bottom - top) * (right - left)  # one solid rectangle
        for low, high in ((top, bottom), (left, right)):
            assert 8 <= high - low <= 16  # the centre lies inside, so at least half the square does
            assert high - low == 16 or low == 0 or high == 32  # shorter only where clipped at a border
        inside += (bottom - top, right - left) == (16, 16)
    assert 0 < inside < len(images)  # both whole and clipped squares occur (centres are uniform)


def test_cutout_squares_follow_the_epoch_seed() -> None:
    images = random_images(40, seed=7).clamp(1, 254)
    first = epoch_batches(images, seed=1, cutout=16) == 0
    assert torch.equal(first, epoch_batches(images, seed=1, cutout=16) == 0)
    assert not torch.equal(first, epoch_batches(images, epoch=3, seed=1, cutout=16) == 0)
    assert not torch.equal(first, epoch_batches(images, seed=2, cutout=16) == 0)
    # the centres come from the (seed, epoch) generator, after the offsets and flips
    batches = CifarBatches(images, torch.arange(40), batch_size=16, seed=1, cutout=16)
    draws, plain = (
        batches.augmentation(2),
        CifarBatches(images, torch.arange(40), batch_size=16, seed=1).augmentation(2),
    )
    assert plain.cy is None and plain.cx is None
    assert all(torch.equal(a, b) for a, b in zip(draws[:3], plain[:3], strict=True))
    assert draws.cy is not None and int(draws.cy.min()) >= 0 and int(draws.cy.max()) < 32


def test_no_cutout_is_the_pipeline_as_before() -> None:
    """``cutout=0`` draws and returns exactly what the pipeline drew before Cutout existed."""
    images, labels = random_images(40, seed=8), torch.arange(40)
    seed, epoch = 4, 5
    ours = CifarBatches(images, labels, batch_size=16, seed=seed, cutout=0)
    ours.set_epoch(epoch)
    # the original recipe: order from TensorBatches, then offsets and flips from SeedSequence([seed, epoch, 1])
    state = int(np.random.SeedSequence([seed, epoch, 1]).generate_state(1, np.uint64)[0])
    generator = torch.Generator().manual_seed(state)
    offsets = torch.randint(0, 9, (2, 40), generator=generator)
    flips = torch.rand(40, generator=generator) < 0.5
    plain = TensorBatches(images, labels, batch_size=16, seed=seed)
    plain.set_epoch(epoch)
    start = 0
    for (x, y), (raw, raw_y) in zip(ours, plain, strict=True):
        stop = start + len(raw)
        part = slice(start, stop)
        expected = normalise(crop_flip(raw, offsets[0][part], offsets[1][part], flips[part]))
        assert torch.equal(y, raw_y) and torch.equal(x, expected)
        start = stop


def test_cutout_validation() -> None:
    images = random_images(4)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="non-negative integer"):
            CifarBatches(images, torch.arange(4), batch_size=2, cutout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="augment=True"):
        CifarBatches(images, torch.arange(4), batch_size=2, augment=False, cutout=16)
