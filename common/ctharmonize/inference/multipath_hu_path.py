"""One source→target path of a multipath generator as an HU-in/HU-out module (the bundle's export)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ctharmonize.inference.generator_weights import extract_generator_state
from ctharmonize.inference.hu_wrapper import HUWrapper
from ctharmonize.transforms import HU_MAX, HU_MIN

__all__ = ["MultipathHUPath"]


class MultipathHUPath(HUWrapper):
    """``HUWrapper(generator.path(source, target))``: HU (B, 1, H, W) -> HU (B, 1, H, W); H, W multiples of 4.

    Shares the generator's weights. ``load_state_dict`` also accepts a **full generator** state
    dict (``encoders.<d>.*``, ``latent.*``, ``decoders.<d>.*``, optionally nested under a key such
    as ``"G"`` or prefixed ``module.``): only the ``source`` encoder, the latent and the ``target``
    decoder are taken. That is what ``python -m monai.bundle ckpt_export`` needs, since it loads the
    bundle's generator checkpoint straight into the exported module. TorchScript-able.
    """

    def __init__(self, generator: nn.Module, source: str, target: str,
                 hu_min: float = HU_MIN, hu_max: float = HU_MAX):
        super().__init__(generator.path(source, target), hu_min, hu_max)
        self.source = source
        self.target = target
        self.register_load_state_dict_pre_hook(_from_generator_state)

    def extra_repr(self) -> str:
        return f"{self.source} -> {self.target}, HU window [{self.hu_min:g}, {self.hu_max:g}]"


def _from_generator_state(self: MultipathHUPath, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """load_state_dict pre-hook: rewrite a generator state dict (in place) into ``self``'s key layout."""
    if any(k.startswith(prefix + "network.") for k in state_dict):
        return
    own = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
    gen = extract_generator_state({k[len(prefix):]: v for k, v in own.items()})
    mapped: dict[str, torch.Tensor] = {}
    for part, name in (("encoders." + self.source + ".", "encoder."), ("latent.", "latent."),
                       ("decoders." + self.target + ".", "decoder.")):
        mapped.update({f"{prefix}network.{name}{k[len(part):]}": v for k, v in gen.items() if k.startswith(part)})
    for k in own:
        del state_dict[k]
    state_dict.update(mapped)
