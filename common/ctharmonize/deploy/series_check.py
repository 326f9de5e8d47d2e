"""Which of the series the SDK's ``DICOMSeriesSelectorOperator`` picked ctharmonize can harmonize.

The SDK operator reads only ``name`` and ``conditions`` of a rules document; it cannot express the
registry check (``"ctharmonize": {"known_kernel": true}``), and it matches multi-valued attributes
(ImageType) as text, so ``"AXIAL"`` also matches ``NONAXIAL``. Each SDK-selected series is therefore
looked up by SeriesInstanceUID in the project's own scan of the input folder
(:func:`ctharmonize.io.series.scan_study`, which groups every file of the series) and kept only when

* it is readable as a CT volume, and harmonizable (not a localizer, derived image, reformat, ...)
  when the default rules are used, as for ``ctharmonize harmonize``;
* a selection of the same rules matches it with the project's matcher (value by value, the
  ``known_kernel`` extension included);
* the kernel-domain registry resolves its (Manufacturer, ConvolutionKernel), the model has that
  source domain, and it is not already the target domain.

Every other series is skipped with its reason, which the app reports if nothing is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ctharmonize.io.series import SeriesInfo, StudyScan
from ctharmonize.io.series_rules import SelectionRules

__all__ = ["SeriesVerdict", "check_selected_series", "rules_name", "sdk_selected_uids"]


@dataclass(frozen=True)
class SeriesVerdict:
    """One SDK-selected series: the project's view of it (None when the scan has no such UID), and why
    it is skipped ("" when it is harmonized)."""

    uid: str
    info: SeriesInfo | None
    reason: str

    def describe(self) -> str:
        """``series N (UID ..., ...): reason`` for messages."""
        what = self.info.describe() if self.info is not None else f"series UID {self.uid}"
        return f"{what}: {self.reason}" if self.reason else what


def sdk_selected_uids(study_selected_series_list: Iterable) -> list[str]:
    """The SeriesInstanceUIDs in a ``DICOMSeriesSelectorOperator`` output (``List[StudySelectedSeries]``),
    in order, each once (a series matched by several selections appears once)."""
    uids: list[str] = []
    for study in study_selected_series_list or ():
        for selected in study.selected_series:
            uid = str(selected.series.SeriesInstanceUID)
            if uid not in uids:
                uids.append(uid)
    return uids


def rules_name(rules: SelectionRules, default_rules: bool) -> str:
    """How messages name the rules: the shipped default, or the file they came from."""
    return "the default selection rules (series_rules.json)" if default_rules else f"the selection rules of {rules.label}"


def _reason(info: SeriesInfo, rules: SelectionRules, default_rules: bool, model_domains: Sequence[str],
            target: str) -> str:
    if not (info.has_image and info.readable):
        return f"not readable as a CT volume ({info.reason})"
    if default_rules and not info.harmonizable:
        return info.reason
    mismatches = [sel.mismatch(info.header, info.domain, rules.source) for sel in rules.selections]
    if all(m is not None for m in mismatches):
        return f"no selection of {rules_name(rules, default_rules)} matches ({mismatches[0]})"
    if info.domain is None:
        return "kernel not in the domain registry"
    if info.domain not in model_domains:
        return f"source domain {info.domain} is not one the model knows ({', '.join(model_domains)})"
    if info.domain == target:
        return f"already in the target domain {target}"
    return ""


def check_selected_series(scan: StudyScan, uids: Sequence[str], rules: SelectionRules, default_rules: bool,
                          model_domains: Sequence[str], target: str) -> list[SeriesVerdict]:
    """A verdict for each SDK-selected UID (see the module docstring); ``reason == ""`` means harmonize it."""
    by_uid = {s.uid: s for s in scan.series if s.uid}
    verdicts = []
    for uid in uids:
        info = by_uid.get(uid)
        if info is None:
            verdicts.append(SeriesVerdict(uid, None, "not found as a series by ctharmonize's reader"))
        else:
            verdicts.append(SeriesVerdict(uid, info, _reason(info, rules, default_rules, model_domains, target)))
    return verdicts
