"""Normalization-layer factory shared by the GAN networks (pix2pix/CycleGAN conventions)."""

from __future__ import annotations

from torch import nn

__all__ = ["NORM_TYPES", "norm_layer", "conv_bias"]

NORM_TYPES = ("instance", "batch", "none")


def _check(norm: str) -> str:
    if norm not in NORM_TYPES:
        raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(NORM_TYPES)}")
    return norm


def norm_layer(norm: str, channels: int) -> nn.Module:
    """2-D normalization layer for ``channels`` feature maps.

    ``"instance"``: ``InstanceNorm2d(affine=False, track_running_stats=False)`` (CycleGAN default);
    ``"batch"``: ``BatchNorm2d`` with affine parameters and running statistics; ``"none"``: identity.
    """
    norm = _check(norm)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether a convolution followed by ``norm`` carries a bias (not before BatchNorm, whose shift replaces it)."""
    return _check(norm) != "batch"
