"""Corpus: unusual but valid geometry read correctly, checked against the affine computed by hand.

Thick (10 mm) slices with non-square pixels, reversed file order and a single slice, through the
command line (``convert`` to NIfTI); the NIfTI affine is compared with the one built from the DICOM
tags by hand, the voxels with the stored values times the rescale."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from corpus_harness import run_cli


def _affine_by_hand(spacing, origin) -> np.ndarray:
    """RAS affine of an identity-orientation (LPS) series: x, y flipped, columns scaled by the spacing."""
    sx, sy, sz = spacing
    return np.array([[-sx, 0, 0, -origin[0]], [0, -sy, 0, -origin[1]], [0, 0, sz, origin[2]], [0, 0, 0, 1.0]])


@pytest.mark.parametrize(("shape", "spacing"), [
    ((4, 10, 12), (0.6, 0.9, 10.0)),   # 10 mm slices, non-square pixels
    ((1, 10, 12), (0.7, 0.7, 5.0)),    # a single slice: z spacing from SliceThickness
    ((3, 8, 6), (1.25, 0.5, 0.625)),   # thin slices, strongly anisotropic pixels
])
def test_thick_thin_single_and_non_square(capsys, tmp_path, series_writer, hu_volume, shape, spacing):
    hu = hu_volume(shape, seed=3)
    origin = (-80.0, -95.5, 12.0)
    n = shape[0]
    series_writer(tmp_path / "s", hu, spacing=spacing, origin=origin, names=[f"IM{n - k:03d}" for k in range(n)])
    out = tmp_path / "v.nii.gz"
    rc, _, err = run_cli(capsys, "convert", "--input", tmp_path / "s", "--out", out)
    assert rc == 0, err
    img = nib.load(out)
    np.testing.assert_allclose(img.affine, _affine_by_hand(spacing, origin), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), hu)
