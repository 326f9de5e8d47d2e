"""Conv → norm → activation layer lists, spliced into flat ``nn.Sequential`` networks.

They return *lists* of layers (not a wrapping module) so the networks keep the flat layer
indices of the pix2pix/CycleGAN reference implementation, which makes its checkpoints map onto
ours by a key prefix only.
"""

from __future__ import annotations

from torch import nn

from ctharmonize.networks.blocks.norm import conv_bias, norm_layer

__all__ = ["ACTIVATIONS", "activation", "conv_norm_act", "deconv_norm_act"]

ACTIVATIONS = ("relu", "leakyrelu", "tanh", "none")


def activation(act: str) -> nn.Module:
    """``"relu"``, ``"leakyrelu"`` (slope 0.2, as in PatchGAN), ``"tanh"`` or ``"none"`` (identity)."""
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "leakyrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if act == "tanh":
        return nn.Tanh()
    if act == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {act!r}; expected one of {', '.join(ACTIVATIONS)}")


def conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    norm: str = "instance",
    act: str = "relu",
    reflect_pad: int = 0,
    bias: bool | None = None,
) -> list[nn.Module]:
    """``[ReflectionPad2d(reflect_pad)]? + Conv2d + [norm]? + [act]?``.

    ``padding`` is the conv's own zero padding; ``reflect_pad > 0`` prepends a reflection-pad layer
    (then use ``padding=0``). ``bias=None`` picks the bias from ``norm`` (no bias before BatchNorm).
    Layers for ``norm="none"`` / ``act="none"`` are omitted, not replaced by identities.
    """
    layers: list[nn.Module] = []
    if reflect_pad > 0:
        layers.append(nn.ReflectionPad2d(reflect_pad))
    use_bias = conv_bias(norm) if bias is None else bias
    layers.append(nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=use_bias))
    if norm != "none":
        layers.append(norm_layer(norm, out_channels))
    if act != "none":
        layers.append(activation(act))
    return layers


def deconv_norm_act(
    in_channels: int, out_channels: int, norm: str = "instance", act: str = "relu"
) -> list[nn.Module]:
    """×2 upsampling ``ConvTranspose2d(3, stride 2, padding 1, output_padding 1) + norm + act`` (CycleGAN decoder)."""
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(
            in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=conv_bias(norm)
        )
    ]
    if norm != "none":
        layers.append(norm_layer(norm, out_channels))
    if act != "none":
        layers.append(activation(act))
    return layers
