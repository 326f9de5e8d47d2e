"""Bundle zoo packaging and download: package-bundle -> a loopback HTTP server -> MONAI's download and
ctharmonize's verified download-bundle -> harmonize; tampered weights and zip-slip entries refused."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ctharmonize.cli import main
from ctharmonize.inference import harmonize_volume, load_bundle_harmonizer
from ctharmonize.io import read_volume, write_volume

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))
from multipath_sim_data import simulated_scans, tiny_generator  # noqa: E402
from tiny_multipath_bundle import write_tiny_bundle  # noqa: E402

NAME = "tiny_multipath_ct_harmonization"
STEM = f"{NAME}_v0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on stderr
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """A loopback HTTP server on a free port serving ``folder``; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Trust record and temporary files inside tmp_path; loopback never through a proxy."""
    monkeypatch.setenv("CTHARMONIZE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    return systmp


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]




def test_package_serve_download_then_harmonize(tmp_path, env, capsys):
    bundle = write_tiny_bundle(tmp_path / "src")
    www = tmp_path / "www"
    www.mkdir()
    scan = tmp_path / "ge_bone.nii.gz"
    write_volume(simulated_scans(7, "ge", size=32, slices=2)["ge_bone"], scan, sidecar=True)
    with serve(www) as base:
        release = www / "release"
        assert main(["package-bundle", "--bundle", str(bundle), "--out", str(release),
                     "--weights_url", f"{base}/release/"]) == 0
        summary = capsys.readouterr().out
        code = summary.split("code sha256 ")[1].split()[0]

        # model-zoo layout: <name>/configs, docs, LICENSE, large_files.yml; no weights inside
        zip_path = release / f"{STEM}.zip"
        names = zipfile.ZipFile(zip_path).namelist()
        assert {f"{NAME}/configs/metadata.json", f"{NAME}/configs/inference.json", f"{NAME}/LICENSE",
                f"{NAME}/docs/README.md", f"{NAME}/large_files.yml"} <= set(names)
        assert all(n.startswith(f"{NAME}/") for n in names) and not any("/models/" in n for n in names)
        listing = yaml.safe_load(zipfile.ZipFile(zip_path).read(f"{NAME}/large_files.yml"))["large_files"]
        weights = bundle / "models" / "model.pt"
        assert listing == [{"path": "models/model.pt", "url": f"{base}/release/{STEM}_models_model.pt",
                            "hash_val": _sha256(weights), "hash_type": "sha256"}]
        assert (release / f"{STEM}_models_model.pt").read_bytes() == weights.read_bytes()
        sums = (release / "SHA256SUMS").read_text().splitlines()
        assert f"{_sha256(zip_path)}  {STEM}.zip" in sums
        # the same bundle packaged again gives the same zip bytes
        assert main(["package-bundle", str(bundle), str(tmp_path / "again"), f"{base}/release"]) == 0
        assert (tmp_path / "again" / f"{STEM}.zip").read_bytes() == zip_path.read_bytes()
        zip_url = f"{base}/release/{STEM}.zip"

        # MONAI's own downloader, offline from the loopback server: configs by zip, weights by large_files.yml
        monai_dir = tmp_path / "monai_download"
        res = subprocess.run([sys.executable, "-m", "monai.bundle", "download", "--name", NAME, "--url", zip_url,
                              "--bundle_dir", str(monai_dir), "--progress", "False"],
                             capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, NO_PROXY="127.0.0.1,localhost", PYTHONWARNINGS="ignore"))
        assert res.returncode == 0, res.stdout + res.stderr
        assert (monai_dir / NAME / "configs" / "inference.json").is_file()
        assert not (monai_dir / NAME / "models" / "model.pt").exists()
        from monai.bundle import download_large_files

        download_large_files(bundle_path=str(monai_dir / NAME))
        assert (monai_dir / NAME / "models" / "model.pt").read_bytes() == weights.read_bytes()

        # ctharmonize's download: verified, trusted only when asked
        untrusted = tmp_path / "installed" / "untrusted"
        assert main(["download-bundle", "--url", zip_url, "--out", str(untrusted), "--quiet"]) == 0
        assert "NOT trusted" in capsys.readouterr().out
        assert not (tmp_path / "home" / "trusted_bundles.json").exists()
        out = tmp_path / "h_untrusted.nii.gz"
        assert main(["harmonize", "--bundle", str(untrusted), "--input", str(scan), "--out", str(out), "--quiet"]) == 2
        assert "not a trusted bundle" in _one_line_error(capsys) and not out.exists()

        installed = tmp_path / "installed" / NAME
        assert main(["download-bundle", "--url", zip_url, "--out", str(installed), "--quiet", "--trust",
                     "--code_sha256", code]) == 0
        assert f"code sha256 {code}; trusted" in capsys.readouterr().out
    record = json.loads((tmp_path / "home" / "trusted_bundles.json").read_text())
    assert record[code]["path"] == str(installed.resolve()) and zip_url in record[code]["source"]
    assert (installed / "models" / "model.pt").read_bytes() == weights.read_bytes()
    assert not any(env.iterdir()), "download left temporary files"

    harmonized = tmp_path / "harmonized.nii.gz"
    assert main(["harmonize", "--bundle", str(installed), "--input", str(scan), "--out", str(harmonized),
                 "--quiet"]) == 0
    volume = read_volume(scan)
    want = harmonize_volume(volume, load_bundle_harmonizer(bundle, trust=True), "ge_bone", "siemens_b30f").array
    got = read_volume(harmonized).array
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.abs(got - volume.array).max() > 1  # the random network changed the image


def test_tampered_weights_and_zip_are_refused_and_leave_nothing(tmp_path, env, capsys):
    bundle = write_tiny_bundle(tmp_path / "src")
    release = tmp_path / "release"
    assert main(["package-bundle", "--bundle", str(bundle), "--out", str(release),
                 "--weights_url", release.as_uri()]) == 0
    capsys.readouterr()
    published = release / f"{STEM}_models_model.pt"
    torch.save(tiny_generator(seed=1).state_dict(), published)  # other, valid weights: only the hash tells
    out = tmp_path / "installed" / NAME
    zip_url = (release / f"{STEM}.zip").as_uri()
    assert main(["download-bundle", "--url", zip_url, "--out", str(out), "--quiet", "--trust"]) == 2
    line = _one_line_error(capsys)
    assert published.as_uri() in line and "sha256" in line and "tampered" in line
    assert not (tmp_path / "installed").exists() and not any(env.iterdir())
    assert not (tmp_path / "home" / "trusted_bundles.json").exists()

    # the zip itself against --sha256
    assert main(["download-bundle", "--url", zip_url, "--out", str(out), "--quiet", "--sha256", "0" * 64]) == 2
    assert "does not match --sha256" in _one_line_error(capsys)
    assert not (tmp_path / "installed").exists() and not any(env.iterdir())


@pytest.mark.parametrize("evil", ["../evil.txt", "/ABS/evil.txt", "symlink"])
def test_zip_slip_entries_are_refused_before_extraction(tmp_path, env, capsys, evil):
    bundle = write_tiny_bundle(tmp_path / "src")
    release = tmp_path / "release"
    assert main(["package-bundle", "--bundle", str(bundle), "--out", str(release),
                 "--weights_url", release.as_uri()]) == 0
    capsys.readouterr()
    good = zipfile.ZipFile(release / f"{STEM}.zip")
    bad = tmp_path / "bad.zip"
    target = tmp_path / "evil.txt"
    with zipfile.ZipFile(bad, "w") as zf:
        for info in good.infolist():
            zf.writestr(info, good.read(info))
        if evil == "symlink":
            name = f"{NAME}/configs/link.json"
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, str(target))
        else:
            name = evil.replace("/ABS", str(tmp_path)) if evil.startswith("/ABS") else f"{NAME}/../../{evil}"
            zf.writestr(name, "pwned")
    out = tmp_path / "installed" / NAME
    assert main(["download-bundle", "--url", bad.as_uri(), "--out", str(out), "--quiet", "--trust"]) == 2
    line = _one_line_error(capsys)
    assert f"unsafe zip entry {name!r}" in line and "nothing was extracted" in line
    assert not target.exists() and not (tmp_path.parent / "evil.txt").exists()
    assert not (tmp_path / "installed").exists() and not any(env.iterdir())


def test_package_refuses_bad_metadata_before_writing(tmp_path, capsys):
    bundle = write_tiny_bundle(tmp_path / "src")
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    del meta["network_data_format"]
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    assert main(["package-bundle", str(bundle), str(tmp_path / "release"), "http://127.0.0.1:1/"]) == 2
    assert "metadata.json" in _one_line_error(capsys) and not (tmp_path / "release").exists()
    assert main(["package-bundle", str(bundle), str(tmp_path / "release"), "ftp://host/x"]) == 2
    assert "not a usable --weights_url" in _one_line_error(capsys)
