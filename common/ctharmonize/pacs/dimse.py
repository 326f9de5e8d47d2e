"""DICOM networking with a PACS through pynetdicom: C-FIND and C-GET (Study Root) and C-STORE.

Each call opens its own association and releases it. Every failure is a one-line
:class:`~ctharmonize.errors.PacsError` naming the PACS (``AET@host:port``) and what went wrong:
no DICOM service at the address, an association the PACS rejects (e.g. an unknown called AE
title), a request the PACS refuses or aborts (e.g. a calling AE title it does not allow to query),
or a failure status. C-GET is used rather than C-MOVE because the PACS then sends the instances
back over the same association, so it needs no route to this machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    LegacyConvertedEnhancedCTImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from ctharmonize.errors import ConfigError, PacsError

__all__ = ["DicomAddress", "DimseClient", "RetrieveFailed", "SeriesRecord", "StoreFailed"]

_AET = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # AE VR: 16 characters, no backslash or control codes

# SOP classes a CT series may hold (what C-GET accepts back); CT Image Storage also in compressed forms
# so that compressed archives need not be transcoded by the PACS.
_RETRIEVED = (CTImageStorage, EnhancedCTImageStorage, LegacyConvertedEnhancedCTImageStorage,
              SecondaryCaptureImageStorage)
_UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
_CT_COMPRESSED = (JPEG2000Lossless, JPEGLosslessSV1, RLELossless, JPEGLSLossless, JPEG2000)
_PENDING = (0xFF00, 0xFF01)
_WARNING = (0x0001, 0xB000, 0xB006, 0xB007)
_ASSOCIATE_TRIES = 3
_SUBOPS_FAILED = 0xA702  # C-GET: some or all instances not sent (e.g. a SOP class not negotiated)


@dataclass(frozen=True)
class DicomAddress:
    """A DICOM service: the PACS's AE title, host and port (``ORTHANC@127.0.0.1:4242``)."""

    aet: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> DicomAddress:
        """``"AET@HOST:PORT"`` -> address; raises :class:`ConfigError`."""
        match = re.fullmatch(r"(?P<aet>[^@]+)@(?P<host>[^:@]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})", str(text).strip())
        if match is None or not 0 < int(match["port"]) < 65536:
            raise ConfigError(None, f"--dicom expects AET@HOST:PORT (e.g. ORTHANC@127.0.0.1:4242), got {text!r}")
        return cls(check_aet(match["aet"], "--dicom"), match["host"].strip("[]"), int(match["port"]))

    def __str__(self) -> str:
        return f"{self.aet}@{self.host}:{self.port}"


def check_aet(aet: str, what: str) -> str:
    """An AE title (1-16 printable characters, no backslash), stripped; raises :class:`ConfigError`."""
    value = str(aet).strip()
    if not _AET.match(value):
        raise ConfigError(None, f"{what}: {aet!r} is not a DICOM AE title (1-16 printable characters, no backslash)")
    return value


@dataclass(frozen=True)
class SeriesRecord:
    """A series as a SERIES-level C-FIND answers it."""

    study_uid: str
    series_uid: str
    modality: str
    number: str
    description: str
    instances: int | None

    def describe(self) -> str:
        """``series 3 (UID ..., 'description', CT)`` for messages."""
        text = ", ".join(p for p in (f"UID {self.series_uid}", repr(self.description) if self.description else "",
                                     self.modality or "no modality") if p)
        return f"series {self.number or '-'} ({text})"


class RetrieveFailed(PacsError):
    """The PACS answered a C-GET with a failure status (e.g. 0xC000 for a SOP class not negotiated)."""


class StoreFailed(PacsError):
    """A C-STORE failed after ``stored`` of the instances had been accepted."""

    def __init__(self, path: str, problem: str, stored: int):
        super().__init__(path, problem)
        self.stored = stored


def _status(status: Dataset) -> str:
    code = int(status.Status)
    comment = str(status.get("ErrorComment", "")).strip()
    return f"status 0x{code:04X}" + (f" ({comment})" if comment else "")


class DimseClient:
    """The DIMSE services of one PACS AE, called as ``calling_aet``; ``timeout`` (s) bounds connecting,
    each association step and each message."""

    def __init__(self, address: DicomAddress, calling_aet: str = "CTHARMONIZE", timeout: float = 30.0):
        self.address = address
        self.calling_aet = check_aet(calling_aet, "--aet")
        self.timeout = float(timeout)

    def __str__(self) -> str:
        return str(self.address)

    @contextmanager
    def _association(self, contexts: Sequence, roles: Sequence = (),
                     handlers: Sequence[tuple] = ()) -> Iterator:
        answer: dict = {}

        def on_acse(event) -> None:  # the A-ASSOCIATE-RJ, to say why the PACS rejected us
            primitive = event.primitive
            if getattr(primitive, "result", None) in (0x01, 0x02):
                answer["reason"] = primitive.reason_str

        def on_open(event) -> None:
            answer["connected"] = True

        # A PACS that rejects an association may close the connection at once, and then its
        # A-ASSOCIATE-RJ is sometimes lost (seen with Orthanc: about 1 in 10): ask again, twice at most.
        for _ in range(_ASSOCIATE_TRIES):
            answer.clear()
            ae = AE(ae_title=self.calling_aet)
            ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
            ae.requested_contexts = list(contexts)
            assoc = ae.associate(self.address.host, self.address.port, ae_title=self.address.aet,
                                 ext_neg=list(roles) or None,
                                 evt_handlers=[(evt.EVT_ACSE_RECV, on_acse), (evt.EVT_CONN_OPEN, on_open), *handlers])
            if assoc.is_established or assoc.is_rejected or not answer.get("connected"):
                break
        if assoc.is_rejected:
            raise PacsError(str(self), f"the PACS rejected the association from AE title {self.calling_aet!r}: "
                                       f"{answer.get('reason', 'no reason given')} (check the PACS's AE title in "
                                       "--dicom and that --aet is configured on the PACS)")
        if not answer.get("connected"):
            raise PacsError(str(self), "no DICOM service answered (connection refused or timed out)")
        if not assoc.is_established:
            raise PacsError(str(self), f"the PACS closed the connection without accepting the association from AE "
                                       f"title {self.calling_aet!r} (an AE title it does not know, or none of the "
                                       "requested presentation contexts accepted)")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _find(self, query: Dataset) -> list[Dataset]:
        """The identifiers a Study Root C-FIND answers with."""
        model = StudyRootQueryRetrieveInformationModelFind
        out = []
        with self._association([build_context(model)]) as assoc:
            for status, identifier in assoc.send_c_find(query, model):
                if not status or "Status" not in status:
                    raise PacsError(str(self), f"the PACS aborted the association during C-FIND (does it allow AE "
                                               f"title {self.calling_aet!r} to query?)")
                if status.Status in _PENDING:
                    if identifier is not None:
                        out.append(identifier)
                elif status.Status != 0x0000:
                    raise PacsError(str(self), f"C-FIND failed with {_status(status)}")
        return out

    def find_series(self, study_uid: str | None = None, series_uid: str | None = None) -> list[SeriesRecord]:
        """The series of a study, or the one series with a UID (optionally within a study)."""
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study_uid or ""
        query.SeriesInstanceUID = series_uid or ""
        for keyword in ("Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances"):
            setattr(query, keyword, "")
        out = []
        for ds in self._find(query):
            count = str(ds.get("NumberOfSeriesRelatedInstances", "") or "").strip()
            out.append(SeriesRecord(str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")),
                                    str(ds.get("Modality", "") or "").upper(), str(ds.get("SeriesNumber", "") or ""),
                                    str(ds.get("SeriesDescription", "") or ""), int(count) if count.isdigit() else None))
        return sorted(out, key=lambda s: (s.number.zfill(8), s.series_uid))

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        """The SOPInstanceUIDs of a series (IMAGE-level C-FIND)."""
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        query.SOPInstanceUID = ""
        return sorted({str(ds.SOPInstanceUID) for ds in self._find(query) if ds.get("SOPInstanceUID")})

    def get(self, study_uid: str, series_uid: str, folder: str | Path, sop_uid: str | None = None) -> list[Path]:
        """C-GET a series (or one of its instances) into ``folder`` as received (files named by SOPInstanceUID,
        bytes as the PACS sent them); returns the files written. Instances the PACS could not send (a SOP
        class outside the CT ones requested) are left out: the caller compares with what C-FIND listed."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        model = StudyRootQueryRetrieveInformationModelGet
        contexts = [build_context(model)]
        contexts += [build_context(uid, _UNCOMPRESSED) for uid in _RETRIEVED]
        contexts += [build_context(CTImageStorage, [syntax]) for syntax in _CT_COMPRESSED]
        roles = [build_role(uid, scp_role=True) for uid in _RETRIEVED]

        def on_store(event) -> int:
            sop = str(event.request.AffectedSOPInstanceUID)
            path = folder / (re.sub(r"[^0-9.]", "_", sop) + ".dcm")
            path.write_bytes(event.encoded_dataset())
            written.append(path)
            return 0x0000

        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE" if sop_uid else "SERIES"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        if sop_uid:
            query.SOPInstanceUID = sop_uid
        with self._association(contexts, roles, [(evt.EVT_C_STORE, on_store)]) as assoc:
            for status, _ in assoc.send_c_get(query, model):
                if not status or "Status" not in status:
                    raise PacsError(str(self), f"the PACS aborted the association during C-GET (does it allow AE "
                                               f"title {self.calling_aet!r} to retrieve?)")
                if status.Status not in _PENDING and status.Status not in (0x0000, _SUBOPS_FAILED, *_WARNING):
                    raise RetrieveFailed(str(self), f"C-GET of series {series_uid} failed with {_status(status)}")
        return written

    def store(self, files: Iterable[str | Path]) -> int:
        """C-STORE the CT image files in order; stops at the first failure and raises :class:`StoreFailed`
        (with how many were stored). Returns the number stored."""
        files = [Path(f) for f in files]
        stored = 0
        # one context per transfer syntax: a file is sent as it is, in the context of its own syntax
        with self._association([build_context(CTImageStorage, [ts]) for ts in _UNCOMPRESSED]) as assoc:
            for path in files:
                status = assoc.send_c_store(path)
                if not status or "Status" not in status:
                    raise StoreFailed(str(self), f"the PACS aborted the association while storing {path.name} "
                                                 f"({stored} of {len(files)} instances stored)", stored)
                if status.Status != 0x0000 and status.Status not in _WARNING:
                    raise StoreFailed(str(self), f"C-STORE of {path.name} failed with {_status(status)} "
                                                 f"({stored} of {len(files)} instances stored)", stored)
                stored += 1
        return stored
