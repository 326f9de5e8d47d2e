"""The ``ctharmonize`` command line, built on fire.

Commands are registered by dotted path and imported only when used, so ``ctharmonize --help``
is fast and a missing optional dependency only breaks the command that needs it. Any
:class:`~ctharmonize.errors.CTHarmonizeError` is printed as one line on stderr (exit status 2).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from ctharmonize.errors import CTHarmonizeError

# command name -> ("module", "function", one-line summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "info": ("ctharmonize.io.commands", "info", "Print the header summary and geometry of a CT volume."),
    "convert": ("ctharmonize.io.commands", "convert", "Convert a DICOM series or NIfTI file to NIfTI or DICOM."),
    "validate-datalist": ("ctharmonize.data.commands", "validate_datalist", "Check a datalist JSON against the schema."),
    "domains": ("ctharmonize.domains.commands", "domains", "List the known kernel domains or resolve a volume's domain."),
    "verify-bundle": ("ctharmonize.bundle.commands", "verify_bundle", "Verify a bundle's metadata.json offline."),
    "simulate": ("ctharmonize.simulation.commands", "simulate", "Generate a simulated multi-vendor, multi-kernel chest CT dataset."),
    "segment-lungs": ("ctharmonize.segmentation.commands", "segment_lungs", "Segment lungs (1 = right, 2 = left)."),
    "body-composition": ("ctharmonize.segmentation.commands", "body_composition", "Label skeletal muscle, subcutaneous and visceral fat."),
    "emphysema": ("ctharmonize.evaluation.commands", "emphysema", "LAA-950, Perc15, lung volume, density and mass per lung."),
    "evaluate": ("ctharmonize.evaluation.commands", "evaluate", "Cohort evaluation: CSV, JSON summary, plots and report."),
    "select-checkpoint": ("ctharmonize.evaluation.commands", "select_checkpoint", "Rank checkpoints by emphysema agreement (paper 000 eq. 1)."),
    "compare-models": ("ctharmonize.evaluation.commands", "compare_models", "Cohen's d between models on per-scan Dice (paper 000 Table 3)."),
    "harmonize": ("ctharmonize.inference.commands", "harmonize", "Harmonize a volume with a bundle."),
    "average-weights": ("ctharmonize.inference.commands", "average_weights", "Average the generator weights of several checkpoints."),
}


def comma_list(value: Any) -> list[str]:
    """A CLI list argument: ``"a, b,c"`` (fire passes a string) or a list/tuple -> ``["a", "b", "c"]``
    (items stripped, empty items dropped)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _load(name: str) -> Callable:
    module, func, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), func)


def _help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: ctharmonize COMMAND [ARGS] [--help]", "", "commands:"]
    lines += [f"  {n.ljust(width)}  {summary}" for n, (_, _, summary) in COMMANDS.items()]
    lines += ["", "Run 'ctharmonize COMMAND --help' for a command's arguments."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ctharmonize`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_help())
        return 0
    name = argv[0].replace("_", "-")
    if name not in COMMANDS:
        print(f"ctharmonize: unknown command {argv[0]!r}\n\n{_help()}", file=sys.stderr)
        return 2
    import fire

    try:
        fire.Fire(_load(name), command=argv[1:], name=f"ctharmonize {name}")
    except CTHarmonizeError as err:
        print(f"ctharmonize {name}: error: {err}", file=sys.stderr)
        return 2
    except fire.core.FireExit as exc:  # --help or usage error
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
