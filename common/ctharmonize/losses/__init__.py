"""Losses for the harmonization GANs; images in network space [-1, 1] unless a docstring says otherwise."""

from ctharmonize.losses.cycle_consistency import CycleConsistencyLoss
from ctharmonize.losses.downsampled_identity import DownsampledIdentityLoss
from ctharmonize.losses.gradient_penalty import gradient_penalty
from ctharmonize.losses.gram_matrix import GRAM_NORMALIZATIONS, gram_matrix
from ctharmonize.losses.gram_style import GramStyleLoss
from ctharmonize.losses.lsgan import LSGANLoss
from ctharmonize.losses.r1_penalty import r1_penalty
from ctharmonize.losses.tissue_statistic import TissueStatisticLoss
from ctharmonize.losses.wgan import WGANGPLoss

__all__ = [
    "GRAM_NORMALIZATIONS",
    "CycleConsistencyLoss",
    "DownsampledIdentityLoss",
    "GramStyleLoss",
    "LSGANLoss",
    "TissueStatisticLoss",
    "WGANGPLoss",
    "gradient_penalty",
    "gram_matrix",
    "r1_penalty",
]
