"""Lung segmentation (0 background, 1 right lung, 2 left lung) and body-composition labels
(canonical tissue codes) for chest CT in HU."""

from ctharmonize.segmentation.body_composition import BODY_BACKENDS, body_composition
from ctharmonize.segmentation.lungs import LUNG_BACKENDS, segment_lungs

__all__ = ["BODY_BACKENDS", "LUNG_BACKENDS", "body_composition", "segment_lungs"]
