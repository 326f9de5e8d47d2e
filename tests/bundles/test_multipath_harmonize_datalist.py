"""harmonize_datalist: which entries are harmonized, to what, and where."""

import json

import pytest
import torch
from multipath_sim_data import write_test_split

from ctharmonize.errors import DatalistError
from ctharmonize.inference import SliceHarmonizer, harmonize_datalist
from ctharmonize.networks import MultipathGenerator


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hd")
    path = write_test_split(folder, subjects_per_vendor=1, size=32, slices=2)
    doc = json.loads(path.read_text())
    for entry in doc["data"]:
        if entry["vendor"] == "ge":
            entry["split"] = "train"
    path.write_text(json.dumps(doc))
    return path


def _generator():
    torch.manual_seed(0)
    return SliceHarmonizer(MultipathGenerator(ngf=4, n_blocks=1), device="cpu")


def test_split_filter_and_all(datalist, tmp_path):
    entries = harmonize_datalist(_generator(), datalist, tmp_path / "a", "siemens_b30f", split="test", progress=False)
    assert sorted(e["kernel"] for e in entries) == ["siemens_b30f", "siemens_b50f"]
    assert [e["target"] for e in entries if "harmonized" in e] == ["siemens_b30f"]
    everything = harmonize_datalist(_generator(), datalist, tmp_path / "b", "siemens_b30f", split="all", progress=False)
    harmonized = sorted(e["kernel"] for e in everything if "harmonized" in e)
    assert harmonized == ["ge_bone", "ge_standard", "siemens_b50f"]  # all but the target kernel itself
    assert len(list((tmp_path / "b").glob("*.nii.gz"))) == 3
    with pytest.raises(DatalistError, match="no entries in split 'validation'"):
        harmonize_datalist(_generator(), datalist, tmp_path / "c", "siemens_b30f", split="validation", progress=False)
