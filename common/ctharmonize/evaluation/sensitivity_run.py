"""``ctharmonize sensitivity``: the self-adversarial sensitivity curves of several bundles on one test set.

Each bundle's ``harmonizer`` runs :func:`~ctharmonize.evaluation.sensitivity.sensitivity_curve` on the same
slices (``slices`` evenly spaced per ``source``-kernel volume of the ``split``) with the same seeded noise;
the output folder (written atomically) holds ``sensitivity.csv`` (one row per method and σ),
``sensitivity.json`` (settings, the rows, per-slice values, the slices used) and ``sensitivity.png``
(:func:`~ctharmonize.evaluation.sensitivity_plots.sensitivity_plot`). docs/evaluation.md.
"""

from __future__ import annotations

import datetime
import inspect
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ctharmonize.errors import ConfigError, DatalistError
from ctharmonize.evaluation.sensitivity import (
    DEFAULT_SIGMAS,
    MODES,
    SSIM_DATA_RANGE,
    SensitivityCurve,
    SliceStack,
    sensitivity_curve,
)
from ctharmonize.evaluation.sensitivity_plots import sensitivity_plot

__all__ = ["DEFAULT_SLICES", "run_sensitivity", "slice_indices"]

#: slices per volume
DEFAULT_SLICES = 8


def slice_indices(n_slices: int, wanted: int) -> list[int]:
    """``wanted`` slice indices evenly spaced through a volume of ``n_slices`` (centres of equal blocks:
    ``floor((k + 0.5) n_slices / wanted)``); every slice when ``wanted >= n_slices``."""
    if wanted >= n_slices:
        return list(range(n_slices))
    return [int((k + 0.5) * n_slices / wanted) for k in range(wanted)]


def _floats(value: Any, flag: str) -> list[float]:
    from ctharmonize.cli import comma_list

    items = [value] if isinstance(value, int | float) else comma_list(value)
    try:
        return [float(v) for v in items]
    except ValueError:
        raise ConfigError(None, f"--{flag} expects comma-separated numbers, got {value!r}") from None


def _window(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = _floats(value, "window")
    if len(pair) != 2 or not pair[1] > pair[0]:
        raise ConfigError(None, f"--window expects HU_MIN,HU_MAX with HU_MAX > HU_MIN (e.g. -1024,3072), got {value!r}")
    return pair[0], pair[1]


def _sigmas(value: Any) -> list[float]:
    sigmas = DEFAULT_SIGMAS if value is None else _floats(value, "sigmas")
    if not sigmas or any(not np.isfinite(s) or s < 0 for s in sigmas):
        raise ConfigError(None, f"--sigmas must be numbers >= 0 in [-1, 1] units (e.g. 0,0.1,0.2), got {value!r}")
    return sorted(set(float(s) for s in sigmas))


def _stacks(plan: Sequence[dict[str, Any]], wanted: int) -> Iterator[SliceStack]:
    """``wanted`` slices (:func:`slice_indices`) of each planned image, read one volume at a time; the indices go
    into the plan's ``slices``."""
    from ctharmonize.io import read_volume

    for item in plan:
        volume = read_volume(item["image"])
        item["slices"] = slice_indices(volume.shape[0], wanted)
        yield SliceStack(np.asarray(volume.array[item["slices"]], np.float32), volume.spacing, item["image"])


def run_sensitivity(
    bundles: Sequence[str] | str,
    datalist: str | os.PathLike,
    source: str,
    target: str,
    out: str | os.PathLike,
    sigmas: Sequence[float] | str | None = None,
    slices: int = DEFAULT_SLICES,
    split: str | None = "test",
    seed: int = 0,
    mode: str = "output",
    window: Sequence[float] | str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    amp: bool | str | None = None,
    overwrite: bool = False,
    trust_bundle: bool = False,
    spacing_policy: str = "resample",
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Sensitivity curves of every bundle on the ``source`` images of ``split``; writes the folder ``out``.

    Args:
        bundles: bundle folders (a list, or comma-separated); each one line of the figure.
        datalist: datalist JSON; its entries of kernel ``source`` in ``split`` are the inputs.
        source, target: the path ``source → target`` (cycle mode: and back).
        out: output folder (refused if it exists, unless ``overwrite`` and it is an earlier ctharmonize output).
        sigmas: noise SDs in [-1, 1] units (default 0, 0.05, ..., 0.5).
        slices: slices per volume (:func:`slice_indices`).
        seed: of the noise (:func:`~ctharmonize.evaluation.sensitivity.noise_field`).
        mode: "output" or "cycle" (:mod:`ctharmonize.evaluation.sensitivity`).
        window: HU_MIN, HU_MAX for a harmonizer without hu_min/hu_max (checked against those that have them).
        device, batch_size, amp: override every bundle's torch device / slices per pass / precision.
        trust_bundle: run bundles that are not trusted otherwise.
        spacing_policy: "resample" or "refuse" volumes outside a bundle's trained pixel spacing.
        command: the command line recorded in sensitivity.json (default: the ``ctharmonize sensitivity`` one).

    Returns:
        The sensitivity.json document.
    """
    from ctharmonize.cli import comma_list
    from ctharmonize.data import datalist_entries, entry_paths
    from ctharmonize.domains import default_registry
    from ctharmonize.evaluation.benchmark import plan_methods
    from ctharmonize.evaluation.run import write_csv, write_json
    from ctharmonize.inference.bundle_harmonizer import load_bundle_harmonizer
    from ctharmonize.inference.slice_harmonizer import amp_mode
    from ctharmonize.inference.source_domain import check_model_domain
    from ctharmonize.inference.spacing_policy import check_spacing_policy
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.output_check import check_output

    bundles = comma_list(bundles)
    command_line = _command_line(dict(locals()))
    if not bundles:
        raise ConfigError(None, "--bundles names no bundle folder")
    if mode not in MODES:
        raise ConfigError(None, f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if int(slices) < 1:
        raise ConfigError(None, f"--slices must be >= 1, got {slices}")
    sigma_list, hu_window = _sigmas(sigmas), _window(window)
    check_spacing_policy(spacing_policy)
    amp = None if amp is None else amp_mode(amp)
    registry = default_registry()
    registry.validate_name(str(source))
    registry.validate_name(str(target))
    if source == target:
        raise ConfigError(None, f"--source and --target are both {source!r}")
    methods = [m for m in plan_methods(bundles, baseline="", trust=trust_bundle) if m.role != "none"]
    entries, where = datalist_entries(datalist, split)
    check_output(out, [datalist, *entry_paths(entries), *bundles], overwrite)
    chosen = [e for e in entries if e.get("kernel") == source]
    if not chosen:
        kernels = sorted({str(e.get("kernel")) for e in entries})
        raise DatalistError(where, f"no {source!r} entries in split {split!r} (kernels there: "
                                   f"{', '.join(kernels) or 'none'})")
    plan = [{"image": os.fspath(e["image"]), "subject": e.get("subject"), "slices": []} for e in chosen]
    curves: dict[str, SensitivityCurve] = {}
    docs: list[dict[str, Any]] = []
    for method in methods:
        harmonizer = load_bundle_harmonizer(method.bundle, device=device, batch_size=batch_size, amp=amp,
                                            trust=trust_bundle, spacing_policy=spacing_policy)
        for domain, role in ((source, "source"), (target, "target")):
            check_model_domain(domain, harmonizer.domains, role, path=method.bundle)
        stacks = tqdm(_stacks(plan, int(slices)), total=len(plan), desc=f"sensitivity {method.name}", unit="volume",
                      disable=not progress)
        curve = sensitivity_curve(harmonizer, stacks, source, target, sigma_list, seed=int(seed), window=hu_window,
                                  mode=mode)
        curves[method.name] = curve
        docs.append({"name": method.name, "bundle": method.bundle, "window_hu": list(curve.window),
                     "rows": curve.summary(), "per_slice": {"mse": curve.mse.tolist(), "ssim": curve.ssim.tolist()}})
        del harmonizer
    rows = [{"method": d["name"], "bundle": d["bundle"], "mode": mode, "source": source, "target": target,
             "hu_min": d["window_hu"][0], "hu_max": d["window_hu"][1], **r} for d in docs for r in d["rows"]]
    doc = {
        "command": command or command_line,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "datalist": os.fspath(datalist), "split": split, "source": source, "target": target, "mode": mode,
        "sigmas": sigma_list,
        "settings": {"seed": int(seed), "slices_per_volume": int(slices), "device": device, "batch_size": batch_size,
                     "amp": amp, "spacing_policy": spacing_policy, "ssim_data_range": SSIM_DATA_RANGE,
                     "ssim_window_px": 7, "mse_units": "[-1, 1]^2 of each bundle's HU window",
                     "sigma_units": "[-1, 1] of each bundle's HU window; sigma_hu = sigma * (hu_max - hu_min) / 2",
                     "noise": "one standard-normal field per volume's slices, default_rng([seed, volume index]), "
                              "scaled by sigma_hu, the same for every method and sigma; the harmonizer clips its "
                              "input to its window",
                     "compared": ("harmonized noisy input vs harmonized clean input" if mode == "output"
                                  else "source->target->source with noise on the intermediate vs the clean input")},
        "n_volumes": len(plan), "n_slices": sum(len(p["slices"]) for p in plan),
        "slices": plan,
        "methods": docs,
    }
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        write_csv(rows, tmp / "sensitivity.csv")
        write_json(doc, tmp / "sensitivity.json")
        sensitivity_plot(curves, tmp / "sensitivity.png", title=f"{source} → {target}, {mode} mode, "
                                                                 f"{doc['n_slices']} slices")
    return doc


def _command_line(args: Mapping[str, Any]) -> str:
    """The ``ctharmonize sensitivity`` command line of these :func:`run_sensitivity` arguments (required ones,
    and the others where they differ from their defaults)."""
    words = ["ctharmonize", "sensitivity"]
    for name, param in inspect.signature(run_sensitivity).parameters.items():
        value = args[name]
        if name == "command" or (param.default is not inspect.Parameter.empty and value == param.default):
            continue
        if isinstance(value, bool):
            words.append(f"--{name}" if value else f"--no{name}")
        elif isinstance(value, list | tuple):
            words += [f"--{name}", ",".join(str(v) for v in value)]
        else:
            words += [f"--{name}", os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return shlex.join(words)
