"""Markdown (and optional HTML) report of a cohort evaluation, with tables in paper-000 form.

Table 1 form: paired kernels, bootstrap median RMSE of LAA-950 [95 % CI] before/after and the
Wilcoxon p, with Perc15 and mean-lung-density differences (HU). Table 2 form: LAA-950 median
(min, max) per kernel before/after against the reference kernel, Mann-Whitney U p and KL.
Table 3 form: Cohen's d with its category, and the muscle/SAT Dice medians.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctharmonize.io.atomic import atomic_path

__all__ = ["render_report", "write_report"]


def _pct(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}%"


def _num(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"


def _p(test: Mapping[str, Any] | None) -> str:
    return "n/a" if not test else _num(test["pvalue"], 3)


def _ci(block: Mapping[str, Any] | None) -> str:
    if not block:
        return "n/a (none harmonized to this reference)"
    return f"{_pct(block['rmse'])} [{_pct(block['ci_low'])}, {_pct(block['ci_high'])}]"


def _dist(block: Mapping[str, Any] | None) -> str:
    if not block:
        return "n/a"
    return f"{_pct(block['median'])} ({_pct(block['min'])}, {_pct(block['max'])})"


def _d(block: Mapping[str, Any] | None) -> str:
    if not block:
        return "n/a"
    return f"{_num(block['d'], 2)} ({block['category']})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def render_report(summary: Mapping[str, Any], figures: Mapping[str, str], title: str = "Cohort evaluation") -> str:
    """The report as Markdown. ``figures``: ``{caption: relative PNG path}``."""
    ref = summary["reference_kernel"]
    thr = summary["threshold_hu"]
    boot = summary["bootstrap"]
    lines = [
        f"# {title}",
        "",
        f"{summary['n_scans']} scans ({', '.join(f'{k}: {n}' for k, n in summary['kernels'].items())}), "
        f"{summary['n_harmonized']} with a harmonized image. Reference kernel: **{ref}**. "
        f"Percent emphysema = LAA{thr:g} (% of lung voxels below {thr:g} HU).",
        "",
    ]
    if not summary["n_harmonized"]:
        lines += ["No harmonized images were given: the tables show the disagreement between kernels "
                  "before harmonization (the baseline a harmonizer must reduce).", ""]

    lines += ["## Table 1 form: paired kernels (same subjects)", "",
              f"Bootstrap ({boot['n_resamples']} resamples of subjects) median RMSE of LAA{thr:g} with "
              f"{100 * boot['ci']:g}% CI; p: paired Wilcoxon signed-rank test of the two kernels' LAA "
              "(before/after) and of the absolute errors (before vs after).", ""]
    paired = summary["paired"]
    if paired:
        rows = []
        for e in paired.values():
            rows.append([f"{e['kernel']} vs {e['reference']}", str(e["n"]), _ci(e["before"]), _p(e["before"]["wilcoxon"]),
                         _ci(e["after"]), _p(e["after"]["wilcoxon"]) if e["after"] else "n/a",
                         _p(e["wilcoxon_before_vs_after"])])
        lines += _table(["pair", "n", "RMSE before", "p before", "RMSE after", "p after", "p before vs after"], rows)
        sim_rows = []
        for e in paired.values():
            for when in ("before", "after"):
                blk = e[when]
                if blk:
                    s = blk["similarity"]
                    sim_rows.append([f"{e['kernel']} vs {e['reference']}", when, _num(s["psnr"]["median"], 2),
                                     _num(s["ssim"]["median"], 3), _num(s["nrmse"]["median"], 3), _num(s["ncc"]["median"], 3)])
        hu_rows = []
        for e in paired.values():
            for when in ("before", "after"):
                cells = [e["lung_measures"][m][when] for m in ("perc15_hu", "mean_hu")]
                if any(cells):
                    hu_rows.append([f"{e['kernel']} vs {e['reference']}", when] +
                                   [f"{_num(c['mean_difference'], 1)} / {_num(c['rmse'], 1)}" if c else "n/a" for c in cells])
        if hu_rows:
            lines += ["", "Other lung measures against the paired reference: mean difference / RMSE in HU "
                      "(Perc15: 15th percentile of lung HU; MLD: mean lung density):", ""]
            lines += _table(["pair", "", "Perc15", "MLD"], hu_rows)
        lines += ["", "Image similarity to the paired reference (medians; HU window [-1024, 3072], data range 4096 HU):", ""]
        lines += _table(["pair", "", "PSNR (dB)", "SSIM", "NRMSE", "NCC"], sim_rows)
    else:
        lines += ["No paired scans (no subject has both a kernel and its paired reference)."]

    unpaired = summary["unpaired"]
    refd = unpaired["reference"]
    lines += ["", f"## Table 2 form: all kernels against the reference {ref}", "",
              f"{ref} (reference): median (min, max) = {_dist(refd) if refd['n'] else 'n/a (no reference scans)'}, "
              f"n = {refd['n']}. LAA{thr:g} as median (min, max); p: Mann-Whitney U against the reference; "
              f"KL: divergence of the kernel's LAA histogram from the reference's on shared bins ({summary['kl_bins']}).", ""]
    if unpaired["kernels"]:
        kernels = list(unpaired["kernels"])
        rows = []
        for when in ("before", "after"):
            blocks = [unpaired["kernels"][k][when] for k in kernels]
            rows.append([f"{when} harmonization"] + [_dist(b) for b in blocks])
            rows.append([f"p (MWU) {when}"] + [_p(b["mann_whitney_u"]) if b else "n/a" for b in blocks])
            rows.append([f"KL {when}"] + [_num(b["kl_divergence"], 3) if b else "n/a" for b in blocks])
        lines += _table([""] + kernels, rows)

        lines += ["", "## Table 3 form: effect sizes", "",
                  "Cohen's d (pooled SD) of LAA against the reference kernel; categories after paper 000: small "
                  "|d| ≤ 0.2, medium 0.2 < |d| ≤ 0.5, medium-large 0.5 < |d| < 0.8 (unnamed in the paper), "
                  "large |d| ≥ 0.8. Positive d: higher LAA than the reference.", ""]
        rows = [[f"{k} vs {ref}"] + [_d(unpaired["kernels"][k][w]["cohens_d"] if unpaired["kernels"][k][w] else None)
                                    for w in ("before", "after")] for k in kernels]
        rows += [[f"{e['kernel']} vs {e['reference']} (paired)", _d(e["before"]["cohens_d"]),
                  _d(e["after"]["cohens_d"] if e["after"] else None)] for e in paired.values()]
        lines += _table(["comparison", "d before", "d after"], rows)

    lines += ["", "## Anatomy preservation (hallucinations)", ""]
    if summary["dice"]:
        rows = [[k, ", ".join(e["target"]), str(e["muscle"]["n"]), _num(e["muscle"]["median"], 3), _num(e["sat"]["median"], 3),
                 _num(e["vat"]["median"], 3)] for k, e in summary["dice"].items()]
        lines += ["Dice of body-composition labels, harmonized vs original (median):", ""]
        lines += _table(["kernel", "target", "n", "muscle", "SAT", "VAT"], rows)
    else:
        lines += ["No harmonized images: Dice of muscle/SAT not computed."]

    if summary.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"* {w}" for w in summary["warnings"]]
    lines += ["", "## Figures", ""]
    for caption, rel in figures.items():
        lines += [f"### {caption}", "", f"![{caption}]({rel})", ""]
    lines += ["## Files", "", "* `per_scan.csv`: one row per scan (all measures).",
              "* `summary.json`: every statistic above, machine-readable.", ""]
    return "\n".join(lines)


def write_report(
    summary: Mapping[str, Any], figures: Mapping[str, str], out_dir: str | Path, overwrite: bool = False,
    html_report: bool = False,
) -> list[Path]:
    """Write ``report.md`` (and ``report.html`` with ``html_report``) into ``out_dir``."""
    text = render_report(summary, figures)
    written = []
    md = Path(out_dir) / "report.md"
    with atomic_path(md, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    written.append(md)
    if html_report:
        page = Path(out_dir) / "report.html"
        with atomic_path(page, overwrite=overwrite) as tmp:
            tmp.write_text(_to_html(text), encoding="utf-8")
        written.append(page)
    return written


def _to_html(markdown: str) -> str:
    """Minimal Markdown -> HTML for this report's subset (headings, tables, images, paragraphs)."""
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>Cohort evaluation</title>",
           "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:3px 8px}</style></head><body>"]
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            out.append("<table>" + "".join(
                "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}</{'th' if i == 0 else 'td'}>" for c in row)
                + "</tr>" for i, row in enumerate(table)) + "</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                table.append(cells)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](", 1)
            out.append(f"<img src='{html.escape(src.rstrip(')'))}' alt='{html.escape(alt)}' style='max-width:100%'>")
        elif line.strip():
            out.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    flush()
    out.append("</body></html>")
    return "\n".join(out)
