"""Paper 001's harmonizer through the contract: ``MTFTranslator``, the per-volume ``MeasuredMTF`` condition, the
``spacing`` seam (``needs_spacing`` / ``call_harmonizer``, spacing-policy resampling) and checkpoint selection on
paths to the ground truth.

Expected outputs are computed by hand: the skin-air MTF measured with ``ctharmonize.physics.skin_air_mtf``, the HU
scaled with numpy, the network run per slice.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ctharmonize.domains.reference import TRUTH_DOMAIN
from ctharmonize.errors import ConfigError, InputError, UnknownDomainError
from ctharmonize.inference import (
    MeasuredMTF,
    SliceHarmonizer,
    SpacingPolicy,
    call_harmonizer,
    harmonize_volume,
    needs_spacing,
    target_domains,
)
from ctharmonize.io import read_volume
from ctharmonize.networks import MTFHarmonizer, MTFPath, MTFTranslator, check_translator
from ctharmonize.physics import skin_air_mtf
from ctharmonize.simulation.mtf2d import kernel_mtf2d

KERNELS = ["siemens_br40f", "siemens_br64f"]
HU_MIN, HU_MAX = -1024.0, 3072.0


def _net(seed: int = 0) -> MTFHarmonizer:
    torch.manual_seed(seed)
    return MTFHarmonizer(channels=(4, 8), gamma_channels=2, mtf_channels=2, mtf_hidden=2, head_hidden=4,
                         attention_channels=2).eval()


def _unit(hu: np.ndarray) -> np.ndarray:
    return (np.clip(hu.astype(np.float64), HU_MIN, HU_MAX) - HU_MIN) / ((HU_MAX - HU_MIN) / 2.0) - 1.0


def by_hand(net: MTFHarmonizer, hu: np.ndarray, mtf2d: np.ndarray) -> np.ndarray:
    """Per slice: scale with numpy, G(x, mtf2d), clamp, rescale (slices here are multiples of the U-Net's 2)."""
    net = net.eval()
    out = np.empty(hu.shape, np.float64)
    m = torch.from_numpy(np.asarray(mtf2d, np.float32))[None, None]
    for k in range(hu.shape[0]):
        with torch.no_grad():
            y = net(torch.from_numpy(_unit(hu[k])).float()[None, None], m).double().numpy()[0, 0]
        out[k] = (np.clip(y, -1, 1) + 1.0) * (HU_MAX - HU_MIN) / 2.0 + HU_MIN
    return out


@pytest.fixture(scope="module")
def force(tmp_path_factory) -> Path:
    """Two phantoms of the Force-like family at 128^2 x 2 slices (3.9 mm pixels over the 500 mm FOV)."""
    from ctharmonize.simulation.force_dataset import generate_force_family

    return generate_force_family(tmp_path_factory.mktemp("ff") / "ff", subjects=2, size=128, slices=2, progress=False)


def _scan(datalist: Path, kernel: str) -> str:
    entries = json.loads(datalist.read_text())["data"]
    return str(datalist.parent / next(e["image"] for e in entries if e["kernel"] == kernel and e["dose"] == "high"))


def test_translator_contract_targets_and_refusals():
    net = _net()
    t = check_translator(MTFTranslator(net, KERNELS))
    assert t.domains == (*KERNELS, TRUTH_DOMAIN) and t.targets == (TRUTH_DOMAIN,)
    assert t.spatial_multiple == 2
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    m = torch.from_numpy(kernel_mtf2d("siemens_br64f", (0.7, 0.7))).float()[None, None]
    torch.testing.assert_close(t(x, "siemens_br64f", TRUTH_DOMAIN, {"mtf2d": m}), net(x, m.expand(2, -1, -1, -1)))
    torch.testing.assert_close(t(x, TRUTH_DOMAIN, TRUTH_DOMAIN), x)
    with pytest.raises(ConfigError, match="maps every kernel"):
        t(x, "siemens_br40f", "siemens_br64f", {"mtf2d": m})
    with pytest.raises(ConfigError, match="condition"):
        t(x, "siemens_br64f", TRUTH_DOMAIN)
    with pytest.raises(UnknownDomainError):
        t(x, "ge_bone", TRUTH_DOMAIN, {"mtf2d": m})


def test_exported_path_bakes_in_the_design_mtf_and_scripts():
    net = _net(1)
    t = MTFTranslator(net, KERNELS, export_spacing_mm=0.8)
    path = t.path("siemens_br64f", TRUTH_DOMAIN)
    assert isinstance(path, MTFPath)
    design = kernel_mtf2d("siemens_br64f", (0.8, 0.8))
    np.testing.assert_array_equal(path.mtf2d.numpy()[0, 0], design)
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    scripted = torch.jit.script(path)
    torch.testing.assert_close(scripted(x), net(x, torch.from_numpy(design).float()[None, None]))
    # the harmonizer's export (HU in / HU out) is the same path
    hu = np.random.default_rng(0).uniform(-1000, 500, (2, 16, 16)).astype(np.float32)
    exported = SliceHarmonizer(t, HU_MIN, HU_MAX, device="cpu", condition=MeasuredMTF()).export("siemens_br64f",
                                                                                              TRUTH_DOMAIN)
    with torch.no_grad():
        got = exported(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(net, hu, design), atol=0.05)


def test_measured_mtf_condition_is_the_skin_air_mtf_of_the_volume(force):
    volume = read_volume(_scan(force, "siemens_br64f"))
    condition = MeasuredMTF()
    got = condition(volume.array, volume.spacing, volume.fov_mask, "siemens_br64f", TRUTH_DOMAIN)["mtf2d"]
    want = skin_air_mtf(volume.array, volume.spacing, fov_mask=volume.fov_mask).mtf2d(64)
    assert got.shape == (1, 1, 64, 64) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy()[0, 0], want, atol=1e-6)
    assert condition.last["mtf_source"] == "measured" and condition.last["accepted_profiles"] > 0
    # measured on each volume: another kernel's scan gives another map (its own skin-air MTF)
    smooth = read_volume(_scan(force, "siemens_br40f"))
    other = condition(smooth.array, smooth.spacing, smooth.fov_mask, "siemens_br40f", TRUTH_DOMAIN)["mtf2d"]
    np.testing.assert_allclose(other.numpy()[0, 0],
                               skin_air_mtf(smooth.array, smooth.spacing, fov_mask=smooth.fov_mask).mtf2d(64), atol=1e-6)
    assert np.abs(other - got).max() > 0.05


def test_unmeasurable_volume_errors_or_falls_back_to_the_design_mtf():
    air = np.full((2, 64, 64), -1000.0, np.float32)
    with pytest.raises(InputError, match="cannot measure the input's MTF") as err:
        MeasuredMTF()(air, (0.8, 0.8, 1.0), None, "siemens_br64f", TRUTH_DOMAIN)
    assert len(str(err.value).splitlines()) == 1
    fallback = MeasuredMTF(fallback="design")
    got = fallback(air, (0.8, 0.9, 1.0), None, "siemens_br64f", TRUTH_DOMAIN)["mtf2d"]
    np.testing.assert_array_equal(got.numpy()[0, 0], kernel_mtf2d("siemens_br64f", (0.9, 0.8)))  # (row, column)
    assert fallback.last == {"mtf_source": "design"}
    with pytest.raises(ValueError, match="fallback"):
        MeasuredMTF(fallback="zero")


def test_harmonize_volume_measures_the_mtf_and_harmonizes_every_slice(force):
    net = _net(2)
    harmonizer = SliceHarmonizer(MTFTranslator(net, KERNELS), HU_MIN, HU_MAX, device="cpu", condition=MeasuredMTF())
    assert needs_spacing(harmonizer) and target_domains(harmonizer) == (TRUTH_DOMAIN,)
    volume = read_volume(_scan(force, "siemens_br64f"))
    out = harmonize_volume(volume, harmonizer, "siemens_br64f", TRUTH_DOMAIN, "tiny mtf")
    mtf = skin_air_mtf(volume.array, volume.spacing, fov_mask=volume.fov_mask).mtf2d(64)
    want = by_hand(net, volume.array, mtf)
    inside = volume.fov_mask
    np.testing.assert_allclose(out.array[inside], want[inside], atol=0.05)
    np.testing.assert_array_equal(out.array[~inside], volume.array[~inside])
    assert out.header.extra["harmonized_to"] == TRUTH_DOMAIN
    # kernel -> kernel is refused before anything runs; so is a call without the spacing
    with pytest.raises(UnknownDomainError, match="target"):
        harmonize_volume(volume, harmonizer, "siemens_br64f", "siemens_br40f")
    with pytest.raises(ConfigError, match="spacing"):
        call_harmonizer(harmonizer, volume.array, "siemens_br64f", TRUTH_DOMAIN)
    with pytest.raises(ConfigError, match="spacing"):
        harmonizer(volume.array, "siemens_br64f", TRUTH_DOMAIN)


class _Recorder:
    """A condition that records the (shape, spacing) it is called with and returns a fixed MTF2D."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], tuple[float, ...]]] = []

    def __call__(self, volume_hu, spacing, fov_mask, source, target):
        self.calls.append((tuple(volume_hu.shape), tuple(spacing)))
        return {"mtf2d": torch.ones(1, 1, 64, 64)}


def test_spacing_policy_resampling_hands_the_resampled_spacing_to_the_condition(force):
    recorder = _Recorder()
    harmonizer = SliceHarmonizer(MTFTranslator(_net(3), KERNELS), HU_MIN, HU_MAX, device="cpu", condition=recorder)
    volume = read_volume(_scan(force, "siemens_br64f"))  # 3.906 mm pixels, 128^2
    harmonizer.spacing_policy = SpacingPolicy((1.9, 2.0))
    out = harmonize_volume(volume, harmonizer, "siemens_br64f", TRUTH_DOMAIN)
    assert out.shape == volume.shape and "resampled in-plane" in out.header.extra["spacing_resampled"]
    (shape, spacing), = recorder.calls
    assert shape[1:] == (250, 250)  # 500 mm at the coarsest grid not coarser than 2.0 mm
    assert spacing[:2] == pytest.approx((2.0, 2.0)) and spacing[2] == pytest.approx(volume.spacing[2])
    recorder.calls.clear()
    harmonizer.spacing_policy = SpacingPolicy((3.0, 4.0))  # inside: the volume's own spacing
    harmonize_volume(volume, harmonizer, "siemens_br64f", TRUTH_DOMAIN)
    assert recorder.calls == [(volume.shape, tuple(float(s) for s in volume.spacing))]


def test_checkpoint_selection_scores_paths_to_the_ground_truth(force, tmp_path):
    """``mse_<k>_truth``: mean over subjects of (LAA-950 of the harmonized scan − LAA-950 of the subject's ground
    truth)², both inside the datalist's lung mask; here with the identity-like harmonizer of the unit network."""
    from ctharmonize.evaluation.checkpoint_selection import ValidationSet
    from ctharmonize.metrics.emphysema import emphysema_measures

    entries = [e for e in json.loads(force.read_text())["data"] if e["kernel"] == "siemens_br64f" and e["dose"] == "high"
               and e["iterative_strength"] == 0]
    for e in entries:
        for key in ("image", "lung", "labels", "ground_truth"):
            e[key] = str(force.parent / e[key])
    assert len(entries) == 2
    validation = ValidationSet(entries, paths=[("siemens_br64f", TRUTH_DOMAIN)])
    assert validation.metric_names == ["mse_br64f_truth", "mld_br64f_truth"]
    recorder = _Recorder()
    harmonizer = SliceHarmonizer(MTFTranslator(_net(4), KERNELS), HU_MIN, HU_MAX, device="cpu", condition=recorder)
    got = validation.metrics(harmonizer)
    errors, mld = [], []
    for e in entries:
        scan, truth = read_volume(e["image"]), read_volume(e["ground_truth"])
        lung = read_volume(e["lung"]).array > 0
        out = harmonize_volume(scan, harmonizer, "siemens_br64f", TRUTH_DOMAIN).array
        a = emphysema_measures(out, lung, scan.spacing)["both"]
        b = emphysema_measures(truth.array, lung, truth.spacing)["both"]
        errors.append((a["laa_pct"] - b["laa_pct"]) ** 2)
        mld.append(abs(a["mean_hu"] - b["mean_hu"]))
    assert got["mse_br64f_truth"] == pytest.approx(float(np.mean(errors)), rel=1e-5, abs=1e-6)
    assert got["mld_br64f_truth"] == pytest.approx(float(np.mean(mld)), rel=1e-5, abs=1e-4)
