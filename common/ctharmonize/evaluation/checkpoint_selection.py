"""Checkpoint selection by emphysema agreement (paper 000 section 3.2, eq. 1).

At each validation the harmonizer translates the validation scans along fixed paths
(source kernel -> target kernel, default: every kernel -> the reference kernel ``siemens_b30f``)
and LAA-950 (%) is measured with lung masks computed ONCE on the original images:

* a path whose source and target scans share subjects (pixel-aligned paired kernels) scores
  ``mse_<src>_<tgt>`` = mean over subjects of (LAA(harmonized source) - LAA(original target))², and
  ``mld_<src>_<tgt>`` = mean over subjects of |MLD(harmonized source) - MLD(original target)| in HU
  (mean lung density: a generator can match LAA-950 by brightening the lungs; this catches it);
* other paths score ``kl_<src>_<tgt>`` = KL divergence between the LAA distributions of the
  harmonized source scans and the original target scans, on shared bins with an epsilon.

* ``anatomy_paths`` (optional) score ``anat_<src>_<tgt>`` = 1 - mean over the source scans of the
  mean skeletal-muscle and SAT Dice between the body-composition labels of the original and of the
  harmonized image (0: anatomy kept; paper 000's hallucination measure, section 3.3).

``<src>``/``<tgt>`` are the domain names without the vendor prefix (``siemens_b50f`` -> ``b50f``,
``ge_bone`` -> ``bone``), so paper 000's weights are ``{"mse_b50f_b30f": .5, "kl_bone_b30f": .25,
"kl_standard_b30f": .25}``. Epochs are ranked with :func:`~ctharmonize.metrics.rank_checkpoints`;
``metric_limits`` (e.g. ``{"anat_bone_b30f": 0.1}``: mean muscle/SAT Dice >= 0.9) are requirements: an
epoch over a limit ranks after every epoch within the limits.

The harmonizer is the bundles' contract (:class:`ctharmonize.inference.Harmonizer`):
``harmonizer(volume_hu, source, target) -> volume_hu``, (Z, Y, X) float32 **HU** in and out; in a
bundle's ``train.json`` a :class:`~ctharmonize.inference.SliceHarmonizer` over the live network.
"""

from __future__ import annotations

import copy
import csv
import importlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctharmonize.data.truth_entries import with_truth_entries
from ctharmonize.domains.reference import TRUTH_DOMAIN
from ctharmonize.errors import ConfigError, InputError
from ctharmonize.evaluation.cohort import BODY_LABELS, MASK_SOURCES, ScanCache
from ctharmonize.evaluation.pairing import DEFAULT_REFERENCE_KERNEL, Cohort, build_cohort
from ctharmonize.inference.harmonizer import Harmonizer
from ctharmonize.inference.spacing_policy import harmonize_at_trained_spacing
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.metrics.checkpoint_ranking import DEFAULT_METRIC_WEIGHTS, rank_checkpoints
from ctharmonize.metrics.kl_divergence import kl_divergence

__all__ = [
    "Harmonizer",
    "ValidationSet",
    "EmphysemaCheckpointSelector",
    "select_checkpoint",
    "harmonizer_factory",
    "load_harmonizer_factory",
    "metric_name",
    "write_ranking",
]

logger = logging.getLogger(__name__)


def _short(domain: str) -> str:
    return domain.split("_", 1)[1] if "_" in domain else domain


def metric_name(kind: str, source: str, target: str) -> str:
    """``metric_name("mse", "siemens_b50f", "siemens_b30f") == "mse_b50f_b30f"``."""
    return f"{kind}_{_short(source)}_{_short(target)}"


class ValidationSet:
    """Validation scans with cached volumes, lung masks and target LAA values.

    Args:
        validation: datalist JSON path, or entries (dicts with at least image/kernel/subject).
        reference_kernel: default target of every path.
        paths: ``[(source, target), ...]``; default every kernel other than the reference -> reference. A
            target ``"ground_truth"`` is each subject's ground-truth volume (``ground_truth`` of the entries,
            :func:`~ctharmonize.data.truth_entries`): paired, so it scores ``mse_<src>_truth``.
        split: keep only entries of this split (None: all).
        backend: lung segmentation backend when masks are segmented.
        mask_source: "auto" (datalist ``lung`` else segment the original), "datalist",
            "original", "reference" (the paired soft-kernel image's mask). The harmonized image is
            always measured with its original's mask (computed once).
        threshold: LAA threshold (HU).
        kl_bins: bins for the KL divergence (shared by both distributions).
        anatomy_paths: ``[(source, target), ...]`` also scored for anatomy preservation
            (``anat_<src>_<tgt>``); None: none.
        body_backend: body-composition backend for the anatomy score.

    All validation volumes stay in memory (read once).
    """

    def __init__(
        self,
        validation: str | os.PathLike | Sequence[Mapping[str, Any]],
        reference_kernel: str = DEFAULT_REFERENCE_KERNEL,
        paths: Sequence[Sequence[str]] | None = None,
        split: str | None = None,
        backend: str = "threshold",
        mask_source: str = "auto",
        threshold: float = -950.0,
        kl_bins: int | str = 10,
        anatomy_paths: Sequence[Sequence[str]] | None = None,
        body_backend: str = "threshold",
    ) -> None:
        from ctharmonize.data import datalist_entries

        entries, source = datalist_entries(validation, split)
        if not entries:
            raise InputError(source, f"no validation entries{f' with split {split!r}' if split else ''}")
        if mask_source == "each":
            raise ConfigError(None, "mask_source='each' is not supported for checkpoint selection (masks are cached)")
        if mask_source not in MASK_SOURCES:
            raise ConfigError(None, f"mask_source must be one of {MASK_SOURCES}, got {mask_source!r}")
        entries = [{k: v for k, v in e.items() if k not in ("harmonized", "source_kernel")} for e in entries]
        if any(str(t) == TRUTH_DOMAIN for _, t in [*(paths or []), *(anatomy_paths or [])]):
            entries = with_truth_entries(entries)  # the ground truth as scans of kernel "ground_truth"
        self.cohort: Cohort = build_cohort(entries, reference_kernel, source=source)
        self.threshold = float(threshold)
        self.kl_bins = kl_bins
        kernels = {s.kernel for s in self.cohort.scans}
        if paths is None:
            paths = [(k, reference_kernel) for k in sorted(kernels - {reference_kernel})]
        self.paths = [(str(s), str(t)) for s, t in paths]
        self.anatomy_paths = [(str(s), str(t)) for s, t in (anatomy_paths or [])]
        self.body_backend = body_backend
        self._body_cache: dict[int, np.ndarray] = {}
        for s, t in [*self.paths, *self.anatomy_paths]:
            for k in (s, t):
                if k not in kernels:
                    raise ConfigError(source, f"path {s} -> {t}: no validation scan has kernel {k!r}")
        self._cache = ScanCache(self.cohort.scans, backend, mask_source)
        self._lung_cache: dict[int, tuple[float, float]] = {}
        self.kinds: dict[tuple[str, str], str] = {}
        for s, t in self.paths:
            subjects_s = {x.subject for x in self.cohort.scans if x.kernel == s}
            subjects_t = {x.subject for x in self.cohort.scans if x.kernel == t}
            self.kinds[(s, t)] = "mse" if subjects_s & subjects_t else "kl"

    @property
    def metric_names(self) -> list[str]:
        names = [metric_name(self.kinds[p], *p) for p in self.paths]
        names += [metric_name("mld", *p) for p in self.paths if self.kinds[p] == "mse"]
        return names + [metric_name("anat", *p) for p in self.anatomy_paths]

    def equal_weights(self, kinds: Sequence[str] = ("mse", "kl")) -> dict[str, float]:
        """``{metric: 1 / n}`` over the n computed metrics of ``kinds`` (``"mse"``, ``"mld"``, ``"kl"``,
        ``"anat"``): selection weights when no paper weights apply (e.g. a new kernel's paths)."""
        chosen = [m for m in self.metric_names if m.split("_", 1)[0] in set(kinds)]
        if not chosen:
            raise ConfigError(None, f"no validation metric of kinds {list(kinds)}; computed: {self.metric_names}")
        return {m: 1.0 / len(chosen) for m in chosen}

    def _body(self, hu: np.ndarray, scan) -> np.ndarray:
        """Body-composition labels of ``hu`` ((Z, Y, X) HU on ``scan``'s grid) with the original's lung mask."""
        import dataclasses

        from ctharmonize.segmentation import body_composition

        image = dataclasses.replace(self._cache.volume(scan), array=hu)
        return body_composition(image, backend=self.body_backend, lung=self._cache.lung(scan)[0])

    def _anatomy_loss(self, hu: np.ndarray, scan) -> float:
        """1 - mean(Dice muscle, Dice SAT) between labels of the original and of ``hu`` (harmonized, HU)."""
        from ctharmonize.metrics.dice import dice

        if scan.index not in self._body_cache:
            self._body_cache[scan.index] = self._body(self._cache.volume(scan).array, scan)
        codes = [BODY_LABELS["muscle"], BODY_LABELS["sat"]]
        scores = dice(self._body_cache[scan.index], self._body(hu, scan), labels=codes)
        return 1.0 - float(np.nanmean([scores[c] for c in codes]))

    def _lung_measures(self, hu: np.ndarray, lung: np.ndarray, spacing) -> tuple[float, float]:
        """(LAA in %, mean lung density in HU) of ``hu`` inside ``lung``."""
        from ctharmonize.metrics.emphysema import emphysema_measures

        both = emphysema_measures(hu, lung, spacing, threshold=self.threshold)["both"]
        return float(both["laa_pct"]), float(both["mean_hu"])

    def original_lung_measures(self, scan) -> tuple[float, float]:
        """(LAA %, MLD HU) of a scan's original image with its cached mask (computed once)."""
        if scan.index not in self._lung_cache:
            vol = self._cache.volume(scan)
            self._lung_cache[scan.index] = self._lung_measures(vol.array, self._cache.lung(scan)[0], vol.spacing)
        return self._lung_cache[scan.index]

    def original_laa(self, scan) -> float:
        """LAA (%) of a scan's original image with its cached mask (computed once)."""
        return self.original_lung_measures(scan)[0]

    def metrics(self, harmonizer: Harmonizer) -> dict[str, float]:
        """Harmonize every source scan along every path and score the paths (see module docstring)."""
        out: dict[str, float] = {}
        for s, t in dict.fromkeys([*self.paths, *self.anatomy_paths]):
            targets = {x.subject: x for x in self.cohort.scans if x.kernel == t}
            harmonized: dict[str, tuple[float, float]] = {}
            anatomy: list[float] = []
            for scan in (x for x in self.cohort.scans if x.kernel == s):
                vol = self._cache.volume(scan)
                hu = np.asarray(harmonize_at_trained_spacing(harmonizer, vol.array, vol.spacing, s, t,
                                                             where=scan.image)[0], dtype=np.float32)
                if hu.shape != vol.array.shape:
                    raise ConfigError(None, f"harmonizer returned shape {hu.shape} for a {vol.array.shape} volume")
                if (s, t) in self.paths:  # anatomy-only paths need no LAA
                    harmonized[scan.subject] = self._lung_measures(hu, self._cache.lung(scan)[0], vol.spacing)
                if (s, t) in self.anatomy_paths:
                    anatomy.append(self._anatomy_loss(hu, scan))
            if (s, t) in self.anatomy_paths:
                out[metric_name("anat", s, t)] = float(np.mean(anatomy))  # every path kernel has scans (checked)
            if (s, t) not in self.paths:
                continue
            name = metric_name(self.kinds[(s, t)], s, t)
            if self.kinds[(s, t)] == "mse":
                common = [subj for subj in harmonized if subj in targets]
                ref = [self.original_lung_measures(targets[subj]) for subj in common]
                out[name] = float(np.mean([(harmonized[subj][0] - r[0]) ** 2 for subj, r in zip(common, ref, strict=True)]))
                out[metric_name("mld", s, t)] = float(np.mean([abs(harmonized[subj][1] - r[1]) for subj, r in zip(common, ref, strict=True)]))
            else:
                ref = [self.original_laa(x) for x in targets.values()]
                out[name] = kl_divergence([v[0] for v in harmonized.values()], ref, bins=self.kl_bins)
        return out


def _state_dict(network: Any) -> dict[str, Any]:
    if isinstance(network, torch.nn.Module):
        return copy.deepcopy(network.state_dict())
    if isinstance(network, Mapping):
        return {name: copy.deepcopy(m.state_dict()) for name, m in network.items()}
    raise ConfigError(None, f"network must be a torch.nn.Module or a dict of them, got {type(network).__name__}")


def write_ranking(
    ranking: list[dict[str, Any]], save_dir: str | os.PathLike, weights: Mapping[str, float],
    model_epoch: Any = None, overwrite: bool = True, extra: Mapping[str, Any] | None = None,
    limits: Mapping[str, float] | None = None,
) -> None:
    """Write ``checkpoint_ranking.csv`` and ``checkpoint_ranking.json`` into ``save_dir`` atomically."""
    save_dir = Path(save_dir)
    metrics = sorted({m for r in ranking for m in r["metrics"]})
    with atomic_path(save_dir / "checkpoint_ranking.csv", overwrite=overwrite) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "epoch", "weighted_rank", "feasible", *metrics, *(f"rank_{m}" for m in weights)])
        for r in ranking:
            w.writerow([r["rank"], r["epoch"], r["weighted_rank"], r.get("feasible", True),
                        *(r["metrics"].get(m, "") for m in metrics), *(r["ranks"][m] for m in weights)])
    doc = {"weights": dict(weights), "limits": dict(limits or {}), "model_epoch": model_epoch, "ranking": ranking,
           **(extra or {})}
    with atomic_path(save_dir / "checkpoint_ranking.json", overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")


class EmphysemaCheckpointSelector:
    """Ignite handler: rank epochs by eq. 1 and keep the best network weights as ``model.pt``.

    Args:
        validation: a :class:`ValidationSet`, a datalist path or entries (then ``split``,
            ``reference_kernel``, ``paths``, ``backend``, ``mask_source``, ``threshold``, ``kl_bins``,
            ``anatomy_paths`` build one).
        harmonizer: ``harmonizer(volume_hu, source, target) -> volume_hu`` using the CURRENT weights.
        save_dir: where ``model.pt``, ``checkpoint_ranking.csv/.json`` and candidates go.
        network: module (or dict of modules) whose ``state_dict`` is saved; default at run time:
            ``engine.networks`` (the GAN trainer's dict) or ``engine.network``.
        metric_weights: eq. 1 weights; default paper 000's (must name computed metrics).
        metric_limits: ``{metric: largest acceptable value}``; epochs over a limit rank last
            (see :func:`~ctharmonize.metrics.rank_checkpoints`); None: no limits.
        every: validate every ``every`` epochs.
        keep_top: weights of the ``keep_top`` best-ranked epochs are kept in ``save_dir/candidates``
            so that ``model.pt`` can follow the ranking when a later epoch reorders earlier ones
            (rank aggregation is relative); None keeps all.
        resume: continue the table of an existing ``checkpoint_ranking.json`` in ``save_dir``.
    """

    def __init__(
        self,
        validation: ValidationSet | str | os.PathLike | Sequence[Mapping[str, Any]],
        harmonizer: Harmonizer,
        save_dir: str | os.PathLike,
        network: Any = None,
        metric_weights: Mapping[str, float] | None = None,
        every: int = 1,
        keep_top: int | None = 3,
        resume: bool = True,
        split: str | None = None,
        reference_kernel: str = DEFAULT_REFERENCE_KERNEL,
        paths: Sequence[Sequence[str]] | None = None,
        backend: str = "threshold",
        mask_source: str = "auto",
        threshold: float = -950.0,
        kl_bins: int | str = 10,
        anatomy_paths: Sequence[Sequence[str]] | None = None,
        metric_limits: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(validation, ValidationSet):
            validation = ValidationSet(validation, reference_kernel, paths, split, backend, mask_source, threshold, kl_bins,
                                       anatomy_paths)
        self.validation = validation
        self.harmonizer = harmonizer
        self.save_dir = Path(save_dir)
        self.network = network
        self.weights = dict(DEFAULT_METRIC_WEIGHTS if metric_weights is None else metric_weights)
        self.limits = dict(metric_limits or {})
        _check_metric_names(self.weights, self.limits, validation)
        if keep_top is not None and keep_top < 1:
            raise ConfigError(None, f"keep_top must be >= 1 or None, got {keep_top}")
        self.every = int(every)
        self.keep_top = keep_top
        self.table: dict[int, dict[str, float]] = {}
        self.ranking: list[dict[str, Any]] = []
        self.model_epoch: int | None = None
        ranking_file = self.save_dir / "checkpoint_ranking.json"
        if resume and ranking_file.exists():
            doc = json.loads(ranking_file.read_text())
            self.table = {int(r["epoch"]): r["metrics"] for r in doc["ranking"]}
            self.model_epoch = doc.get("model_epoch")

    @property
    def candidates_dir(self) -> Path:
        return self.save_dir / "candidates"

    def _candidate(self, epoch: int) -> Path:
        return self.candidates_dir / f"epoch_{epoch:04d}.pt"

    def attach(self, engine) -> None:
        """Run at ``Events.EPOCH_COMPLETED(every=self.every)`` of an ignite engine."""
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)

    def __call__(self, engine) -> None:
        network = self.network
        if network is None:
            network = getattr(engine, "networks", None) or getattr(engine, "network", None)
        if network is None:
            raise ConfigError(None, "EmphysemaCheckpointSelector: no network given and the engine has none")
        self.step(int(engine.state.epoch), network)

    def step(self, epoch: int, network: Any) -> list[dict[str, Any]]:
        """Score ``epoch`` with the harmonizer's current weights, re-rank, update files; return the ranking.

        The network is put in eval mode (no gradients) during validation and restored afterwards.
        """
        modules = [network] if isinstance(network, torch.nn.Module) else list(dict(network).values())
        modes = [m.training for m in modules]
        try:  # validate in eval mode without gradients, then restore the training modes
            for m in modules:
                m.eval()
            with torch.no_grad():
                metrics = self.validation.metrics(self.harmonizer)
        finally:
            for m, mode in zip(modules, modes, strict=True):
                m.train(mode)
        self.table[epoch] = metrics
        self.ranking = rank_checkpoints(self.table, self.weights, self.limits)
        order = [r["epoch"] for r in self.ranking]
        keep = set(order if self.keep_top is None else order[: self.keep_top])
        self.save_dir.mkdir(parents=True, exist_ok=True)
        if epoch in keep:
            with atomic_path(self._candidate(epoch), overwrite=True) as tmp:
                torch.save(_state_dict(network), tmp)
        for path in self.candidates_dir.glob("epoch_*.pt"):
            if int(re.findall(r"\d+", path.stem)[-1]) not in keep:
                path.unlink()
        best = order[0]
        if best != self.model_epoch:
            if self._candidate(best).exists():
                with atomic_path(self.save_dir / "model.pt", overwrite=True) as tmp:
                    shutil.copyfile(self._candidate(best), tmp)
                self.model_epoch = best
            else:
                logger.warning("epoch %s now ranks best but its weights were not kept; model.pt stays epoch %s",
                               best, self.model_epoch)
        write_ranking(self.ranking, self.save_dir, self.weights, self.model_epoch, limits=self.limits)
        logger.info("epoch %d: %s; best epoch %s (model.pt: epoch %s)", epoch, metrics, best, self.model_epoch)
        return self.ranking


def _check_metric_names(weights: Mapping[str, float], limits: Mapping[str, float], validation: ValidationSet) -> None:
    for what, names in (("metric_weights", weights), ("metric_limits", limits)):
        missing = sorted(set(names) - set(validation.metric_names))
        if missing:
            raise ConfigError(None, f"{what} name {missing} but the validation set gives {validation.metric_names}")


def load_harmonizer_factory(spec: str | Callable) -> Callable[[Path], Harmonizer]:
    """Import ``"package.module:function"`` (or ``package.module.function``); callables pass through."""
    if callable(spec):
        return spec
    module, sep, func = str(spec).partition(":")
    if not sep:
        module, _, func = str(spec).rpartition(".")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(None, f"harmonizer factory {spec!r} is not importable ('package.module:function')") from err


def harmonizer_factory(harmonizer: str | Callable | None = None, bundle: str | os.PathLike | None = None,
                       device: str | None = None, batch_size: int | None = None,
                       trust: bool = False) -> Callable[[Path], Harmonizer]:
    """``factory(checkpoint_path) -> harmonizer`` for :func:`select_checkpoint`, from exactly one of

    * ``bundle``: the bundle's ``harmonizer`` item with each checkpoint as its weights (any method;
      training checkpoints are read with the bundle's ``checkpoint_networks``);
    * ``harmonizer``: ``"package.module:factory"`` or a callable (:func:`load_harmonizer_factory`).
    """
    if (harmonizer is None) == (bundle is None):
        raise ConfigError(None, "give exactly one of bundle (a bundle folder) and harmonizer (package.module:factory)")
    if bundle is not None:
        from ctharmonize.inference.bundle_harmonizer import BundleHarmonizerFactory

        return BundleHarmonizerFactory(bundle, device=device, batch_size=batch_size, trust=trust)
    return load_harmonizer_factory(harmonizer)


def _epoch_of(path: Path, position: int) -> int:
    numbers = re.findall(r"\d+", path.stem)
    return int(numbers[-1]) if numbers else position


def select_checkpoint(
    checkpoints: str | os.PathLike | Sequence[str | os.PathLike],
    validation: ValidationSet | str | os.PathLike | Sequence[Mapping[str, Any]],
    harmonizer_factory: Callable[[Path], Harmonizer],
    save_dir: str | os.PathLike,
    metric_weights: Mapping[str, float] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    metric_limits: Mapping[str, float] | None = None,
    **validation_kwargs: Any,
) -> list[dict[str, Any]]:
    """Rank saved checkpoints and copy the best to ``save_dir/model.pt``.

    Args:
        checkpoints: a folder (every ``*.pt``/``*.pth`` in it) or a list of files. A file's epoch is
            the last number in its name (else its position, 1-based).
        validation: as for :class:`ValidationSet` (``validation_kwargs`` are passed to it).
        harmonizer_factory: ``factory(checkpoint_path) -> harmonizer(volume_hu, source, target)``.
        save_dir: output folder for ``model.pt`` and the ranking table.
        metric_weights: eq. 1 weights (default paper 000's).
        metric_limits: requirements, as for :class:`EmphysemaCheckpointSelector`.

    Returns:
        The ranking, best first (see :func:`~ctharmonize.metrics.rank_checkpoints`).
    """
    from tqdm.auto import tqdm

    if isinstance(checkpoints, str | os.PathLike):
        folder = Path(checkpoints)
        if not folder.is_dir():
            raise InputError(folder, "not a folder of checkpoints")
        files = sorted([*folder.glob("*.pt"), *folder.glob("*.pth")])
        if not files:
            raise InputError(folder, "no *.pt or *.pth checkpoint files")
    else:
        files = [Path(p) for p in checkpoints]
    for f in files:
        if not f.is_file():
            raise InputError(f, "checkpoint file not found")
    epochs = [_epoch_of(f, i + 1) for i, f in enumerate(files)]
    if len(set(epochs)) != len(epochs):
        raise InputError(None, f"checkpoint epochs are ambiguous: {dict(zip(map(str, files), epochs, strict=True))}")
    save_dir = Path(save_dir)
    for name in ("model.pt", "checkpoint_ranking.csv", "checkpoint_ranking.json"):
        check_writable(save_dir / name, overwrite)
    if not isinstance(validation, ValidationSet):
        validation = ValidationSet(validation, **validation_kwargs)
    weights = dict(DEFAULT_METRIC_WEIGHTS if metric_weights is None else metric_weights)
    limits = dict(metric_limits or {})
    _check_metric_names(weights, limits, validation)
    table = {}
    for epoch, f in tqdm(list(zip(epochs, files, strict=True)), desc="checkpoints", disable=not progress):
        table[epoch] = validation.metrics(harmonizer_factory(f))
    ranking = rank_checkpoints(table, weights, limits)
    best = ranking[0]["epoch"]
    best_file = files[epochs.index(best)]
    with atomic_path(save_dir / "model.pt", overwrite=overwrite) as tmp:
        shutil.copyfile(best_file, tmp)
    files_by_epoch = {e: str(f) for e, f in zip(epochs, files, strict=True)}
    for r in ranking:
        r["checkpoint"] = files_by_epoch[r["epoch"]]
    write_ranking(ranking, save_dir, weights, best, overwrite=overwrite, extra={"model_source": str(best_file)},
                  limits=limits)
    return ranking
