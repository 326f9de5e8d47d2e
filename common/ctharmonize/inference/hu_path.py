"""One source → target path of any translator as an HU-in / HU-out module: what a bundle exports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ctharmonize.inference.hu_wrapper import HUWrapper
from ctharmonize.io.network_weights import network_state
from ctharmonize.transforms import HU_MAX, HU_MIN

__all__ = ["HUPath"]


class HUPath(HUWrapper):
    """``HUWrapper(translator.path(source, target))``: HU (B, 1, H, W) → HU (B, 1, H, W).

    H and W must be multiples of ``spatial_multiple`` (the translator's). Shares the translator's
    weights. ``load_state_dict`` also accepts the **translator's** weights (a ``model.pt``, or a
    training checkpoint assembled with ``checkpoint_networks``, see
    :func:`ctharmonize.io.network_weights.network_state`): they are loaded into the translator and
    the path follows. That is what ``python -m monai.bundle ckpt_export`` needs, since it loads the
    bundle's checkpoint straight into the exported module. TorchScript-able.
    """

    def __init__(self, translator: nn.Module, source: str, target: str, hu_min: float = HU_MIN,
                 hu_max: float = HU_MAX, checkpoint_networks: Mapping[str, str] | None = None):
        super().__init__(translator.path(source, target), hu_min, hu_max)
        self.source = source
        self.target = target
        self.spatial_multiple = int(translator.spatial_multiple)
        # kept outside the module tree: the state dict holds only the path's weights
        self.__dict__["_translator"] = translator
        self.__dict__["_checkpoint_networks"] = dict(checkpoint_networks or {})
        self.register_load_state_dict_pre_hook(_from_translator_state)

    def extra_repr(self) -> str:
        return f"{self.source} -> {self.target}, HU window [{self.hu_min:g}, {self.hu_max:g}]"


def _from_translator_state(self: HUPath, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """load_state_dict pre-hook: a translator state dict (in place) becomes ``self``'s key layout."""
    own = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
    if any(k.startswith(prefix + "network.") for k in own):
        return
    translator = self.__dict__["_translator"]
    translator.load_state_dict(network_state({k[len(prefix):]: v for k, v in own.items()},
                                             self.__dict__["_checkpoint_networks"]))
    for k in own:
        del state_dict[k]
    state_dict.update({f"{prefix}{k}": v for k, v in self.state_dict().items()})
