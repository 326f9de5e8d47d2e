"""Which series of a study is ctharmonize's harmonization of a given source series with a given model and target.

The derived DICOM writer (:mod:`ctharmonize.io.dicom_writer`) marks every instance it writes with

* ``SourceImageSequence``: the SOPInstanceUID of the source slice it was computed from;
* ``ContributingEquipmentSequence``: an item with Manufacturer ``ctharmonize`` and
  ManufacturerModelName the bundle's model name (``"<metadata name> <version>"``, at most 64 characters);
* ``ConvolutionKernel``: the target kernel domain.

A series is the derived series of (source series, model, target) when one of its instances carries all
three with a source slice of that source series. Nothing else (descriptions, series numbers) is relied on.
"""

from __future__ import annotations

from collections.abc import Collection

from pydicom.dataset import Dataset

from ctharmonize.io.dicom_header import multi_str

__all__ = ["EQUIPMENT_MANUFACTURER", "is_harmonized_from"]

#: Manufacturer of ctharmonize's item in ContributingEquipmentSequence.
EQUIPMENT_MANUFACTURER = "ctharmonize"


def is_harmonized_from(header: Dataset, source_sop_uids: Collection[str], model_name: str, target: str) -> bool:
    """Whether ``header`` (one instance of a series) was written by ctharmonize from a slice whose
    SOPInstanceUID is in ``source_sop_uids``, with the model ``model_name``, to the target kernel ``target``."""
    equipment = header.get("ContributingEquipmentSequence") or []
    by_model = any(str(item.get("Manufacturer", "")).strip() == EQUIPMENT_MANUFACTURER
                   and str(item.get("ManufacturerModelName", "")).strip() == str(model_name)[:64].strip()
                   for item in equipment)
    if not by_model or multi_str(header.get("ConvolutionKernel")) != (str(target),):
        return False
    sources = {str(item.get("ReferencedSOPInstanceUID", "")) for item in header.get("SourceImageSequence") or []}
    return not sources.isdisjoint(source_sop_uids)
