"""Datalists: JSON files listing CT volumes with kernel, vendor, subject, split and masks."""

from ctharmonize.data.datalist import (
    DATALIST_SCHEMA_FILE,
    KNOWN_KEYS,
    PATH_KEYS,
    SPLITS,
    datalist_entries,
    entry_paths,
    filter_datalist,
    load_datalist,
    save_datalist,
    validate_datalist_document,
)
from ctharmonize.data.truth_entries import truth_entries, with_truth_entries

__all__ = [
    "datalist_entries",
    "entry_paths",
    "DATALIST_SCHEMA_FILE", "KNOWN_KEYS", "PATH_KEYS", "SPLITS",
    "filter_datalist", "load_datalist", "save_datalist", "validate_datalist_document",
    "truth_entries", "with_truth_entries",
]
