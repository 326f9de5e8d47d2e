"""``configs/inference.json`` of tiny test bundles: the contract's items around any network (see docs/new_method.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["RESNET_GENERATOR", "cyclegan_pair", "inference_config", "write_cyclegan_bundle"]

RESNET_GENERATOR = {"_target_": "ctharmonize.networks.ResnetGenerator", "ngf": 4, "n_blocks": 1}
CYCLEGAN_NETWORKS = {"G_AB": "G_AB", "G_BA": "G_BA"}


def cyclegan_pair() -> dict[str, Any]:
    """``network_def`` of a ``CycleGANPair`` of two tiny ``ResnetGenerator``s over ``@domains``."""
    return {"_target_": "ctharmonize.networks.CycleGANPair", "G_AB": RESNET_GENERATOR, "G_BA": RESNET_GENERATOR,
            "domains": "@domains"}


def inference_config(domains: list[str], target_kernel: str, network_def: dict[str, Any] | None = None,
                     checkpoint_networks: dict[str, str] | None = None) -> dict[str, Any]:
    """A CPU inference.json: ``network_def`` (default a tiny CycleGAN pair), weights from models/model.pt,
    the ``harmonizer`` item, ``target_kernel``."""
    return {
        "imports": ["$import os"],
        "device": "cpu",
        "hu_min": -1024.0,
        "hu_max": 3072.0,
        "domains": list(domains),
        "target_kernel": target_kernel,
        "network_def": network_def or cyclegan_pair(),
        "ckpt_path": "$os.path.join(@bundle_root, 'models', 'model.pt')",
        "checkpoint_networks": checkpoint_networks or CYCLEGAN_NETWORKS,
        "translator": {"_target_": "ctharmonize.inference.load_network_weights", "network": "@network_def",
                       "path": "@ckpt_path", "networks": "@checkpoint_networks"},
        "batch_size": 2,
        "amp": False,
        "harmonizer": {"_target_": "ctharmonize.inference.SliceHarmonizer", "translator": "@translator",
                       "hu_min": "@hu_min", "hu_max": "@hu_max", "batch_size": "@batch_size", "device": "@device",
                       "amp": "@amp", "checkpoint_networks": "@checkpoint_networks"},
    }


def write_cyclegan_bundle(root: Path, domains: list[str], target_kernel: str, seed: int = 0,
                          trained_pixel_spacing_mm: list[float] | None = None) -> Path:
    """A bundle folder ``root`` (configs + random-weight ``models/model.pt``) of a tiny CycleGAN pair; not
    trusted (tests pass the trust explicitly). ``trained_pixel_spacing_mm`` ([min, max] mm) goes into its
    metadata when given (else the metadata has no such key: no spacing check)."""
    import torch

    from ctharmonize.networks import CycleGANPair, ResnetGenerator

    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "inference.json").write_text(json.dumps(inference_config(domains, target_kernel)))
    meta: dict[str, Any] = {"name": "tiny cyclegan", "version": "0.0.1"}
    if trained_pixel_spacing_mm is not None:
        meta["trained_pixel_spacing_mm"] = list(trained_pixel_spacing_mm)
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    torch.manual_seed(seed)
    pair = CycleGANPair(ResnetGenerator(ngf=4, n_blocks=1), ResnetGenerator(ngf=4, n_blocks=1), domains)
    torch.save(pair.state_dict(), root / "models" / "model.pt")
    return root
