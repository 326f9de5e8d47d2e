import json

import pytest

from ctharmonize.domains import DomainInfo, DomainRegistry, default_registry
from ctharmonize.errors import ConfigError, UnknownDomainError
from ctharmonize.io.volume import HeaderSummary

CANONICAL = {"siemens_b30f": "soft", "siemens_b50f": "sharp", "ge_standard": "soft", "ge_bone": "sharp",
             "siemens_b70f": "sharp", "ge_lung": "sharp"}


def test_default_registry_has_canonical_domains():
    reg = default_registry()
    for name, sharpness in CANONICAL.items():
        assert name in reg and reg[name].sharpness == sharpness
    assert reg["siemens_b30f"].vendor == reg["siemens_b50f"].vendor == "siemens"
    assert reg["ge_bone"].kernels == ("BONE",)
    # nominal MTF50 ordering soft < sharp per vendor
    assert reg["siemens_b30f"].mtf50_lp_cm < reg["siemens_b50f"].mtf50_lp_cm
    assert reg["ge_standard"].mtf50_lp_cm < reg["ge_bone"].mtf50_lp_cm
    assert reg.names()[reg.index("ge_bone")] == "ge_bone"
    assert isinstance(reg["ge_bone"], DomainInfo) and reg["ge_bone"].is_sharp


@pytest.mark.parametrize(
    "manufacturer, kernel, expected",
    [
        ("SIEMENS", "B30f", "siemens_b30f"),
        ("Siemens Healthineers", " b50F ", "siemens_b50f"),
        ("SIEMENS", ["B70f"], "siemens_b70f"),
        ("GE MEDICAL SYSTEMS", "STANDARD", "ge_standard"),
        ("GE MEDICAL SYSTEMS", "bone", "ge_bone"),
        ("GE HEALTHCARE", "BONEPLUS", "ge_boneplus"),
        ("GE MEDICAL SYSTEMS", ("LUNG",), "ge_lung"),
        ("TOSHIBA", ["FC51", "AIDR 3D"], "toshiba_fc51"),
        ("Canon Medical Systems", ["AIDR 3D", "FC51"], "toshiba_fc51"),
        (None, "STANDARD", "ge_standard"),  # no manufacturer: unique kernel still resolves
        ("", "B30f", "siemens_b30f"),
    ],
)
def test_resolve(manufacturer, kernel, expected):
    assert default_registry().resolve(manufacturer, kernel) == expected


def test_resolve_header():
    header = HeaderSummary(manufacturer="GE MEDICAL SYSTEMS", convolution_kernel=("BONE",))
    assert default_registry().resolve_header(header) == "ge_bone"


@pytest.mark.parametrize(
    "manufacturer, kernel",
    [("ACME", "XYZ"), ("SIEMENS", "XYZ"), ("SIEMENS", "STANDARD"), ("GE MEDICAL SYSTEMS", "B30f"),
     ("SIEMENS", ["I30f", "3"]), ("SIEMENS", None), ("SIEMENS", "B30")],
)
def test_unknown_kernel_lists_known_domains(manufacturer, kernel):
    with pytest.raises(UnknownDomainError) as info:
        default_registry().resolve(manufacturer, kernel, path="/scans/x")
    msg = str(info.value)
    assert msg.startswith("/scans/x: unknown kernel") and "\n" not in msg
    assert repr(manufacturer) in msg
    for name in CANONICAL:
        assert name in msg


def test_validate_name_and_getitem():
    reg = default_registry()
    assert reg.validate_name("ge_bone") == "ge_bone"
    with pytest.raises(UnknownDomainError, match="unknown domain 'B30f'; known domains: siemens_b30f"):
        reg.validate_name("B30f")
    with pytest.raises(UnknownDomainError):
        reg["nope"]
    assert "nope" not in reg and reg.get("nope") is None and reg.get("ge_bone").name == "ge_bone"
    assert list(reg) == reg.names() and len(reg) == len(reg.names())


def _doc(**domain_changes):
    domain = {"vendor": "acme", "kernels": ["K1"], "sharpness": "soft", "mtf50_lp_cm": 3.0, "description": "d"}
    domain.update(domain_changes)
    return {"vendors": {"acme": ["ACME Corp"], "other": ["OTHER"]},
            "domains": {"acme_k1": domain, "other_k1": {"vendor": "other", "kernels": ["k1"], "sharpness": "sharp"}}}


def test_custom_registry_json_and_yaml(tmp_path):
    import yaml

    for name, dump in (("r.json", json.dumps), ("r.yaml", yaml.safe_dump)):
        path = tmp_path / name
        path.write_text(dump(_doc()))
        reg = DomainRegistry.from_file(path)
        assert reg.names() == ["acme_k1", "other_k1"]
        assert reg.resolve("acme corp (x)", "k1") == "acme_k1"
        assert reg.resolve("OTHER", "K1") == "other_k1"
        assert reg["other_k1"].mtf50_lp_cm is None
        with pytest.raises(UnknownDomainError, match="ambiguous"):
            reg.resolve(None, "K1")


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"sharpness": "medium"}, "domains.acme_k1.sharpness"),
        ({"kernels": []}, "domains.acme_k1.kernels"),
        ({"vendor": "nobody"}, "vendor 'nobody' is not in 'vendors'"),
        ({"mtf50_lp_cm": -1}, "domains.acme_k1.mtf50_lp_cm"),
        ({"colour": "red"}, "domains.acme_k1"),
    ],
)
def test_bad_registry_file(tmp_path, changes, fragment):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_doc(**changes)))
    with pytest.raises(ConfigError) as info:
        DomainRegistry.from_file(path)
    assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value)


def test_duplicate_alias_within_vendor(tmp_path):
    doc = _doc()
    doc["domains"]["acme_k1b"] = {"vendor": "acme", "kernels": [" k1"], "sharpness": "sharp"}
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="listed by both 'acme_k1' and 'acme_k1b'"):
        DomainRegistry.from_file(path)


def test_unreadable_registry_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        DomainRegistry.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        DomainRegistry.from_file(bad)


def test_docs_table_lists_every_shipped_domain():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "domains.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in doc.splitlines() if line.startswith("| `")}
    reg = default_registry()
    assert set(rows) == set(reg.names())
    for name, line in rows.items():
        info = reg[name]
        cells = [c.strip().strip("`") for c in line.split("|")[1:-1]]
        assert cells[1:4] == [info.vendor, "/".join(info.kernels), info.sharpness]
        assert cells[4] == ("–" if info.mtf50_lp_cm is None else f"{info.mtf50_lp_cm:g}")
