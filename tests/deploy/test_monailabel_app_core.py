"""The MONAI Label app's harmonization core (apps/monailabel/lib/bundle_harmonization.py), without MONAI Label.

MONAI Label 0.8.5 needs its own 7.5 GB environment, so CI never starts the server:
apps/monailabel/run_integration_test.sh does that by hand (docs/deployment.md). What CI checks here is
what the server's infer task runs: which bundles of a folder become models, and that a request's
volume equals `ctharmonize harmonize` on the same input.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ctharmonize.cli import main as ctharmonize_main
from ctharmonize.inference import ensure_sample_volume

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "apps" / "monailabel"
BUNDLES = REPO / "bundles"
MULTIPATH = BUNDLES / "multipath_cyclegan_ct_harmonization"


def _load_core():
    """apps/monailabel/lib/bundle_harmonization.py as a module (the app folder is not a package)."""
    name = "ctharmonize_monailabel_core"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, APP / "lib" / "bundle_harmonization.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


core = _load_core()
REPO_BUNDLES = sorted(p.name for p in BUNDLES.iterdir() if (p / "configs" / "inference.json").is_file())


@pytest.fixture(autouse=True)
def _no_user_trust_records(tmp_path, monkeypatch):
    """A user's recorded trust must not decide these tests."""
    monkeypatch.setenv("CTHARMONIZE_HOME", str(tmp_path / "ctharmonize_home"))


@pytest.fixture(scope="module")
def ct(tmp_path_factory) -> Path:
    """A small simulated GE BONE chest CT with its JSON sidecar (Manufacturer, ConvolutionKernel)."""
    path = tmp_path_factory.mktemp("study") / "chest_ct.nii.gz"
    return Path(ensure_sample_volume(path, kernel="ge_bone", size=64, slices=4, seed=3))


def _reference(bundle: Path, image: Path, out: Path, *extra: str) -> np.ndarray:
    """`ctharmonize harmonize` (the CLI's own entry point) on the same input."""
    assert ctharmonize_main(["harmonize", "--bundle", str(bundle), "--input", str(image), "--out", str(out),
                             "--device", "cpu", "--quiet", *extra]) == 0
    return nib.load(str(out))


def test_every_bundle_of_the_repository_is_served():
    assert "multipath_cyclegan_ct_harmonization" in REPO_BUNDLES
    found = core.find_bundles(BUNDLES)
    assert sorted(found) == REPO_BUNDLES
    assert all(found[name] == (BUNDLES / name).resolve() for name in found)
    served, refused = core.serve_bundles(BUNDLES)
    assert sorted(served) == REPO_BUNDLES and refused == {}


def test_which_folders_become_models(tmp_path):
    folder = tmp_path / "bundles"
    shutil.copytree(MULTIPATH, folder / "copy_of_multipath", ignore=shutil.ignore_patterns("sample", "eval"))
    (folder / "notes").mkdir()
    (folder / "notes" / "README.md").write_text("not a bundle\n")
    (folder / "segmenter" / "configs").mkdir(parents=True)
    (folder / "segmenter" / "configs" / "inference.json").write_text(json.dumps({"network_def": {}}))
    (folder / "broken" / "configs").mkdir(parents=True)
    (folder / "broken" / "configs" / "inference.json").write_text("{not json")
    edited = folder / "edited_multipath"
    shutil.copytree(folder / "copy_of_multipath", edited)
    config = edited / "configs" / "inference.json"
    config.write_text(config.read_text().replace('"amp": "auto"', '"amp": "none"'))

    assert sorted(core.find_bundles(folder)) == ["copy_of_multipath", "edited_multipath"]
    served, refused = core.serve_bundles(folder)
    assert list(served) == ["copy_of_multipath"]  # an unchanged copy of a shipped bundle is trusted
    assert list(refused) == ["edited_multipath"] and "not a trusted bundle" in refused["edited_multipath"]
    served, refused = core.serve_bundles(folder, trust=True)
    assert sorted(served) == ["copy_of_multipath", "edited_multipath"] and refused == {}
    with pytest.raises(core.ConfigError, match="no such bundles folder"):
        core.find_bundles(tmp_path / "missing")


@pytest.mark.parametrize("name", REPO_BUNDLES)
def test_request_volume_equals_ctharmonize_harmonize(name, ct, tmp_path):
    bundle = BUNDLES / name
    ref = _reference(bundle, ct, tmp_path / "ref" / "ref.nii.gz")
    task = core.BundleHarmonization(bundle)
    out_dir = tmp_path / "served"
    out_dir.mkdir()
    result = task.harmonize_file(ct, out=out_dir / "by_id.nii.gz", device="cpu")  # source from the sidecar
    got = nib.load(str(result.path))
    assert (result.source, result.target) == ("ge_bone", task.default_target)
    assert result.json()["unit"] == "HU" and result.slices == 4
    assert got.get_data_dtype() == np.float32
    assert got.shape == ref.shape and np.allclose(got.affine, ref.affine, atol=1e-6)
    got_hu, ref_hu = np.asarray(got.dataobj), np.asarray(ref.dataobj)
    assert np.abs(got_hu - ref_hu).max() <= 1e-3
    assert np.abs(got_hu - np.asarray(nib.load(str(ct)).dataobj)).max() > 1.0  # it did harmonize
    assert sorted(p.name for p in out_dir.iterdir()) == ["by_id.nii.gz"]  # no sidecar, record or staging left

    # an upload has no sidecar: the request's source (a config choice arrives as a list) decides
    upload = tmp_path / "upload" / "tmpabc.nii.gz"
    upload.parent.mkdir()
    shutil.copyfile(ct, upload)
    result = task.harmonize_file(upload, out=tmp_path / "upload.nii.gz", source=["ge_bone", "ge_standard"],
                                 device="cpu")
    assert result.source == "ge_bone"
    assert np.abs(np.asarray(nib.load(str(result.path)).dataobj) - ref_hu).max() <= 1e-3


def test_explicit_target_equals_ctharmonize_harmonize(ct, tmp_path):
    task = core.BundleHarmonization(MULTIPATH)
    target = next(d for d in task.domains() if d not in ("ge_bone", task.default_target))
    ref = _reference(MULTIPATH, ct, tmp_path / "ref.nii.gz", "--target", target)
    result = task.harmonize_file(ct, source="header", target=target, device="cpu")
    default = task.harmonize_file(ct, target="", device="cpu")
    try:
        assert (result.target, default.target) == (target, task.default_target)
        got = np.asarray(nib.load(str(result.path)).dataobj)
        assert np.abs(got - np.asarray(ref.dataobj)).max() <= 1e-3
        assert np.abs(got - np.asarray(nib.load(str(default.path)).dataobj)).max() > 1.0
    finally:
        result.path.unlink()
        default.path.unlink()


def test_bad_requests_are_one_line_errors_naming_the_parameter(ct, tmp_path):
    task = core.BundleHarmonization(MULTIPATH)
    bare = tmp_path / "bare.nii.gz"
    shutil.copyfile(ct, bare)  # no sidecar: no Manufacturer / ConvolutionKernel
    with pytest.raises(core.RequestError) as err:
        task.harmonize_file(bare, out=tmp_path / "a.nii.gz")
    message = str(err.value)
    assert "\n" not in message and "'source'" in message and all(d in message for d in task.domains())
    with pytest.raises(core.RequestError, match="unknown|not one"):
        task.harmonize_file(ct, out=tmp_path / "b.nii.gz", target="no_such_kernel")
    with pytest.raises(core.RequestError, match="unknown|not one"):
        task.harmonize_file(bare, out=tmp_path / "c.nii.gz", source="no_such_kernel")
    with pytest.raises(core.RequestError, match=r"\.nii"):
        task.harmonize_file(ct, out=tmp_path / "d.nrrd")
    with pytest.raises(core.RequestError, match="no such file"):
        task.harmonize_file(tmp_path / "missing.nii.gz", out=tmp_path / "e.nii.gz")
    assert not any(tmp_path.glob("[abcde].*"))


def test_untrusted_bundle_is_not_loaded(tmp_path):
    edited = tmp_path / "edited"
    shutil.copytree(MULTIPATH, edited, ignore=shutil.ignore_patterns("sample", "eval"))
    config = edited / "configs" / "inference.json"
    config.write_text(config.read_text().replace('"amp": "auto"', '"amp": "none"'))
    with pytest.raises(core.ConfigError, match="not a trusted bundle"):
        core.BundleHarmonization(edited)
    assert core.BundleHarmonization(edited, trust=True).default_target
