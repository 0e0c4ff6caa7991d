"""Moonshine (thesis chapter 4): distilling with cheap convolutions.

- :mod:`~thesislib.moonshine.blocks`: the cheap blocks of Table 4.1 (S, S-2x2, G(g), B(b), BG(b,g)),
  parsed from a compact spec;
- :mod:`~thesislib.moonshine.models`: one registry, ``build_model(name, block, num_classes)``, for
  the WRNs of Tables 4.2/4.3, the ImageNet ResNets of Table 4.4 and ERFNet of Table 4.5
  (implemented in :mod:`.wrn`, :mod:`.resnet`, :mod:`.erfnet`);
- :mod:`~thesislib.moonshine.distillation`: knowledge distillation (Eq. 4.1), attention transfer (Eq. 4.2);
- :mod:`~thesislib.moonshine.recipes`: the training recipes.

Parameters and mult-adds are counted by the shared :func:`thesislib.counting.count`.
"""

from thesislib.moonshine.blocks import BlockSpec, parse_block
from thesislib.moonshine.models import build_model, default_input_shape, model_names

__all__ = ["BlockSpec", "build_model", "default_input_shape", "model_names", "parse_block"]
