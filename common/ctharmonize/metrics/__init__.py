"""Metrics: emphysema measures, Dice, effect sizes, bootstrap, significance tests, KL, image similarity, CCC."""

from ctharmonize.metrics.bootstrap import bootstrap_rmse
from ctharmonize.metrics.checkpoint_ranking import DEFAULT_METRIC_WEIGHTS, rank_checkpoints
from ctharmonize.metrics.concordance import lins_ccc
from ctharmonize.metrics.dice import dice
from ctharmonize.metrics.effect_size import cohens_d, effect_size_category
from ctharmonize.metrics.image_similarity import HU_WINDOW, ncc, nrmse, psnr, ssim
from ctharmonize.metrics.kl_divergence import kl_divergence
from ctharmonize.metrics.significance import TestResult, mann_whitney_u, paired_wilcoxon

__all__ = [
    "DEFAULT_METRIC_WEIGHTS",
    "HU_WINDOW",
    "TestResult",
    "bootstrap_rmse",
    "cohens_d",
    "dice",
    "effect_size_category",
    "kl_divergence",
    "lins_ccc",
    "mann_whitney_u",
    "ncc",
    "nrmse",
    "paired_wilcoxon",
    "psnr",
    "rank_checkpoints",
    "ssim",
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
