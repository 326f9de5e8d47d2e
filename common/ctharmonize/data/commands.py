"""``ctharmonize validate-datalist``: check a datalist and print counts per split and kernel."""

from __future__ import annotations

from collections import Counter

from ctharmonize.data.datalist import SPLITS, load_datalist

__all__ = ["validate_datalist", "summary_table"]


def summary_table(entries: list[dict]) -> str:
    """A text table of entry counts, rows = split, columns = kernel (``-`` = not given)."""
    counts = Counter((e.get("split", "-"), e.get("kernel", "-")) for e in entries)
    kernels = sorted({k for _, k in counts})
    splits = [s for s in (*SPLITS, "-") if any(sp == s for sp, _ in counts)]
    header = ["split", *kernels, "total"]
    rows = [header]
    for s in splits:
        row = [counts[(s, k)] for k in kernels]
        rows.append([s, *map(str, row), str(sum(row))])
    totals = [sum(counts[(s, k)] for s in splits) for k in kernels]
    rows.append(["total", *map(str, totals), str(sum(totals))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in rows)


def validate_datalist(datalist: str, check_files: bool = True, registry: str | None = None) -> None:
    """Validate a datalist JSON file and print a summary (entries per split x kernel).

    Args:
        datalist: the datalist JSON file.
        check_files: also check that every referenced file exists.
        registry: a domain registry file to check kernel names against (default: the shipped one).
    """
    from ctharmonize.domains.registry import default_registry

    entries = load_datalist(datalist, check_files=check_files, registry=registry or default_registry())
    subjects = {e["subject"] for e in entries if "subject" in e}
    print(f"{datalist}: valid, {len(entries)} entries, {len(subjects)} subjects")
    print(summary_table(entries))
