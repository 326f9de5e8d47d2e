"""MONAI-style dictionary transforms for slice-wise CT harmonization."""

from ctharmonize.transforms.fov_mask import FOVMaskd
from ctharmonize.transforms.rand_crop_2d import RandCrop2Dd
from ctharmonize.transforms.sample_axial_slices import SampleAxialSlicesd
from ctharmonize.transforms.scale_hu import HU_MAX, HU_MIN, ScaleHUd, UnscaleHUd, hu_to_unit, unit_to_hu

__all__ = [
    "FOVMaskd", "HU_MAX", "HU_MIN", "RandCrop2Dd", "SampleAxialSlicesd", "ScaleHUd", "UnscaleHUd",
    "hu_to_unit", "unit_to_hu",
]
