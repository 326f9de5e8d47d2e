"""Install pydicom_seg_compat into the running interpreter's environment (the MONAI Label venv only).

Copies ``pydicom_seg_compat.py`` into site-packages and adds a ``.pth`` line that imports it at start-up,
then checks that ``import pydicom_seg`` works. Run it with the venv's python:
``/tmp/monailabel-venv/bin/python apps/monailabel/compat/install_compat.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path


def main() -> int:
    """Install the shim and verify it in a fresh interpreter."""
    if sys.prefix == sys.base_prefix:
        print("install_compat.py: refusing to patch a non-virtual environment; run it with the venv's python",
              file=sys.stderr)
        return 2
    site = Path(sysconfig.get_paths()["purelib"])
    shutil.copyfile(Path(__file__).with_name("pydicom_seg_compat.py"), site / "pydicom_seg_compat.py")
    (site / "pydicom_seg_compat.pth").write_text("import pydicom_seg_compat\n")
    check = "import pydicom, pydicom_seg; print('pydicom', pydicom.__version__, '+ pydicom-seg: ok')"
    return subprocess.call([sys.executable, "-c", check])


if __name__ == "__main__":
    sys.exit(main())
