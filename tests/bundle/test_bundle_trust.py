"""Bundle trust (a bundle config is code) and bundles that resolve their files from their own location."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from corpus_harness import expect_refusal, run_cli, snapshot  # noqa: E402

from ctharmonize.bundle import bundle_code_digest, check_bundle_trusted  # noqa: E402
from ctharmonize.bundle.trust import UntrustedBundleError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "multipath_cyclegan_ct_harmonization"


@pytest.fixture(autouse=True)
def trust_home(tmp_path, monkeypatch):
    """Each test gets its own empty trusted-bundles record."""
    home = tmp_path / "home"
    monkeypatch.setenv("CTHARMONIZE_HOME", str(home))
    return home


@pytest.fixture
def scan(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "scan.nii.gz"
    hu = np.random.default_rng(0).uniform(-1000, 400, size=(24, 24, 2)).astype(np.float32)
    nib.save(nib.Nifti1Image(hu, np.diag([-0.7, -0.7, 2.0, 1.0])), path)
    return path


def _copy_bundle(dest: Path) -> Path:
    shutil.copytree(BUNDLE, dest, ignore=shutil.ignore_patterns("eval", "sample", "sample_data", "train_output*",
                                                                "candidates", "add_domain", "__pycache__"))
    return dest


def _evil_copy(tmp_path: Path, marker: Path) -> Path:
    bundle = _copy_bundle(tmp_path / "untrusted" / BUNDLE.name)
    config_file = bundle / "configs" / "inference.json"
    config = json.loads(config_file.read_text())
    # a shell command, run when the config is parsed (os.system returns 0, so the path is kept)
    config["ckpt_path"] = ("$os.path.join(@bundle_root, 'models', 'model.pt') if not "
                           f"os.system('touch {marker}') else ''")
    config_file.write_text(json.dumps(config, indent=4))
    return bundle


def _harmonize(bundle: Path, scan: Path, out: Path, *extra: str) -> list[str]:
    return ["harmonize", "--bundle", str(bundle), "--input", str(scan), "--out", str(out), "--source", "ge_bone",
            "--device", "cpu", "--quiet", *extra]


def test_a_config_that_runs_code_is_refused_unless_trusted(capsys, tmp_path, scan):
    marker = tmp_path / "MARKER"
    bundle = _evil_copy(tmp_path, marker)
    out = tmp_path / "out" / "h.nii.gz"
    expect_refusal(capsys, _harmonize(bundle, scan, out), str(bundle), "not a trusted bundle", "--trust_bundle",
                   watch=tmp_path, absent=[marker, out])
    # the explicit decision is the only thing that stood in the way: with it the config runs
    rc, _, err = run_cli(capsys, *_harmonize(bundle, scan, out, "--trust_bundle"))
    assert rc == 0, err
    assert marker.exists() and out.exists()


def test_recorded_trust_is_withdrawn_by_any_change(capsys, tmp_path, scan, trust_home):
    marker = tmp_path / "MARKER"
    bundle = _evil_copy(tmp_path, marker)
    rc, out_text, err = run_cli(capsys, "trust-bundle", "--bundle", bundle)
    assert rc == 0, err
    digest = bundle_code_digest(bundle)
    assert digest in out_text
    assert digest in json.loads((trust_home / "trusted_bundles.json").read_text())
    assert check_bundle_trusted(bundle).startswith("recorded")
    (bundle / "configs" / "helper.py").write_text("import os\n")  # code added after the review
    with pytest.raises(UntrustedBundleError):
        check_bundle_trusted(bundle)
    (bundle / "configs" / "helper.py").unlink()
    assert check_bundle_trusted(bundle).startswith("recorded")
    assert not marker.exists()  # recording trust runs nothing


def test_shipped_bundle_and_identical_copies_are_trusted(tmp_path):
    assert check_bundle_trusted(BUNDLE) == "shipped with ctharmonize"
    copy = _copy_bundle(tmp_path / "copy" / "renamed_bundle")
    assert check_bundle_trusted(copy) == f"identical to the shipped bundle {BUNDLE.name}"
    # weights and docs are data, not code: changing them keeps the copy trusted
    (copy / "docs" / "README.md").write_text("local notes")
    assert check_bundle_trusted(copy).startswith("identical")


def _perturbed_weights(path: Path) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(0)
    noisy = {k: v + 0.05 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
             for k, v in state.items()}
    torch.save(noisy, path)


def test_a_copied_bundle_uses_its_own_weights_from_any_working_directory(capsys, tmp_path, scan):
    """``monai.bundle run`` of a copy's config, started in an unrelated folder, resolves bundle_root to the
    copy: it reads the copy's model.pt (different weights -> a different result than the original's)."""
    copy = _copy_bundle(tmp_path / "elsewhere" / BUNDLE.name)
    _perturbed_weights(copy / "models" / "model.pt")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    outputs = {}
    for name, bundle in (("original", BUNDLE), ("copy", copy)):
        out = tmp_path / f"{name}.nii.gz"
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(bundle / "configs" / "inference.json"),
               "--meta_file", str(bundle / "configs" / "metadata.json"), "--input_path", str(scan),
               "--output_path", str(out), "--source_kernel", "ge_bone", "--device", "cpu"]
        before = snapshot(bundle)
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert snapshot(bundle) == before  # nothing written into the bundle
        outputs[name] = np.asarray(nib.load(out).dataobj)
    assert not list(cwd.iterdir())  # nothing written where it was started
    assert np.abs(outputs["copy"] - outputs["original"]).max() > 1.0
    # the same copy through ctharmonize harmonize --bundle gives the same result as MONAI's run
    out = tmp_path / "via_cli.nii.gz"
    rc, _, err = run_cli(capsys, *_harmonize(copy, scan, out), cwd=cwd)
    assert rc == 0, err
    np.testing.assert_allclose(np.asarray(nib.load(out).dataobj), outputs["copy"], atol=1e-3)
