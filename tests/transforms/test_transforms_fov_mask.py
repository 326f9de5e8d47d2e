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


def test_provided_mask_is_intersected_with_the_circle():
    image = np.full((2, 6, 6), 7.0, dtype=np.float32)
    mask = np.zeros((2, 6, 6), dtype=np.uint8)
    mask[:, :, :3] = 1  # left half; non-bool: inside where > 0
    mask[1] = 1  # whole second slice
    out = FOVMaskd("image", mask_key="fov", store_mask=True)({"image": image, "fov": mask})
    expected = (mask > 0) & _disk(6, 6, 3.0)[None]
    np.testing.assert_array_equal(out["image"] == 7.0, expected)
    np.testing.assert_array_equal(out["image"][~expected], -1024.0)
    assert out["fov"].dtype == bool
    np.testing.assert_array_equal(out["fov"], expected)
    # circular=False: the provided mask alone
    alone = FOVMaskd("image", mask_key="fov", circular=False)({"image": image, "fov": mask})["image"]
    np.testing.assert_array_equal(alone == 7.0, mask > 0)


def test_provided_mask_broadcasts_to_channel_first_metatensor():
    image = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    meta_image = MetaTensor(image.clone(), meta={"filename_or_obj": "x.nii.gz"})
    mask = np.zeros((2, 4, 4), dtype=np.uint8)
    mask[:, 1:3, :] = 1
    out = FOVMaskd("image", fill_value=-1.0, circular=False)({"image": meta_image, "fov_mask": mask})["image"]
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "x.nii.gz"
    expected = torch.where(torch.from_numpy(mask.astype(bool))[None], image, torch.tensor(-1.0))
    torch.testing.assert_close(out.as_tensor(), expected)


def test_per_key_fill_values_and_dtypes():
    data = {"image": np.ones((3, 5, 5), np.float32), "labels": np.full((3, 5, 5), 6, np.uint8),
            "lung": torch.ones(3, 5, 5, dtype=torch.bool)}
    out = FOVMaskd(["image", "labels", "lung"], fill_value=(-1.0, 0, 0), store_mask=True)(data)
    inside = np.broadcast_to(_disk(5, 5, 2.5), (3, 5, 5))
    np.testing.assert_array_equal(out["fov_mask"], inside)
    np.testing.assert_array_equal(out["image"], np.where(inside, 1.0, -1.0))
    np.testing.assert_array_equal(out["labels"], np.where(inside, 6, 0))
    assert out["labels"].dtype == np.uint8 and out["lung"].dtype == torch.bool
    np.testing.assert_array_equal(out["lung"].numpy(), inside)
    assert "fov_mask" not in data and (data["labels"] == 6).all()


def test_nothing_to_mask_keeps_values_and_stores_an_all_true_mask():
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    out = FOVMaskd("image", circular=False, store_mask=True)({"image": image})
    np.testing.assert_array_equal(out["image"], image)
    assert out["fov_mask"].shape == (1, 4, 4) and out["fov_mask"].all()


def test_mask_shape_mismatch_is_one_line_error():
    with pytest.raises(DimensionError) as info:
        FOVMaskd("image")({"image": np.zeros((2, 4, 4)), "fov_mask": np.ones((3, 4, 4), bool)})
    assert "(3, 4, 4)" in str(info.value) and "\n" not in str(info.value)


def test_bad_radius():
    with pytest.raises(ValueError):
        FOVMaskd("image", radius_fraction=0)
