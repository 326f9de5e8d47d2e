"""PairedSlices: both images of an item are one subject's same slice and window, checked against the files."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from ctharmonize.data import load_datalist, save_datalist
from ctharmonize.datasets import PairedSlices, ensure_simulated_dataset
from ctharmonize.errors import ConfigError, DimensionError, InputError

SHAPE = (5, 20, 24)  # (Z, Y, X)
PADDING = -2048.0  # an outside-FOV padding value: the reader turns it into its FOV mask


def _save(array_zyx: np.ndarray, path: Path, spacing=(0.8, 0.8, 2.0), shift=0.0) -> None:
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[0, 3] = shift
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array_zyx.transpose(2, 1, 0)), affine), str(path))


def _read(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float64).transpose(2, 1, 0)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two subjects (pair_id p0, p1) in siemens_b30f and siemens_b50f plus their ground truth; every file
    is distinct noise, so a crop identifies its file, slice and position. p0's b50f has outside-FOV
    padding in one corner. A ge_bone entry of another subject must be ignored."""
    root = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(0)
    entries = []
    for s, pid in enumerate(("p0", "p1")):
        gt = rng.uniform(-1000, 600, SHAPE).astype(np.float32)
        _save(gt, root / f"{pid}_gt.nii.gz")
        lung = np.zeros(SHAPE, np.uint8)
        for z in range(SHAPE[0]):
            lung[z, :2 * z + s, :] = 1  # lung fraction grows with z
        _save(lung, root / f"{pid}_lung.nii.gz")
        for k, kernel in enumerate(("siemens_b30f", "siemens_b50f")):
            img = (gt + rng.normal(0, 50 * (k + 1), SHAPE)).astype(np.float32)
            if pid == "p0" and kernel == "siemens_b50f":
                img[:, :6, :6] = PADDING
            _save(img, root / f"{pid}_{kernel}.nii.gz")
            entries.append({"image": f"{pid}_{kernel}.nii.gz", "kernel": kernel, "subject": f"sub-{pid}",
                            "pair_id": pid, "split": "train", "lung": f"{pid}_lung.nii.gz",
                            "ground_truth": f"{pid}_gt.nii.gz"})
    _save(rng.uniform(-1000, 600, SHAPE).astype(np.float32), root / "q_ge_bone.nii.gz")
    entries.append({"image": "q_ge_bone.nii.gz", "kernel": "ge_bone", "subject": "q", "pair_id": "q", "split": "train"})
    return save_datalist(entries, root / "datalist.json", name="paired toy")


def _circle(ny: int, nx: int) -> np.ndarray:
    yy, xx = np.mgrid[:ny, :nx]
    return (yy - (ny - 1) / 2) ** 2 + (xx - (nx - 1) / 2) ** 2 <= (min(ny, nx) / 2) ** 2


def _expected(entries: dict, pid: str, source: str, target: str) -> dict[str, np.ndarray]:
    """Independent reference for one pair, full volumes: FOV = circle ∩ no padding in either image;
    HU -> [-1, 1] as (clip(HU, -1024, 3072) + 1024) / 2048 - 1, -1 outside the FOV."""
    src = entries[(pid, source)]
    hu_s = _read(src["image"])
    hu_t = _read(src["ground_truth"] if target == "ground_truth" else entries[(pid, target)]["image"])
    fov = _circle(*SHAPE[1:])[None] & (hu_s != PADDING) & (hu_t != PADDING)

    def unit(hu):
        return np.where(fov, (np.clip(hu, -1024, 3072) + 1024) / 2048 - 1, -1.0)

    return {"source": unit(hu_s), "target": unit(hu_t), "fov": fov, "lung": (_read(src["lung"]) > 0) & fov}


def _by_key(datalist: Path) -> dict:
    return {(e["pair_id"], e["kernel"]): e for e in load_datalist(datalist)}


def _locate(crop: np.ndarray, volumes: dict[str, np.ndarray]) -> list[tuple[str, int, int, int]]:
    """Every (pair, z, y, x) of ``volumes`` (pair -> (Z, Y, X)) where the 2-D ``crop`` occurs."""
    h, w = crop.shape
    return [(pid, z, y, x) for pid, vol in volumes.items() for z in range(vol.shape[0])
            for y in range(vol.shape[1] - h + 1) for x in range(vol.shape[2] - w + 1)
            if np.allclose(vol[z, y:y + h, x:x + w], crop, rtol=0, atol=1e-6)]


def test_both_images_are_the_same_subject_slice_and_window(data):
    entries = _by_key(data)
    ds = PairedSlices(data, "siemens_b30f", "siemens_b50f", roi_size=(8, 10))
    assert len(ds) == 2 * SHAPE[0]
    expected = {pid: _expected(entries, pid, "siemens_b30f", "siemens_b50f") for pid in ("p0", "p1")}
    sources = {pid: e["source"] for pid, e in expected.items()}
    targets = {pid: e["target"] for pid, e in expected.items()}
    torch.manual_seed(0)
    positions = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["source"].shape == (1, 8, 10) and item["source"].dtype == torch.float32
        (where_s,) = _locate(item["source"][0].numpy(), sources)
        (where_t,) = _locate(item["target"][0].numpy(), targets)
        assert where_s == where_t  # same subject, same slice, same crop position
        pid, z, y, x = where_s
        assert (item["pair_id"], item["slice_index"]) == (pid, z) and i == 5 * ("p0", "p1").index(pid) + z
        window = (z, slice(y, y + 8), slice(x, x + 10))
        np.testing.assert_array_equal(item["fov"][0].numpy(), expected[pid]["fov"][window])
        np.testing.assert_array_equal(item["lung"][0].numpy(), expected[pid]["lung"][window])
        assert (item["source_domain"], item["target_domain"]) == ("siemens_b30f", "siemens_b50f")
        positions.add((y, x))
    assert len(positions) > 3  # the window is random


def test_whole_slices_and_the_pair_fov_masks_both_images(data):
    entries = _by_key(data)
    ds = PairedSlices(data, "siemens_b30f", "siemens_b50f")
    ref = _expected(entries, "p0", "siemens_b30f", "siemens_b50f")
    item = ds[2]
    for key in ("source", "target"):
        np.testing.assert_allclose(item[key][0].numpy(), ref[key][2], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(item["fov"][0].numpy(), ref["fov"][2])
    # the target's padded corner is outside the pair's FOV, so the source is -1 there too
    assert not ref["fov"][2, :6, :6].any() and (item["source"][0, :6, :6] == -1).all()


def test_kernels_to_ground_truth_in_one_batch(data):
    entries = _by_key(data)
    ds = PairedSlices(data, ["siemens_b30f", "siemens_b50f"], "ground_truth", split=None)
    assert len(ds) == 4 * SHAPE[0] and len(ds.pairs) == 4
    for i in (0, 7, 13, 19):
        item = ds[i]
        pid, z = item["pair_id"], item["slice_index"]
        ref = _expected(entries, pid, item["source_domain"], "ground_truth")
        np.testing.assert_allclose(item["source"][0].numpy(), ref["source"][z], rtol=0, atol=1e-6)
        np.testing.assert_allclose(item["target"][0].numpy(), ref["target"][z], rtol=0, atol=1e-6)
        assert item["target_domain"] == "ground_truth"
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(ds))))
    assert batch["source"].shape == (20, 1, *SHAPE[1:]) and set(batch["source_domain"]) == {"siemens_b30f", "siemens_b50f"}
    # one ground truth per subject, shared by its two kernels: prepared once
    assert len({id(p.target) for p in ds.pairs}) == 2


def test_lung_only_fraction_uses_the_source_lung_mask(data):
    entries = _by_key(data)
    ds = PairedSlices(data, "siemens_b50f", "ground_truth", lung_only_fraction=0.25)
    expected = []
    for v, pid in enumerate(("p0", "p1")):
        frac = (_read(entries[(pid, "siemens_b50f")]["lung"]) > 0).reshape(SHAPE[0], -1).mean(axis=1)
        expected += [(v, z) for z in np.flatnonzero(frac >= 0.25)]
    assert 0 < len(expected) < 2 * SHAPE[0]
    assert [tuple(r) for r in ds.slices.tolist()] == expected


def test_deterministic_under_a_fixed_seed(data):
    ds = PairedSlices(data, "siemens_b30f", "siemens_b50f", roi_size=8)

    def draw(seed):
        torch.manual_seed(seed)
        return [ds[i] for i in range(len(ds))]

    a, b, c = draw(3), draw(3), draw(4)
    for x, y in zip(a, b, strict=True):
        assert all(torch.equal(x[k], y[k]) for k in ("source", "target", "fov", "lung"))
    assert any(not torch.equal(x["source"], y["source"]) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("change", ["shape", "spacing", "origin"])
def test_mismatched_geometry_is_refused_with_one_line_naming_both_files(data, tmp_path, change):
    root = tmp_path / "copy"
    shutil.copytree(data.parent, root)
    gt = root / "p1_gt.nii.gz"
    array = _read(str(gt)).astype(np.float32)
    if change == "shape":
        _save(array[:, :, :-4], gt)
    elif change == "spacing":
        _save(array, gt, spacing=(0.8, 0.8, 2.5))
    else:
        _save(array, gt, shift=3.0)
    with pytest.raises(DimensionError) as err:
        PairedSlices(root / "datalist.json", "siemens_b30f", "ground_truth")
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(root / "p1_siemens_b30f.nii.gz"))
    assert str(gt) in message and {"shape": "shape", "spacing": "spacing", "origin": "affine"}[change] in message


def test_pairing_errors_are_one_line(data):
    entries = load_datalist(data)
    no_partner = [e for e in entries if not (e["pair_id"] == "p1" and e["kernel"] == "siemens_b50f")]
    with pytest.raises(InputError, match=r"p1_siemens_b30f\.nii\.gz: no 'siemens_b50f' entry with pair_id 'p1'"):
        PairedSlices(no_partner, "siemens_b30f", "siemens_b50f")
    twice = [*entries, {**entries[1], "subject": "again"}]
    with pytest.raises(ConfigError, match="2 'siemens_b50f' entries with pair_id 'p0'"):
        PairedSlices(twice, "siemens_b30f", "siemens_b50f")
    no_id = [{k: v for k, v in e.items() if k != "pair_id"} for e in entries]
    with pytest.raises(ConfigError, match="no 'pair_id'"):
        PairedSlices(no_id, "siemens_b30f", "siemens_b50f")
    assert len(PairedSlices(no_id, "siemens_b30f", "siemens_b50f", pair_key="subject")) == 2 * SHAPE[0]
    no_gt = [{k: v for k, v in e.items() if k != "ground_truth"} for e in entries]
    with pytest.raises(ConfigError, match="no 'ground_truth' volume") as err:
        PairedSlices(no_gt, "siemens_b30f", "ground_truth")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="split 'validation'"):
        PairedSlices(data, "siemens_b30f", "ground_truth", split="validation")
    with pytest.raises(ConfigError, match="source"):
        PairedSlices(data, "siemens_b30f", "siemens_b30f")


def test_simulated_dataset_kernel_to_ground_truth(tmp_path):
    """The simulator's datalist (``pair_id`` and ``ground_truth`` keys) pairs as is."""
    datalist = ensure_simulated_dataset(tmp_path / "sim", subjects=1, size=32, slices=2, progress=False)
    ds = PairedSlices(datalist, ["siemens_b30f", "siemens_b50f", "ge_standard", "ge_bone"], "ground_truth")
    assert len(ds) == 4 * 2
    entry = next(e for e in load_datalist(datalist) if e["kernel"] == "ge_bone")
    item = next(ds[i] for i in range(len(ds)) if ds[i]["source_domain"] == "ge_bone" and ds[i]["slice_index"] == 1)
    fov = item["fov"][0].numpy()
    gt = _read(entry["ground_truth"])[1]
    np.testing.assert_allclose(item["target"][0].numpy()[fov], ((np.clip(gt, -1024, 3072) + 1024) / 2048 - 1)[fov],
                               rtol=0, atol=1e-6)
    assert (item["target"][0].numpy()[~fov] == -1).all() and 0 < fov.mean() < 1
