"""The ``ctharmonize`` command line.

Commands are plain functions registered by dotted path and imported only when used, so
``ctharmonize --help`` is fast and a missing optional dependency only breaks the command that needs
it. The whole command line is parsed and checked against the function's signature *before* the
command runs: an unknown or misspelled flag, a missing argument or a value of the wrong type is one
line naming the argument and the valid flags (exit status 2), and nothing is read or written.
Values are taken as typed: a path is always a string (a folder named ``True``, ``None`` or
``[1, 2]`` stays that string), ``bool`` flags accept ``--flag``, ``--noflag`` or ``--flag
true|false``, ``int``/``float`` arguments must parse as numbers. Positional arguments fill the
command's required parameters in order (a command without any takes its first parameter so). ``--help`` shows the command's flags with their docstring
text. (fire's parser was replaced because it runs a command before it reports a stray flag, and turns
a folder named ``True`` into a bool.) Any :class:`~ctharmonize.errors.CTHarmonizeError` is printed as one line (exit status 2).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
import types
import typing
import warnings
from collections.abc import Callable
from typing import Any

from ctharmonize.errors import ConfigError, CTHarmonizeError

__all__ = ["COMMANDS", "UsageError", "comma_list", "command_help", "main", "parse_command_line", "rescale_pair"]

# command name -> ("module", "function", one-line summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "info": ("ctharmonize.io.commands", "info", "Print the header summary and geometry of a CT volume."),
    "series": ("ctharmonize.io.commands", "series", "List the series in a study folder or DICOMDIR."),
    "convert": ("ctharmonize.io.commands", "convert", "Convert a DICOM series or NIfTI file to NIfTI or DICOM."),
    "validate-datalist": ("ctharmonize.data.commands", "validate_datalist", "Check a datalist JSON against the schema."),
    "domains": ("ctharmonize.domains.commands", "domains", "List the known kernel domains or resolve a volume's domain."),
    "verify-bundle": ("ctharmonize.bundle.commands", "verify_bundle", "Verify a bundle's metadata.json offline."),
    "trust-bundle": ("ctharmonize.bundle.commands", "trust_bundle", "Record a reviewed bundle as trusted to run."),
    "package-bundle": ("ctharmonize.bundle.commands", "package_bundle", "Package a bundle as a model-zoo zip, weights in large_files.yml."),
    "download-bundle": ("ctharmonize.bundle.commands", "download_bundle", "Download a bundle zip, verify its files' sha256, install it."),
    "simulate": ("ctharmonize.simulation.commands", "simulate", "Generate a simulated multi-vendor, multi-kernel chest CT dataset."),
    "segment-lungs": ("ctharmonize.segmentation.commands", "segment_lungs", "Segment lungs (1 = right, 2 = left)."),
    "body-composition": ("ctharmonize.segmentation.commands", "body_composition", "Label skeletal muscle, subcutaneous and visceral fat."),
    "emphysema": ("ctharmonize.evaluation.commands", "emphysema", "LAA-950, Perc15, lung volume, density and mass per lung."),
    "evaluate": ("ctharmonize.evaluation.commands", "evaluate", "Cohort evaluation: CSV, JSON summary, plots and report."),
    "select-checkpoint": ("ctharmonize.evaluation.commands", "select_checkpoint", "Rank checkpoints by emphysema agreement (paper 000 eq. 1)."),
    "compare-models": ("ctharmonize.evaluation.commands", "compare_models", "Cohen's d between models on per-scan Dice (paper 000 Table 3)."),
    "benchmark": ("ctharmonize.evaluation.commands", "benchmark", "Same-data leaderboard of every method (bundles, none, classical baseline)."),
    "radiomics": ("ctharmonize.evaluation.commands", "radiomics", "Radiomic feature reproducibility across kernels: CCC per class, PSNR/SSIM/NCC (paper 002)."),
    "sensitivity": ("ctharmonize.evaluation.commands", "sensitivity", "Self-adversarial sensitivity: MSE/SSIM vs input noise SD, one line per bundle (paper 004)."),
    "posthoc-dice": ("ctharmonize.evaluation.commands", "posthoc_dice", "Post-hoc segmentation Dice of a segmentation-renormalized bundle's segmenters on harmonized scans (paper 004 Table V)."),
    "two-way-fid": ("ctharmonize.evaluation.commands", "two_way_fid", "FID / KID in the CT feature space, mean of both directions per kernel pair (paper 003 Table I)."),
    "truth-table": ("ctharmonize.evaluation.commands", "truth_table", "SSIM/NRMSE/PSNR and |delta| LAA-950/Perc15/lung mass against the ground truth, before and after (paper 001 Table I)."),
    "mtf": ("ctharmonize.physics.commands", "mtf", "MTF at the skin-air boundary: MTF50/MTF10, curve, 64x64 MTF2D (paper 001)."),
    "nps": ("ctharmonize.physics.commands", "nps", "Noise power spectrum, noise SD and peak frequency from uniform ROIs."),
    "detectability": ("ctharmonize.physics.commands", "detectability", "NPWE detectability d' of a 4 mm disk from the measured MTF and NPS (paper 001)."),
    "harmonize": ("ctharmonize.inference.commands", "harmonize", "Harmonize a volume with a bundle."),
    "harmonize-cohort": ("ctharmonize.inference.commands", "harmonize_cohort", "Harmonize a whole datalist: resumable, sharded over torchrun ranks, manifest CSV."),
    "average-weights": ("ctharmonize.inference.commands", "average_weights", "Average the network weights of several checkpoints."),
    "merge-weights": ("ctharmonize.inference.commands", "merge_weights", "Merge separately trained parts of one model (CycleGAN pairs) into one model.pt."),
    "train-feature-net": ("ctharmonize.engines.kernel_classifier_training", "train_feature_net", "Train the CT kernel feature network used by the Gram texture losses."),
    "export": ("ctharmonize.inference.commands", "export", "Export one path of a bundle's harmonizer as TorchScript (HU in, HU out)."),
    "stage-deploy-app": ("ctharmonize.deploy.staging", "stage_deploy_app", "Stage the MONAI Deploy app and a bundle for 'monai-deploy package' (MAP)."),
    "pacs-harmonize": ("ctharmonize.pacs.commands", "pacs_harmonize", "Harmonize a CT series in a PACS (Orthanc) and store the derived series in its study."),
}

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


class UsageError(ConfigError):
    """The command line does not fit the command's signature."""


def comma_list(value: Any) -> list[str]:
    """A CLI list argument: ``"a, b,c"`` or a list/tuple -> ``["a", "b", "c"]`` (items stripped, empty dropped)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def rescale_pair(value: Any) -> tuple[float, float] | None:
    """``--assume_rescale "SLOPE,INTERCEPT"`` (e.g. ``"1,-1024"``) -> (1.0, -1024.0); None stays None."""
    if value is None:
        return None
    items = comma_list(value) if not isinstance(value, (int, float)) else [str(value)]
    try:
        slope, intercept = (float(v) for v in items)
    except ValueError:
        raise UsageError(None, f"--assume_rescale expects SLOPE,INTERCEPT (e.g. 1,-1024), got {value!r}") from None
    if not (slope != 0 and abs(slope) < 1e6 and abs(intercept) < 1e6):
        raise UsageError(None, f"--assume_rescale slope must be non-zero and values finite, got {value!r}")
    return slope, intercept


def _load(name: str) -> Callable:
    module, func, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), func)


def _help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: ctharmonize COMMAND [ARGS] [--help]", "", "commands:"]
    lines += [f"  {n.ljust(width)}  {summary}" for n, (_, _, summary) in COMMANDS.items()]
    lines += ["", "Run 'ctharmonize COMMAND --help' for a command's arguments."]
    return "\n".join(lines)


def _kinds(hint: Any) -> set[type]:
    """The scalar types a parameter accepts (``str | None`` -> {str, NoneType}; Any -> {str})."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {str}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        out: set[type] = set()
        for arg in typing.get_args(hint):
            out |= _kinds(arg)
        return out
    if origin is not None:  # list[str], tuple, dict: passed as a string the command parses
        return {str}
    return {hint} if isinstance(hint, type) else {str}


def _convert(flag: str, value: str, kinds: set[type]) -> Any:
    if bool in kinds:
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        if str not in kinds:
            raise UsageError(None, f"{flag} expects true or false, got {value!r}")
    if int in kinds and str not in kinds:
        try:
            return int(value)
        except ValueError:
            if float not in kinds:
                raise UsageError(None, f"{flag} expects an integer, got {value!r}") from None
    if float in kinds and str not in kinds:
        try:
            return float(value)
        except ValueError:
            raise UsageError(None, f"{flag} expects a number, got {value!r}") from None
    return value  # paths and other text: always the string as typed


def parse_command_line(func: Callable, argv: list[str], command: str) -> dict[str, Any]:
    """Map ``argv`` onto ``func``'s parameters (see the module docstring); raises :class:`UsageError`."""
    params = {n: p for n, p in inspect.signature(func).parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # an annotation that does not evaluate: treat everything as text
        hints = {}
    kinds = {n: _kinds(hints.get(n, p.annotation if not isinstance(p.annotation, str) else Any))
             for n, p in params.items()}
    valid = " ".join(f"--{n}" for n in params)

    def unknown(flag: str) -> UsageError:
        near = difflib.get_close_matches(flag.lstrip("-").replace("-", "_"), list(params), n=1)
        hint = f" (did you mean --{near[0]}?)" if near else ""
        return UsageError(None, f"unknown flag {flag}{hint}; valid flags: {valid}")

    given: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            positional += argv[i:]
            break
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            key = name.replace("-", "_")
            negated = False
            if key not in params:
                base = key[3:] if key.startswith("no_") else key[2:] if key.startswith("no") else None
                if base in params and bool in kinds[base] and not eq:
                    key, negated = base, True
                else:
                    raise unknown(token.split("=", 1)[0])
            if key in given:
                raise UsageError(None, f"--{key} is given twice")
            flag = f"--{key}"
            if negated:
                given[key] = False
                continue
            if not eq:
                if bool in kinds[key] and str not in kinds[key]:
                    if i < len(argv) and not argv[i].startswith("-"):  # --flag true|false
                        given[key] = _convert(flag, argv[i], kinds[key])
                        i += 1
                    else:
                        given[key] = True
                    continue
                if i >= len(argv) or (argv[i].startswith("--") and len(argv[i]) > 2):
                    raise UsageError(None, f"{flag} needs a value")
                value = argv[i]
                i += 1
            given[key] = _convert(flag, value, kinds[key])
        elif token.startswith("-") and len(token) > 1 and not token[1].isdigit() and token[1] != ".":
            raise UsageError(None, f"unknown flag {token}; valid flags: {valid} (write ./{token} for a path "
                                   f"that starts with '-')")
        else:
            positional.append(token)
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    free = [n for n in (required or list(params)[:1]) if n not in given]
    if len(positional) > len(free):
        raise UsageError(None, f"too many arguments: {' '.join(positional[len(free):])!r}; valid flags: {valid}")
    for name, value in zip(free, positional, strict=False):
        given[name] = _convert(f"--{name}", value, kinds[name])
    missing = [f"--{n}" for n, p in params.items() if p.default is inspect.Parameter.empty and n not in given]
    if missing:
        raise UsageError(None, f"missing required argument{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return given


def _check_common(kwargs: dict[str, Any]) -> None:
    """Checks every command shares, done before any work: the device exists on this machine."""
    if kwargs.get("device") is not None:
        from ctharmonize.torch_device import resolve_device

        resolve_device(kwargs["device"])


def _doc_args(doc: str) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring: name -> text (``a, b: text`` names both)."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    try:
        i = next(k for k, line in enumerate(lines) if line.strip() == "Args:") + 1
    except StopIteration:
        return out
    indent, current = None, []
    for line in lines[i:]:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width < indent:
            break
        if width == indent and ":" in line:
            names, _, text = line.strip().partition(":")
            current = [n.strip() for n in names.split(",")]
            for n in current:
                out[n] = text.strip()
        else:
            for n in current:
                out[n] += " " + line.strip()
    return out


def command_help(func: Callable, name: str) -> str:
    """Usage, summary and one line per flag (type, default, docstring text) of a command."""
    doc = inspect.getdoc(func) or ""
    summary = doc.split("\n\n", 1)[0].replace("\n", " ")
    described = _doc_args(doc)
    params = inspect.signature(func).parameters
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    usage = " ".join([f"ctharmonize {name}", *(f"--{n} {n.upper()}" for n in required), "[flags]"])
    lines = [f"usage: {usage}", "", summary, "", "flags:"]
    for n, p in params.items():
        if p.default is inspect.Parameter.empty:
            default = "required"
        elif isinstance(p.default, bool):
            default = f"default {str(p.default).lower()}; --{n} / --no{n}"
        else:
            default = f"default {p.default!r}"
        lines.append(f"  --{n} ({default})")
        if described.get(n):
            lines.append(f"      {described[n]}")
    lines += ["", "Positional arguments fill the required flags in this order. Values are taken as typed: "
              "a path is always a string."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ctharmonize`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # With the deploy extra, `import monai` imports Holoscan, which warns about the stack limit on every
    # start; it would turn each one-line error into three lines.
    warnings.filterwarnings("ignore", message=r"Current stack size .* below the recommended minimum",
                            category=RuntimeWarning)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_help())
        return 0
    name = argv[0].replace("_", "-")
    if name not in COMMANDS:
        near = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        print(f"ctharmonize: unknown command {argv[0]!r}{hint}\n\n{_help()}", file=sys.stderr)
        return 2
    func = _load(name)
    if any(a in ("-h", "--help") for a in argv[1:]):
        print(command_help(func, name))
        return 0
    try:
        kwargs = parse_command_line(func, argv[1:], name)
        _check_common(kwargs)
        result = func(**kwargs)
    except CTHarmonizeError as err:
        print(f"ctharmonize {name}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, permissions changed meanwhile...: one line, not a traceback
        where = f"{err.filename}: " if err.filename else ""
        print(f"ctharmonize {name}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ctharmonize {name}: interrupted", file=sys.stderr)
        return 130
    if result is not None:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
