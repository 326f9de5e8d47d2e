"""The MONAI Deploy application: DICOM study in, derived (harmonized) DICOM series out, with any bundle.

The operators and the app need the ``deploy`` extra (monai-deploy-app-sdk 4.x); nothing here is
imported by the rest of ctharmonize. The chain (``ctharmonize.deploy.app``):

``DICOMDataLoaderOperator`` (SDK) -> ``DICOMSeriesSelectorOperator`` (SDK, the rules of
``ctharmonize/io/series_rules.json``) -> :class:`~ctharmonize.deploy.harmonize_operator.HarmonizeSeriesOperator`
(the project's series reader, the registry follow-up check of :mod:`ctharmonize.deploy.series_check`,
the bundle's ``harmonizer``; float HU) -> :class:`~ctharmonize.deploy.writer_operator.DerivedSeriesWriterOperator`
(the project's derived DICOM writer). Run it with ``python -m apps.deploy -i IN -o OUT -m BUNDLE``.
"""

from __future__ import annotations

import warnings

# Holoscan (imported with monai.deploy, and by `import monai` once the SDK is installed) warns on every
# import that the stack limit is below 32 MB; it is advice for its GPU pipelines, not an error of ours.
warnings.filterwarnings("ignore", message=r"Current stack size .* below the recommended minimum",
                        category=RuntimeWarning)
