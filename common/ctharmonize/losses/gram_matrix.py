"""Gram matrix of feature maps (Gatys et al. 2016), the texture statistic of the Gram/"domain" losses."""

import torch

__all__ = ["GRAM_NORMALIZATIONS", "gram_matrix"]

GRAM_NORMALIZATIONS = ("size", "frobenius", "none")


def gram_matrix(features: torch.Tensor, normalize: str = "size") -> torch.Tensor:
    """Features (B, C, H, W) → per-sample Gram matrices (B, C, C), computed in float32 or wider.

    ``G_b = F_b F_bᵀ`` with ``F_b`` the (C, H·W) feature matrix of sample b, divided by
    ``"size"``: C·H·W (Johnson et al.; CVS-CT, paper 002), ``"frobenius"``: ‖G_b‖_F (paper 001's
    normalised Gram), or ``"none"``.
    """
    if normalize not in ["size", "frobenius", "none"]:
        raise ValueError("unknown Gram normalization " + normalize + "; expected size, frobenius or none")
    if features.dim() != 4:
        raise ValueError("expected features of shape (B, C, H, W)")
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w).to(torch.promote_types(features.dtype, torch.float32))
    gram = torch.bmm(flat, flat.transpose(1, 2))
    if normalize == "size":
        gram = gram / float(c * h * w)
    elif normalize == "frobenius":
        gram = gram / torch.linalg.vector_norm(gram.flatten(1), 2.0, dim=1).clamp(min=1e-12).view(b, 1, 1)
    return gram
