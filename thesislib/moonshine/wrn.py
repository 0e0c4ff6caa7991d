"""Wide Residual Networks WRN-d-k for CIFAR (Zagoruyko & Komodakis 2016; Table 4.2) with any block.

====== ================ =====================================
group  output size      structure
====== ================ =====================================
conv1  16 × 32 × 32     Conv3×3 (3 → 16)
conv2  16k × 32 × 32    n × Block(N = 16k)
conv3  32k × 16 × 16    n × Block(N = 32k), first stride 2
conv4  64k × 8 × 8      n × Block(N = 64k), first stride 2
pool   64k × 1 × 1      BN → ReLU → global average pool
fc     classes          fully connected
====== ================ =====================================

with ``n = (d − 4)/6`` blocks per group. ``forward`` returns ``(logits, [conv2, conv3, conv4])``:
the group outputs are the attention-transfer points A₁, A₂, A₃ of Eq. 4.2 (§4.4.1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["BlockFactory", "WideResNet"]

#: ``(in_channels, out_channels, stride) -> residual block``.
BlockFactory = Callable[[int, int, int], nn.Module]


class WideResNet(nn.Module):
    """WRN-``depth``-``width`` (Table 4.2) whose blocks come from ``block(in, out, stride)``."""

    def __init__(
        self, depth: int, width: float, block: BlockFactory, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), not {depth}")
        widths = [16 * width, 32 * width, 64 * width]
        if width <= 0 or any(w != int(w) for w in widths):
            raise ValueError(f"WRN width k must make 16k a positive integer, not {width}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        n = (depth - 4) // 6
        self.depth, self.width, self.num_classes = depth, width, num_classes
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        channels = 16
        groups = []
        for index, out in enumerate(int(w) for w in widths):
            stride = 1 if index == 0 else 2
            layers = []
            for j in range(n):
                layers.append(block(channels, out, stride if j == 0 else 1))
                channels = out
            groups.append(nn.Sequential(*layers))
        self.group1, self.group2, self.group3 = groups
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(channels, num_classes)
        _init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.conv1(x)
        g1 = self.group1(x)
        g2 = self.group2(g1)
        g3 = self.group3(g2)
        # The global average pool (8×8 at a 32×32 input) is functional, as in the authors' code, so it
        # adds no ops (counting it would make G(2) 198.2M, not the 198.1M of Table 4.3).
        x = self.relu(self.bn(g3)).mean(dim=(2, 3))
        return self.fc(x), [g1, g2, g3]


def _init(model: nn.Module) -> None:
    """He-normal convs (fan-out), unit BN scale, zero biases (as in the WRN and Moonshine code).

    Models built on the meta device (for counting) hold no values, so there is nothing to initialise.
    """
    for module in model.modules():
        if any(p.is_meta for p in module.parameters(recurse=False)):
            continue
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
