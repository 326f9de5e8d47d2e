import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from ctharmonize.errors import DimensionError, InputError, UnknownDomainError
from ctharmonize.transforms import SampleAxialSlicesd, ScaleHUd

DOMAINS = ["siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard"]


def _volume(z=10, y=4, x=5):
    # slice k is filled with 100 * k + pixel index, so a slice's origin is recognisable
    return (100.0 * np.arange(z)[:, None, None] + np.arange(y * x).reshape(y, x)).astype(np.float32)


def test_samples_are_the_right_slices_with_domain_label():
    vol = _volume()
    label = (vol > 250).astype(np.uint8)
    t = SampleAxialSlicesd(["image", "labels"], num_samples=4, domain_names=DOMAINS)
    t.set_random_state(seed=1)
    out = t({"image": vol, "labels": label, "kernel": "ge_bone", "subject": "s1", "fov": np.ones(3)})
    assert len(out) == 4
    assert len({s["slice_index"] for s in out}) == 4  # without replacement
    for s in out:
        z = s["slice_index"]
        assert s["image"].shape == (1, 4, 5) and s["labels"].shape == (1, 4, 5)
        np.testing.assert_array_equal(s["image"][0], vol[z])
        np.testing.assert_array_equal(s["labels"][0], label[z])
        assert s["domain"] == "ge_bone" and s["domain_index"] == 2 and s["subject"] == "s1"
        assert "fov" not in s  # arrays not in keys are dropped
    s0 = out[0]["image"]
    s0[...] = -5
    assert (vol != -5).all()  # samples are copies


def test_seeding_is_reproducible():
    vol = _volume(z=50)
    draws = []
    for seed in (3, 3, 4):
        t = SampleAxialSlicesd("image", num_samples=5, domain_key=None).set_random_state(seed=seed)
        draws.append([s["slice_index"] for s in t({"image": vol})])
    assert draws[0] == draws[1]
    assert draws[0] != draws[2]


def test_with_replacement_when_more_samples_than_slices():
    t = SampleAxialSlicesd("image", num_samples=7, domain_key=None).set_random_state(0)
    out = t({"image": _volume(z=3)})
    assert len(out) == 7 and {s["slice_index"] for s in out} <= {0, 1, 2}


def test_lung_restriction():
    vol = _volume(z=8, y=10, x=10)
    lung = np.zeros(vol.shape, np.uint8)
    lung[2, :1, :] = 1  # 10% of slice 2
    lung[5, :5, :] = 2  # 50% of slice 5
    lung[6, :3, :] = 1  # 30% of slice 6
    t = SampleAxialSlicesd("image", num_samples=30, domain_key=None, lung_key="lung", min_lung_fraction=0.25)
    t.set_random_state(0)
    chosen = {s["slice_index"] for s in t({"image": vol, "lung": lung})}
    assert chosen == {5, 6}
    t_any = SampleAxialSlicesd("image", num_samples=30, domain_key=None, lung_key="lung").set_random_state(0)
    assert {s["slice_index"] for s in t_any({"image": vol, "lung": lung})} == {2, 5, 6}
    t_none = SampleAxialSlicesd("image", num_samples=1, domain_key=None, lung_key="lung", min_lung_fraction=0.6)
    with pytest.raises(InputError, match="lung fraction"):
        t_none({"image": vol, "lung": lung})


def test_channel_first_metatensor_gives_plain_tensor_slices():
    vol = torch.from_numpy(_volume())[None]
    mt = MetaTensor(vol, meta={"filename_or_obj": "/data/a.nii.gz"})
    t = SampleAxialSlicesd("image", num_samples=2, domain_names=DOMAINS).set_random_state(0)
    out = t({"image": mt, "kernel": "siemens_b30f"})
    for s in out:
        assert type(s["image"]) is torch.Tensor and s["image"].shape == (1, 4, 5)
        torch.testing.assert_close(s["image"], vol[:, s["slice_index"]])
        assert s["domain_index"] == 1
    with pytest.raises(UnknownDomainError) as info:
        t({"image": mt, "kernel": "philips_b"})
    assert str(info.value).startswith("/data/a.nii.gz: unknown domain 'philips_b'")


def test_shape_errors():
    t = SampleAxialSlicesd(["image", "lung"], num_samples=1, domain_key=None)
    with pytest.raises(DimensionError):
        t({"image": np.zeros((4, 4)), "lung": np.zeros((4, 4))})
    with pytest.raises(DimensionError, match="different numbers of slices"):
        t({"image": np.zeros((3, 4, 4)), "lung": np.zeros((2, 4, 4))})
    with pytest.raises(ValueError):
        SampleAxialSlicesd("image", num_samples=0)


def test_in_compose_following_transforms_apply_to_each_slice():
    vol = np.full((6, 3, 3), 1024.0, np.float32)
    pipeline = Compose([SampleAxialSlicesd("image", num_samples=3, domain_names=DOMAINS), ScaleHUd("image")])
    pipeline.set_random_state(seed=0)
    out = pipeline({"image": vol, "kernel": "siemens_b50f"})
    assert len(out) == 3
    for s in out:
        np.testing.assert_allclose(s["image"], 0.0, atol=1e-7)
        assert s["domain_index"] == 0


def test_monai_dataloader_batches_slices_from_several_volumes():
    from monai.data import DataLoader, Dataset

    data = [{"image": _volume(z=6), "kernel": "siemens_b30f"}, {"image": _volume(z=6) + 1, "kernel": "ge_bone"}]
    transform = SampleAxialSlicesd("image", num_samples=2, domain_names=DOMAINS)
    transform.set_random_state(0)
    batches = list(DataLoader(Dataset(data, transform), batch_size=2, num_workers=0))
    assert len(batches) == 1  # 2 volumes x 2 slices, flattened by MONAI's list_data_collate
    batch = batches[0]
    assert tuple(batch["image"].shape) == (4, 1, 4, 5)
    assert batch["domain_index"].tolist() == [1, 1, 2, 2]
    assert batch["domain"] == ["siemens_b30f", "siemens_b30f", "ge_bone", "ge_bone"]
