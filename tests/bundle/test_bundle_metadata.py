import copy
import json
from pathlib import Path

import jsonschema
import pytest

from ctharmonize.bundle import METADATA_SCHEMA_FILE, find_bundles, verify_bundle_metadata
from ctharmonize.cli import main
from ctharmonize.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

EXAMPLE = {
    # an unreachable URL: verification passing proves that nothing was downloaded
    "schema": "https://invalid.invalid/meta_schema.json",
    "version": "0.2.0",
    "changelog": {"0.2.0": "retrained", "0.1.0": "first version"},
    "monai_version": "1.6.1",
    "pytorch_version": "2.13.0",
    "numpy_version": "2.1.3",
    "required_packages_version": {"ctharmonize": "0.1.0", "nibabel": "5.3.2"},
    "optional_packages_version": {},
    "name": "Example kernel harmonization",
    "task": "Chest CT kernel harmonization",
    "description": "Maps sharp-kernel chest CT slices to a soft kernel.",
    "authors": ["A. Author", "B. Author"],
    "copyright": "Copyright (c) the authors",
    "data_source": "simulated",
    "data_type": "nibabel",
    "intended_use": "research only",
    "references": ["Someone et al. 2024"],
    "network_data_format": {
        "inputs": {"image": {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1,
                             "spatial_shape": ["16*n", "16*n"], "dtype": "float32", "value_range": [-1, 1],
                             "is_patch_data": False, "channel_def": {"0": "image"}}},
        "outputs": {"pred": {"type": "image", "format": "hounsfield", "num_channels": 1,
                             "spatial_shape": ["16*n", "16*n"], "dtype": "float32", "value_range": [-1, 1],
                             "is_patch_data": False, "channel_def": {"0": "image"}}},
    },
}


def _bundle(tmp_path, meta, name="example"):
    configs = tmp_path / name / "configs"
    configs.mkdir(parents=True)
    (configs / "metadata.json").write_text(json.dumps(meta) if not isinstance(meta, str) else meta)
    return tmp_path / name


def test_shipped_schema_is_a_valid_2020_12_schema():
    schema = json.loads(METADATA_SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


# every bundle in the repository, the evaluation tools' metadata, plus the example written here
# (so this never runs empty)
_REPO_METADATA = [*find_bundles(REPO / "bundles"), *[p for p in [REPO / "tools" / "metadata.json"] if p.is_file()]]


@pytest.mark.parametrize("bundle", [*_REPO_METADATA, "example"], ids=str)
def test_bundle_metadata_is_valid(bundle, tmp_path):
    if bundle == "example":
        bundle = _bundle(tmp_path, EXAMPLE)
    verify_bundle_metadata(bundle)


def _broken(change):
    meta = copy.deepcopy(EXAMPLE)
    change(meta)
    return meta


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda m: m.pop("network_data_format"), "(top level): 'network_data_format' is a required property"),
        (lambda m: m.pop("schema"), "'schema' is a required property"),
        (lambda m: m.pop("required_packages_version"), "'required_packages_version' is a required property"),
        (lambda m: m["network_data_format"]["inputs"]["image"].update(num_channels="1"),
         "network_data_format.inputs.image.num_channels: '1' is not of type 'integer'"),
        (lambda m: m["network_data_format"]["inputs"]["image"].pop("modality"),
         "network_data_format.inputs.image: 'modality' is a required property"),
        (lambda m: m["network_data_format"]["outputs"]["pred"].update(value_range=[0]),
         "network_data_format.outputs.pred.value_range"),
        (lambda m: m["network_data_format"]["outputs"]["pred"].update(is_patch_data="false"),
         "network_data_format.outputs.pred.is_patch_data"),
        (lambda m: m.update(monai_version=1.6), "monai_version: 1.6 is not of type 'string'"),
        (lambda m: m.update(authors=[]), "authors"),
        (lambda m: m.update(version="0.3.0"), "changelog: has no entry for the current version '0.3.0'"),
    ],
)
def test_broken_metadata_is_rejected_with_one_line(tmp_path, change, fragment):
    bundle = _bundle(tmp_path, _broken(change))
    with pytest.raises(ConfigError) as info:
        verify_bundle_metadata(bundle)
    msg = str(info.value)
    assert msg.startswith(str(bundle / "configs" / "metadata.json") + ": ")
    assert fragment in msg and "\n" not in msg


def test_not_a_bundle_and_bad_json(tmp_path):
    with pytest.raises(ConfigError, match="not a bundle"):
        verify_bundle_metadata(tmp_path)
    with pytest.raises(ConfigError, match="not valid JSON"):
        verify_bundle_metadata(_bundle(tmp_path, "{"))


def test_find_bundles_and_cli(tmp_path, capsys):
    assert find_bundles(tmp_path / "nope") == []
    _bundle(tmp_path, EXAMPLE, "b2")
    _bundle(tmp_path, EXAMPLE, "a1")
    (tmp_path / "not_a_bundle").mkdir()
    assert find_bundles(tmp_path) == [tmp_path / "a1", tmp_path / "b2"]
    assert main(["verify-bundle", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("metadata OK (version 0.2.0)") == 2
    _bundle(tmp_path, _broken(lambda m: m.pop("task")), "c3")
    assert main(["verify-bundle", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "c3" in err[0] and "'task' is a required property" in err[0]
