"""``HarmonizeSeriesOperator``: the SDK-selected series -> harmonized volumes in float HU, through a bundle's ``harmonizer``.

Why not the SDK's ``MonaiBundleInferenceOperator``: its ``_send_output`` casts every output of type
``"image"`` to ``uint8`` (it assumes a segmentation), which would destroy HU; and it needs a
``network_def``/``model.pt`` forward, not the bundle's ``harmonizer`` item (docs/new_method.md).

Why not the SDK's ``DICOMSeriesToVolumeOperator``: it emits int16/uint16 pixel arrays after its own
rescale and skips the project's checks (rescale tags, spacing, duplicates, FOV padding, tilt). The
series is instead read from its files by :func:`ctharmonize.io.read_dicom`, exactly as ``ctharmonize
harmonize --series UID`` reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from monai.deploy.core import Fragment, Operator, OperatorSpec

from ctharmonize.deploy.series_check import (
    SeriesVerdict,
    check_selected_series,
    rules_name,
    sdk_selected_uids,
)
from ctharmonize.errors import CTHarmonizeError, SeriesNotFoundError
from ctharmonize.inference.harmonize import harmonize_volume
from ctharmonize.inference.harmonizer import Harmonizer
from ctharmonize.inference.source_domain import resolve_source_domain
from ctharmonize.io.dicom_reader import read_dicom
from ctharmonize.io.output_check import check_output
from ctharmonize.io.series import SeriesInfo, choose_series, scan_study
from ctharmonize.io.series_rules import SelectionRules
from ctharmonize.io.slice_orientation import check_axial
from ctharmonize.io.volume import Volume

__all__ = ["HarmonizeSeriesOperator", "HarmonizedSeries", "RunReport", "derived_folder_name"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HarmonizedSeries:
    """One harmonized series on its way to the writer: ``volume`` float32 HU (Z, Y, X) with the source
    header (for the derived series' study and patient), written to the folder ``out``."""

    source: SeriesInfo
    volume: Volume
    source_domain: str
    target: str
    model_name: str
    out: Path


@dataclass
class RunReport:
    """What one app run did, shared by the app and its operators. Bad input does not raise inside the
    graph (Holoscan would log it as an operator failure with a stack); it is kept in ``error`` and the
    downstream operators do not run."""

    error: CTHarmonizeError | None = None
    skipped: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)


def derived_folder_name(source: SeriesInfo, target: str) -> str:
    """``<target>_<source SeriesInstanceUID>``: one folder per source series and target, so a second run
    into the same output folder finds its earlier result (refused unless ``--overwrite``)."""
    return f"{target}_{source.uid}"


def one_line_os_error(err: OSError) -> CTHarmonizeError:
    """An OSError (disk full, permissions) as a one-line error naming its file."""
    return CTHarmonizeError(err.filename, err.strerror or str(err))


class HarmonizeSeriesOperator(Operator):
    """Harmonize every SDK-selected series that ctharmonize can harmonize (:mod:`ctharmonize.deploy.series_check`).

    Named input:
        study_selected_series_list: ``List[StudySelectedSeries]`` of ``DICOMSeriesSelectorOperator``.

    Named output:
        harmonized: ``List[HarmonizedSeries]`` (float32 HU volumes), emitted only when every chosen series
        was read and harmonized; otherwise ``report.error`` is set and nothing is emitted.
    """

    def __init__(self, fragment: Fragment, *args, harmonizer: Harmonizer, target: str, model_name: str,
                 input_folder: Path, output_folder: Path, bundle: Path, rules: SelectionRules,
                 default_rules: bool, overwrite: bool, report: RunReport,
                 progress: Callable[[str], None] | None = None, **kwargs) -> None:
        """
        Args:
            fragment: the application.
            harmonizer: the bundle's ``harmonizer`` item (HU volume, source, target -> HU volume).
            target: target kernel domain.
            model_name: recorded in the derived series (DerivationDescription).
            input_folder: the study folder the SDK loader read (named in errors; files are read from it).
            output_folder: where the derived series folders go.
            bundle: the bundle folder (an input: the outputs must not overlap it).
            rules: the selection rules the SDK selector used, parsed by ctharmonize.
            default_rules: whether they are the shipped ``series_rules.json``.
            overwrite: replace earlier outputs of ctharmonize for the same series.
            report: the run's shared report.
            progress: called with one line per harmonized series.
        """
        self.harmonizer, self.target, self.model_name = harmonizer, target, model_name
        self.input_folder, self.output_folder, self.bundle = Path(input_folder), Path(output_folder), Path(bundle)
        self.rules, self.default_rules, self.overwrite = rules, default_rules, overwrite
        self.report, self.progress = report, progress
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("study_selected_series_list")
        spec.output("harmonized")

    def compute(self, op_input, op_output, context) -> None:
        selected = op_input.receive("study_selected_series_list")
        try:
            items = self.harmonize(sdk_selected_uids(selected))
        except CTHarmonizeError as err:
            self.report.error = err
            return
        except OSError as err:
            self.report.error = one_line_os_error(err)
            return
        op_output.emit(items, "harmonized")

    def choose(self, uids: list[str]) -> tuple[list[SeriesVerdict], list[SeriesVerdict]]:
        """(series to harmonize, skipped series) of the SDK's selection; raises when none is left."""
        where = self.input_folder
        scan = scan_study(where)
        if not uids:
            every = check_selected_series(scan, [s.uid for s in scan.series if s.uid], self.rules, self.default_rules,
                                          self.harmonizer.domains, self.target)
            listed = "; ".join(v.describe() if v.reason else f"{v.describe()}: not selected by the SDK's matcher"
                               for v in every) or "none"
            raise SeriesNotFoundError(where, f"no series matches {rules_name(self.rules, self.default_rules)} "
                                             f"(MONAI Deploy DICOMSeriesSelectorOperator); series here: {listed}")
        verdicts = check_selected_series(scan, uids, self.rules, self.default_rules, self.harmonizer.domains,
                                         self.target)
        chosen = [v for v in verdicts if not v.reason]
        skipped = [v for v in verdicts if v.reason]
        if not chosen:
            raise SeriesNotFoundError(where, "no series to harmonize among those the rules selected: "
                                             + "; ".join(v.describe() for v in skipped))
        for v in chosen:  # the unreadable-neighbour check of the project's series reader
            choose_series(scan, series=v.uid)
        return chosen, skipped

    def harmonize(self, uids: list[str]) -> list[HarmonizedSeries]:
        """Read, check and harmonize the chosen series; every output path is checked before the model runs."""
        chosen, skipped = self.choose(uids)
        for v in skipped:
            log.info("skipped %s", v.describe())
            self.report.skipped.append(v.describe())
        outs = []
        for v in chosen:
            out = self.output_folder / derived_folder_name(v.info, self.target)
            check_output(out, [self.input_folder, self.bundle], self.overwrite)
            outs.append(out)
        items = []
        for v, out in zip(chosen, outs, strict=True):
            volume = read_dicom(self.input_folder, files=v.info.files, slicewise=True)
            volume.header.extra["selected_series"] = v.info.describe()
            check_axial(volume, self.input_folder)
            source = resolve_source_domain(volume, None, self.harmonizer.domains, path=self.input_folder)
            result = harmonize_volume(volume, self.harmonizer, source, self.target, model_name=self.model_name,
                                      path=self.input_folder)
            items.append(HarmonizedSeries(v.info, result, source, self.target, self.model_name, out))
            if self.progress is not None:
                self.progress(f"{v.info.describe()}: {source} -> {self.target}, {volume.shape[0]} slices")
        return items

