"""datalist_entries: one way to get entries from a file or a list, filtered by split."""

import json

import pytest

from ctharmonize.data import datalist_entries
from ctharmonize.errors import ConfigError


def test_file_and_list_with_split(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"x")
    (tmp_path / "b.nii.gz").write_bytes(b"x")
    doc = {"data": [{"image": "a.nii.gz", "split": "train"}, {"image": "b.nii.gz", "split": "test"}]}
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(doc))
    entries, source = datalist_entries(path, "test")
    assert source == path and [e["image"] for e in entries] == [str(tmp_path / "b.nii.gz")]
    everything, _ = datalist_entries(path, "all")
    assert len(everything) == 2 and everything == datalist_entries(path, None)[0]
    given = [{"image": "x", "split": "validation"}, {"image": "y"}]
    kept, source = datalist_entries(given, "validation")
    assert source is None and kept == [{"image": "x", "split": "validation"}]
    kept[0]["image"] = "changed"
    assert given[0]["image"] == "x"  # entries are copies: callers' lists are never modified
    with pytest.raises(ConfigError, match="unknown split 'tset'"):
        datalist_entries(given, "tset")
