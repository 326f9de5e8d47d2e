"""``HarmonizationInferTask``: one MONAI Label infer task for any harmonization bundle (IMAGE output, HU).

Not a ``BundleInferTask``: that one needs ``LoadImaged``-based ``preprocessing`` / ``inferer`` /
``postprocessing`` items, which the harmonizer contract (docs/new_method.md) does not have. This task
runs the bundle's ``harmonizer`` item through :class:`lib.bundle_harmonization.BundleHarmonization`,
the same steps as ``ctharmonize harmonize``, and returns a float32 HU NIfTI with the input's geometry.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import HTTPException
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask
from monailabel.utils.others.generic import device_list, name_to_device

from ctharmonize.errors import CTHarmonizeError
from lib.bundle_harmonization import BundleHarmonization, RequestError

logger = logging.getLogger(__name__)


class HarmonizationInferTask(BasicInferTask):
    """Harmonize the request's CT volume with one bundle (``InferType.OTHERS``, image result in HU).

    Request parameters (``params`` of ``POST /infer/<model>``, or the task's config in 3D Slicer):
    ``source`` (kernel domain of the input; "header" / empty: from the image header), ``target``
    (default: the bundle's ``target_kernel``), ``resample`` (a tilted or unevenly spaced DICOM series onto a
    regular grid), ``allow_non_axial``, ``device``.

    Args:
        bundle: the bundle folder.
        trust: run a bundle that is not trusted otherwise (docs/bundles.md).
        device: the device to load the harmonizer on at start-up (its domains are listed in /info/).
    """

    def __init__(self, bundle: str | os.PathLike, trust: bool = False, device: str | None = None) -> None:
        self.core = BundleHarmonization(bundle, trust=trust)
        self.startup_device = name_to_device(device)
        domains = self.core.domains(self.startup_device)
        target = self.core.default_target
        config: dict[str, Any] = {
            "source": ["header", *domains],
            "target": [target, *(d for d in domains if d != target)],
            "resample": False,
            "allow_non_axial": False,
            "device": device_list(),
        }
        super().__init__(
            path=None,
            network=None,
            type=InferType.OTHERS,
            labels=None,
            dimension=3,
            description=f"{self.core.model_name}: harmonize chest CT to another reconstruction kernel "
                        f"(default {target}); returns the harmonized volume in HU (float32 NIfTI)",
            config=config,
        )

    def is_valid(self) -> bool:
        """The bundle was read and trusted at start-up."""
        return True

    def pre_transforms(self, data: Any = None) -> Sequence[Callable]:
        """None: the bundle's harmonizer reads nothing through MONAI transforms."""
        return []

    def post_transforms(self, data: Any = None) -> Sequence[Callable]:
        """None: the harmonizer returns HU, written as it is."""
        return []

    def __call__(self, request: dict[str, Any], callbacks: Any = None) -> tuple[str, dict[str, Any]]:
        """Harmonize ``request["image"]`` (a file or DICOM folder path); returns (NIfTI path, result JSON)."""
        req = copy.deepcopy(self._config)
        req.update(request)
        image = req.get("image")
        if not isinstance(image, str) or not image:
            raise HTTPException(status_code=400, detail="harmonization: the request has no image file or folder")
        device = name_to_device(req.get("device"))
        try:
            result = self.core.harmonize_file(image, source=req.get("source"), target=req.get("target"),
                                              device=device, resample=req.get("resample", False),
                                              allow_non_axial=req.get("allow_non_axial", False))
        except RequestError as err:
            logger.error("harmonization request refused: %s", err)
            raise HTTPException(status_code=400, detail=f"{self.core.bundle.name}: {err}") from err
        except CTHarmonizeError as err:
            logger.error("harmonization failed: %s", err)
            raise HTTPException(status_code=500, detail=f"{self.core.bundle.name}: {err}") from err
        logger.info("%s: %s -> %s, %d slices in %.1f s -> %s", self.core.bundle.name, result.source,
                    result.target, result.slices, result.seconds, result.path)
        out = result.json()
        out["label_names"] = self.labels
        out["latencies"] = {"infer": round(result.seconds, 2), "total": round(result.seconds, 2)}
        return os.fspath(result.path), out
