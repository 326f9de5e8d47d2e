import numpy as np
import pytest
import torch
from monai.transforms import Compose

from ctharmonize.transforms import ScaleHUd, hu_to_unit, unit_to_hu


def test_hu_to_unit_known_values_and_clipping():
    x = np.array([-3024.0, -1024.0, 0.0, 1024.0, 3072.0, 5000.0])
    # by hand: y = 2 (x + 1024) / 4096 - 1
    expected = np.array([-1.0, -1.0, -0.5, 0.0, 1.0, 1.0])
    y = hu_to_unit(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, atol=1e-7)


def test_custom_window():
    y = hu_to_unit(np.array([-1000.0, -500.0, 0.0, 1000.0]), hu_min=-1000.0, hu_max=1000.0)
    np.testing.assert_allclose(y, [-1.0, -0.5, 0.0, 1.0], atol=1e-7)
    x = unit_to_hu(np.array([-1.0, 0.25, 1.0]), hu_min=-1000.0, hu_max=1000.0)
    np.testing.assert_allclose(x, [-1000.0, 250.0, 1000.0], atol=1e-4)


def test_round_trip_inside_window_numpy_and_torch():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1024, 3072, size=(3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(unit_to_hu(hu_to_unit(x)), x, atol=2e-3)  # float32 precision at ~3000 HU
    xt = torch.from_numpy(x.astype(np.float64))
    back = unit_to_hu(hu_to_unit(xt))
    assert back.dtype == torch.float64
    torch.testing.assert_close(back, xt, atol=1e-9, rtol=0)


def test_round_trip_outside_window_gives_window_edges():
    x = np.array([-2048.0, -1500.0, 3500.0])
    np.testing.assert_allclose(unit_to_hu(hu_to_unit(x)), [-1024.0, -1024.0, 3072.0])


def test_unit_to_hu_clip_option():
    y = np.array([-1.5, 1.5])
    np.testing.assert_allclose(unit_to_hu(y), [-1024.0, 3072.0])
    np.testing.assert_allclose(unit_to_hu(y, clip=False), [-1024.0 - 1024.0, 3072.0 + 1024.0])


def test_torch_keeps_gradient_device_and_int_input():
    x = torch.tensor([-2000.0, 0.0, 100.0, 4000.0], requires_grad=True)
    hu_to_unit(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 2 / 4096, 2 / 4096, 0.0], atol=1e-9)
    assert hu_to_unit(torch.tensor([0], dtype=torch.int16)).dtype == torch.float32
    assert hu_to_unit(np.array([0], dtype=np.int16)).dtype == np.float32


def test_bad_window():
    with pytest.raises(ValueError, match="hu_max > hu_min"):
        hu_to_unit(np.zeros(2), hu_min=10, hu_max=10)
    with pytest.raises(ValueError):
        ScaleHUd("image", hu_min=100, hu_max=0)


def test_scalehud_dict_and_inverse_do_not_touch_other_keys_or_input():
    image = np.array([[[-1024.0, 1024.0], [3072.0, 0.0]]], dtype=np.float32)
    original = image.copy()
    data = {"image": image, "label": np.ones((1, 2, 2)), "kernel": "siemens_b50f"}
    out = ScaleHUd("image")(data)
    np.testing.assert_allclose(out["image"], [[[-1.0, 0.0], [1.0, -0.5]]])
    assert out["label"] is data["label"] and out["kernel"] == "siemens_b50f"
    np.testing.assert_array_equal(image, original)  # input not modified
    back = ScaleHUd("image").inverse(out)
    np.testing.assert_allclose(back["image"], original, atol=1e-3)


def test_inverse_maps_network_output_to_hu_with_clipping_and_compose_inverse():
    y = {"pred": torch.tensor([[-1.5, -1.0, 0.0, 0.5, 1.0, 1.2]])}
    hu = ScaleHUd("pred").inverse(y)["pred"]
    # by hand: x = (clip(y, -1, 1) + 1) * 2048 - 1024
    torch.testing.assert_close(hu, torch.tensor([[-1024.0, -1024.0, 1024.0, 2048.0, 3072.0, 3072.0]]))
    pipeline = Compose([ScaleHUd("image", hu_min=-1350.0, hu_max=150.0)])
    x = {"image": np.array([[-1350.0, -600.0, 150.0]], dtype=np.float32)}
    scaled = pipeline(x)
    np.testing.assert_allclose(scaled["image"], [[-1.0, 0.0, 1.0]], atol=1e-7)
    np.testing.assert_allclose(pipeline.inverse(scaled)["image"], x["image"], atol=1e-4)


def test_invertd_brings_predictions_back_to_hu_and_geometry():
    from monai.transforms import EnsureTyped, Invertd, SpatialPadd

    pre = Compose([EnsureTyped("image"), ScaleHUd("image"), SpatialPadd("image", (6, 6))])
    data = pre({"image": torch.tensor([[[-1024.0, 0.0], [1024.0, 3072.0]]])})
    assert tuple(data["image"].shape) == (1, 6, 6)
    data["pred"] = data["image"] * 1.0  # an identity "network" in [-1, 1]
    out = Invertd("pred", transform=pre, orig_keys="image")(data)["pred"]
    torch.testing.assert_close(out.as_tensor(), torch.tensor([[[-1024.0, 0.0], [1024.0, 3072.0]]]))
