"""Tests of thesislib.data.augment: the on-device CIFAR pipeline of §4.4.1 (pad-4 crop + flip + normalise)."""

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
