"""Losses for the harmonization GANs; images in network space [-1, 1] unless a docstring says otherwise."""

from ctharmonize.losses.conditional_wgan_gp import ConditionalWGANGP
from ctharmonize.losses.cycle_consistency import CycleConsistencyLoss
from ctharmonize.losses.downsampled_identity import DownsampledIdentityLoss
from ctharmonize.losses.gradient_penalty import gradient_penalty
from ctharmonize.losses.gram_matrix import GRAM_NORMALIZATIONS, gram_matrix
from ctharmonize.losses.gram_style import GramStyleLoss
from ctharmonize.losses.lsgan import LSGANLoss
from ctharmonize.losses.masked_gram_texture import VGG19_POOL_LAYERS, MaskedGramTextureLoss
from ctharmonize.losses.mtf_harmonizer_loss import MTF_HARMONIZER_LOSS_WEIGHTS, MTFHarmonizerLoss
from ctharmonize.losses.multiscale_texture import TEXTURE_AGGREGATIONS, MultiScaleTextureLoss
from ctharmonize.losses.r1_penalty import r1_penalty
from ctharmonize.losses.soft_glcm import GLCM_ANGLES, GLCM_DISTANCES, SoftGLCM, glcm_contrast, glcm_offsets
from ctharmonize.losses.tissue_statistic import TissueStatisticLoss
from ctharmonize.losses.wgan import WGANGPLoss

__all__ = [
    "GLCM_ANGLES",
    "GLCM_DISTANCES",
    "GRAM_NORMALIZATIONS",
    "MTF_HARMONIZER_LOSS_WEIGHTS",
    "TEXTURE_AGGREGATIONS",
    "VGG19_POOL_LAYERS",
    "ConditionalWGANGP",
    "CycleConsistencyLoss",
    "DownsampledIdentityLoss",
    "GramStyleLoss",
    "LSGANLoss",
    "MTFHarmonizerLoss",
    "MaskedGramTextureLoss",
    "MultiScaleTextureLoss",
    "SoftGLCM",
    "TissueStatisticLoss",
    "WGANGPLoss",
    "glcm_contrast",
    "glcm_offsets",
    "gradient_penalty",
    "gram_matrix",
    "r1_penalty",
]
