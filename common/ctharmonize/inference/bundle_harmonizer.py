"""A bundle's ``harmonizer`` item, built from its ``configs/inference.json``: the one way code runs a bundle.

Every bundle's ``inference.json`` defines ``harmonizer`` (volume in HU, source and target → volume in
HU; a :class:`~ctharmonize.inference.SliceHarmonizer` over the bundle's translator with its weights)
and ``target_kernel`` (its default target). The CLI, the evaluation, checkpoint selection, the
benchmark and export use only these, so they run any method's bundle without code of their own.
:func:`load_bundle_harmonizer` also attaches the metadata's ``trained_pixel_spacing_mm`` and the spacing policy
(:mod:`ctharmonize.inference.spacing_policy`), which :func:`~ctharmonize.inference.harmonize_volume` applies.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from ctharmonize.errors import ConfigError, CTHarmonizeError
from ctharmonize.inference.harmonizer import Harmonizer
from ctharmonize.inference.spacing_policy import attach_spacing_policy, check_spacing_policy

__all__ = ["BundleHarmonizerFactory", "bundle_default_target", "bundle_model_name", "load_bundle_harmonizer",
           "read_bundle_config"]

INFERENCE_CONFIG = "configs/inference.json"


def read_bundle_config(bundle_dir: str | os.PathLike, config_file: str = INFERENCE_CONFIG,
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


def bundle_default_target(parser) -> str:
    """The bundle's default target kernel domain (its ``target_kernel``)."""
    target = parser.get("target_kernel")
    if not target:
        raise ConfigError(Path(parser.get("bundle_root", ".")) / INFERENCE_CONFIG, "defines no target_kernel")
    return str(target)


def _parsed(parser, item: str) -> Any:
    config = Path(parser.get("bundle_root", ".")) / INFERENCE_CONFIG
    if item not in parser:
        raise ConfigError(config, f"defines no {item!r} item (every bundle's inference.json must; docs/new_method.md)")
    try:
        return parser.get_parsed_content(item)
    except Exception as err:
        cause: BaseException | None = err
        while cause is not None:  # MONAI wraps errors of a `_target_` call in a RuntimeError
            if isinstance(cause, CTHarmonizeError):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        raise ConfigError(config, f"cannot build {item!r} ({type(err).__name__}: {str(err).splitlines()[0]})") from err


def load_bundle_harmonizer(bundle_dir: str | os.PathLike | None = None, *, parser=None,
                           device: str | None = None, weights: str | os.PathLike | None = None,
                           batch_size: int | None = None, amp: bool | str | None = None, trust: bool = False,
                           spacing_policy: str = "resample", **overrides: Any) -> Harmonizer:
    """The bundle's ``harmonizer`` item, weights loaded, on ``device``, with the metadata's trained in-plane
    spacing range and ``spacing_policy`` attached (:func:`~ctharmonize.inference.attach_spacing_policy`).

    Args:
        bundle_dir: the bundle folder (or pass an already read ``parser``).
        parser: a :func:`read_bundle_config` parser to reuse (the config is then read only once).
        device, batch_size, amp: override the config's ``device`` / ``batch_size`` / ``amp`` (``amp``: see
            :class:`~ctharmonize.inference.SliceHarmonizer`).
        weights: checkpoint to use instead of the config's ``ckpt_path`` (``models/model.pt``).
        trust: see :func:`read_bundle_config`.
        spacing_policy: ``"resample"`` (default) or ``"refuse"`` a volume outside the metadata's
            ``trained_pixel_spacing_mm`` (no check when the metadata has no such key).
        overrides: more config id -> value.

    Raises:
        ConfigError for a bad bundle (one line naming its inference.json or, for a malformed
        ``trained_pixel_spacing_mm``, its metadata.json); WeightsError (one line naming the file) for missing or
        mismatching weights.
    """
    check_spacing_policy(spacing_policy)
    if parser is None:
        if bundle_dir is None:
            raise ConfigError(None, "load_bundle_harmonizer needs a bundle folder or a parser")
        parser = read_bundle_config(bundle_dir, trust=trust)
    for key, value in (("device", device), ("ckpt_path", None if weights is None else os.fspath(weights)),
                       ("batch_size", batch_size), ("amp", amp), *overrides.items()):
        if value is not None:
            parser[key] = value
    harmonizer = _parsed(parser, "harmonizer")
    if not callable(harmonizer) or not hasattr(harmonizer, "domains"):
        raise ConfigError(Path(parser.get("bundle_root", ".")) / INFERENCE_CONFIG,
                          f"'harmonizer' is a {type(harmonizer).__name__}, not a harmonizer "
                          "(callable(volume_hu, source, target) with domains)")
    meta_file = Path(parser.get("bundle_root", ".")) / "configs" / "metadata.json"
    return attach_spacing_policy(harmonizer, parser.get("_meta_", None), spacing_policy, where=meta_file)


class BundleHarmonizerFactory:
    """``factory(checkpoint_path) -> harmonizer``: the bundle's ``harmonizer`` with ``ckpt_path`` set to each
    checkpoint in turn (checkpoint selection). The config is read (and its trust checked) once.

    Args:
        bundle_dir: the bundle folder.
        device, batch_size, amp, trust, spacing_policy: as for :func:`load_bundle_harmonizer`.
    """

    def __init__(self, bundle_dir: str | os.PathLike, device: str | None = None, batch_size: int | None = None,
                 amp: bool | None = None, trust: bool = False, spacing_policy: str = "resample") -> None:
        self.bundle_dir = Path(bundle_dir)
        self._config = read_bundle_config(bundle_dir, trust=trust).get()
        self.options = {"device": device, "batch_size": batch_size, "amp": amp,
                        "spacing_policy": check_spacing_policy(spacing_policy)}

    def __call__(self, checkpoint: str | os.PathLike) -> Harmonizer:
        from monai.bundle import ConfigParser

        parser = ConfigParser(copy.deepcopy(self._config))
        return load_bundle_harmonizer(parser=parser, weights=checkpoint, **self.options)
