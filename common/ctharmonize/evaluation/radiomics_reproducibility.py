"""``ctharmonize radiomics``: radiomic feature reproducibility (CCC) and image quality across kernels (paper 002).

For each pair ``SRC:REF`` (:mod:`.radiomics_pairs`) and each subject with both scans, the 93 features
(:mod:`.radiomics_features`) are extracted in one soft-tissue ROI, shared by all images of the subject's
pair, from the SRC scan, the REF scan and, with ``harmonized``, the SRC scan harmonized to REF. Two
comparisons per pair: "Input" (SRC scan vs REF scan, the paper's baseline row) and "Harmonized"
(harmonized SRC vs REF scan). Each gets Table 2 (CCC per feature class, :mod:`.radiomics_ccc`, paper and
conventional forms) and Table 3 (PSNR/SSIM/NCC on [0, 1] images, :mod:`.radiomics_image_quality`).
Outputs (one folder, written atomically): features.csv, table2.md/.csv, table3.md/.csv, radiomics.json,
ccc.png; see docs/radiomics.md.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ctharmonize.errors import ConfigError, DatalistError, InputError
from ctharmonize.evaluation.pairing import DEFAULT_PAIRED_REFERENCES
from ctharmonize.evaluation.radiomics_ccc import (
    ALL,
    NORMALIZATIONS,
    conventional_ccc,
    paper_ccc,
    summarize_values,
)
from ctharmonize.evaluation.radiomics_features import (
    CLASS_TITLES,
    FEATURE_CLASSES,
    SETTINGS,
    SOFT_TISSUE_HU,
    SOFT_TISSUE_LABELS,
    extract_features,
    feature_names,
    make_extractor,
    soft_tissue_roi,
)
from ctharmonize.evaluation.radiomics_image_quality import IMAGE_QUALITY, WINDOW_HU, image_quality
from ctharmonize.evaluation.radiomics_pairs import (
    DEFAULT_METHOD,
    PairScans,
    load_harmonized,
    pair_name,
    parse_harmonized,
    parse_pairs,
    plan_pairs,
)
from ctharmonize.evaluation.radiomics_plots import ccc_plot

__all__ = ["COMPARISONS", "ROI_SOURCES", "run_radiomics"]

#: comparison key -> row label: the source scan itself, or its harmonized version, against the reference scan
#: (with several named ``--harmonized`` methods, each method's name is its key and row label)
COMPARISONS: dict[str, str] = {"input": "Input", "harmonized": "Harmonized"}
ROI_SOURCES = ("auto", "labels", "threshold")
GROUP_TITLES: dict[str, str] = {**CLASS_TITLES, ALL: "All"}


def _default_pairs(entries: Sequence[Mapping[str, Any]], source: Path | None) -> list[tuple[str, str]]:
    kernels = {e.get("kernel") for e in entries if not e.get("source_kernel")}
    pairs = [(s, r) for s, r in DEFAULT_PAIRED_REFERENCES.items() if s in kernels and r in kernels]
    if not pairs:
        raise DatalistError(source, f"no default kernel pair ({', '.join(f'{s}:{r}' for s, r in DEFAULT_PAIRED_REFERENCES.items())}) "
                                    f"in the datalist (kernels: {', '.join(sorted(k for k in kernels if k)) or 'none'}); "
                                    "give --pairs SRC:REF")
    return pairs


class _Extractor:
    """Features of each (image, ROI) once, and the ROI of each (subject, reference kernel) once."""

    def __init__(self) -> None:
        self.extractor = make_extractor()
        self.features: dict[tuple[str, str, str], dict[str, float]] = {}

    def __call__(self, image: str, volume: Any, roi: np.ndarray, roi_key: tuple[str, str]) -> dict[str, float]:
        key = (image, *roi_key)
        if key not in self.features:
            self.features[key] = extract_features(volume, roi, self.extractor, path=image)
        return self.features[key]


def _label(key: str) -> str:
    return COMPARISONS.get(key, key)


def _read_pair(scans: PairScans) -> tuple[dict[str, Any], dict[str, str], np.ndarray, str]:
    """The subject's volumes and their paths (source, reference, one per harmonized method), the ROI (on the
    reference scan) and its kind."""
    from ctharmonize.io import read_label_map, read_volume

    paths = {"reference": scans.reference, "source": scans.source, **dict(scans.harmonized)}
    vols = {role: read_volume(path) for role, path in paths.items()}
    ref = vols["reference"]
    for role, path in paths.items():
        if vols[role].shape != ref.shape:
            raise InputError(path, f"shape (Z, Y, X) {vols[role].shape} differs from the {scans.subject!r} reference "
                                   f"scan's {ref.shape} ({scans.reference}); paired images must be pixel-aligned")
    labels = read_label_map(scans.labels, like=ref) if scans.labels else None
    roi = soft_tissue_roi(ref, labels)
    return vols, paths, roi, "labels" if labels is not None else "threshold"


def _comparison_doc(rows: Sequence[Mapping[str, Any]], role: str, columns: Sequence[str], classes: Sequence[str],
                    normalization: str) -> dict[str, Any]:
    source = np.array([[r[role][c] for c in columns] for r in rows])
    reference = np.array([[r["reference"][c] for c in columns] for r in rows])
    paper = paper_ccc(source, reference, classes, normalization)
    conventional = conventional_ccc(source, reference, classes)
    quality = [r["quality"][role] for r in rows]
    return {
        "n_pairs": len(rows),
        "paper": {g: {**summarize_values(v), "per_pair": dict(zip([r["subject"] for r in rows], v.tolist(), strict=True))}
                  for g, v in paper.items()},
        "conventional": {g: {**summarize_values(v), "per_feature": dict(zip(np.asarray(columns)[_cols(classes, g)].tolist(),
                                                                        v.tolist(), strict=True))}
                         for g, v in conventional.items()},
        "image_quality": {m: {**summarize_values([q[m] for q in quality]),
                              "per_pair": {r["subject"]: q[m] for r, q in zip(rows, quality, strict=True)}}
                          for m in IMAGE_QUALITY},
    }


def _cols(classes: Sequence[str], group: str) -> np.ndarray:
    return np.arange(len(classes)) if group == ALL else np.flatnonzero(np.asarray(classes) == group)


def _fmt(cell: Mapping[str, Any], digits: int = 2) -> str:
    mean, sd = cell.get("mean"), cell.get("sd")
    if mean is None or np.isnan(mean):
        return "–"
    if np.isinf(mean):
        return "inf" if mean > 0 else "-inf"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if sd is not None and np.isfinite(sd) else f"{mean:.{digits}f}"


def _table2_markdown(doc: Mapping[str, Any]) -> str:
    groups = list(GROUP_TITLES)
    head = "| Feature class | " + " | ".join(GROUP_TITLES[g] for g in groups) + " |"
    rule = "| --- |" + " --- |" * len(groups)
    lines = ["# Table 2: CCC of radiomic features (soft-tissue ROI)", "",
             f"Lin's CCC, mean ± SD. Paper 002 form: per image pair, between the two images' vectors of the class's "
             f"features after {doc['settings']['normalization']} normalization of each feature over the comparison's "
             f"2N images; mean ± SD over the N pairs. 'All' = all {sum(FEATURE_CLASSES.values())} features. "
             "Definitions: docs/radiomics.md.", ""]
    for form, title in (("paper", "Paper form"), ("conventional", "Conventional form: per feature over pairs; "
                                                                   "mean ± SD (median) over the class's features")):
        lines += [f"## {title}", ""]
        for p in doc["pairs"]:
            lines += [f"### {p['source']} → {p['reference']} ({p['n_pairs']} subjects)", "", head, rule]
            for key, comp in p["comparisons"].items():
                cells = []
                for g in groups:
                    c = comp[form][g]
                    text = _fmt(c)
                    if form == "conventional" and c["median"] is not None and np.isfinite(c["median"]):
                        text += f" ({c['median']:.2f})"
                    cells.append(text)
                lines.append(f"| {_label(key)} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def _table3_markdown(doc: Mapping[str, Any]) -> str:
    lo, hi = doc["settings"]["window_hu"]
    lines = ["# Table 3: image quality against the reference scan", "",
             f"Images clipped to [{lo:g}, {hi:g}] HU and mapped to [0, 1]; whole volume. PSNR in dB (MAX 1), SSIM "
             "mean over axial slices, NCC uncentered (Σxy / √(Σx² Σy²)); mean ± SD over subjects.", "",
             "| Pair | Comparison | n | PSNR (dB) | SSIM | NCC |", "| --- | --- | --- | --- | --- | --- |"]
    for p in doc["pairs"]:
        for key, comp in p["comparisons"].items():
            q = comp["image_quality"]
            lines.append(f"| {p['source']} → {p['reference']} | {_label(key)} | {comp['n_pairs']} | "
                         f"{_fmt(q['psnr'])} | {_fmt(q['ssim'], 3)} | {_fmt(q['ncc'], 3)} |")
    return "\n".join(lines) + "\n"


def _table_rows(doc: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    t2: list[dict[str, Any]] = []
    t3: list[dict[str, Any]] = []
    for p in doc["pairs"]:
        base = {"pair": p["name"], "source": p["source"], "reference": p["reference"]}
        for key, comp in p["comparisons"].items():
            for form in ("paper", "conventional"):
                for g in GROUP_TITLES:
                    c = comp[form][g]
                    t2.append({**base, "comparison": key, "form": form, "feature_class": g,
                               **{k: c[k] for k in ("n", "n_undefined", "mean", "sd", "median")}})
            q = comp["image_quality"]
            t3.append({**base, "comparison": key, "n": comp["n_pairs"],
                       **{f"{m}_{s}": q[m][s] for m in IMAGE_QUALITY for s in ("mean", "sd", "median")}})
    return t2, t3


def run_radiomics(
    datalist: str | os.PathLike,
    out: str | os.PathLike,
    pairs: Any = None,
    harmonized: str | os.PathLike | None = None,
    split: str | None = None,
    roi: str = "auto",
    normalization: str = "zscore",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Radiomics reproducibility of ``pairs`` of kernels in ``datalist``; writes the folder ``out`` atomically.

    Args:
        datalist: datalist JSON; entries with ``image``, ``kernel``, ``subject``, optional ``labels``.
        out: output folder (refused if it exists, unless ``overwrite`` and it is an earlier ctharmonize output).
        pairs: "SRC:REF[,SRC:REF...]" (or a list); default the DEFAULT_PAIRED_REFERENCES pairs present.
        harmonized: harmonized images of SRC to REF: datalist JSON, harmonize-cohort folder or its manifest.csv;
            or ``NAME=PATH[,NAME=PATH...]`` (or a mapping): several methods, one table row each.
        split: use only this split of ``datalist`` (None: every entry).
        roi: "auto" (soft-tissue labels where the entry has ``labels``, else HU threshold), "labels", "threshold".
        normalization: of each feature before the paper-form CCC, "zscore" or "minmax".
        progress: a progress bar over subjects.

    Returns:
        The radiomics.json document.
    """
    from ctharmonize.data import datalist_entries, entry_paths
    from ctharmonize.evaluation.run import write_csv, write_json
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.output_check import check_output

    if roi not in ROI_SOURCES:
        raise ConfigError(None, f"--roi must be one of {', '.join(ROI_SOURCES)}, got {roi!r}")
    if normalization not in NORMALIZATIONS:
        raise ConfigError(None, f"--normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
    chosen = parse_pairs(pairs) if pairs is not None else None
    methods = parse_harmonized(harmonized) if harmonized is not None else {}
    entries, source = datalist_entries(datalist, split)
    check_output(out, [datalist, *methods.values(), *entry_paths(entries)], overwrite)
    if not entries:
        raise DatalistError(source, f"no entries in split {split!r}")
    chosen = chosen or _default_pairs(entries, source)
    found = {m: load_harmonized(path) for m, path in methods.items()}
    plan = plan_pairs(entries, chosen, source, found, methods, roi)
    names = feature_names()
    columns = [f"original_{c}_{n}" for c in FEATURE_CLASSES for n in names[c]]
    classes = [c for c in FEATURE_CLASSES for _ in names[c]]
    extract = _Extractor()

    feature_rows: list[dict[str, Any]] = []
    pair_docs: list[dict[str, Any]] = []
    bar = tqdm(total=sum(len(v) for v in plan.values()), desc="radiomics", unit="subject", disable=not progress)
    for (src, ref), subjects in plan.items():
        rows = []
        for scans in subjects:
            vols, paths, mask, kind = _read_pair(scans)
            row: dict[str, Any] = {"subject": scans.subject, "quality": {}}
            for role in vols:
                image = paths[role]
                row[role] = extract(image, vols[role], mask, (scans.subject, ref))
                kernel = {"source": src, "reference": ref}.get(role, f"{src}->{ref}")
                feature_rows.append({"pair": pair_name((src, ref)), "subject": scans.subject, "role": role,
                                     "kernel": kernel, "image": image, "roi": kind, "roi_voxels": int(mask.sum()),
                                     **{c: row[role][c] for c in columns}})
            for role in ("source", *methods):
                row["quality"][role] = image_quality(vols[role].array, vols["reference"].array)
            rows.append(row)
            bar.update(1)
        comparisons = {key: _comparison_doc(rows, role, columns, classes, normalization)
                       for key, role in (("input", "source"), *((m, m) for m in methods))}
        pair_docs.append({"name": pair_name((src, ref)), "source": src, "reference": ref, "n_pairs": len(rows),
                          "subjects": [s.subject for s in subjects], "comparisons": comparisons})
    bar.close()

    import radiomics

    doc = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "datalist": os.fspath(datalist),
        "harmonized": (None if not methods else methods[DEFAULT_METHOD] if list(methods) == [DEFAULT_METHOD]
                       else dict(methods)),
        "split": split,
        "settings": {
            "pyradiomics_version": radiomics.__version__, "extractor": dict(SETTINGS),
            "feature_classes": {c: len(names[c]) for c in FEATURE_CLASSES}, "n_features": len(columns),
            "extraction": "one per volume (3-D ROI), force2D: texture matrices from in-plane neighbours, pooled over slices",
            "roi": roi, "roi_rule": f"labels {sorted(SOFT_TISSUE_LABELS.values())} ({', '.join(SOFT_TISSUE_LABELS)}) of the "
                                    f"subject's label map, else [{SOFT_TISSUE_HU[0]:g}, {SOFT_TISSUE_HU[1]:g}] HU inside "
                                    "the body of the reference scan; the same ROI for every image of the subject's pair",
            "normalization": normalization, "window_hu": list(WINDOW_HU),
        },
        "features": {c: names[c] for c in FEATURE_CLASSES},
        "pairs": pair_docs,
    }
    table2, table3 = _table_rows(doc)
    plot_rows = [{"label": f"{p['source']}→{p['reference']} {_label(k)}", **c}
                 for p in pair_docs for k, c in p["comparisons"].items()]
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        write_csv(feature_rows, tmp / "features.csv")
        write_csv(table2, tmp / "table2.csv")
        write_csv(table3, tmp / "table3.csv")
        (tmp / "table2.md").write_text(_table2_markdown(doc), encoding="utf-8")
        (tmp / "table3.md").write_text(_table3_markdown(doc), encoding="utf-8")
        write_json(doc, tmp / "radiomics.json")
        ccc_plot(plot_rows, GROUP_TITLES, tmp / "ccc.png")
    return doc
