"""Moonshine (thesis chapter 4): distilling with cheap convolutions.

- :mod:`~thesislib.moonshine.blocks`: the cheap blocks of Table 4.1 (S, S-2x2, G(g), B(b), BG(b,g)),
  parsed from a compact spec;
- :mod:`.wrn`, :mod:`.resnet`, :mod:`.erfnet`: the WRNs of Tables 4.2/4.3, the ImageNet ResNets of
  Table 4.4 and ERFNet of Table 4.5, built by the one model registry
  (:func:`thesislib.models.build_model`, ``build_model(name, block, num_classes=...)``);
- :mod:`~thesislib.moonshine.distillation`: knowledge distillation (Eq. 4.1), attention transfer (Eq. 4.2);
- :mod:`~thesislib.moonshine.recipes`: the chapter's training protocols (trained by :func:`thesislib.training.train`).

Parameters and mult-adds are counted by the shared :func:`thesislib.counting.count`.
"""

from thesislib.moonshine.blocks import BlockSpec, parse_block

__all__ = ["BlockSpec", "parse_block"]
