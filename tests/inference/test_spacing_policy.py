"""Spacing-aware inference (metadata ``trained_pixel_spacing_mm``, ``--spacing_policy resample|refuse``).

A tiny CycleGAN bundle (``tests/bundles/tiny_bundle_config.py``) states a trained range; volumes are simulated
GE BONE scans whose in-plane spacing is declared outside or inside it. Expected outputs are computed here by
hand: ``scipy.ndimage.zoom`` there and back around the generator run by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from scipy import ndimage

from ctharmonize.bundle import verify_bundle_metadata
from ctharmonize.cli import main
from ctharmonize.errors import ConfigError
from ctharmonize.inference import (
    SpacingPolicy,
    attach_spacing_policy,
    harmonize_volume,
    load_bundle_harmonizer,
    spacing_policy_of,
)
from ctharmonize.inference.spacing_policy import resample_inplane
from ctharmonize.io import read_volume, write_volume
from ctharmonize.io.volume import Volume
from ctharmonize.networks import CycleGANPair, ResnetGenerator

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bundles"))
from multipath_sim_data import simulated_scans  # noqa: E402
from tiny_bundle_config import write_cyclegan_bundle  # noqa: E402

DOMAINS = ["ge_bone", "ge_standard"]
RANGE = [0.59, 0.88]
SPACING_LOG = "ctharmonize.inference.spacing_policy"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A tiny CycleGAN bundle trained (it says) on 0.59-0.88 mm pixels."""
    return write_cyclegan_bundle(tmp_path_factory.mktemp("b") / "tiny", DOMAINS, "ge_standard",
                                 trained_pixel_spacing_mm=RANGE)


@pytest.fixture(scope="module")
def bone() -> Volume:
    """A simulated 40 x 40 x 2 GE BONE volume (header, circular FOV mask)."""
    return simulated_scans(seed=3, vendor="ge", size=40, slices=2)["ge_bone"]


def with_spacing(volume: Volume, sx: float, sy: float) -> Volume:
    """``volume`` with its in-plane spacing declared (sx, sy) mm."""
    return Volume(volume.array, (sx, sy, volume.spacing[2]), volume.origin, volume.direction, volume.header,
                  volume.fov_mask)


def write_input(volume: Volume, path: Path) -> Path:
    """NIfTI with the sidecar (source kernel from it) and padding outside the FOV (read back as fov_mask)."""
    return write_volume(volume, path, sidecar=True, nifti_padding=True)


def generator(bundle: Path) -> torch.nn.Module:
    """G_AB (ge_bone -> ge_standard) of the bundle's weights, loaded by hand."""
    pair = CycleGANPair(ResnetGenerator(ngf=4, n_blocks=1), ResnetGenerator(ngf=4, n_blocks=1), DOMAINS)
    pair.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    return pair.G_AB.eval()


def by_hand(net: torch.nn.Module, hu: np.ndarray, fov: np.ndarray | None) -> np.ndarray:
    """The network on each slice: reflect-pad to 4, clip and scale to [-1, 1], run, rescale, crop, keep outside FOV."""
    pad = ((0, (-hu.shape[1]) % 4), (0, (-hu.shape[2]) % 4))
    out = np.empty(hu.shape, np.float32)
    for k in range(hu.shape[0]):
        x = (np.clip(np.pad(hu[k].astype(np.float64), pad, mode="reflect"), -1024, 3072) + 1024) / 2048.0 - 1.0
        with torch.no_grad():
            y = net(torch.from_numpy(x).float()[None, None]).double().numpy()[0, 0]
        out[k] = ((np.clip(y, -1, 1) + 1.0) * 2048.0 - 1024.0)[: hu.shape[1], : hu.shape[2]]
    if fov is not None:
        out[~fov] = hu[~fov]
    return out


def zoom_slices(array: np.ndarray, shape_yx: tuple[int, int], order: int) -> np.ndarray:
    """Each slice to ``shape_yx`` with scipy.ndimage.zoom (pixel edges aligned), as the policy resamples."""
    factors = (shape_yx[0] / array.shape[1], shape_yx[1] / array.shape[2])
    mode = "reflect" if order else "nearest"
    return np.stack([ndimage.zoom(s, factors, order=order, mode=mode, grid_mode=True) for s in array])


# ----------------------------------------------------------------------------- the rule
def test_goal_is_the_nearest_end_of_the_range_per_axis():
    rule = SpacingPolicy((0.59, 0.88))
    assert rule.goal((0.45, 0.45)) == (0.59, 0.59)
    assert rule.goal((0.45, 0.7)) == (0.59, 0.7)  # anisotropic: only the axis outside moves
    assert rule.goal((1.2, 0.3)) == (0.88, 0.59)
    assert rule.goal((0.7, 0.7)) is None and rule.goal((0.59, 0.88)) is None
    assert rule.goal((0.5896, 0.8805)) is None  # within the 0.1 % slack for rounded header values
    with pytest.raises(ConfigError, match="--spacing_policy must be resample or refuse"):
        SpacingPolicy((0.59, 0.88), "ignore")


def test_attach_without_the_key_leaves_the_harmonizer_alone():
    class Frozen:  # takes no attributes: wrapped
        __slots__ = ("domains",)

        def __init__(self) -> None:
            self.domains = tuple(DOMAINS)

        def __call__(self, hu, source, target, fov_mask=None):
            return hu

    frozen = Frozen()
    assert attach_spacing_policy(frozen, {"name": "x"}) is frozen and spacing_policy_of(frozen) is None
    wrapped = attach_spacing_policy(frozen, {"trained_pixel_spacing_mm": RANGE}, "refuse")
    assert spacing_policy_of(wrapped) == SpacingPolicy((0.59, 0.88), "refuse") and wrapped.domains == frozen.domains


# ----------------------------------------------------------------------------- (a) resample, with the notice
def test_outside_the_range_is_resampled_there_and_back(bundle, bone, tmp_path, caplog, capsys):
    vin = with_spacing(bone, 0.45, 1.2)  # x finer than the range, y coarser: both axes move
    image = write_input(vin, tmp_path / "fine.nii.gz")
    out = tmp_path / "out.nii.gz"
    with caplog.at_level("WARNING", logger=SPACING_LOG):
        assert main(["harmonize", "--bundle", str(bundle), "--input", str(image), "--out", str(out),
                     "--trust_bundle", "--quiet"]) == 0
    notices = [r.getMessage() for r in caplog.records if r.name == SPACING_LOG]
    assert notices == [f"{image}: input pixel spacing 0.45 x 1.2 mm is outside the bundle's trained range "
                       "0.59-0.88 mm: resampled in-plane to 0.6 x 0.8727 mm and back (--spacing_policy refuse to "
                       "stop instead)"]
    assert "resampled in-plane" in capsys.readouterr().out  # the summary line says so too

    src, got = read_volume(image), read_volume(out)
    hu, fov = src.array, src.fov_mask
    assert fov is not None and not fov.all()
    # by hand: 40 px at 0.45 mm -> 30 px at 0.6 mm (x); 40 px at 1.2 mm -> 55 px at 0.8727 mm (y)
    shape = (55, 30)
    small_fov = zoom_slices(fov.astype(np.uint8), shape, order=0).astype(bool)
    harmonized = by_hand(generator(bundle), zoom_slices(hu, shape, order=3), small_fov)
    want = np.clip(zoom_slices(harmonized, hu.shape[1:], order=3), harmonized.min(), harmonized.max())
    want[~fov] = hu[~fov]
    assert got.shape == vin.shape and got.spacing == pytest.approx(vin.spacing)
    np.testing.assert_allclose(got.affine_ras(), vin.affine_ras(), atol=1e-5)
    np.testing.assert_array_equal(got.array[~fov], hu[~fov])  # outside the FOV: the input, exactly
    np.testing.assert_allclose(got.array, want, atol=0.05)
    # not the same as harmonizing at the input's own spacing
    assert np.abs(got.array - by_hand(generator(bundle), hu, fov))[fov].max() > 1.0

    # provenance in the header and, for a DICOM output, in DerivationDescription
    harmonizer = load_bundle_harmonizer(bundle, trust=True, device="cpu")
    result = harmonize_volume(src, harmonizer, "ge_bone", "ge_standard", path=image)
    assert "resampled in-plane to 0.6 x 0.8727 mm" in result.header.extra["spacing_resampled"]


def test_notice_is_one_line_on_stderr(bundle, bone, tmp_path):
    """The real command line (no pytest log capture): the notice is one stderr line."""
    image = write_input(with_spacing(bone, 0.45, 0.45), tmp_path / "fine.nii.gz")
    out = tmp_path / "out.nii.gz"
    run = subprocess.run([sys.executable, "-m", "ctharmonize", "harmonize", "--bundle", str(bundle), "--input",
                          str(image), "--out", str(out), "--trust_bundle", "--quiet"], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if "pixel spacing" in ln]
    assert lines == [f"{image}: input pixel spacing 0.45 x 0.45 mm is outside the bundle's trained range 0.59-0.88 "
                     "mm: resampled in-plane to 0.6 x 0.6 mm and back (--spacing_policy refuse to stop instead)"]
    assert out.is_file()


# ----------------------------------------------------------------------------- (b) refuse
def test_refuse_is_one_line_exit_2_and_writes_nothing(bundle, bone, tmp_path, capsys):
    image = write_input(with_spacing(bone, 0.45, 1.2), tmp_path / "fine.nii.gz")
    out = tmp_path / "out.nii.gz"
    assert main(["harmonize", "--bundle", str(bundle), "--input", str(image), "--out", str(out), "--trust_bundle",
                 "--quiet", "--spacing_policy", "refuse"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"ctharmonize harmonize: error: {image}: input pixel spacing 0.45 x 1.2 mm")
    assert "trained range 0.59-0.88 mm" in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    assert main(["harmonize", "--bundle", str(bundle), "--input", str(image), "--out", str(out), "--trust_bundle",
                 "--spacing_policy", "skip"]) == 2
    assert "--spacing_policy must be resample or refuse" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["harmonize-cohort", "evaluate"])
def test_refuse_reaches_cohort_and_evaluate(command, bundle, bone, tmp_path, capsys):
    image = write_input(with_spacing(bone, 0.45, 0.45), tmp_path / "fine.nii.gz")
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"data": [{"image": str(image), "kernel": "ge_bone", "subject": "s1"}]}))
    out = tmp_path / "out"
    args = ["--datalist", str(datalist), "--bundle", str(bundle), "--out", str(out), "--trust_bundle",
            "--spacing_policy", "refuse", "--noprogress"]
    assert main([command, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{image}: input pixel spacing 0.45 x 0.45 mm" in err
    assert not list(out.glob("*.nii.gz")) and not list((tmp_path / "out_harmonized").glob("*.nii.gz"))


def test_deploy_app_takes_the_flag(bundle, tmp_path):
    from ctharmonize.deploy.app import parse_settings

    base = ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(bundle)]
    assert parse_settings(base).spacing_policy == "resample"
    assert parse_settings([*base, "--spacing_policy", "refuse"]).spacing_policy == "refuse"
    with pytest.raises(ConfigError, match="spacing_policy"):
        parse_settings([*base, "--spacing_policy", "skip"])


# ----------------------------------------------------------------------------- (c) inside the range / no key
def test_inside_the_range_or_without_the_key_is_the_old_path(bundle, bone, tmp_path, caplog):
    no_key = write_cyclegan_bundle(tmp_path / "no_key", DOMAINS, "ge_standard")  # same seed: same weights
    cases = [(bundle, with_spacing(bone, 0.7, 0.75)), (no_key, with_spacing(bone, 0.45, 0.45))]
    for k, (root, volume) in enumerate(cases):
        image = write_input(volume, tmp_path / f"in{k}.nii.gz")
        out = tmp_path / f"out{k}.nii.gz"
        with caplog.at_level("WARNING", logger=SPACING_LOG):
            assert main(["harmonize", "--bundle", str(root), "--input", str(image), "--out", str(out),
                         "--trust_bundle", "--quiet"]) == 0
        src = read_volume(image)
        plain = load_bundle_harmonizer(root, trust=True)
        old = plain(src.array, "ge_bone", "ge_standard", fov_mask=src.fov_mask)  # the harmonizer called as before
        np.testing.assert_array_equal(read_volume(out).array, old)  # bit-identical
        assert "spacing_resampled" not in harmonize_volume(src, plain, "ge_bone", "ge_standard").header.extra
    assert not [r for r in caplog.records if r.name == SPACING_LOG]


# ----------------------------------------------------------------------------- (d) DICOM geometry
GEOMETRY = ("Rows", "Columns", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "SliceThickness")


def test_dicom_out_keeps_the_input_geometry_after_resampling(tmp_path, caplog):
    from ctharmonize.simulation import generate_dataset

    datalist = generate_dataset(tmp_path / "sim", subjects=1, size=32, slices=3, dicom=True, vendors=("ge",),
                                progress=False)
    entry = next(e for e in json.loads(datalist.read_text())["data"] if e["kernel"] == "ge_bone")
    series = datalist.parent / entry["dicom"]
    spacing = float(pydicom.dcmread(sorted(series.iterdir())[0]).PixelSpacing[0])
    assert spacing > 6.0  # 380 mm / 32 px: outside the range below, so resampled (to 6 mm, 64 px) and back
    root = write_cyclegan_bundle(tmp_path / "coarse_bundle", DOMAINS, "ge_standard", trained_pixel_spacing_mm=[5, 6])
    out = tmp_path / "harmonized"
    with caplog.at_level("WARNING", logger=SPACING_LOG):
        assert main(["harmonize", "--bundle", str(root), "--input", str(series), "--out", str(out),
                     "--trust_bundle", "--quiet"]) == 0
    assert "resampled in-plane to 5.938 x 5.938 mm and back" in caplog.text
    source = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(f) for f in series.iterdir())}
    derived = [pydicom.dcmread(f) for f in sorted(out.iterdir())]
    assert len(derived) == len(source) == 3
    for ds in derived:
        src = source[ds.SourceImageSequence[0].ReferencedSOPInstanceUID]
        for keyword in GEOMETRY:
            assert ds[keyword].value == src[keyword].value, keyword
        assert "resampled in-plane to 5.938 x 5.938 mm and back" in ds.DerivationDescription
    vin, vout = read_volume(series), read_volume(out)
    assert vout.shape == vin.shape
    np.testing.assert_array_equal(vout.fov_mask, vin.fov_mask)
    assert np.abs(vout.array - vin.array)[vin.fov_mask].max() > 1.0  # it did harmonize


# ----------------------------------------------------------------------------- (e) metadata validation
@pytest.mark.parametrize("value", [[0.88, 0.59], [0, 0.88], [-1, 1], [0.59], [0.59, 0.7, 0.88], ["0.59", 0.88],
                                   [0.59, float("inf")], [True, 1], 0.7])
def test_metadata_rejects_a_malformed_range(value, tmp_path, capsys):
    bundle = tmp_path / "b"
    shutil.copytree(REPO / "bundles" / "multipath_cyclegan_ct_harmonization" / "configs", bundle / "configs")
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    verify_bundle_metadata(bundle)  # the shipped key is valid
    meta["trained_pixel_spacing_mm"] = value
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="trained_pixel_spacing_mm") as err:
        verify_bundle_metadata(bundle)
    assert "metadata.json" in str(err.value) and "\n" not in str(err.value)
    assert main(["verify-bundle", "--bundle", str(bundle)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_loading_a_bundle_with_a_malformed_range_fails_in_one_line(tmp_path):
    root = write_cyclegan_bundle(tmp_path / "bad", DOMAINS, "ge_standard", trained_pixel_spacing_mm=[0.9, 0.5])
    with pytest.raises(ConfigError, match=r"metadata.json: trained_pixel_spacing_mm must be \[min, max\]"):
        load_bundle_harmonizer(root, trust=True)


def test_coarsening_low_passes_first_so_noise_does_not_fold_back():
    """A 4x coarser grid of white noise: point sampling keeps SD ~ 1 (aliasing); the anti-aliasing Gaussian
    (sigma 1.5 px) leaves about 1 / (2 sqrt(pi) 1.5) = 0.19 (independent: the Gaussian's noise gain)."""
    noise = np.random.default_rng(0).normal(0.0, 1.0, (2, 256, 256)).astype(np.float32)
    coarse = resample_inplane(noise, (64, 64), order=3)
    assert coarse.dtype == np.float32 and coarse.shape == (2, 64, 64)
    assert 0.15 < float(coarse.std()) < 0.25
    flat = np.full((1, 256, 256), -850.0, np.float32)  # a constant stays that constant (gain 1 at DC)
    np.testing.assert_allclose(resample_inplane(flat, (64, 64), order=3), -850.0, atol=1e-3)
    mask = np.random.default_rng(1).random((1, 256, 256)) > 0.5  # masks are never filtered: plain nearest neighbour
    direct = ndimage.zoom(mask[0].astype(np.uint8), 0.25, order=0, mode="nearest", grid_mode=True).astype(bool)
    np.testing.assert_array_equal(resample_inplane(mask, (64, 64), order=0)[0], direct)
