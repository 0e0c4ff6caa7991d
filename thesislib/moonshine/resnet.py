"""ImageNet ResNet-18/34 (He et al. 2016a) with substitutable blocks, for Table 4.4.

The teacher is the torchvision ResNet-34, whose blocks are post-activation (conv → BN → ReLU), so
the cheap G blocks are built post-activation too (footnote 5): each conv of a basic block becomes a
conv unit of the block spec, followed by BN (+ ReLU between the two). ``width`` scales the last
three groups: Res18-0.5 is ResNet-18 with 64, 64, 128, 256 channels instead of 64, 128, 256, 512.

``forward`` returns ``(logits, [layer1, layer2, layer3, layer4])``: the four group outputs used for
attention transfer on ImageNet (§4.5.1, β = 750).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from thesislib.moonshine.wrn import BlockFactory, _init

__all__ = ["RESNET_LAYERS", "ResNet"]

#: Blocks per group of the basic-block ResNets.
RESNET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class ResNet(nn.Module):
    """An ImageNet ResNet: 7×7/2 conv, 3×3/2 max-pool, four groups of ``block``, average pool, fc."""

    def __init__(
        self,
        layers: Sequence[int],
        block: BlockFactory,
        num_classes: int = 1000,
        width: float = 1.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"a ResNet needs four positive group lengths, not {tuple(layers)}")
        widths = [64, 128 * width, 256 * width, 512 * width]
        if width <= 0 or any(w != int(w) for w in widths):
            raise ValueError(f"width must make 128·width a positive integer, not {width}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        groups = []
        for index, (n, out) in enumerate(zip(layers, (int(w) for w in widths), strict=True)):
            stride = 1 if index == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(channels, out, stride if j == 0 else 1))
                channels = out
            groups.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = groups
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        _init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        g1 = self.layer1(x)
        g2 = self.layer2(g1)
        g3 = self.layer3(g2)
        g4 = self.layer4(g3)
        return self.fc(torch.flatten(self.avgpool(g4), 1)), [g1, g2, g3, g4]
