"""Weight initialization of the StarGAN v2 networks."""

from __future__ import annotations

from torch import nn

__all__ = ["STARGAN_INITS", "stargan_init"]

STARGAN_INITS = ("kaiming", "pytorch")


def stargan_init(module: nn.Module, init: str = "kaiming") -> nn.Module:
    """Initialize every ``Conv2d`` and ``Linear`` of ``module`` in place; return ``module``.

    ``"kaiming"`` (StarGAN v2's choice): He normal, ``kaiming_normal_(fan_in, relu)``, std
    √2 / √fan_in, zero bias; AdaIN's style layers and the per-domain heads included.
    ``"pytorch"``: keep PyTorch's default (kaiming-uniform) init. InstanceNorm affines stay (1, 0).
    """
    if init not in STARGAN_INITS:
        raise ValueError(f"init must be one of {', '.join(STARGAN_INITS)}, got {init!r}")
    if init == "kaiming":
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return module
