"""The MONAI bundle workflows in tools/ parse, resolve their targets and run end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from monai.bundle import ConfigParser

from ctharmonize.evaluation import run_evaluation
from ctharmonize.io import read_volume

TOOLS = Path(__file__).resolve().parents[2] / "tools"
WORKFLOWS = ["segment_lungs", "emphysema", "body_composition", "evaluate", "select_checkpoint", "benchmark", "radiomics",
             "sensitivity", "posthoc_dice", "two_way_fid", "truth_table"]


def _bundle_run(config: str, **overrides) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(TOOLS / f"{config}.json")]
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_config_parses_and_targets_resolve(name):
    parser = ConfigParser()
    parser.read_config(TOOLS / f"{name}.json")
    parser.read_meta(TOOLS / "metadata.json")
    assert isinstance(parser["run"], list) and parser["run"]
    for key, value in parser.config.items():
        if isinstance(value, dict) and "_target_" in value:
            assert callable(parser.get_parsed_content(key)), key  # "_mode_": "callable" -> importable callable


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    from ctharmonize.simulation import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("tools") / "sim", subjects=1, size=64, slices=8, seed=1,
                            progress=False)


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flatten(sub, f"{prefix}/{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _flatten(sub, f"{prefix}[{i}]").items()}
    return {prefix: tree}


def test_evaluate_workflow_matches_python_api(datalist, tmp_path):
    _bundle_run("evaluate", datalist=datalist, output_dir=tmp_path / "bundle_report", n_resamples=50)
    run_evaluation(datalist, tmp_path / "api_report", n_resamples=50, progress=False)
    from_bundle = json.loads((tmp_path / "bundle_report" / "summary.json").read_text())
    direct = json.loads((tmp_path / "api_report" / "summary.json").read_text())
    from_bundle.pop("settings")
    direct.pop("settings")
    # identical computations; only float round-off may differ (multi-threaded BLAS reductions in another process)
    flat_bundle, flat_direct = _flatten(from_bundle), _flatten(direct)
    assert flat_bundle.keys() == flat_direct.keys()
    for key, value in flat_direct.items():
        if isinstance(value, float):
            assert flat_bundle[key] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), key
        else:
            assert flat_bundle[key] == value, key
    for name in ("per_scan.csv", "report.md", "bland_altman_laa.png", "laa_boxplot.png", "example_panel.png"):
        assert (tmp_path / "bundle_report" / name).is_file()


def test_emphysema_and_segment_lungs_workflows(datalist, tmp_path):
    doc = json.loads(datalist.read_text())
    entry = next(e for e in doc["data"] if e["kernel"] == "siemens_b50f")
    image = datalist.parent / entry["image"]
    lung_out = tmp_path / "lung.nii.gz"
    _bundle_run("segment_lungs", input=image, output=lung_out)
    from ctharmonize.segmentation import segment_lungs

    expected = segment_lungs(read_volume(image), backend="threshold")
    np.testing.assert_array_equal(np.rint(read_volume(lung_out).array).astype(np.uint8), expected)

    _bundle_run("emphysema", input=image, lung=lung_out, output=tmp_path / "emph.json")
    measures = json.loads((tmp_path / "emph.json").read_text())["measures"]
    hu = read_volume(image).array
    inside = expected > 0
    assert measures["both"]["laa_pct"] == pytest.approx(100.0 * np.count_nonzero(hu[inside] < -950) / inside.sum(), abs=1e-6)
