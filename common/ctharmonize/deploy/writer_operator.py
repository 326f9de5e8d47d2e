"""``DerivedSeriesWriterOperator``: harmonized float-HU volumes -> derived CT DICOM series, with the project's writer.

The SDK has no operator that writes an image series (its writers make DICOM SEG, SR, encapsulated
PDF). Each volume is written by :func:`ctharmonize.io.write_volume` as a folder holding a derived CT
series in the source's study: new SeriesInstanceUID and SOPInstanceUIDs, ImageType DERIVED\\SECONDARY,
the source referenced, the model and target kernel in DerivationDescription (docs/io.md). Each folder
appears atomically; when a later one fails, the ones this run created are removed again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from monai.deploy.core import Fragment, Operator, OperatorSpec

from ctharmonize.deploy.harmonize_operator import HarmonizedSeries, RunReport, one_line_os_error
from ctharmonize.errors import CTHarmonizeError
from ctharmonize.io.atomic import output_record_path
from ctharmonize.io.write import write_volume

__all__ = ["DerivedSeriesWriterOperator"]


class DerivedSeriesWriterOperator(Operator):
    """Write each :class:`~ctharmonize.deploy.harmonize_operator.HarmonizedSeries` to its folder.

    Named input:
        harmonized: ``List[HarmonizedSeries]``.
    """

    def __init__(self, fragment: Fragment, *args, overwrite: bool, report: RunReport,
                 progress: Callable[[str], None] | None = None, **kwargs) -> None:
        """
        Args:
            fragment: the application.
            overwrite: replace earlier, unchanged ctharmonize outputs of the same series.
            report: the run's shared report (``written`` and ``error`` are set here).
            progress: called with one line per written series.
        """
        self.overwrite, self.report, self.progress = overwrite, report, progress
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("harmonized")

    def compute(self, op_input, op_output, context) -> None:
        items: list[HarmonizedSeries] = op_input.receive("harmonized")
        created: list[Path] = []
        try:
            for item in items:
                existed = os.path.lexists(item.out)
                path = write_volume(item.volume, item.out, overwrite=self.overwrite, model_name=item.model_name,
                                    target_kernel=item.target)
                if not existed:
                    created.append(path)
                self.report.written.append(path)
                line = f"{path}: {item.source.describe()} {item.source_domain} -> {item.target}"
                self.report.summaries.append(line)
                if self.progress is not None:
                    self.progress(line)
        except (CTHarmonizeError, OSError) as err:
            for path in created:  # no partial result: remove what this run created
                shutil.rmtree(path, ignore_errors=True)
                output_record_path(path).unlink(missing_ok=True)
            self.report.written.clear()
            self.report.summaries.clear()
            self.report.error = err if isinstance(err, CTHarmonizeError) else one_line_os_error(err)
