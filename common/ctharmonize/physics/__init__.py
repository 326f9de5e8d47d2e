"""Image-quality physics of CT volumes (paper 001): MTF at the skin–air edge, NPS, NPWE detectability.

Units: HU, mm, lp/cm (10 lp/cm = 1 cycle/mm). See docs/physics.md.
"""

from ctharmonize.physics.detectability import (
    OBSERVERS,
    Detectability,
    ObserverModel,
    detectability,
    disk_task,
    dprime,
    eye_filter,
    nps_function,
)
from ctharmonize.physics.edge_mtf import REJECTION_RULES, EdgeMTF, mtf_crossing, skin_air_mtf
from ctharmonize.physics.nps import NoisePower, detrend, measure_nps
from ctharmonize.physics.plots import image_quality_plot

__all__ = [
    "OBSERVERS",
    "REJECTION_RULES",
    "Detectability",
    "EdgeMTF",
    "NoisePower",
    "ObserverModel",
    "detectability",
    "detrend",
    "disk_task",
    "dprime",
    "eye_filter",
    "image_quality_plot",
    "measure_nps",
    "mtf_crossing",
    "nps_function",
    "skin_air_mtf",
]
