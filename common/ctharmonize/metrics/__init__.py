"""Metrics: emphysema measures, Dice, effect sizes, bootstrap, significance tests, KL, image similarity, CCC,
Fréchet distance / FID and KID in a feature network's space, radiomic feature alignment (Welch)."""

from ctharmonize.metrics.bootstrap import bootstrap_rmse
from ctharmonize.metrics.checkpoint_ranking import DEFAULT_METRIC_WEIGHTS, rank_checkpoints
from ctharmonize.metrics.concordance import lins_ccc
from ctharmonize.metrics.dice import dice
from ctharmonize.metrics.effect_size import cohens_d, effect_size_category
from ctharmonize.metrics.feature_alignment import (
    ALIGNMENT_ALPHA,
    FeatureAlignment,
    feature_alignment,
    feature_alignment_both_directions,
    welch_pvalues,
)
from ctharmonize.metrics.feature_fid import (
    InceptionFeatures,
    feature_embeddings,
    fid,
    fid_both_directions,
    load_inception_features,
)
from ctharmonize.metrics.frechet_distance import (
    frechet_distance,
    frechet_distance_from_moments,
    gaussian_moments,
)
from ctharmonize.metrics.image_similarity import HU_WINDOW, ncc, nrmse, psnr, ssim
from ctharmonize.metrics.kernel_inception_distance import (
    KIDResult,
    kernel_inception_distance,
    kid,
    mmd2_unbiased,
    polynomial_kernel,
)
from ctharmonize.metrics.kl_divergence import kl_divergence
from ctharmonize.metrics.significance import TestResult, mann_whitney_u, paired_wilcoxon

__all__ = [
    "ALIGNMENT_ALPHA",
    "DEFAULT_METRIC_WEIGHTS",
    "FeatureAlignment",
    "HU_WINDOW",
    "InceptionFeatures",
    "KIDResult",
    "TestResult",
    "bootstrap_rmse",
    "cohens_d",
    "dice",
    "effect_size_category",
    "feature_alignment",
    "feature_alignment_both_directions",
    "feature_embeddings",
    "fid",
    "fid_both_directions",
    "frechet_distance",
    "frechet_distance_from_moments",
    "gaussian_moments",
    "kernel_inception_distance",
    "kid",
    "kl_divergence",
    "lins_ccc",
    "load_inception_features",
    "mann_whitney_u",
    "mmd2_unbiased",
    "ncc",
    "nrmse",
    "paired_wilcoxon",
    "polynomial_kernel",
    "psnr",
    "rank_checkpoints",
    "ssim",
    "welch_pvalues",
]
from ctharmonize.metrics.emphysema import (  # noqa: E402
    emphysema_measures,
    laa,
    lung_mass_g,
    lung_volume_ml,
    mean_lung_density,
    perc15,
)

__all__ += ["emphysema_measures", "laa", "lung_mass_g", "lung_volume_ml", "mean_lung_density", "perc15"]
