"""The MONAI Label app's harmonization core: no MONAI Label import, so the main venv's tests can load it.

Every bundle of a folder whose ``configs/inference.json`` defines a ``harmonizer`` item becomes one
infer task. A task runs its bundle only through the harmonizer contract (docs/new_method.md):
``load_bundle_harmonizer`` / ``bundle_default_target`` / ``bundle_model_name`` /
``harmonize_volume``, with the same steps and defaults as ``ctharmonize harmonize`` (reference:
``ctharmonize.inference.commands.harmonize``), and writes float32 HU NIfTI with the input's geometry.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctharmonize.errors import ConfigError, CTHarmonizeError, UnknownDomainError

__all__ = ["BundleHarmonization", "HarmonizationResult", "RequestError", "find_bundles", "serve_bundles"]

logger = logging.getLogger(__name__)

INFERENCE_CONFIG = Path("configs") / "inference.json"


class RequestError(CTHarmonizeError):
    """A request the task cannot serve (bad parameter, unreadable image, unknown source kernel)."""


def find_bundles(folder: str | os.PathLike) -> dict[str, Path]:
    """``{model name: bundle folder}`` for every harmonization bundle directly under ``folder``.

    A harmonization bundle is a sub-folder whose ``configs/inference.json`` is a JSON object with a
    ``harmonizer`` item; the model name is the folder name. The JSON is only read, never parsed as a
    MONAI config (nothing in it runs here). Other folders are skipped; a config without ``harmonizer`` or
    with broken JSON is skipped with a warning. Raises :class:`ConfigError` if ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(root, "no such bundles folder")
    found: dict[str, Path] = {}
    for bundle in sorted(p for p in root.iterdir() if p.is_dir()):
        config = bundle / INFERENCE_CONFIG
        if not config.is_file():
            continue
        try:
            items = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            logger.warning("%s: skipped: cannot read it as JSON (%s)", config, str(err).splitlines()[0])
            continue
        if not isinstance(items, dict) or "harmonizer" not in items:
            logger.warning("%s: skipped: defines no 'harmonizer' item (docs/new_method.md)", config)
            continue
        found[bundle.name] = bundle.resolve()
    return found


def serve_bundles(folder: str | os.PathLike, trust: bool = False) -> tuple[dict[str, Path], dict[str, str]]:
    """The bundles of ``folder`` that may run here, and why the others may not.

    Returns ``(served, refused)``: ``served`` as :func:`find_bundles`, less the bundles that are not
    trusted (docs/bundles.md: shipped, a copy of a shipped one, or recorded with ``ctharmonize
    trust-bundle``; ``trust=True`` accepts every bundle); ``refused`` maps their names to the one-line
    reason.
    """
    from ctharmonize.bundle.trust import check_bundle_trusted

    served: dict[str, Path] = {}
    refused: dict[str, str] = {}
    for name, bundle in find_bundles(folder).items():
        try:
            check_bundle_trusted(bundle, trust=trust)
        except ConfigError as err:
            refused[name] = str(err)
            continue
        served[name] = bundle
    return served, refused


@dataclass
class HarmonizationResult:
    """What one request produced: the NIfTI file and the facts for the response's JSON."""

    path: Path
    source: str
    target: str
    model: str
    slices: int
    seconds: float
    resampled: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        """The result parameters MONAI Label returns next to the image."""
        return {"source": self.source, "target": self.target, "model": self.model, "slices": self.slices,
                "seconds": round(self.seconds, 3), "resampled": self.resampled, "unit": "HU",
                "dtype": "float32", **self.params}


def _choice(value: Any) -> Any:
    """A request value as MONAI Label passes it: a list-valued config option means its first entry."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _flag(value: Any) -> bool:
    value = _choice(value)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


#: request values of ``source`` that mean "read it from the image header"
HEADER_SOURCE = ("", "header", "auto", "none", None)


class BundleHarmonization:
    """One bundle's harmonizer, loaded once per device, applied to image files.

    Args:
        bundle: the bundle folder.
        trust: run the bundle's configs even if it is not trusted otherwise (docs/bundles.md).
        amp, batch_size: as ``ctharmonize harmonize --amp / --batch_size`` (default: the same defaults).
    """

    def __init__(self, bundle: str | os.PathLike, trust: bool = False, amp: bool | str = "auto",
                 batch_size: int | None = None) -> None:
        from ctharmonize.inference import bundle_default_target, bundle_model_name, read_bundle_config

        self.bundle = Path(bundle).resolve()
        self.trust = bool(trust)
        self.amp = amp
        self.batch_size = batch_size
        parser = read_bundle_config(self.bundle, trust=self.trust)  # the trust check happens here
        self.default_target = bundle_default_target(parser)
        self.model_name = bundle_model_name(parser)
        meta = parser.get("_meta_", {}) or {}
        self.description = str(meta.get("description") or meta.get("name") or self.bundle.name)
        self._harmonizers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def harmonizer(self, device: str = "cpu") -> Any:
        """The bundle's ``harmonizer`` item on ``device`` (loaded on first use, then cached)."""
        with self._lock:
            if device not in self._harmonizers:
                from ctharmonize.inference import load_bundle_harmonizer

                logger.info("%s: loading the harmonizer on %s", self.bundle.name, device)
                self._harmonizers[device] = load_bundle_harmonizer(
                    self.bundle, device=device, trust=self.trust, amp=self.amp, batch_size=self.batch_size)
            return self._harmonizers[device]

    def domains(self, device: str = "cpu") -> list[str]:
        """Kernel domains the bundle's harmonizer translates between."""
        return list(self.harmonizer(device).domains)

    def harmonize_file(self, image: str | os.PathLike, out: str | os.PathLike | None = None,
                       source: Any = None, target: Any = None, device: str = "cpu",
                       resample: Any = False, allow_non_axial: Any = False) -> HarmonizationResult:
        """Harmonize the CT at ``image`` (NIfTI file, DICOM file or series folder) into float32 HU NIfTI.

        Args:
            image: the input; a NIfTI's JSON sidecar (Manufacturer, ConvolutionKernel) is its header.
            out: output ``.nii.gz`` (default: a new temporary file, the caller's to delete). It must not
                exist. No sidecar or output record is left beside it.
            source: source kernel domain; None / "" / "header" reads it from the image header.
            target: target kernel domain (default: the bundle's ``target_kernel``).
            device: torch device for the harmonizer.
            resample: resample a tilted or unevenly spaced DICOM series onto a regular grid (NIfTI
                cannot hold its geometry); otherwise such an input is refused.
            allow_non_axial: harmonize sagittal/coronal reformats with the axial-trained network anyway.

        Raises:
            RequestError (one line) for a bad request or input; ConfigError / WeightsError for a bad bundle.
        """
        from ctharmonize.domains import default_registry
        from ctharmonize.inference import harmonize_volume, resolve_source_domain
        from ctharmonize.inference.source_domain import check_model_domain
        from ctharmonize.io import read_volume, write_nifti
        from ctharmonize.io.resample import require_regular, resample_to_regular
        from ctharmonize.io.slice_orientation import check_axial

        if out is not None and not Path(out).name.lower().endswith((".nii", ".nii.gz")):
            raise RequestError(out, "the output must be a .nii or .nii.gz file")
        registry = default_registry()
        source, target = _choice(source), _choice(target)
        source = None if source in HEADER_SOURCE or str(source).strip().lower() in HEADER_SOURCE else str(source)
        target = self.default_target if target in (None, "") else str(target)
        harmonizer = self.harmonizer(device)
        domains = list(harmonizer.domains)
        for role, value in (("target", target), ("source", source)):
            if value is None:
                continue
            try:
                if role == "target":
                    registry.validate_target(value)
                    check_model_domain(value, list(getattr(harmonizer, "targets", None) or domains), role, self.bundle)
                else:
                    registry.validate_name(value)
                    check_model_domain(value, domains, role, self.bundle)
            except CTHarmonizeError as err:
                raise RequestError(None, f"request parameter '{role}': {err.problem}") from err
        try:
            volume = read_volume(image, slicewise=True)
            if not _flag(allow_non_axial):
                check_axial(volume, image)
            if not _flag(resample):
                require_regular(volume, image)
        except CTHarmonizeError as err:
            raise RequestError(err.path, err.problem) from err
        if source is None and not volume.header.convolution_kernel:
            raise RequestError(image, "the image header names no ConvolutionKernel (a NIfTI without its JSON "
                                      "sidecar, or an uploaded file); set the request parameter 'source' to one "
                                      f"of the model's domains: {', '.join(domains)}")
        try:
            src = resolve_source_domain(volume, source, domains, path=image, registry=registry)
        except UnknownDomainError as err:
            problem = err.problem.replace("pass --source", "set the request parameter 'source'")
            raise RequestError(err.path, f"source kernel from the header: {problem}; or set the request "
                                         f"parameter 'source' to one of the model's domains: "
                                         f"{', '.join(domains)}") from err
        started = time.perf_counter()
        result = harmonize_volume(volume, harmonizer, src, target, model_name=self.model_name)
        resampled = not result.is_regular
        if resampled:
            result = resample_to_regular(result, path=image)
        seconds = time.perf_counter() - started
        final = Path(out) if out is not None else _new_temp_file(".nii.gz")
        _write_plain_nifti(result, final, write_nifti)
        return HarmonizationResult(final, src, target, self.model_name, int(volume.shape[0]), seconds, resampled)


def _new_temp_file(suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="harmonized-")
    os.close(fd)
    os.unlink(name)  # write_nifti refuses to replace a file it did not write
    return Path(name)


def _write_plain_nifti(volume: Any, path: Path, write_nifti: Any) -> None:
    """float32 NIfTI at ``path`` with nothing beside it (write_nifti leaves an output record in its folder)."""
    if path.exists():
        raise RequestError(path, "output already exists")
    staging = Path(tempfile.mkdtemp(prefix=".harmonized-", dir=path.parent))
    try:
        suffix = ".nii.gz" if path.name.lower().endswith(".gz") else ".nii"
        written = write_nifti(volume, staging / f"harmonized{suffix}", dtype="float32")
        os.replace(written, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
