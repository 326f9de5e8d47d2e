"""Series selection rules in the JSON format of MONAI Deploy's ``DICOMSeriesSelectorOperator``.

A rules document is ``{"selections": [{"name": ..., "conditions": {KEYWORD: CONDITION, ...}}, ...]}``;
the shipped default is ``series_rules.json`` beside this module (validated by
``series_rules.schema.json``). A series matches a selection when every condition holds for the
attributes of its first file. Conditions, as in monai-deploy-app-sdk:

* attribute is a string: equal ignoring case, else the condition is a regular expression searched
  case-insensitively (``"(?i)^CT$"``, ``"(?i)bone"``);
* attribute is a number (IS/DS): a number is an exact match, ``[min, max]`` an inclusive range,
  ``[value, op]`` with op one of ``> >= < <= !=`` a comparison, a string a regex ``fullmatch``;
* attribute is multi-valued (ImageType): a value or list of values that must all be present,
  ``"!VALUE"`` values that must be absent, compared ignoring case;
* ``ImageOrientationPatient``: ``"Axial"``, ``"Coronal"`` or ``"Sagittal"``, the patient axis
  closest to the slice normal (row x column direction).

Differences from the SDK, all stricter or clearer: multi-valued attributes are matched value by
value (the SDK searches the text of the whole list, so ``"AXIAL"`` would also match
``NONAXIAL``); a condition of ``0`` is honoured (the SDK ignores every falsy condition; here only
``null``, ``""`` and ``[]`` are ignored); an unknown DICOM keyword or an impossible condition is an
error naming the rules file, not a silent non-match; ``ImageOrientationPatient`` needs no
PatientPosition.

Extension (ignored by the SDK, which reads only ``name`` and ``conditions``): a selection's
``"ctharmonize": {"known_kernel": true}`` also requires that the kernel-domain registry resolves
the series' (Manufacturer, ConvolutionKernel) to a domain (:mod:`ctharmonize.domains.registry`).
"""

from __future__ import annotations

import json
import operator
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from ctharmonize.data.documents import check_document, load_document
from ctharmonize.errors import SelectionRulesError
from ctharmonize.io.slice_orientation import iop_direction

__all__ = [
    "SERIES_RULES_FILE",
    "SERIES_RULES_SCHEMA_FILE",
    "Selection",
    "SelectionRules",
    "load_rules",
    "dominant_orientation",
]

_HERE = Path(__file__).resolve().parent
#: The shipped default rules (also meant for the MONAI Deploy app).
SERIES_RULES_FILE = _HERE / "series_rules.json"
SERIES_RULES_SCHEMA_FILE = _HERE / "series_rules.schema.json"

_ORIENTATIONS = ("sagittal", "coronal", "axial")  # slice normal along LPS x, y, z
_RELATIONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "!=": operator.ne,
}


def dominant_orientation(iop: Any) -> str | None:
    """``"axial"``, ``"coronal"`` or ``"sagittal"``: the patient axis closest to the normal of an
    ImageOrientationPatient (the SDK's rule: no "oblique"); None when it is missing or degenerate."""
    direction = iop_direction(iop)
    return None if direction is None else _ORIENTATIONS[int(np.argmax(np.abs(direction[:, 2])))]


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (str, PersonName)):
        return str(value).strip()
    if isinstance(value, bytes):
        return value.decode("latin-1", "replace").strip("\x00 ")
    return None  # sequences and other values are not matched


def attribute_value(ds: Dataset, keyword: str) -> Any:
    """A header value as the SDK matches it: str, int/float, or a list for multi-valued elements;
    None when absent or empty."""
    tag = tag_for_keyword(keyword)
    if tag is None or tag not in ds:
        return None
    value = ds[tag].value
    if isinstance(value, (MultiValue, list, tuple)):
        items = [_scalar(v) for v in value]
        items = [v for v in items if v is not None and v != ""]
        return items or None
    value = _scalar(value)
    return None if value is None or value == "" else value


@dataclass(frozen=True)
class Selection:
    """One named selection: ``conditions`` (DICOM keyword -> condition) and the extension flags."""

    name: str
    conditions: Mapping[str, Any]
    known_kernel: bool = False
    where: str = ""  # location in the document, e.g. "selections[0]"

    def mismatch(self, ds: Dataset, domain: str | None, source: str | None) -> str | None:
        """Why a series whose first file's header is ``ds`` (and whose kernel resolves to
        ``domain``, None if unknown) fails this selection, or None when it meets every condition.
        ``source`` names the rules in errors."""
        for keyword, condition in self.conditions.items():
            if condition is None or condition == "" or condition == []:
                continue
            if not _condition_holds(keyword, condition, ds, source, f"{self.where}.conditions.{keyword}"):
                if keyword == "ImageOrientationPatient":
                    value = dominant_orientation(ds.get(keyword))
                else:
                    value = attribute_value(ds, keyword)
                return f"{keyword} {value!r} does not meet {condition!r}"
        if self.known_kernel and domain is None:
            return "kernel not in the domain registry"
        return None

    def matches(self, ds: Dataset, domain: str | None, source: str | None) -> bool:
        """Whether the series meets every condition (see :meth:`mismatch`)."""
        return self.mismatch(ds, domain, source) is None


def _condition_holds(keyword: str, condition: Any, ds: Dataset, source: str | None, where: str) -> bool:
    """Whether one condition holds for the header ``ds``; an impossible one raises naming ``where``."""
    if keyword == "ImageOrientationPatient":
        return dominant_orientation(ds.get("ImageOrientationPatient")) == str(condition).strip().lower()
    value = attribute_value(ds, keyword)
    if value is None:
        return False
    if isinstance(value, list):
        terms = condition if isinstance(condition, list) else [condition]
        have = {str(v).casefold() for v in value}
        for term in (str(t).strip().casefold() for t in terms):
            if term.startswith("!"):
                if term[1:] in have:
                    return False
            elif term not in have:
                return False
        return True
    try:
        return _value_meets(keyword, condition, value)
    except re.error as err:
        raise SelectionRulesError(source, f"{where}: invalid regular expression {condition!r} ({err})") from err
    except _Impossible as err:
        raise SelectionRulesError(source, f"{where}: {err}") from err


class _Impossible(Exception):
    """A condition that cannot apply to the attribute's type."""


def _value_meets(keyword: str, condition: Any, value: Any) -> bool:
    if isinstance(value, (int, float)):
        if isinstance(condition, str):
            return re.fullmatch(condition, str(value)) is not None
        if isinstance(condition, (int, float)):
            return value == condition
        if len(condition) == 2 and isinstance(condition[1], str):
            if condition[1] not in _RELATIONS or isinstance(condition[0], str):
                raise _Impossible(f"expected [number, one of {' '.join(_RELATIONS)}], got {condition!r}")
            return _RELATIONS[condition[1]](value, float(condition[0]))
        if len(condition) == 2 and all(isinstance(c, (int, float)) for c in condition):
            return condition[0] <= value <= condition[1]
        raise _Impossible(f"{keyword} is a number; expected a number, [min, max], [value, op] or a regex, "
                          f"got {condition!r}")
    if not isinstance(condition, str):
        raise _Impossible(f"{keyword} is a single text value; the condition must be a string (a regex), "
                          f"got {condition!r}")
    return value.casefold() == condition.casefold() or re.search(condition, value, re.IGNORECASE) is not None


@dataclass(frozen=True)
class SelectionRules:
    """Parsed rules: the selections in order and where they came from (named in messages)."""

    selections: tuple[Selection, ...]
    source: str | None = None
    description: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """Name of the rules for messages: the file path, or ``"rules"`` (a dict or JSON text)."""
        return self.source or "rules"


def _parse(doc: Any, source: str | None) -> SelectionRules:
    check_document(doc, SERIES_RULES_SCHEMA_FILE, source, SelectionRulesError)
    selections = []
    for i, sel in enumerate(doc["selections"]):
        where = f"selections[{i}]"
        for keyword, condition in sel["conditions"].items():
            at = f"{where}.conditions.{keyword}"
            if keyword == "ImageOrientationPatient":
                if str(condition).strip().lower() not in _ORIENTATIONS:
                    raise SelectionRulesError(source, f"{at}: expected 'Axial', 'Coronal' or 'Sagittal', got {condition!r}")
                continue
            if tag_for_keyword(keyword) is None:
                raise SelectionRulesError(source, f"{at}: {keyword!r} is not a DICOM attribute keyword")
            if isinstance(condition, str) and not condition.startswith("!"):
                try:
                    re.compile(condition)
                except re.error as err:
                    raise SelectionRulesError(source, f"{at}: invalid regular expression {condition!r} ({err})") from err
        extension = sel.get("ctharmonize", {})
        selections.append(Selection(name=sel.get("name", "").strip() or where, conditions=dict(sel["conditions"]),
                                    known_kernel=bool(extension.get("known_kernel", False)), where=where))
    return SelectionRules(tuple(selections), source, doc.get("description", ""))


def load_rules(rules: str | os.PathLike | Mapping | SelectionRules | None = None) -> SelectionRules:
    """Selection rules from a JSON/YAML file path, a JSON text (starting with ``{``), a dict, or
    None for the shipped ``series_rules.json``. Any problem raises :class:`SelectionRulesError`
    naming the file (or ``rules``) and the location in the document."""
    if isinstance(rules, SelectionRules):
        return rules
    if rules is None:
        rules = SERIES_RULES_FILE
    if isinstance(rules, Mapping):
        return _parse(dict(rules), "rules")
    if isinstance(rules, str) and rules.lstrip().startswith("{"):
        try:
            doc = json.loads(rules)
        except json.JSONDecodeError as err:
            raise SelectionRulesError("rules", f"not valid JSON: line {err.lineno} column {err.colno}: {err.msg}") from err
        return _parse(doc, "rules")
    if not isinstance(rules, (str, os.PathLike)):
        raise SelectionRulesError(None, f"rules must be a file path or a dict, got {type(rules).__name__}")
    path = Path(rules)
    return _parse(load_document(path, SelectionRulesError), os.fspath(path))
