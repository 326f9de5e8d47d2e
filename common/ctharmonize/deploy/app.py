"""The MONAI Deploy application: ``python -m apps.deploy -i STUDY -o OUT -m BUNDLE``.

Flags are the SDK's (``-i/--input``, ``-o/--output``, ``-m/--model``, ``-w/--workdir``,
``-l/--log-level``, with the SDK's environment defaults ``HOLOSCAN_INPUT_PATH``, ``HOLOSCAN_OUTPUT_PATH``,
``HOLOSCAN_MODEL_PATH``, ``HOLOSCAN_WORKDIR`` that a MAP sets) plus ctharmonize's ``--target``,
``--device``, ``--rules``, ``--overwrite``, ``--trust_bundle`` and ``--spacing_policy``.

``-m`` is a bundle folder, or a folder holding exactly one (a MAP's ``/opt/holoscan/models``). The app
reads it itself: the SDK's ``AppContext`` would wrap a bundle folder in a generic ``Model`` without a
predictor (the SDK's "A predictor of the model is not set"). A bundle's configs are code, so it runs
only when trusted (docs/bundles.md): shipped with ctharmonize, an identical copy, recorded with
``ctharmonize trust-bundle``, or ``--trust_bundle`` / ``CTHARMONIZE_TRUST_BUNDLE=1`` for this run.

Everything that can be checked before the graph runs is (the input is a folder with a DICOM image
series, the output folder does not overlap it, the bundle is trusted and loads, the target is one
the model knows, the rules are valid), so bad input costs nothing and writes nothing. Errors are one
line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import ctharmonize.deploy  # first: it quiets Holoscan's import-time warning
from ctharmonize.errors import ConfigError, CTHarmonizeError, InputError, SelectionRulesError

__all__ = ["AppSettings", "application_class", "main", "parse_settings", "resolve_bundle", "run"]

PROG = "python -m apps.deploy"
TRUST_ENV = "CTHARMONIZE_TRUST_BUNDLE"
_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class AppSettings:
    """The checked command line: paths absolute, the bundle resolved (see :func:`resolve_bundle`)."""

    input: Path
    output: Path
    bundle: Path
    target: str | None = None
    device: str | None = None
    rules: Path | None = None
    overwrite: bool = False
    trust_bundle: bool = False
    log_level: str | None = None
    spacing_policy: str = "resample"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like the ctharmonize CLI
        raise ConfigError(None, message)


def _env_default(key: str) -> str:
    from monai.deploy.core import RuntimeEnv

    return str(getattr(RuntimeEnv(), key) or "")


def resolve_bundle(path: str | os.PathLike) -> Path:
    """The bundle folder ``path`` names: itself when it holds ``configs/inference.json``, else its one
    sub-folder that does (the MAP layout ``models/<bundle>``). Raises :class:`ConfigError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(path, "no such bundle folder (pass -m BUNDLE or set HOLOSCAN_MODEL_PATH)")
    if not path.is_dir():
        raise ConfigError(path, "expected a bundle folder (configs/inference.json), not a file: the app runs the "
                                "bundle's harmonizer item, not a TorchScript or checkpoint file")
    if (path / "configs" / "inference.json").is_file():
        return path
    inner = sorted(p for p in path.iterdir() if (p / "configs" / "inference.json").is_file())
    if len(inner) == 1:
        return inner[0]
    if inner:
        raise ConfigError(path, f"holds {len(inner)} bundles ({', '.join(p.name for p in inner)}); "
                                "pass -m with the one to run")
    raise ConfigError(path, "not a bundle folder: no configs/inference.json in it or in a sub-folder")


def parse_settings(args: list[str]) -> AppSettings:
    """Parse the command line (without the program name); paths default to the SDK's environment variables."""
    parser = _Parser(prog=PROG, description="Harmonize the CT series of a DICOM study with a ctharmonize "
                                            "bundle (MONAI Deploy application); writes derived DICOM series.")
    parser.add_argument("-i", "--input", help="folder of the DICOM study (default: $HOLOSCAN_INPUT_PATH or input)")
    parser.add_argument("-o", "--output", help="folder for the derived series, one sub-folder each "
                                               "(default: $HOLOSCAN_OUTPUT_PATH or output)")
    parser.add_argument("-m", "--model", help="bundle folder, or a folder holding one bundle "
                                              "(default: $HOLOSCAN_MODEL_PATH or models)")
    parser.add_argument("-w", "--workdir", help="accepted for the SDK's interface; unused")
    parser.add_argument("-l", "--log-level", dest="log_level", type=str.upper, choices=_LEVELS,
                        help="log level of the SDK and Holoscan (default: warnings of the SDK only)")
    parser.add_argument("--target", help="target kernel domain (default: the bundle's target_kernel)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the bundle's device)")
    parser.add_argument("--rules", help="series selection rules JSON (default: ctharmonize's series_rules.json)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace earlier, unchanged ctharmonize outputs of the same series")
    parser.add_argument("--trust_bundle", "--trust-bundle", action="store_true",
                        help=f"run a bundle that is neither shipped nor recorded as trusted (or set {TRUST_ENV}=1)")
    parser.add_argument("--spacing_policy", "--spacing-policy", choices=("resample", "refuse"), default="resample",
                        help="a series whose in-plane pixel spacing is outside the bundle's trained_pixel_spacing_mm: "
                             "resample in-plane to that range and back (default) or refuse it")
    ns = parser.parse_args(args)
    trust = ns.trust_bundle or os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes")
    return AppSettings(
        input=Path(ns.input or _env_default("input")).absolute(),
        output=Path(ns.output or _env_default("output")).absolute(),
        bundle=resolve_bundle(Path(ns.model or _env_default("model")).absolute()),
        target=ns.target, device=ns.device, rules=None if ns.rules is None else Path(ns.rules).absolute(),
        overwrite=ns.overwrite, trust_bundle=trust, log_level=ns.log_level, spacing_policy=ns.spacing_policy,
    )


def _rules(settings: AppSettings):
    """(parsed rules, the JSON text for the SDK's selector)."""
    from ctharmonize.data.documents import load_document
    from ctharmonize.io.series_rules import SERIES_RULES_FILE, load_rules

    if settings.rules is None:
        return load_rules(None), SERIES_RULES_FILE.read_text(encoding="utf-8")
    rules = load_rules(settings.rules)
    return rules, json.dumps(load_document(settings.rules, SelectionRulesError))


def _set_up_logging(level: str | None) -> None:
    """Python logging in the SDK's format at ``level`` (default WARN); Holoscan's C++ log at ``level`` too,
    default off (it would print each operator failure with a stack; the app prints one line)."""
    from holoscan.logger import LogLevel, set_log_level

    logging.basicConfig(format="[%(asctime)s] [%(levelname)s] (%(name)s) - %(message)s")  # no-op if configured
    logging.getLogger().setLevel(level or "WARN")
    if "HOLOSCAN_LOG_LEVEL" not in os.environ:
        set_log_level(LogLevel.OFF if level is None else getattr(LogLevel, level))


def _check_input(folder: Path):
    """The study folder scanned (headers only); it must hold a DICOM image series."""
    from ctharmonize.errors import SeriesNotFoundError
    from ctharmonize.io.series import scan_study

    if not folder.exists():
        raise InputError(folder, "no such folder")
    if not folder.is_dir():
        raise InputError(folder, "the MONAI Deploy app reads a folder of DICOM files (the SDK's "
                                 "DICOMDataLoaderOperator), not a single file")
    scan = scan_study(folder)
    if not any(s.has_image for s in scan.series):
        raise SeriesNotFoundError(folder, "no DICOM image series found")
    return scan


def application_class() -> type:
    """The app's ``Application`` subclass (defined on first use, so that this module imports without the SDK)."""
    from holoscan.conditions import CountCondition
    from monai.deploy.core import Application
    from monai.deploy.operators import DICOMDataLoaderOperator, DICOMSeriesSelectorOperator

    from ctharmonize.deploy.harmonize_operator import HarmonizeSeriesOperator
    from ctharmonize.deploy.writer_operator import DerivedSeriesWriterOperator

    class HarmonizationApp(Application):
        """DICOM loader -> series selector (SDK) -> harmonizer -> derived-series writer (ctharmonize)."""

        def __init__(self, *, rules_json: str, harmonize: dict, overwrite: bool, report) -> None:
            self.rules_json, self.harmonize_args, self.overwrite, self.report = rules_json, harmonize, overwrite, report
            super().__init__([sys.executable, PROG])

        def compose(self) -> None:
            loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), name="dicom_loader",
                                             input_folder=self.harmonize_args["input_folder"])
            selector = DICOMSeriesSelectorOperator(self, name="series_selector", rules=self.rules_json,
                                                   all_matched=True)
            harmonizer = HarmonizeSeriesOperator(self, name="harmonizer", report=self.report, **self.harmonize_args)
            writer = DerivedSeriesWriterOperator(self, name="derived_series_writer", overwrite=self.overwrite,
                                                 report=self.report)
            self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
            self.add_flow(selector, harmonizer, {("study_selected_series_list", "study_selected_series_list")})
            self.add_flow(harmonizer, writer, {("harmonized", "harmonized")})

    return HarmonizationApp


def run(settings: AppSettings):
    """Check everything, run the graph, return its :class:`~ctharmonize.deploy.harmonize_operator.RunReport`.
    Raises :class:`CTHarmonizeError` for bad input found before or during the run."""
    from ctharmonize.deploy.harmonize_operator import RunReport
    from ctharmonize.inference.bundle_harmonizer import (
        bundle_default_target,
        bundle_model_name,
        load_bundle_harmonizer,
        read_bundle_config,
    )
    from ctharmonize.inference.source_domain import check_model_domain
    from ctharmonize.io.output_check import check_not_overlapping, check_parent_writable
    from ctharmonize.torch_device import resolve_device

    _set_up_logging(settings.log_level)
    logging.getLogger(__name__).info("ctharmonize %s from %s", ctharmonize.__version__,
                                     Path(ctharmonize.__file__).parent)
    device = str(resolve_device(settings.device)) if settings.device else None
    if settings.target is not None:
        from ctharmonize.domains import default_registry

        default_registry().validate_target(settings.target)
    check_not_overlapping(settings.output, [settings.input, settings.bundle])
    if settings.output.exists() and not settings.output.is_dir():
        raise ConfigError(settings.output, "the output must be a folder (the derived series go in sub-folders)")
    check_parent_writable(settings.output / "probe")
    rules, rules_json = _rules(settings)
    _check_input(settings.input)
    parser = read_bundle_config(settings.bundle, trust=settings.trust_bundle)
    target = settings.target or bundle_default_target(parser)
    harmonizer = load_bundle_harmonizer(parser=parser, device=device, spacing_policy=settings.spacing_policy)
    check_model_domain(target, harmonizer.domains, "target", settings.bundle)

    from monai.deploy.exceptions import ItemNotExistsError

    report = RunReport()
    created = not settings.output.exists()
    settings.output.mkdir(parents=True, exist_ok=True)
    harmonize = dict(harmonizer=harmonizer, target=target, model_name=bundle_model_name(parser),
                     input_folder=settings.input, output_folder=settings.output, bundle=settings.bundle,
                     rules=rules, default_rules=settings.rules is None, overwrite=settings.overwrite,
                     progress=logging.getLogger(__name__).info)
    app = application_class()(rules_json=rules_json, harmonize=harmonize, overwrite=settings.overwrite,
                               report=report)
    try:
        app.run()
    except CTHarmonizeError as err:
        report.error = err
    except (ValueError, NotImplementedError, ItemNotExistsError) as err:  # bad input an SDK operator refused,
        text = " ".join(str(err).split()) or "no message"
        # e.g. the selector's orientation rule on a series without PatientPosition
        report.error = InputError(settings.input, f"the MONAI Deploy pipeline failed ({type(err).__name__}: {text})")
    if report.error is not None and created and settings.output.is_dir() and not any(settings.output.iterdir()):
        settings.output.rmdir()
    if report.error is not None:
        raise report.error
    if not report.written:
        raise InputError(settings.input, "the pipeline finished without writing a series")
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``argv`` without the program name (default ``sys.argv[1:]``); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        try:
            parse_settings(["--help"])
        except SystemExit:
            return 0
    try:
        settings = parse_settings(args)
        report = run(settings)
    except CTHarmonizeError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        print(f"{PROG}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"{PROG}: error: the MONAI Deploy app needs the deploy extra "
              f"(pip install -c constraints.txt -e \".[deploy]\"): {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    for line in report.skipped:
        print(f"skipped {line}", file=sys.stderr)
    for line in report.summaries:
        print(line)
    return 0
