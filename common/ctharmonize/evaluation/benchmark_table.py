"""The benchmark leaderboard: its columns (unit, which direction is better), Markdown tables and the
"beats the baseline?" comparison. Rows are dicts, one per method x path (see :mod:`.benchmark`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ALL", "BOTH", "COLUMNS", "PAIRED", "TRUTH", "UNPAIRED", "Column", "beats_baseline", "beats_markdown",
           "leaderboard_markdown"]

PAIRED, UNPAIRED, TRUTH = ("paired",), ("unpaired",), ("truth",)
BOTH = ("paired", "unpaired")
ALL = ("paired", "unpaired", "truth")


@dataclass(frozen=True)
class Column:
    """One leaderboard column: ``key`` in the CSV/JSON rows, Markdown ``header``, where it applies (``kinds``)
    and what is better: "lower", "higher", "closer to 0", "closer to 1" (|log ratio|) or "closer to
    <ref key>" (|value - row[ref]|; not comparable where the row has no reference value)."""

    key: str
    header: str
    kinds: tuple[str, ...]
    better: str
    digits: int = 2
    ref: str | None = None  # the row key a "closer to" column is compared with

    @property
    def direction(self) -> str:
        """The better direction in words ("closer to ref" for a column compared with another)."""
        return "closer to ref" if self.ref else self.better

    def loss(self, row: Mapping[str, Any]) -> float:
        """Lower is better: the value turned so that a smaller number wins (NaN when not applicable)."""
        value = _float(row.get(self.key))
        if self.better == "lower":
            return value
        if self.better == "higher":
            return -value
        if self.better == "closer to 0":
            return abs(value)
        if self.better == "closer to 1":
            return abs(math.log(value)) if value > 0 else math.nan
        return abs(value - _float(row.get(self.ref)))


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


COLUMNS: tuple[Column, ...] = (
    Column("laa950_rmse_pp", "LAA-950 RMSE vs soft (pp) [95% CI]", PAIRED, "lower"),
    Column("perc15_diff_hu", "Perc15 diff vs soft (HU)", PAIRED, "closer to 0", 1),
    Column("mld_diff_hu", "MLD diff vs soft (HU)", PAIRED, "closer to 0", 1),
    Column("noise_sd_ratio", "noise SD ratio", BOTH, "closer to 1"),
    Column("nps_peak_lpcm", "NPS peak (lp/cm) [ref]", ALL, "closer to nps_peak_ref_lpcm", 2, "nps_peak_ref_lpcm"),
    Column("mtf50_lpcm", "MTF50 (lp/cm) [ref]", ALL, "closer to mtf50_ref_lpcm", 2, "mtf50_ref_lpcm"),
    Column("dprime_npwe", "d′ NPWE [ref]", ALL, "closer to dprime_npwe_ref", 2, "dprime_npwe_ref"),
    Column("ssim_soft", "SSIM vs soft", PAIRED, "higher", 3),
    Column("psnr_soft_db", "PSNR vs soft (dB)", PAIRED, "higher", 1),
    Column("ssim_gt", "SSIM vs GT", ALL, "higher", 3),
    Column("psnr_gt_db", "PSNR vs GT (dB)", ALL, "higher", 1),
    Column("laa950_gt_rmse_pp", "LAA-950 RMSE vs GT (pp)", ALL, "lower"),
    Column("perc15_gt_diff_hu", "Perc15 diff vs GT (HU)", TRUTH, "closer to 0", 1),
    Column("mld_gt_diff_hu", "MLD diff vs GT (HU)", TRUTH, "closer to 0", 1),
    Column("dice_muscle", "Dice muscle", ALL, "higher", 3),
    Column("dice_sat", "Dice SAT", ALL, "higher", 3),
    Column("laa950_median_pct", "LAA-950 median (%) [B30f]", UNPAIRED, "closer to laa950_ref_median_pct", 2,
           "laa950_ref_median_pct"),
    Column("mwu_p", "MWU p vs B30f", UNPAIRED, "higher", 3),
    Column("radiomics_ccc_all", "radiomics CCC all", PAIRED, "higher"),
    Column("radiomics_ccc_glcm", "radiomics CCC GLCM", PAIRED, "higher"),
    Column("radiomics_ccc_glrlm", "radiomics CCC GLRLM", PAIRED, "higher"),
    Column("fid_ct", "FID (CT features)", BOTH, "lower"),
    Column("kid_ct", "KID (CT features)", BOTH, "lower", 4),
    Column("radiomics_aligned_pct", "radiomics aligned (%)", BOTH, "higher", 1),
    Column("slices_per_s", "slices/s", ALL, "higher", 1),
)


def _fmt(value: Any, digits: int) -> str:
    v = _float(value)
    return "–" if not math.isfinite(v) else f"{v:.{digits}f}"


def _cell(col: Column, row: Mapping[str, Any]) -> str:
    text = _fmt(row.get(col.key), col.digits)
    if text == "–":
        return text
    if col.key == "laa950_rmse_pp":
        return f"{text} [{_fmt(row.get('laa950_rmse_ci_low'), 2)}, {_fmt(row.get('laa950_rmse_ci_high'), 2)}]"
    if col.ref:
        return f"{text} [{_fmt(row.get(col.ref), col.digits)}]"
    return text


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return lines + ["| " + " | ".join(r) + " |" for r in body]


def leaderboard_markdown(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The leaderboard as Markdown table lines: one line per method x path, every column of :data:`COLUMNS`."""
    body = []
    for row in rows:
        status = row["status"]
        cells = [_cell(c, row) if status == "ok" else "–" for c in COLUMNS]
        body.append([row["method"], row["path"], str(row["n"]) if status == "ok" else status, *cells])
    return _table(["method", "path", "n", *(c.header for c in COLUMNS)], body)


def _verdict(col: Column, row: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    a, b = col.loss(row), col.loss(base)
    if not (math.isfinite(a) and math.isfinite(b)):
        return "–"
    return "✓" if a < b else "=" if a == b else "✗"


def beats_baseline(rows: Sequence[Mapping[str, Any]], is_candidate: Callable[[Mapping[str, Any]], bool]
                   ) -> list[dict[str, Any]]:
    """For each candidate row (``is_candidate``), per column: "✓" better than the baseline's row of the same
    path, "✗" worse, "=" equal, "–" not comparable (n/a on either side); ``every`` is "✓" when all
    comparable columns are ✓. A row that is not "ok" keeps its status; an "ok" row whose path has no "ok"
    baseline row (e.g. a truth path the baseline does not support) gets "no baseline row" (with the baseline
    row's status when it has one) and no verdicts."""
    base = {r["path"]: r for r in rows if r["role"] == "baseline"}
    out = []
    for row in rows:
        if not is_candidate(row):
            continue
        entry: dict[str, Any] = {"method": row["method"], "path": row["path"], "status": row["status"]}
        ref = base.get(row["path"])
        if entry["status"] == "ok" and (ref is None or ref["status"] != "ok"):
            entry["status"] = "no baseline row" + (f" (baseline: {ref['status']})" if ref is not None else "")
        if entry["status"] == "ok":
            verdicts = {c.key: _verdict(c, row, ref) for c in COLUMNS if row["kind"] in c.kinds}
            entry.update(verdicts)
            decided = [v for v in verdicts.values() if v != "–"]
            entry["every"] = "✓" if decided and all(v == "✓" for v in decided) else "✗"
        out.append(entry)
    return out


def beats_markdown(beats: Sequence[Mapping[str, Any]]) -> list[str]:
    """The "beats baseline?" Markdown table lines (columns of :data:`COLUMNS` with their "better" direction)."""
    header = ["method", "path", "every column", *(f"{c.header.split(' [')[0]} ({c.direction})" for c in COLUMNS)]
    body = []
    for b in beats:
        if b["status"] != "ok":
            body.append([b["method"], b["path"], b["status"], *("–" for _ in COLUMNS)])
        else:
            body.append([b["method"], b["path"], b["every"], *(b.get(c.key, "–") for c in COLUMNS)])
    return _table(header, body)
