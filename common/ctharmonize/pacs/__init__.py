"""PACS round trip: find a CT series in a PACS, harmonize it, store the derived series back in its study.

DICOM networking (C-FIND, C-GET, C-STORE) goes through pynetdicom (:mod:`ctharmonize.pacs.dimse`);
what DICOM cannot do, deleting a series, through Orthanc's REST API (:mod:`ctharmonize.pacs.orthanc`).
The command is ``ctharmonize pacs-harmonize`` (:mod:`ctharmonize.pacs.commands`).
"""

from ctharmonize.pacs.derived_series import is_harmonized_from
from ctharmonize.pacs.dimse import DicomAddress, DimseClient, RetrieveFailed, SeriesRecord, StoreFailed
from ctharmonize.pacs.orthanc import OrthancRest

__all__ = ["DicomAddress", "DimseClient", "OrthancRest", "RetrieveFailed", "SeriesRecord", "StoreFailed",
           "is_harmonized_from"]
