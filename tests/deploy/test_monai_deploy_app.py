"""The MONAI Deploy application (apps/deploy, ctharmonize.deploy) on a small simulated DICOM study.

A tiny random-weight CycleGAN bundle (Siemens B50f <-> B30f, written to a tmp folder) and a study of
two 32x32x4 CT series: one with kernel B50f, one with a kernel the domain registry does not know.
The SDK's ``DICOMSeriesSelectorOperator`` selects both (it cannot express the registry check); the
app harmonizes only the first, and its derived series must equal a local ``ctharmonize harmonize``
run. The MAP part is tested up to ``monai-deploy package`` (which needs Docker): the descriptor files,
and the staged app folder run the way a MAP runs it (``python3 APP`` with HOLOSCAN_* variables).
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from packaging.requirements import Requirement
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "io"))
sys.path.insert(0, str(REPO / "tests" / "bundles"))
from corpus_harness import dciodvfy_errors, one_line_error, snapshot  # noqa: E402
from tiny_bundle_config import inference_config, write_cyclegan_bundle  # noqa: E402

import ctharmonize  # noqa: E402
from ctharmonize.bundle.trust import UntrustedBundleError, check_bundle_trusted  # noqa: E402
from ctharmonize.cli import main as ctharmonize_main  # noqa: E402
from ctharmonize.deploy.app import main as app_main  # noqa: E402
from ctharmonize.io import read_volume  # noqa: E402

_spec = importlib.util.spec_from_file_location("io_series_fixtures", REPO / "tests" / "io" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
write_series = _fixtures.write_series

DOMAINS = ["siemens_b50f", "siemens_b30f"]
INFERENCE = inference_config(DOMAINS, "siemens_b30f")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOLOSCAN_", "CTHARMONIZE_"))}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A bundle folder with random CycleGAN weights (not trusted: tests pass the trust explicitly)."""
    return write_cyclegan_bundle(tmp_path_factory.mktemp("bundles") / "tiny_b50f_b30f", DOMAINS, INFERENCE["target_kernel"])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    """A study folder: series 2 (B50f, harmonizable) and series 5 (kernel Q99x, unknown to the registry)."""
    root = tmp_path_factory.mktemp("study")
    hu = (np.random.default_rng(0).integers(-2000, 3000, size=(4, 32, 32)) / 2.0).astype(np.float32)
    uid = generate_uid()
    b50f = write_series(root / "study" / "b50f", hu, extra={"StudyInstanceUID": uid, "ConvolutionKernel": "B50f",
                                                            "SeriesNumber": 2})
    unknown = write_series(root / "study" / "unknown", hu + 10, extra={"StudyInstanceUID": uid, "SeriesNumber": 5,
                                                                       "ConvolutionKernel": "Q99x"})
    return {"path": root / "study", "b50f": root / "study" / "b50f", "unknown": root / "study" / "unknown",
            "study_uid": uid, "series_uid": b50f["series_uid"], "unknown_uid": unknown["series_uid"], "hu": hu}


def _derived(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.startswith("."))


def _check_derived_series(folder: Path, study: dict, local: Path) -> None:
    """``folder`` is a valid derived series of the B50f series, with the pixel values of the local run."""
    assert dciodvfy_errors(folder) == []
    got, want = read_volume(folder), read_volume(local)
    np.testing.assert_allclose(got.array, want.array, atol=1e-3)
    assert np.abs(got.array - study["hu"]).max() > 10  # the model really ran
    datasets = [pydicom.dcmread(f) for f in sorted(folder.iterdir())]
    local_series = {pydicom.dcmread(f).SeriesInstanceUID for f in local.iterdir()}
    assert len(datasets) == 4
    assert {ds.StudyInstanceUID for ds in datasets} == {study["study_uid"]}
    series = {ds.SeriesInstanceUID for ds in datasets}
    assert len(series) == 1 and series.isdisjoint({study["series_uid"], study["unknown_uid"], *local_series})
    assert all(ds.ImageType[0] == "DERIVED" for ds in datasets)
    assert "siemens_b30f" in datasets[0].DerivationDescription
    assert len({ds.SOPInstanceUID for ds in datasets}) == 4


@pytest.fixture(scope="module")
def local_run(bundle, study, tmp_path_factory) -> Path:
    """``ctharmonize harmonize`` of the B50f series, for comparison."""
    out = tmp_path_factory.mktemp("local") / "harmonized"
    assert ctharmonize_main(["harmonize", "--bundle", str(bundle), "--input", str(study["b50f"]), "--out", str(out),
                             "--trust_bundle", "--quiet", "--device", "cpu"]) == 0
    return out


def test_app_harmonizes_the_series_the_registry_knows_like_ctharmonize_harmonize(bundle, study, local_run, tmp_path):
    before = snapshot(study["path"])
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "apps.deploy", "-i", str(study["path"]), "-o", str(out),
                           "-m", str(bundle), "--trust_bundle"], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    [folder] = _derived(out)
    assert folder.name == f"siemens_b30f_{study['series_uid']}"
    assert proc.stdout.splitlines() == [f"{folder}: {read_series_line(study)} siemens_b50f -> siemens_b30f"]
    # the SDK's selector picked the unknown-kernel series too; the registry follow-up check dropped it
    [skipped] = [line for line in proc.stderr.splitlines() if line.startswith("skipped")]
    assert study["unknown_uid"] in skipped and "kernel not in the domain registry" in skipped
    _check_derived_series(folder, study, local_run)
    assert snapshot(study["path"]) == before


def read_series_line(study: dict) -> str:
    return f"series 2 (UID {study['series_uid']}, 'Chest 1.0 B50f', 4 slices, kernel B50f)"


def _refused(capfd, args: list[str], *must_contain: str, absent: Path) -> str:
    capfd.readouterr()
    rc = app_main(args)
    out, err = capfd.readouterr()  # file descriptors: Holoscan's own log would show here too
    assert rc == 2, err
    assert out == ""
    assert not absent.exists(), f"{absent} was left behind"
    return one_line_error(err, *must_contain)


def test_app_runs_in_process_and_refuses_bad_input_in_one_line(bundle, study, local_run, tmp_path, capfd,
                                                               monkeypatch):
    for key in [k for k in os.environ if k.startswith(("HOLOSCAN_", "CTHARMONIZE_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CTHARMONIZE_HOME", str(tmp_path / "home"))  # no recorded trust
    args = ["-i", str(study["path"]), "-m", str(bundle)]
    out = tmp_path / "out"
    _refused(capfd, [*args, "-o", str(out)], str(bundle), "not a trusted bundle", absent=out)
    _refused(capfd, [*args, "-o", str(out), "--bogus"], "unrecognized arguments: --bogus", absent=out)
    _refused(capfd, ["-i", str(study["path"]), "-m", str(bundle / "models" / "model.pt"), "-o", str(out)],
             "model.pt", "expected a bundle folder", absent=out)
    _refused(capfd, [*args, "-o", str(study["b50f"] / "out"), "--trust_bundle"], "inside the input folder",
             absent=study["b50f"] / "out")
    _refused(capfd, ["-i", str(study["unknown"]), "-m", str(bundle), "-o", str(out), "--trust_bundle"],
             str(study["unknown"]), "no series to harmonize", "kernel not in the domain registry", absent=out)
    no_position = tmp_path / "no_position"  # PatientPosition empty: the SDK selector's orientation rule raises
    write_series(no_position, study["hu"], extra={"ConvolutionKernel": "B50f", "PatientPosition": ""})
    _refused(capfd, ["-i", str(no_position), "-m", str(bundle), "-o", str(out), "--trust_bundle"],
             str(no_position), "the MONAI Deploy pipeline failed (NotImplementedError: No support for PatientPosition",
             absent=out)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"selections": [{"name": "none", "conditions": {"SeriesDescription": "^nothing$"}}]}))
    _refused(capfd, [*args, "-o", str(out), "--trust_bundle", "--rules", str(rules)],
             f"no series matches the selection rules of {rules}", absent=out)

    monkeypatch.setenv("CTHARMONIZE_TRUST_BUNDLE", "1")  # the environment's trust, as a MAP runner could set
    assert app_main([*args, "-o", str(out)]) == 0
    [folder] = _derived(out)
    _check_derived_series(folder, study, local_run)
    first = pydicom.dcmread(next(folder.iterdir())).SeriesInstanceUID
    capfd.readouterr()
    assert app_main([*args, "-o", str(out)]) == 2  # a second run does not duplicate the series
    one_line_error(capfd.readouterr().err, str(folder), "output already exists")
    assert app_main([*args, "-o", str(out), "--overwrite"]) == 0
    assert _derived(out) == [folder]
    assert pydicom.dcmread(next(folder.iterdir())).SeriesInstanceUID != first


def _install_requires() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = [*cfg["options"]["install_requires"].splitlines(), *cfg["options.extras_require"]["deploy"].splitlines()]
    return {Requirement(line).name.lower() for line in (x.strip() for x in lines) if line and not line.startswith("#")}


def test_map_descriptor_and_the_staged_app_run_as_a_map_runs_it(bundle, study, local_run, tmp_path, monkeypatch):
    app = REPO / "apps" / "deploy"
    config = yaml.safe_load((app / "app.yaml").read_text())
    assert config["application"]["title"] and str(config["application"]["version"]) == ctharmonize.__version__
    assert config["application"]["inputFormats"] == config["application"]["outputFormats"] == ["file"]
    assert {"cpu", "gpu", "memory"} <= set(config["resources"])
    lines = [x.strip() for x in (app / "requirements.txt").read_text().splitlines()]
    requirements = {Requirement(x).name.lower(): Requirement(x) for x in lines if x and not x.startswith("#")}
    assert _install_requires() <= set(requirements), "the MAP would lack a runtime dependency of ctharmonize"
    pinned = (REPO / "constraints.txt").read_text().split("==")[1].strip()
    assert str(requirements["torch"].specifier) == f"=={pinned}"

    staged = tmp_path / "staged"
    monkeypatch.setenv("CTHARMONIZE_HOME", str(tmp_path / "home"))
    assert ctharmonize_main(["stage-deploy-app", "--bundle", str(bundle), "--out", str(staged)]) == 2  # untrusted
    assert not staged.exists()
    assert ctharmonize_main(["stage-deploy-app", "--bundle", str(bundle), "--out", str(staged), "--trust_bundle"]) == 0
    assert sorted(p.name for p in (staged / "app").iterdir()) == ["__main__.py", "app.yaml", "ctharmonize",
                                                                  "ctharmonize_home", "requirements.txt"]
    model = staged / "models" / bundle.name
    assert (model / "models" / "model.pt").read_bytes() == (bundle / "models" / "model.pt").read_bytes()

    out = tmp_path / "map_output"
    proc = subprocess.run([sys.executable, str(staged / "app"), "-l", "INFO"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env=_env(HOLOSCAN_INPUT_PATH=str(study["path"]), HOLOSCAN_OUTPUT_PATH=str(out),
                                   HOLOSCAN_MODEL_PATH=str(staged / "models")))
    assert proc.returncode == 0, proc.stderr
    assert f"ctharmonize {ctharmonize.__version__} from {staged / 'app' / 'ctharmonize'}" in proc.stderr
    [folder] = _derived(out)
    _check_derived_series(folder, study, local_run)

    # the staged trust record covers exactly the staged bundle: a changed config is refused
    monkeypatch.setenv("CTHARMONIZE_HOME", str(staged / "app" / "ctharmonize_home"))
    check_bundle_trusted(model)
    config_file = model / "configs" / "inference.json"
    config_file.write_text(config_file.read_text() + "\n")
    with pytest.raises(UntrustedBundleError):
        check_bundle_trusted(model)
