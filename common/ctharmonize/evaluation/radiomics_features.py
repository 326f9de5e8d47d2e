"""Radiomic features of a CT volume (HU) in a soft-tissue ROI with pyradiomics, as paper 002 extracts them.

Six feature classes, shape excluded, 93 features (paper 002: first order 18, GLCM 24, GLRLM 16, GLSZM 16,
NGTDM 5, GLDM 14). They are exactly pyradiomics' non-deprecated features of those classes; they are
selected by name (not by pyradiomics' "enable all" default) and their counts are checked, so another
pyradiomics version cannot change the set silently. Left out as deprecated by pyradiomics: first order
StandardDeviation; GLCM Dissimilarity, Homogeneity1, Homogeneity2, SumVariance; GLDM
DependencePercentage, GrayLevelNonUniformityNormalized.

Settings (:data:`SETTINGS`): ``force2D`` (texture matrices from in-plane neighbours of the axial slices,
pooled over the slices of the ROI), ``binWidth`` 25 HU on the raw HU (no normalization, no resampling,
no resegmentation), everything else pyradiomics' default. One extraction per volume: the ROI is 3-D and
the first-order statistics are over all its voxels.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from ctharmonize.errors import ConfigError, InputError
from ctharmonize.io.volume import Volume
from ctharmonize.simulation.labels import LABEL_CODES

__all__ = ["CLASS_TITLES", "FEATURE_CLASSES", "SETTINGS", "SOFT_TISSUE_HU", "SOFT_TISSUE_LABELS",
           "extract_features", "feature_names", "make_extractor", "soft_tissue_roi"]

#: pyradiomics class -> number of features (paper 002); in the paper's table order below
FEATURE_CLASSES: dict[str, int] = {"firstorder": 18, "glcm": 24, "glrlm": 16, "glszm": 16, "ngtdm": 5, "gldm": 14}
#: pyradiomics class -> column title, in paper 002 Table 2's order
CLASS_TITLES: dict[str, str] = {"firstorder": "First order", "glcm": "GLCM", "gldm": "GLDM", "glrlm": "GLRLM",
                                "glszm": "GLSZM", "ngtdm": "NGTDM"}
#: pyradiomics extractor settings (binWidth in HU)
SETTINGS: dict[str, Any] = {"force2D": True, "force2Ddimension": 0, "binWidth": 25, "label": 1,
                            "additionalInfo": False}
#: soft-tissue codes of the simulator's label maps (labels.json): muscle, subcutaneous and visceral fat, other
SOFT_TISSUE_LABELS: dict[str, int] = {name: LABEL_CODES[name] for name in
                                      ("skeletal_muscle", "subcutaneous_fat", "visceral_fat", "other_soft_tissue")}
#: HU range of the threshold ROI (inside the body) used when no label map is given
SOFT_TISSUE_HU: tuple[float, float] = (-100.0, 200.0)


def _radiomics() -> Any:
    try:
        import radiomics
        from radiomics import featureextractor
    except ImportError as err:
        raise ConfigError(None, "pyradiomics is not installed; install the radiomics extra: "
                                "pip install -c constraints.txt -e '.[radiomics]'") from err
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    return radiomics, featureextractor


def feature_names() -> dict[str, list[str]]:
    """pyradiomics class -> its non-deprecated feature names (sorted); counts checked against
    :data:`FEATURE_CLASSES` (a :class:`ConfigError` names the pyradiomics version otherwise)."""
    radiomics, _ = _radiomics()
    classes = radiomics.getFeatureClasses()
    names: dict[str, list[str]] = {}
    for cls, expected in FEATURE_CLASSES.items():
        names[cls] = sorted(n for n, deprecated in classes[cls].getFeatureNames().items() if not deprecated)
        if len(names[cls]) != expected:
            raise ConfigError(None, f"pyradiomics {radiomics.__version__} has {len(names[cls])} {cls} features, "
                                    f"paper 002 uses {expected}; install pyradiomics-bhklab 3.1.4")
    return names


def make_extractor() -> Any:
    """A ``RadiomicsFeatureExtractor`` with :data:`SETTINGS` and exactly the 93 :func:`feature_names`."""
    _, featureextractor = _radiomics()
    extractor = featureextractor.RadiomicsFeatureExtractor(**SETTINGS)
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(**feature_names())
    return extractor


def soft_tissue_roi(volume: Volume, labels: np.ndarray | None = None) -> np.ndarray:
    """Bool (Z, Y, X) soft-tissue ROI of ``volume`` (HU).

    With ``labels`` (a label map of the simulator's codes on the volume's grid): the voxels of
    :data:`SOFT_TISSUE_LABELS`. Without: voxels in :data:`SOFT_TISSUE_HU` inside the body mask
    (:func:`~ctharmonize.segmentation.body_mask.body_mask` of the smoothed HU). Either way inside the
    reconstruction FOV when the volume has one.
    """
    if labels is not None:
        roi = np.isin(np.asarray(labels), list(SOFT_TISSUE_LABELS.values()))
    else:
        from ctharmonize.segmentation.body_mask import body_mask, smooth_hu

        hu = np.asarray(volume.array, dtype=np.float32)
        body = body_mask(smooth_hu(hu, fov=volume.fov_mask), volume.spacing)
        roi = body & (hu >= SOFT_TISSUE_HU[0]) & (hu <= SOFT_TISSUE_HU[1])
    if volume.fov_mask is not None:
        roi &= volume.fov_mask
    return roi


def _sitk(array: np.ndarray, volume: Volume) -> Any:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in volume.spacing))
    image.SetOrigin(tuple(float(o) for o in volume.origin))
    image.SetDirection(tuple(float(d) for d in np.asarray(volume.direction).ravel()))
    return image


def extract_features(volume: Volume, roi: np.ndarray, extractor: Any = None,
                     path: str | os.PathLike | None = None) -> dict[str, float]:
    """The 93 features of ``volume`` (HU) in ``roi`` (bool (Z, Y, X)), keyed as pyradiomics names them
    (``original_<class>_<feature>``). The image goes to pyradiomics as SimpleITK with the volume's spacing
    (mm), origin and direction. A ROI pyradiomics refuses (empty, too small) is an :class:`InputError`
    naming ``path``."""
    roi = np.asarray(roi, dtype=bool)
    if roi.shape != volume.array.shape:
        raise InputError(path, f"ROI shape {roi.shape} differs from the image shape {volume.array.shape}")
    if not roi.any():
        raise InputError(path, "the soft-tissue ROI is empty (no soft-tissue label, no voxel in "
                               f"[{SOFT_TISSUE_HU[0]:g}, {SOFT_TISSUE_HU[1]:g}] HU in the body)")
    extractor = extractor if extractor is not None else make_extractor()
    image = _sitk(np.asarray(volume.array, dtype=np.float32), volume)
    mask = _sitk(roi.astype(np.uint8), volume)
    try:
        result = extractor.execute(image, mask, label=1)
    except (ValueError, RuntimeError, IndexError) as err:
        raise InputError(path, f"pyradiomics cannot extract features in the soft-tissue ROI "
                               f"({int(roi.sum())} voxels): {err}") from err
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}
