"""MONAI Deploy application of ctharmonize: harmonize the CT series of a DICOM study with a bundle.

Run from the repository root (CPU is fine)::

    python -m apps.deploy -i STUDY_FOLDER -o OUTPUT_FOLDER -m bundles/multipath_cyclegan_ct_harmonization

The code is ``ctharmonize.deploy`` (docs/deployment.md). A MAP runs the folder staged by
``ctharmonize stage-deploy-app`` as ``python3 /opt/holoscan/app`` with ``HOLOSCAN_INPUT_PATH``,
``HOLOSCAN_OUTPUT_PATH`` and ``HOLOSCAN_MODEL_PATH`` set; that folder carries its own copy of the
package and the trust record of the bundle it was staged with.
"""

import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if (_HERE / "ctharmonize" / "__init__.py").is_file():  # a staged MAP app folder
    sys.path.insert(0, str(_HERE))
    os.environ["CTHARMONIZE_HOME"] = str(_HERE / "ctharmonize_home")  # the staged bundle's trust record

from ctharmonize.deploy.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
