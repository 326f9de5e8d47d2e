"""TotalSegmentator backends: clear errors without the package, label mappings on synthetic maps."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.segmentation import body_composition, segment_lungs
from ctharmonize.segmentation.body_composition_totalsegmentator import canonical_code, names_to_canonical
from ctharmonize.segmentation.lung_totalsegmentator import lobes_to_lungs

HAS_TOTALSEG = importlib.util.find_spec("totalsegmentator") is not None


def test_lobes_to_lungs_mapping():
    names = {10: "lung_upper_lobe_left", 11: "lung_lower_lobe_left", 12: "lung_upper_lobe_right",
             13: "lung_middle_lobe_right", 14: "lung_lower_lobe_right", 5: "liver", 51: "heart"}
    labels = np.array([[[0, 10, 11, 12], [13, 14, 5, 51]]], dtype=np.int16)
    expected = np.array([[[0, 2, 2, 1], [1, 1, 0, 0]]], dtype=np.uint8)
    out = lobes_to_lungs(labels, names)
    assert out.dtype == np.uint8 and np.array_equal(out, expected)


def test_tissue_names_to_canonical_codes():
    names = {1: "subcutaneous_fat", 2: "torso_fat", 3: "skeletal_muscle", 4: "rib_left_3", 5: "vertebrae_T7",
             6: "heart", 7: "aorta", 8: "autochthon_left", 9: "liver", 10: "lung_middle_lobe_right", 11: "trachea"}
    labels = np.arange(12, dtype=np.int32).reshape(1, 3, 4)
    out = names_to_canonical(labels, names)
    assert out.ravel().tolist() == [0, 6, 7, 5, 8, 8, 10, 11, 5, 0, 1, 3]
    assert canonical_code("sternum") == 8 and canonical_code("spleen") == 0


@pytest.mark.skipif(HAS_TOTALSEG, reason="checks the message shown when totalsegmentator is absent")
def test_missing_package_is_one_line_config_error():
    with pytest.raises(ConfigError) as err:
        segment_lungs(np.zeros((2, 16, 16)), backend="totalsegmentator", name="ct.nii.gz")
    msg = str(err.value)
    assert msg.startswith("ct.nii.gz: ") and "totalsegmentator" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="not installed"):
        body_composition(np.zeros((2, 16, 16)), backend="totalsegmentator")


def test_missing_weights_is_weights_error(tmp_path, monkeypatch):
    """With the package importable but no weights, the error names the results folder."""
    import sys
    import types

    pkg = types.ModuleType("totalsegmentator")
    api = types.ModuleType("totalsegmentator.python_api")
    api.totalsegmentator = lambda *a, **k: None  # a stand-in for the absent package, not for our code
    pkg.python_api = api
    monkeypatch.setitem(sys.modules, "totalsegmentator", pkg)
    monkeypatch.setitem(sys.modules, "totalsegmentator.python_api", api)
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path / "ts"))
    with pytest.raises(WeightsError) as err:
        segment_lungs(np.zeros((2, 16, 16)), backend="totalsegmentator")
    assert str(tmp_path / "ts" / "nnunet" / "results") in str(err.value)
