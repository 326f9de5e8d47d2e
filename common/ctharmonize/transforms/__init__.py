"""MONAI dictionary transforms for slice-wise CT harmonization; the training datasets compose them."""

from ctharmonize.transforms.fov_mask import FOVMaskd
from ctharmonize.transforms.lung_slices import LungSlicesd
from ctharmonize.transforms.rand_crop_2d import RandCrop2Dd
from ctharmonize.transforms.rand_tissue_crop_2d import RandTissueCrop2Dd
from ctharmonize.transforms.scale_hu import HU_MAX, HU_MIN, ScaleHUd, hu_to_unit, unit_to_hu
from ctharmonize.transforms.tissue_classes import (
    TISSUE_CODE_CLASSES,
    ChestCTClassesd,
    chest_ct_class_lookup,
    tissue_codes_to_classes,
)

__all__ = [
    "ChestCTClassesd",
    "FOVMaskd",
    "HU_MAX",
    "HU_MIN",
    "LungSlicesd",
    "RandCrop2Dd",
    "RandTissueCrop2Dd",
    "ScaleHUd",
    "TISSUE_CODE_CLASSES",
    "chest_ct_class_lookup",
    "hu_to_unit",
    "tissue_codes_to_classes",
    "unit_to_hu",
]
