"""MTFPairedSlices (paper 001): crops and shared augmentations stay aligned, input-only augmentations leave the
target alone, the MTF2D is the kernel's (or measured once per volume), splits are the datalist's, by phantom."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from ctharmonize.data import load_datalist
from ctharmonize.datasets import MTFPairedSlices, check_subject_splits
from ctharmonize.errors import ConfigError
from ctharmonize.simulation.mtf2d import kernel_mtf2d

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

Z, H, W = 2, 32, 40
SPACING = (0.8, 0.8, 2.0)
ROI = (16, 16)
OFF = {"flip_prob": 0.0, "affine_prob": 0.0, "noise_prob": 0.0, "jitter_prob": 0.0, "mtf_noise_prob": 0.0}


def _save(array_zyx: np.ndarray, path: Path) -> None:
    affine = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array_zyx.transpose(2, 1, 0)), affine), str(path))


def _codes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target HU, input HU, lung) (Y, X): target = -1000 + 2·(y·W + x), input = -1000 + 2·(x·H + y),
    lung a 4-pixel checkerboard; every target pixel names its own (y, x)."""
    y, x = np.mgrid[:H, :W]
    return (-1000.0 + 2.0 * (y * W + x)), (-1000.0 + 2.0 * (x * H + y)), ((y // 4 + x // 4) % 2 == 0)


def _hu(v: torch.Tensor) -> np.ndarray:
    return v.numpy().astype(np.float64) * 2048.0 + 1024.0


@pytest.fixture(scope="module")
def coded(tmp_path_factory) -> list[dict]:
    """One subject, kernel siemens_b30f, whose target/input/lung encode the pixel position; and a second
    kernel siemens_b70f whose input is the ground truth itself."""
    root = tmp_path_factory.mktemp("coded")
    gt, image, lung = (np.repeat(a[None], Z, 0).astype(np.float32) for a in _codes())
    _save(gt, root / "gt.nii.gz")
    _save(image, root / "b30f.nii.gz")
    _save(gt, root / "b70f.nii.gz")
    _save(lung.astype(np.uint8), root / "lung.nii.gz")
    common = {"subject": "s0", "split": "train", "ground_truth": str(root / "gt.nii.gz"), "lung": str(root / "lung.nii.gz"),
              "pair_id": "s0"}
    return [{"image": str(root / "b30f.nii.gz"), "kernel": "siemens_b30f", **common},
            {"image": str(root / "b70f.nii.gz"), "kernel": "siemens_b70f", **common}]


def test_crops_and_flips_are_aligned_between_input_target_and_mask(coded):
    ds = MTFPairedSlices(coded, kernels=["siemens_b30f"], roi_size=ROI, circular_fov=False,
                         **{**OFF, "flip_prob": 0.5})
    _, image_code, lung_code = _codes()
    torch.manual_seed(0)
    flips, offsets = set(), set()
    for i in range(24):
        item = ds[i % len(ds)]
        k = np.rint((_hu(item["target"][0]) + 1000.0) / 2.0).astype(int)  # independent re-computation
        y, x = k // W, k % W
        np.testing.assert_allclose(_hu(item["source"][0]), image_code[y, x], atol=0.05)
        np.testing.assert_array_equal(item["lung"][0].numpy(), lung_code[y, x])
        assert item["source"].shape == item["target"].shape == item["lung"].shape == (1, *ROI)
        flips.add((bool(y[1, 0] < y[0, 0]), bool(x[0, 1] < x[0, 0])))
        offsets.add((int(y.min()), int(x.min())))
    assert len(flips) == 4 and len(offsets) > 5  # both flips and many windows were drawn


def test_affine_is_shared_by_input_target_and_mask(coded):
    kwargs = {**OFF, "flip_prob": 0.5, "affine_prob": 1.0, "rotate_deg": 20.0}
    # siemens_b70f's input IS the ground truth: after the shared warp both must stay identical
    same = MTFPairedSlices(coded, kernels=["siemens_b70f"], roi_size=ROI, circular_fov=False, **kwargs)
    torch.manual_seed(1)
    for i in range(4):
        item = same[i % len(same)]
        torch.testing.assert_close(item["source"], item["target"], rtol=0, atol=1e-6)
    # siemens_b30f: input and target are two linear position codes, which bilinear warping keeps exact;
    # solving both for the (sub-pixel) source position (y, x) re-computes the warp independently, and the
    # nearest-neighbour warped lung mask must be the checkerboard at that position
    ds = MTFPairedSlices(coded, kernels=["siemens_b30f"], roi_size=ROI, circular_fov=False, **kwargs)
    _, _, lung_code = _codes()
    torch.manual_seed(2)
    moved = 0
    for i in range(8):
        item = ds[i % len(ds)]
        kt = (_hu(item["target"][0]) + 1000.0) / 2.0  # W·y + x
        ks = (_hu(item["source"][0]) + 1000.0) / 2.0  # H·x + y
        y = (H * kt - ks) / (H * W - 1)
        x = kt - W * y
        inside = item["fov"][0].numpy()
        assert inside.mean() > 0.5
        yi, xi = np.clip(np.rint(y), 0, H - 1).astype(int), np.clip(np.rint(x), 0, W - 1).astype(int)
        agree = (item["lung"][0].numpy() == lung_code[yi, xi])[inside]
        assert agree.mean() > 0.98
        moved += not np.allclose(y[inside], np.rint(y[inside]), atol=1e-2)  # sub-pixel: the warp was applied
    assert moved >= 6


def test_input_only_augmentations_never_touch_the_target(coded):
    noisy = {**OFF, "noise_prob": 1.0, "jitter_prob": 1.0, "mtf_noise_prob": 1.0, "noise_std": 0.05}
    aug = MTFPairedSlices(coded, kernels=["siemens_b30f"], roi_size=ROI, **noisy)
    ref = MTFPairedSlices(coded, kernels=["siemens_b30f"], roi_size=ROI, augment=False)
    for seed in range(4):
        torch.manual_seed(seed)
        a = aug[seed % len(aug)]
        torch.manual_seed(seed)
        b = ref[seed % len(ref)]
        torch.testing.assert_close(a["target"], b["target"], rtol=0, atol=0)
        assert torch.equal(a["lung"], b["lung"]) and torch.equal(a["fov"], b["fov"])
        assert (a["source"] - b["source"]).abs().mean() > 0.01
        assert a["source"].min() >= -1.0 and a["source"].max() <= 1.0
        assert not torch.equal(a["mtf2d"], b["mtf2d"]) and a["mtf2d"].min() >= 0.0
        assert (a["mtf2d"] - b["mtf2d"]).std() < 0.05


def test_mtf2d_is_the_kernels_design_mtf(coded):
    ds = MTFPairedSlices(coded, roi_size=None, circular_fov=False, augment=False)
    assert sorted({p.source_domain for p in ds.pairs}) == ["siemens_b30f", "siemens_b70f"]
    seen = {}
    for i in range(len(ds)):
        item = ds[i]
        assert item["mtf2d"].shape == (1, 64, 64) and item["source"].shape == (1, H, W)
        np.testing.assert_allclose(item["mtf2d"][0].numpy(), kernel_mtf2d(item["kernel"], SPACING[:2]), rtol=1e-5, atol=1e-7)
        seen[item["kernel"]] = item["mtf2d"]
    assert float(seen["siemens_b30f"][0, 32, 32]) == pytest.approx(1.0)
    assert not torch.equal(seen["siemens_b30f"], seen["siemens_b70f"])


def test_measured_mtf_is_computed_once_per_volume_and_cached(coded, tmp_path, monkeypatch):
    import ctharmonize.physics as physics

    calls = []

    class Measured:
        def mtf2d(self, size: int) -> np.ndarray:
            return np.full((size, size), 0.5, np.float32)

    def fake_skin_air_mtf(hu, spacing, **kwargs):
        calls.append((hu.shape, tuple(spacing)))
        assert -1100 < hu.min() and hu.max() < 1600  # HU, not [-1, 1]
        return Measured()

    monkeypatch.setattr(physics, "skin_air_mtf", fake_skin_air_mtf)
    ds = MTFPairedSlices(coded, mtf_source="measured", mtf_cache_dir=tmp_path, roi_size=ROI, **OFF)
    assert len(calls) == 2 and calls[0][0] == (Z, H, W)  # one per input volume, not per slice
    assert torch.equal(ds[0]["mtf2d"], torch.full((1, 64, 64), 0.5))
    MTFPairedSlices(coded, mtf_source="measured", mtf_cache_dir=tmp_path, roi_size=ROI, **OFF)
    assert len(calls) == 2  # read back from mtf_cache_dir
    with pytest.raises(ConfigError, match="mtf_source"):
        MTFPairedSlices(coded, mtf_source="guess")


def test_splits_come_from_the_datalist_by_phantom(tmp_path):
    from ctharmonize.simulation.force_dataset import generate_force_family

    datalist = generate_force_family(tmp_path / "ff", subjects=3, size=64, slices=2, progress=False)
    entries = load_datalist(datalist)
    expected = {}
    for e in entries:
        expected.setdefault(e["split"], set()).add(e["subject"])
    subjects = {}
    for split in expected:
        ds = MTFPairedSlices(datalist, split=split, roi_size=32, augment=False)
        assert len(ds.pairs) == 32 * len(expected[split])  # 16 kernels × 2 doses per phantom
        subjects[split] = {ds[i]["pair_id"] for i in range(len(ds))}
        assert subjects[split] == expected[split]
        item = ds[0]
        assert item["source"].shape == (1, 32, 32) and item["lung"].dtype == torch.bool
    names = list(subjects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not subjects[a] & subjects[b]
    leaky = [dict(e) for e in entries]
    leaky[0]["split"] = "validation" if leaky[0]["split"] != "validation" else "train"
    with pytest.raises(ConfigError, match="more than one split"):
        check_subject_splits(leaky)
    with pytest.raises(ConfigError, match="more than one split"):
        MTFPairedSlices(leaky, split="train")
