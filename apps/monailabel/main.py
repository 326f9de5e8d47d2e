"""MONAI Label app: every harmonization bundle of a folder as an infer task with an image (HU) result.

Start (in the app's own environment, apps/monailabel/requirements.txt)::

    monailabel start_server --app apps/monailabel --studies STUDIES --host 127.0.0.1 --port 8000 \\
        [--conf bundles DIR] [--conf trust_bundles true] [--conf device cpu|cuda]

``--conf bundles``: the folder of bundles (default: the repository's ``bundles/``); each sub-folder whose
``configs/inference.json`` defines a ``harmonizer`` item becomes the model ``<folder name>``. Bundles that
are not trusted (docs/bundles.md) are not served (the log says why) unless ``trust_bundles`` is true.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lib.bundle_harmonization import serve_bundles
from lib.infers import HarmonizationInferTask
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.exception import MONAILabelError, MONAILabelException
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.utils.others.generic import strtobool

import ctharmonize

logger = logging.getLogger(__name__)

DEFAULT_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


class HarmonizationApp(MONAILabelApp):
    """Serves each harmonization bundle of ``--conf bundles`` (default: the repository's bundles/)."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = conf or {}
        self.bundles_dir = Path(conf.get("bundles") or DEFAULT_BUNDLES).expanduser().resolve()
        self.trust_bundles = bool(strtobool(conf.get("trust_bundles", "false")))
        self.device = conf.get("device") or None
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="ctharmonize",
            description="Chest CT harmonization across reconstruction kernels (MONAI Bundles); "
                        "results are volumes in HU, not segmentations",
            version=ctharmonize.__version__,
        )

    def init_infers(self) -> dict[str, InferTask]:
        """One :class:`HarmonizationInferTask` per served bundle."""
        try:
            served, refused = serve_bundles(self.bundles_dir, trust=self.trust_bundles)
        except ctharmonize.CTHarmonizeError as err:
            raise MONAILabelException(MONAILabelError.APP_INIT_ERROR, str(err)) from err
        for name, reason in refused.items():
            logger.error("bundle %s is not served: %s (review it, then `ctharmonize trust-bundle --bundle DIR`, "
                         "or start with --conf trust_bundles true)", name, reason)
        if not served:
            raise MONAILabelException(MONAILabelError.APP_INIT_ERROR,
                                      f"{self.bundles_dir}: no trusted harmonization bundle to serve")
        infers: dict[str, Any] = {}
        for name, bundle in served.items():
            infers[name] = HarmonizationInferTask(bundle, trust=self.trust_bundles, device=self.device)
            logger.info("model %s: %s", name, bundle)
        return infers
