"""UnalignedMultiDomainSlices, tissue labels and the sample-dataset helper, checked against numpy by hand."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from multipath_training_data import make_dataset

from ctharmonize.data import load_datalist
from ctharmonize.datasets import (
    UnalignedMultiDomainSlices,
    ensure_simulated_dataset,
    prepare_volume,
    tissue_labels,
)
from ctharmonize.errors import ConfigError, InputError
from ctharmonize.io import read_volume

DOMAINS = ["siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("mp_data") / "toy", size=32, slices=4, subjects=2)


def _nifti_zyx(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float64).transpose(2, 1, 0)


def _circle(n: int) -> np.ndarray:
    c = (n - 1) / 2.0
    yy, xx = np.mgrid[:n, :n]
    return (yy - c) ** 2 + (xx - c) ** 2 <= (n / 2.0) ** 2


def test_items_are_fov_masked_scaled_slices_with_labels(toy):
    ds = UnalignedMultiDomainSlices(toy, DOMAINS, split="train")
    entries = {e["kernel"]: e for e in load_datalist(toy) if e["split"] == "train"}
    # one train subject per vendor, 4 slices: every domain has 4 slices -> item i is slice i of each domain
    assert len(ds) == 4
    circle = _circle(32)
    for i in range(4):
        item = ds[i]
        for d in DOMAINS:
            hu = _nifti_zyx(entries[d]["image"])[i]
            expected = (np.clip(np.where(circle, hu, -1024.0), -1024, 3072) + 1024.0) / 2048.0 - 1.0
            assert item[f"image_{d}"].shape == (1, 32, 32) and item[f"image_{d}"].dtype == torch.float32
            np.testing.assert_allclose(item[f"image_{d}"][0].numpy(), expected, atol=1e-6)
            labels = np.where(circle, _nifti_zyx(entries[d]["labels"])[i], 0)
            assert item[f"labels_{d}"].dtype == torch.int64
            np.testing.assert_array_equal(item[f"labels_{d}"][0].numpy(), labels)
            np.testing.assert_array_equal(item[f"fov_{d}"][0].numpy(), circle)
    assert float(ds[0]["image_siemens_b30f"][0, 0, 0]) == -1.0  # corner: outside the circle = -1024 HU


def test_preprocessing_fov_is_reader_mask_and_circle_for_image_labels_and_lung(tmp_path):
    """Labels that are non-zero everywhere and a padded corner: outside the FOV the image is -1 and the
    labels 0, and the lung mask comes from the tissue codes 1/2 (no lung file)."""
    hu = np.random.default_rng(1).uniform(-1000, 500, (3, 16, 16)).astype(np.float32)
    hu[:, :4, :5] = -2048.0  # outside-FOV padding value: the reader's FOV mask
    labels = np.full((3, 16, 16), 5, np.uint8)
    labels[:, 6:10, :] = 1
    affine = np.diag([-0.8, -0.8, 2.0, 1.0])
    nib.save(nib.Nifti1Image(hu.transpose(2, 1, 0).copy(), affine), str(tmp_path / "img.nii.gz"))
    nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0).copy(), affine), str(tmp_path / "lab.nii.gz"))
    entry = {"image": str(tmp_path / "img.nii.gz"), "kernel": "ge_bone", "labels": str(tmp_path / "lab.nii.gz")}
    reader = hu != -2048.0
    for circular, fov in ((True, reader & _circle(16)[None]), (False, reader)):
        vol = prepare_volume(entry, circular_fov=circular)
        np.testing.assert_array_equal(vol.fov, fov)
        expected = np.where(fov, (np.clip(hu, -1024, 3072) + 1024.0) / 2048.0 - 1.0, -1.0)
        np.testing.assert_allclose(vol.image, expected, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(vol.labels, np.where(fov, labels, 0))
        np.testing.assert_array_equal(vol.lung, fov & (labels == 1))
    np.testing.assert_allclose(vol.affine, np.diag([0.8, 0.8, 2.0, 1.0]), atol=1e-6)  # LPS: RAS x, y flipped
    assert vol.spacing == pytest.approx((0.8, 0.8, 2.0))


def test_length_is_largest_domain_and_others_are_random(toy):
    entries = load_datalist(toy)
    # siemens_b50f gets both subjects (8 slices), the other domains only their train subject (4 slices)
    chosen = [e for e in entries if e["split"] == "train" or e["kernel"] == "siemens_b50f"]
    ds = UnalignedMultiDomainSlices(chosen, DOMAINS, split=None)
    assert ds.counts == {"siemens_b50f": 8, "siemens_b30f": 4, "ge_bone": 4, "ge_standard": 4}
    assert len(ds) == 8
    b50f = [e for e in chosen if e["kernel"] == "siemens_b50f"]
    stacked = np.concatenate([_nifti_zyx(e["image"]) for e in b50f])
    circle = _circle(32)
    for i in (0, 5, 7):  # the largest domain is indexed in datalist order
        expected = (np.clip(np.where(circle, stacked[i], -1024.0), -1024, 3072) + 1024.0) / 2048.0 - 1.0
        np.testing.assert_allclose(ds[i]["image_siemens_b50f"][0].numpy(), expected, atol=1e-6)
    # smaller domains draw a random slice from torch's RNG: reproducible under a seed, varying otherwise
    torch.manual_seed(3)
    first = [ds[0]["image_ge_bone"] for _ in range(12)]
    torch.manual_seed(3)
    again = [ds[0]["image_ge_bone"] for _ in range(12)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert len({float(x.sum()) for x in first}) > 1


def _windows(full: np.ndarray, crop: np.ndarray) -> list[tuple[int, int]]:
    """Every (y, x) where ``crop`` occurs in ``full`` (brute force)."""
    h, w = crop.shape
    return [(y, x) for y in range(full.shape[0] - h + 1) for x in range(full.shape[1] - w + 1)
            if np.array_equal(full[y:y + h, x:x + w], crop)]


def test_random_crop_one_window_per_domain_over_image_fov_and_labels(toy):
    ds = UnalignedMultiDomainSlices(toy, DOMAINS, roi_size=(16, 12))
    whole = UnalignedMultiDomainSlices(toy, DOMAINS)[1]
    per_domain = {d: set() for d in DOMAINS}
    torch.manual_seed(0)
    for _ in range(8):
        item = ds[1]
        for d in DOMAINS:
            crop = item[f"image_{d}"][0].numpy()
            assert crop.shape == (16, 12) and item[f"labels_{d}"].shape == (1, 16, 12)
            (y, x), = _windows(whole[f"image_{d}"][0].numpy(), crop)  # noisy slices: one window only
            np.testing.assert_array_equal(item[f"labels_{d}"][0].numpy(), whole[f"labels_{d}"][0, y:y + 16, x:x + 12])
            np.testing.assert_array_equal(item[f"fov_{d}"][0].numpy(), whole[f"fov_{d}"][0, y:y + 16, x:x + 12])
            per_domain[d].add((y, x))
    assert all(len(w) > 1 for w in per_domain.values())  # the window moves from draw to draw
    assert len({tuple(sorted(w)) for w in per_domain.values()}) > 1  # domains are cropped independently


def test_tissue_crops_are_centred_on_the_crop_labels(toy):
    """crop_labels: each crop's centre pixel (or the nearest window inside the slice) is one of the labels."""
    ds = UnalignedMultiDomainSlices(toy, DOMAINS, roi_size=(8, 8), crop_labels=[5])
    whole = UnalignedMultiDomainSlices(toy, DOMAINS)[0]
    torch.manual_seed(0)
    for _ in range(6):
        item = ds[0]
        for d in DOMAINS:
            labels = whole[f"labels_{d}"][0].numpy()
            if not (labels == 5).any():
                continue
            (y, x), = _windows(whole[f"image_{d}"][0].numpy(), item[f"image_{d}"][0].numpy())
            # a window centred on a label-5 pixel: that pixel lies in the crop's central 2 x 2 (or near the border)
            centre = labels[y + 3:y + 5, x + 3:x + 5] if 0 < y < labels.shape[0] - 8 and 0 < x < labels.shape[1] - 8 \
                else item[f"labels_{d}"][0].numpy()
            assert (centre == 5).any(), (d, y, x)
    with pytest.raises(ConfigError, match="crop_labels"):
        UnalignedMultiDomainSlices(toy, DOMAINS, roi_size=8, crop_labels=[5], tissue_labels=None)


def test_draws_come_from_torch_rng_so_a_resume_repeats_them(toy):
    entries = load_datalist(toy)
    chosen = [e for e in entries if e["split"] == "train" or e["kernel"] == "siemens_b50f"]
    ds = UnalignedMultiDomainSlices(chosen, DOMAINS, split=None, roi_size=16)
    torch.manual_seed(5)
    ds[0]
    state = torch.get_rng_state()  # what a checkpoint stores
    first = [ds[i] for i in (3, 4, 5)]
    np.random.seed(123)  # numpy's and python's global RNG play no part
    torch.set_rng_state(state)
    again = [ds[i] for i in (3, 4, 5)]
    for a, b in zip(first, again, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(ds[3]["image_ge_bone"], first[0]["image_ge_bone"])  # and the draws do move on


def test_lung_only_slices(toy):
    # lung fraction per slice from the lung mask, by hand; keep slices with at least 0.12
    entry = next(e for e in load_datalist(toy) if e["split"] == "train" and e["kernel"] == "ge_bone")
    frac = (_nifti_zyx(entry["lung"]) > 0).reshape(4, -1).mean(axis=1)
    keep = np.flatnonzero(frac >= 0.12)
    assert 0 < len(keep) < 4, frac  # the toy lungs grow with z
    lungs = UnalignedMultiDomainSlices(toy, ["ge_bone", "ge_standard"], lung_only_fraction=0.12)
    np.testing.assert_array_equal(lungs.slices["ge_bone"][:, 1], keep)


def test_memmap_cache_matches_memory_and_is_reused(toy, tmp_path):
    mem = UnalignedMultiDomainSlices(toy, DOMAINS)
    cached = UnalignedMultiDomainSlices(toy, DOMAINS, cache_dir=tmp_path / "cache")
    vol = cached.volumes["ge_bone"][0]
    assert isinstance(vol.image, np.memmap) and isinstance(vol.labels, np.memmap) and isinstance(vol.lung, np.memmap)
    np.testing.assert_array_equal(vol.affine, mem.volumes["ge_bone"][0].affine)
    for d in DOMAINS:
        np.testing.assert_array_equal(np.asarray(cached.volumes[d][0].image), mem.volumes[d][0].image)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len([f for f in files if f.endswith("_image.npy")]) == 4
    again = UnalignedMultiDomainSlices(toy, DOMAINS, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    assert torch.equal(again[2]["image_siemens_b30f"], mem[2]["image_siemens_b30f"])


def test_computed_tissue_labels_are_cached(toy, tmp_path):
    from ctharmonize.segmentation import body_composition

    entry = next(e for e in load_datalist(toy) if e["kernel"] == "ge_standard")
    vol = read_volume(entry["image"])
    lung = np.asarray(nib.load(entry["lung"]).dataobj).transpose(2, 1, 0)
    direct = body_composition(vol, backend="threshold", lung=lung)
    first = tissue_labels(entry, vol, "threshold", cache_dir=tmp_path)
    np.testing.assert_array_equal(first, direct)
    (cache_file,) = tmp_path.glob("tissue_*.npy")
    np.save(cache_file, np.full_like(first, 7))  # a later call must read the cache, not segment again
    assert (tissue_labels(entry, vol, "threshold", cache_dir=tmp_path) == 7).all()
    assert first.dtype == np.uint8 and first.shape == vol.array.shape


def test_one_line_errors(toy, tmp_path):
    with pytest.raises(InputError, match=r"datalist\.json: no datalist entries with split 'train' for domain\(s\) ge_lung"):
        UnalignedMultiDomainSlices(toy, [*DOMAINS, "ge_lung"])
    no_labels = [{k: v for k, v in e.items() if k != "labels"} for e in load_datalist(toy)]
    with pytest.raises(ConfigError, match="has no 'labels' map") as err:
        UnalignedMultiDomainSlices(no_labels, DOMAINS)
    assert "\n" not in str(err.value) and str(err.value).startswith(no_labels[0]["image"])
    with pytest.raises(ConfigError, match="roi_size"):
        UnalignedMultiDomainSlices(toy, DOMAINS, roi_size=(30, 30))
    assert not list(tmp_path.iterdir())


def test_ensure_simulated_dataset_generates_only_when_missing(tmp_path):
    out = tmp_path / "sim"
    datalist = ensure_simulated_dataset(out, subjects=1, size=32, slices=2, seed=0, progress=False)
    assert datalist == out / "datalist.json"
    entries = load_datalist(datalist)
    assert {e["kernel"] for e in entries} == set(DOMAINS)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert ensure_simulated_dataset(out, subjects=5, size=64, slices=8, seed=1) == datalist
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    # an existing datalist is taken as is, whatever produced it
    own = tmp_path / "own"
    own.mkdir()
    (own / "datalist.json").write_text(json.dumps({"data": []}))
    assert ensure_simulated_dataset(own) == own / "datalist.json"
    assert [p.name for p in own.iterdir()] == ["datalist.json"]


@pytest.fixture(scope="module")
def three_subjects(tmp_path_factory) -> Path:
    """3 train subjects per vendor (4 slices of 32x32): an unpaired draw rarely picks the same (subject, slice)."""
    return make_dataset(tmp_path_factory.mktemp("mp_pairs") / "toy", size=32, slices=4, subjects=4)


def _locate(ds: UnalignedMultiDomainSlices, domain: str, crop: np.ndarray) -> tuple[str, int, int, int]:
    """(subject, slice, y, x) of ``crop`` among every slice of ``domain``'s training volumes (brute force)."""
    found = []
    for vol, pid in zip(ds.volumes[domain], ds.pair_ids[domain], strict=True):
        for z in range(vol.num_slices):
            found += [(pid, z, y, x) for y, x in _windows(np.asarray(vol.image[z]), crop)]
    assert len(found) == 1, found
    return found[0]


def test_paired_groups_draw_the_same_slice_and_window_of_the_same_subject(three_subjects):
    """Within a group the follower takes the leader's subject, slice and crop window; other domains stay
    unpaired; without the group the two kernels are drawn independently (what makes this test able to fail)."""
    pair = ["siemens_b50f", "siemens_b30f"]
    paired = UnalignedMultiDomainSlices(three_subjects, DOMAINS, roi_size=(16, 12), tissue_labels=None,
                                        paired_groups=[pair])
    unpaired = UnalignedMultiDomainSlices(three_subjects, DOMAINS, roi_size=(16, 12), tissue_labels=None)
    torch.manual_seed(0)
    leaders, ge = set(), []
    for i in range(12):
        item = paired[i % len(paired)]
        a, b = (_locate(paired, d, item[f"image_{d}"][0].numpy()) for d in pair)
        assert a == b
        leaders.add(a)
        ge.append(_locate(paired, "ge_bone", item["image_ge_bone"][0].numpy())
                  == _locate(paired, "ge_standard", item["image_ge_standard"][0].numpy()))
    assert len(leaders) > 6  # subjects, slices and windows vary from draw to draw
    assert sum(ge) < 3  # the GE kernels (no group) are still cropped independently
    mismatched = 0
    for i in range(12):
        item = unpaired[i % len(unpaired)]
        a, b = (_locate(unpaired, d, item[f"image_{d}"][0].numpy()) for d in pair)
        mismatched += a != b
    assert mismatched > 6


def test_paired_groups_one_line_errors(three_subjects):
    with pytest.raises(ConfigError, match=r"paired_groups: \['siemens_b50f', 'ge_lung'\] must name two or more"):
        UnalignedMultiDomainSlices(three_subjects, DOMAINS, tissue_labels=None, paired_groups=[["siemens_b50f", "ge_lung"]])
    with pytest.raises(ConfigError, match="each in one group only"):
        UnalignedMultiDomainSlices(three_subjects, DOMAINS, tissue_labels=None,
                                   paired_groups=[["siemens_b50f", "siemens_b30f"], ["siemens_b30f", "ge_bone"]])
    entries = [e for e in load_datalist(three_subjects)
               if not (e["kernel"] == "siemens_b30f" and e["subject"] == "toy-siemens-001")]
    with pytest.raises(InputError, match="subject 'toy-siemens-001' has no siemens_b30f volume") as err:
        UnalignedMultiDomainSlices(entries, DOMAINS, tissue_labels=None, paired_groups=[["siemens_b50f", "siemens_b30f"]])
    assert "\n" not in str(err.value) and "toy-siemens-001_siemens_b50f" in str(err.value)
