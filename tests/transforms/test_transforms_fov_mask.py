import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from ctharmonize.errors import DimensionError
from ctharmonize.transforms import FOVMaskd


def _disk(ny, nx, radius):
    """Independent reference: loop over pixels, inside when distance to the centre <= radius."""
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    out = np.zeros((ny, nx), bool)
    for y in range(ny):
        for x in range(nx):
            out[y, x] = (y - cy) ** 2 + (x - cx) ** 2 <= radius**2
    return out


def test_inscribed_circle_when_no_mask():
    image = np.full((2, 7, 7), 40.0, dtype=np.float32)
    out = FOVMaskd("image")({"image": image})["image"]
    # 7x7, centre (3, 3), radius 3.5: (0, 3) at 3.0 inside, (0, 2) at 3.16 inside, (0, 1) at 3.6 outside
    assert out[0, 0, 3] == 40 and out[0, 0, 2] == 40 and out[0, 0, 1] == -1024 and out[1, 0, 0] == -1024
    expected = np.where(_disk(7, 7, 3.5), 40.0, -1024.0)
    np.testing.assert_array_equal(out[0], expected)
    np.testing.assert_array_equal(out[1], expected)
    assert out.dtype == np.float32
    assert (image == 40).all()  # input untouched


def test_radius_fraction_and_rectangular_slice():
    image = np.zeros((1, 8, 12), dtype=np.float32)
    out = FOVMaskd("image", radius_fraction=0.5, fill_value=-1.0)({"image": image})["image"]
    np.testing.assert_array_equal(out[0] == 0, _disk(8, 12, 0.5 * 8 / 2))


def test_provided_mask_wins_and_broadcasts_to_channel_first():
    image = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    meta_image = MetaTensor(image.clone(), meta={"filename_or_obj": "x.nii.gz"})
    mask = np.zeros((2, 4, 4), dtype=np.uint8)
    mask[:, 1:3, :] = 1
    out = FOVMaskd("image", fill_value=-1.0)({"image": meta_image, "fov_mask": mask})["image"]
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "x.nii.gz"
    expected = torch.where(torch.from_numpy(mask.astype(bool))[None], image, torch.tensor(-1.0))
    torch.testing.assert_close(out.as_tensor(), expected)


def test_store_mask_and_several_keys():
    data = {"a": np.ones((3, 5, 5), np.float32), "b": np.ones((3, 5, 5), np.float32) * 2}
    out = FOVMaskd(["a", "b"], store_mask=True)(data)
    assert "fov_mask" not in data
    np.testing.assert_array_equal(out["fov_mask"], np.broadcast_to(_disk(5, 5, 2.5), (3, 5, 5)))
    np.testing.assert_array_equal(out["a"] == 1, out["fov_mask"])
    np.testing.assert_array_equal(out["b"] == 2, out["fov_mask"])


def test_mask_shape_mismatch_is_one_line_error():
    with pytest.raises(DimensionError) as info:
        FOVMaskd("image")({"image": np.zeros((2, 4, 4)), "fov_mask": np.ones((3, 4, 4), bool)})
    assert "(3, 4, 4)" in str(info.value) and "\n" not in str(info.value)


def test_bad_radius():
    with pytest.raises(ValueError):
        FOVMaskd("image", radius_fraction=0)
