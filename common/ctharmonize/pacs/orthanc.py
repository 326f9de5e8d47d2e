"""Orthanc's REST API through orthanc-api-client: the DICOM address Orthanc reports, and deleting a series.

DICOM has no message that deletes an instance, so the two things ``pacs-harmonize`` must be able to
undo, a series stored only in part and an earlier derived series replaced with ``--overwrite``, go
through Orthanc's own API (``DELETE /series/{id}``). Credentials, when Orthanc asks for them, come
from ``~/.netrc`` (requests reads it) or the URL (``http://user:password@host:8042``; never echoed in
messages).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from orthanc_api_client import OrthancApiClient
from orthanc_api_client import exceptions as orthanc_errors

from ctharmonize.errors import ConfigError, PacsError
from ctharmonize.pacs.dimse import DicomAddress, check_aet

__all__ = ["OrthancRest"]


def _display(url: str) -> str:
    """``url`` without user name and password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class OrthancRest:
    """One Orthanc server's REST API at ``url`` (``http://127.0.0.1:8042``); ``timeout`` in seconds."""

    def __init__(self, url: str, timeout: float = 30.0):
        parts = urlsplit(str(url).strip())
        try:
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
        except ValueError:  # a port that is not a number
            valid = False
        if not valid:
            raise ConfigError(None, f"--pacs expects Orthanc's HTTP address, e.g. http://127.0.0.1:8042, got {url!r}")
        self.url = str(url).strip().rstrip("/")
        self.display = _display(self.url)
        self.host = parts.hostname
        self.timeout = float(timeout)
        self._client = OrthancApiClient(self.url + "/")  # the slash keeps a path prefix (http://host/orthanc/)

    def __str__(self) -> str:
        return self.display

    def _call(self, what: str, func, *args, **kwargs):
        try:
            return func(*args, timeout=self.timeout, **kwargs)
        except orthanc_errors.ConnectionError:
            raise PacsError(self.display, f"cannot connect to Orthanc's HTTP API ({what}): connection refused or "
                                          "no server at this address") from None
        except orthanc_errors.TimeoutError:
            raise PacsError(self.display, f"Orthanc did not answer within {self.timeout:g} s ({what})") from None
        except orthanc_errors.NotAuthorized as err:
            raise PacsError(self.display, f"Orthanc refused the request ({what}): HTTP {err.http_status_code}; "
                                          "give credentials in ~/.netrc") from None
        except orthanc_errors.OrthancApiException as err:
            code = getattr(err, "http_status_code", None)
            raise PacsError(self.display, f"Orthanc's HTTP API failed ({what})"
                                          + (f": HTTP {code}" if code else "") + (f" {err.msg}" if err.msg else "")) from None
        except ValueError as err:  # an answer that is not JSON: not Orthanc
            raise PacsError(self.display, f"the server does not answer as Orthanc does ({what}: {err})") from None

    def dicom_address(self) -> DicomAddress:
        """Orthanc's own AE title and DICOM port (``GET /system``), on the host of the URL."""
        system = self._call("GET /system", self._client.get_json, "system")
        if not isinstance(system, dict) or "DicomAet" not in system or "DicomPort" not in system:
            raise PacsError(self.display, "the server does not answer as Orthanc does (GET /system has no DicomAet)")
        return DicomAddress(check_aet(str(system["DicomAet"]), "Orthanc's DicomAet"), str(self.host),
                            int(system["DicomPort"]))

    def delete_series(self, series_uid: str) -> int:
        """Delete the series with this SeriesInstanceUID (all its instances); returns how many Orthanc series
        were deleted (0 when it holds none)."""
        found = self._lookup(series_uid)
        for orthanc_id in found:
            self._call(f"DELETE series {series_uid}", self._client.delete, f"series/{orthanc_id}")
        return len(found)

    def _lookup(self, series_uid: str) -> list[str]:
        """Orthanc's ids of the series with this UID (``POST /tools/lookup``)."""
        response = self._call(f"lookup of series {series_uid}", self._client.post, "tools/lookup", data=series_uid)
        return [r["ID"] for r in response.json() if r.get("Type") == "Series"]
