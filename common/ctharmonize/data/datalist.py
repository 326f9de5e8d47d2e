"""Datalist JSON files: load (validated, paths resolved), save (atomic, paths relative), filter.

Format (schema: ``datalist.schema.json``, documented in ``docs/datalist.md``)::

    {"name": "...", "labels": {"right_lung": 1, ...},
     "data": [{"image": "images/s0_siemens_b30f.nii.gz", "kernel": "siemens_b30f",
               "split": "train", "lung": "lungs/s0_lung.nii.gz"}, ...]}

MONAI decathlon-style ``training`` / ``validation`` / ``test`` sections are accepted too; their
entries get ``split`` = ``train`` / ``validation`` / ``test``. Unknown entry keys are allowed (user
annotations) unless they look like a typo of a known key (``"grund_truth"``).

Paths (:data:`PATH_KEYS`): a relative path is relative to the datalist's folder and must stay inside
it once ``..`` and symlinks are resolved (``../../etc/passwd`` is refused, so is ``images`` when it
is a symlink to a folder elsewhere). A file elsewhere is named by an absolute path (or ``~/...``),
which is allowed: it is explicit, and :func:`save_datalist` writes one for every path outside the
datalist's folder.

Ids (:data:`ID_KEYS`: ``subject``, kernel names, ``vendor``, ``pair_id``) name output files, so they
may not contain a path separator (``/``, ``\\``), ``..`` or a control character.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ctharmonize.data.documents import check_document, load_document, location
from ctharmonize.errors import ConfigError, DatalistError
from ctharmonize.io.atomic import atomic_path

__all__ = [
    "datalist_entries",
    "DATALIST_SCHEMA_FILE", "PATH_KEYS", "ID_KEYS", "KNOWN_KEYS", "SPLITS",
    "entry_paths", "load_datalist", "save_datalist", "filter_datalist", "validate_datalist_document", "resolve_entry_path",
]

DATALIST_SCHEMA_FILE = Path(__file__).resolve().parent / "datalist.schema.json"
PATH_KEYS = ("image", "labels", "label", "lung", "ground_truth", "harmonized", "dicom")
DOMAIN_KEYS = ("kernel", "source_kernel", "target")
KNOWN_KEYS = (*PATH_KEYS, *DOMAIN_KEYS, "vendor", "subject", "split", "pair_id")
ID_KEYS = ("subject", *DOMAIN_KEYS, "vendor", "pair_id")
SPLITS = ("train", "validation", "test")
_UNSAFE_ID = re.compile(r"[/\\\x00-\x1f\x7f]|\.\.")
_SECTIONS = {"data": None, "training": "train", "validation": "validation", "test": "test"}


def _sections(doc: Mapping) -> Iterable[tuple[str, str | None, int, dict]]:
    """Yield (section, split implied by the section, index, entry) for every entry."""
    for section, split in _SECTIONS.items():
        for i, entry in enumerate(doc.get(section) or ()):
            yield section, split, i, ({"image": entry} if isinstance(entry, str) else entry)


def validate_datalist_document(doc: Any, path: str | os.PathLike | None = None) -> None:
    """Check a parsed datalist against the schema and the key/split rules; raise :class:`DatalistError`."""
    if isinstance(doc, Mapping) and not any(section in doc for section in _SECTIONS):
        raise DatalistError(path, "no entries: expected a 'data' list (or MONAI decathlon-style "
                                  "'training' / 'validation' / 'test' lists)")
    check_document(doc, DATALIST_SCHEMA_FILE, path, DatalistError)
    for section, split, i, entry in _sections(doc):
        where = location([section, i])
        for key in entry:
            if key not in KNOWN_KEYS:
                close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.8)
                if close:
                    raise DatalistError(path, f"{where}: unknown key {key!r} (did you mean {close[0]!r}?)")
        if split is not None and entry.get("split", split) != split:
            raise DatalistError(path, f"{where}.split: {entry['split']!r} contradicts the {section!r} section")
        for key in ID_KEYS:
            value = entry.get(key)
            if isinstance(value, str) and (bad := _UNSAFE_ID.search(value)):
                what = "'..'" if bad.group() == ".." else f"{bad.group()!r}"
                raise DatalistError(path, f"{where}.{key}: {value!r} contains {what}; ids name output files, so they "
                                          "may not contain '/', '\\', '..' or control characters")


def _inside(child: str, folder: str) -> bool:
    return os.path.commonpath([child, folder]) == folder


def resolve_entry_path(value: str, folder: str | os.PathLike, *, datalist: str | os.PathLike | None = None,
                       where: str = "") -> str:
    """Absolute, normalised path of a datalist path ``value`` (``~`` expanded).

    A relative ``value`` is taken relative to ``folder`` (the datalist's folder) and must stay inside
    it after resolving ``..`` and symlinks; otherwise :class:`DatalistError` names ``datalist`` and
    ``where`` (e.g. ``data[0].image``). Absolute paths are returned as they are (normalised).
    """
    expanded = os.path.expanduser(value)
    folder = os.path.abspath(folder)
    if os.path.isabs(expanded):
        return os.path.normpath(expanded)
    joined = os.path.join(folder, expanded)
    real, real_folder = os.path.realpath(joined), os.path.realpath(folder)
    if not _inside(real, real_folder):
        raise DatalistError(datalist, f"{where}: {value!r} leads outside the datalist's folder {folder} (to {real}); "
                                      "relative paths must stay inside it - give an absolute path for a file elsewhere")
    return os.path.normpath(joined)


def _registry(registry: Any):
    if registry is None:
        return None
    from ctharmonize.domains.registry import DomainRegistry

    return registry if isinstance(registry, DomainRegistry) else DomainRegistry.from_file(registry)


def load_datalist(path: str | os.PathLike, *, check_files: bool = True, registry: Any = None) -> list[dict]:
    """Read a datalist and return its entries with absolute paths.

    Args:
        path: the datalist JSON file.
        check_files: verify that every referenced file or folder exists.
        registry: a :class:`~ctharmonize.domains.DomainRegistry` or a registry file; when given,
            ``kernel`` / ``source_kernel`` / ``target`` must be known domain names (else UnknownDomainError).

    Returns:
        one dict per entry (``data`` first, then ``training``, ``validation``, ``test``), path
        keys (``image``, ``labels``, ``label``, ``lung``, ``ground_truth``, ``harmonized``)
        made absolute; decathlon sections set ``split``.

    Raises:
        DatalistError: ``"<path>: data[3]: 'image' is a required property"`` and the like; a relative
            path leading outside the datalist's folder; an id with a path separator or ``..``.
    """
    doc = load_document(path, DatalistError)
    validate_datalist_document(doc, path)
    reg = _registry(registry)
    folder = os.path.dirname(os.path.abspath(path))
    entries = []
    for section, split, i, raw in _sections(doc):
        entry = dict(raw)
        if split is not None:
            entry["split"] = split
        for key in PATH_KEYS:
            if key in entry:
                resolved = resolve_entry_path(entry[key], folder, datalist=path, where=location([section, i, key]))
                if check_files and not os.path.exists(resolved):
                    raise DatalistError(path, f"{location([section, i, key])}: file not found: {resolved}")
                entry[key] = resolved
        if reg is not None:
            for key in DOMAIN_KEYS:
                if key in entry:
                    reg.validate_name(entry[key], path=f"{os.fspath(path)}: {location([section, i, key])}")
        entries.append(entry)
    return entries


def _plain(value: Any) -> Any:
    """JSON-serialisable version of numpy scalars / paths found in entries."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_datalist(data: Sequence[Mapping] | Mapping, path: str | os.PathLike, overwrite: bool = False, *,
                  name: str | None = None, description: str | None = None) -> Path:
    """Write a datalist atomically, with path keys relative to the datalist's folder.

    Args:
        data: a list of entries, or a whole datalist document (``{"data": [...], ...}``).
        path: the output ``.json`` file.
        overwrite: replace an existing file.
        name, description: top-level fields (when ``data`` is a list).

    Absolute paths inside the datalist's folder are made relative to it; relative paths are kept as
    they are (they are already relative to that folder); paths outside it (after resolving ``..`` and
    symlinks) are written absolute, so that :func:`load_datalist` reads the result back. Raises
    DatalistError if the result does not validate, OutputExistsError if ``path`` exists and not ``overwrite``.
    """
    path = Path(path)
    if isinstance(data, Mapping):
        doc = {k: v for k, v in data.items()}
    else:
        doc = {"data": list(data)}
    if name is not None:
        doc["name"] = name
    if description is not None:
        doc["description"] = description
    folder = os.path.dirname(os.path.abspath(path))
    for section in _SECTIONS:
        if section not in doc:
            continue
        out = []
        for entry in doc[section]:
            entry = {"image": entry} if isinstance(entry, str | os.PathLike) else dict(entry)
            for key in PATH_KEYS:
                if key in entry:
                    entry[key] = _saved_path(os.fspath(entry[key]), folder)
            out.append(entry)
        doc[section] = out
    try:
        doc = json.loads(json.dumps(doc, default=_plain))
    except (TypeError, ValueError) as err:
        raise DatalistError(path, f"cannot write datalist: {err}") from err
    validate_datalist_document(doc, path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def _saved_path(value: str, folder: str) -> str:
    """``value`` as written into a datalist in ``folder``: relative inside it, absolute outside it."""
    absolute = os.path.join(folder, os.path.expanduser(value))
    if not _inside(os.path.realpath(absolute), os.path.realpath(folder)):
        return Path(os.path.normpath(absolute)).as_posix()
    if os.path.isabs(value):
        try:
            value = os.path.relpath(value, folder)
        except ValueError:  # another drive (Windows): keep absolute
            pass
    return Path(value).as_posix()


def _as_set(value: str | Sequence[str] | None) -> set[str] | None:
    return None if value is None else ({value} if isinstance(value, str) else set(value))


def filter_datalist(entries: Iterable[Mapping], split: str | Sequence[str] | None = None,
                    kernel: str | Sequence[str] | None = None) -> list[dict]:
    """Entries whose ``split`` / ``kernel`` is one of the given values (None = no condition).

    Entries without a ``split`` (or ``kernel``) never match a condition on it.
    """
    splits, kernels = _as_set(split), _as_set(kernel)
    if splits is not None and not splits <= set(SPLITS):
        raise ConfigError(None, f"unknown split {sorted(splits - set(SPLITS))[0]!r}; use one of {', '.join(SPLITS)}")
    return [dict(e) for e in entries
            if (splits is None or e.get("split") in splits) and (kernels is None or e.get("kernel") in kernels)]


def entry_paths(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every file an entry names (its :data:`PATH_KEYS` values), for the output check of a command that
    reads a datalist: an output may not be, contain or lie inside any of them."""
    return [os.fspath(e[k]) for e in entries for k in PATH_KEYS if e.get(k)]


def datalist_entries(datalist: str | os.PathLike | Iterable[Mapping], split: str | None = None,
                     check_files: bool = True) -> tuple[list[dict], Path | None]:
    """Entries of a datalist file (loaded, paths resolved) or of already-loaded entries (copied).

    ``split`` keeps only that split's entries (None or ``"all"``: every entry). Returns the entries
    and the datalist path (None for in-memory entries), for error messages.
    """
    if isinstance(datalist, str | os.PathLike):
        source: Path | None = Path(datalist)
        entries = load_datalist(datalist, check_files=check_files)
    else:
        source, entries = None, [dict(e) for e in datalist]
    if split is not None and split != "all":
        entries = filter_datalist(entries, split=split)
    return entries, source
