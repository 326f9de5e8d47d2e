"""A tiny multipath bundle with random weights, written to a tmp folder (packaging and cohort tests)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from multipath_sim_data import TINY, tiny_generator
from tiny_bundle_config import inference_config

SHIPPED = Path(__file__).resolve().parents[2] / "bundles" / "multipath_cyclegan_ct_harmonization"
DOMAINS = ["siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard"]
INFERENCE = inference_config(DOMAINS, "siemens_b30f", {"_target_": "ctharmonize.networks.MultipathGenerator", "domains": "@domains", **TINY},
                             {"G": ""})


def write_tiny_bundle(root: Path, name: str = "tiny_multipath_ct_harmonization", version: str = "0.0.1",
                      seed: int = 0) -> Path:
    """``root/name`` with configs (metadata valid for ``verify-bundle``), docs, LICENSE and random weights."""
    bundle = root / name
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "docs").mkdir()
    meta = json.loads((SHIPPED / "configs" / "metadata.json").read_text())
    meta.update(name="Tiny multipath test bundle", version=version, changelog={version: "random test weights"})
    meta.pop("trained_pixel_spacing_mm", None)  # random weights, trained on no spacing: no check
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta, indent=1))
    (bundle / "configs" / "inference.json").write_text(json.dumps(INFERENCE, indent=1))
    (bundle / "docs" / "README.md").write_text("# Tiny multipath test bundle\n\nRandom weights.\n")
    shutil.copyfile(SHIPPED / "LICENSE", bundle / "LICENSE")
    torch.save(tiny_generator(seed).state_dict(), bundle / "models" / "model.pt")
    return bundle
