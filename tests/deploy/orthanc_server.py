"""A throw-away Orthanc (Debian's ``orthanc`` package) for tests: loopback, free ports, temporary storage.

Its configuration is what a hospital's would need for ``ctharmonize pacs-harmonize``, made strict so
that refusals can be tested: the called AE title is checked (``DicomCheckCalledAet``), and only the
registered AE title ``CTHARMONIZE`` from 127.0.0.1 may query, retrieve or store (``DicomModalities``,
``DicomCheckModalityHost``). The HTTP API has no authentication and answers loopback only.

A Lua filter makes stores of derived (ImageType DERIVED) instances fail on purpose, by study:
``StudyDescription`` ``FAIL-STORE`` refuses instance 3 with a failure status, ``DROP-STORE``
accepts instance 3 with success and drops it (as Orthanc's ``ReceivedInstanceFilter`` does).

The test code inspects Orthanc only through its REST API (orthanc-api-client), never through the DIMSE
code under test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

from orthanc_api_client import OrthancApiClient

AET = "ORTHANC"
ALLOWED_AET = "CTHARMONIZE"

_FILTER = """
function ReceivedInstanceFilter(dicom, origin, info)
  local derived = string.sub(dicom.ImageType or '', 1, 7) == 'DERIVED'
  if derived and dicom.InstanceNumber == '3' then
    if dicom.StudyDescription == 'FAIL-STORE' then
      error('test filter: refusing instance 3')
    elseif dicom.StudyDescription == 'DROP-STORE' then
      return false
    end
  end
  return true
end
"""


def free_port() -> int:
    """A TCP port nothing listens on at the moment (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def orthanc_binary() -> str | None:
    """The Orthanc executable (Debian installs it in /usr/sbin)."""
    return shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).exists()),
                                           None)


class OrthancServer:
    """``Orthanc <root>/config.json`` started in ``root``; use :meth:`start` and :meth:`stop`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.http_port, self.dicom_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicom = f"{AET}@127.0.0.1:{self.dicom_port}"
        self.process: subprocess.Popen | None = None
        self.api = OrthancApiClient(self.url)

    def config(self) -> dict:
        """The configuration written to ``config.json``."""
        (self.root / "filter.lua").write_text(_FILTER)
        return {
            "Name": "ctharmonize-test",
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "Plugins": [],
            "LuaScripts": [str(self.root / "filter.lua")],
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "WebDavEnabled": False,
            "DicomAet": AET,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomModalities": {"ctharmonize": [ALLOWED_AET, "127.0.0.1", 104]},
            "DicomCheckModalityHost": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
        }

    def start(self, timeout: float = 60.0) -> OrthancServer:
        binary = orthanc_binary()
        if binary is None:
            raise RuntimeError("Orthanc is not installed: apt-get install orthanc (.ci/run does)")
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.json"
        config.write_text(json.dumps(self.config(), indent=1))
        log = open(self.root / "orthanc.log", "wb")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen([binary, str(config)], stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.root)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}: {self.log_tail()}")
            if self.api.is_alive(timeout=1):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout:g} s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 15) -> str:
        path = self.root / "orthanc.log"
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # -- inspection through the REST API -------------------------------------------------------------

    def clear(self) -> None:
        """Delete every patient (and so everything) stored."""
        for patient in self.api.get_json("patients"):
            self.api.delete(f"patients/{patient}")

    def upload(self, folder: Path) -> None:
        """Store every file of a folder (``POST /instances``)."""
        for path in sorted(Path(folder).glob("*.dcm")):
            self.api.post("instances", data=path.read_bytes())

    def snapshot(self) -> dict[str, dict[str, str]]:
        """Everything stored: {SeriesInstanceUID: {SOPInstanceUID: sha256 of the stored file}}."""
        out: dict[str, dict[str, str]] = {}
        for orthanc_id in self.api.get_json("instances"):
            tags = self.api.get_json(f"instances/{orthanc_id}/tags?simplify")
            digest = hashlib.sha256(self.api.get_binary(f"instances/{orthanc_id}/file")).hexdigest()
            out.setdefault(tags["SeriesInstanceUID"], {})[tags["SOPInstanceUID"]] = digest
        return out

    def series_files(self, series_uid: str) -> list[bytes]:
        """The stored files of a series, in InstanceNumber order."""
        (orthanc_id,) = [r["ID"] for r in self.api.post("tools/lookup", data=series_uid).json()
                         if r["Type"] == "Series"]
        instances = self.api.get_json(f"series/{orthanc_id}/instances")
        instances.sort(key=lambda i: int(i["MainDicomTags"].get("InstanceNumber", 0)))
        return [self.api.get_binary(f"instances/{i['ID']}/file") for i in instances]
