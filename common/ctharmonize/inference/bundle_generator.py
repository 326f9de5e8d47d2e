"""Build a bundle's multipath generator from its ``configs/inference.json`` and load its weights."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ctharmonize.errors import ConfigError, CTHarmonizeError
from ctharmonize.inference.generator_weights import load_generator_weights

__all__ = ["read_bundle_config", "bundle_model_name", "load_bundle_generator"]


def read_bundle_config(bundle_dir: str | os.PathLike, config_file: str = "configs/inference.json",
                       trust: bool = False, **overrides: Any):
    """A MONAI ``ConfigParser`` of ``bundle_dir/config_file`` (and its metadata) with ``bundle_root`` set
    to ``bundle_dir`` and ``overrides`` (config id -> value) applied.

    The bundle must be trusted (:func:`ctharmonize.bundle.check_bundle_trusted`; ``trust=True`` is the
    caller's explicit decision) before anything is parsed. Raises :class:`ConfigError`."""
    from monai.bundle import ConfigParser

    from ctharmonize.bundle.trust import check_bundle_trusted

    bundle = Path(bundle_dir)
    config = bundle / config_file
    if not config.is_file():
        problem = "no such bundle folder" if not bundle.is_dir() else f"not a bundle: {config_file} not found"
        raise ConfigError(bundle, problem)
    check_bundle_trusted(bundle, trust=trust)
    parser = ConfigParser()
    try:
        parser.read_config(os.fspath(config))
        meta = bundle / "configs" / "metadata.json"
        if meta.is_file():
            parser.read_meta(os.fspath(meta))
    except (ValueError, json.JSONDecodeError) as err:
        raise ConfigError(config, f"cannot read config ({str(err).splitlines()[0]})") from err
    parser["bundle_root"] = os.fspath(bundle.resolve())
    for key, value in overrides.items():
        parser[key] = value
    return parser


def bundle_model_name(parser) -> str:
    """``"<metadata name> <version>"`` (e.g. for DICOM DerivationDescription), or the bundle folder name."""
    meta = parser.get("_meta_", {}) or {}
    name = meta.get("name") or Path(parser.get("bundle_root", "bundle")).name
    return f"{name} {meta['version']}" if meta.get("version") else str(name)


def load_bundle_generator(bundle_dir: str | os.PathLike, device: str | torch.device | None = None,
                          weights: str | os.PathLike | None = None, trust: bool = False,
                          **overrides: Any) -> nn.Module:
    """The bundle's ``network_def`` (a ``MultipathGenerator``) with weights loaded, in eval mode on ``device``.

    Args:
        bundle_dir: the bundle folder.
        device: torch device (default: CUDA when available, else CPU).
        weights: checkpoint file (default: the config's ``ckpt_path``, ``models/model.pt``); a plain state
            dict or one nested under ``"G"``/``"generator"``/... (see :func:`extract_generator_state`).
        trust: run the configs of a bundle that is not trusted otherwise (see :func:`read_bundle_config`).
        overrides: config id -> value (e.g. ``ngf=8``).

    Raises:
        ConfigError for a bad bundle; WeightsError (one line naming the file) for missing or mismatching weights.
    """
    parser = read_bundle_config(bundle_dir, trust=trust, **overrides)
    try:
        generator = parser.get_parsed_content("network_def")
        ckpt = weights if weights is not None else parser.get_parsed_content("ckpt_path")
    except CTHarmonizeError:
        raise
    except Exception as err:
        raise ConfigError(Path(bundle_dir) / "configs" / "inference.json",
                          f"cannot build network_def ({type(err).__name__}: {str(err).splitlines()[0]})") from err
    load_generator_weights(generator, ckpt)
    device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return generator.to(device).eval()
