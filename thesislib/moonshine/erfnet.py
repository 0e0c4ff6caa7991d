"""ERFNet (Romera et al. 2017b) and ERFNet-G(N) for Cityscapes segmentation (§4.5.2, Table 4.5).

The encoder/decoder follows the authors' PyTorch code: 23 layers numbered as in the paper,

- 1 downsampler 3 → 16; 2 downsampler 16 → 64; 3–7 five ``non-bottleneck-1D`` blocks (64);
- 8 downsampler 64 → 128; 9–16 eight blocks (128) with dilations 2, 4, 8, 16, 2, 4, 8, 16;
- 17 upsampler 128 → 64; 18–19 two blocks (64); 20 upsampler 64 → 16; 21–22 two blocks (16);
- 23 a 2×2 transposed conv to the classes (20 = 19 Cityscapes classes + void, as in the authors' code).

The encoder's own 1×1 output conv, used only when the encoder is trained alone, exists only with
``encoder_head=True``: the thesis' parameter counts are those of the modules used by the full network
(2,064,256 and 488,768 → 2.06M and 0.49M; the Moonshine paper's 2,073,428 and 503,956 add that head's
2,580 parameters and the BN running statistics).

A ``non-bottleneck-1D`` block factorises each 3×3 conv of a residual block into 3×1 and 1×3 convs
(with bias), the second pair dilated. ERFNet-G(N) replaces each block by a post-activation G(N)
block (footnote 5): [depthwise 3×3 → BN → ReLU → Conv1×1] → BN → ReLU → [the same, dilated] → BN,
plus the input, → ReLU, "maintaining the dilations". Any other G(g) spec works too.

The authors' counter added no ReLU ops for ERFNet (its ReLUs were functional), so the model declares
``counts_activations = False`` for :mod:`thesislib.counting`; with transposed convs counted
as direct convs this reproduces Table 4.5 exactly at a 3×256×256 input (3.73G and 1.19G; any input of
65,536 pixels gives the same numbers, e.g. 3×128×512).

``forward`` returns ``(logits, [layer 7, layer 12, layer 16, layer 19, layer 22])``: the outputs used
for attention transfer (§4.5.2: 7, 12, 16 for the encoder; 19 and 22 added for the decoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.moonshine.blocks import BlockSpec, GroupedPointwise, parse_block
from thesislib.moonshine.wrn import _init

__all__ = ["AT_LAYERS", "Downsampler", "ERFNet", "GroupedBlock1D", "NonBottleneck1D", "Upsampler"]

#: The layers (1-based, as numbered in the ERFNet paper) whose outputs are returned for attention transfer.
AT_LAYERS = (7, 12, 16, 19, 22)


class Downsampler(nn.Module):
    """Concatenate a 3×3/2 conv (in → out − in, bias) with a 2×2 max-pool of the input; BN; ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class Upsampler(nn.Module):
    """A 3×3/2 transposed conv (bias) → BN → ReLU, doubling the resolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class NonBottleneck1D(nn.Module):
    """ERFNet's residual block: 3×1 → ReLU → 1×3 → BN → ReLU → 3×1 (dil.) → ReLU → 1×3 (dil.) → BN → dropout, + input → ReLU."""

    def __init__(self, channels: int, dilation: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        d = dilation
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(d, 0), dilation=(d, 1))
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, d), dilation=(1, d))
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1x3_1(F.relu(self.conv3x1_1(x)))))
        out = self.dropout(self.bn2(self.conv1x3_2(F.relu(self.conv3x1_2(out)))))
        return F.relu(out + x)


class GroupedBlock1D(nn.Module):
    """The ERFNet-G block: two G(g) conv units (post-activation), the second dilated, + input → ReLU."""

    def __init__(
        self, channels: int, dilation: int = 1, dropout: float = 0.0, spec: BlockSpec | None = None
    ) -> None:
        super().__init__()
        spec = spec if spec is not None else parse_block("G(N)")
        if spec.kind != "G" or spec.groups is None:
            raise ValueError(f"ERFNet blocks can be replaced by G(g) blocks only, not {spec}")
        groups = spec.groups.resolve(channels)
        self.conv1 = GroupedPointwise(channels, channels, 1, groups)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3)
        self.conv2 = GroupedPointwise(channels, channels, 1, groups, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.dropout(self.bn2(self.conv2(out)))
        return F.relu(out + x)


class ERFNet(nn.Module):
    """ERFNet with its residual blocks built by ``spec`` (``None``: the original non-bottleneck-1D)."""

    counts_activations = False  # the authors' counter added no ReLU ops for ERFNet (Table 4.5)

    def __init__(
        self,
        num_classes: int = 20,
        spec: BlockSpec | None = None,
        in_channels: int = 3,
        encoder_head: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        self.num_classes = num_classes

        def block(channels: int, dilation: int, dropout: float) -> nn.Module:
            if spec is None:
                return NonBottleneck1D(channels, dilation, dropout)
            return GroupedBlock1D(channels, dilation, dropout, spec)

        layers: list[nn.Module] = [Downsampler(in_channels, 16), Downsampler(16, 64)]
        layers += [block(64, 1, 0.03) for _ in range(5)]
        layers.append(Downsampler(64, 128))
        layers += [block(128, d, 0.3) for _ in range(2) for d in (2, 4, 8, 16)]
        layers += [Upsampler(128, 64), block(64, 1, 0.0), block(64, 1, 0.0)]
        layers += [Upsampler(64, 16), block(16, 1, 0.0), block(16, 1, 0.0)]
        self.layers = nn.ModuleList(layers)  # layers 1..22
        self.encoder_output = nn.Conv2d(128, num_classes, 1) if encoder_head else None
        self.output = nn.ConvTranspose2d(16, num_classes, 2, stride=2)  # layer 23
        _init(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder-only class scores at 1/8 resolution (the first training stage; needs ``encoder_head``)."""
        if self.encoder_output is None:
            raise RuntimeError("build ERFNet(..., encoder_head=True) to train or run the encoder alone")
        for layer in self.layers[:16]:
            x = layer(x)
        return self.encoder_output(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        taps = []
        for number, layer in enumerate(self.layers, start=1):
            x = layer(x)
            if number in AT_LAYERS:
                taps.append(x)
        return self.output(x), taps
