"""Read JSON/YAML documents and check them against the shipped JSON Schemas.

Every problem becomes a one-line :class:`~ctharmonize.errors.CTHarmonizeError` naming the file
and, for schema violations, the location inside the document (e.g. ``data[3].kernel``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from ctharmonize.errors import CTHarmonizeError

__all__ = ["load_document", "load_schema", "location", "schema_problem", "check_document"]

_MAX_MESSAGE = 200


def load_document(path: str | os.PathLike, error: type[CTHarmonizeError]) -> Any:
    """Parse a ``.json`` (or ``.yaml``/``.yml``) file; raise ``error(path, ...)`` on any failure."""
    path = Path(path)
    if not path.is_file():
        raise error(path, "file not found" if not path.exists() else "not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise error(path, f"cannot read file: {err}") from err
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
            raise error(path, f"not valid YAML: {where}{getattr(err, 'problem', err)}") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(path, f"not valid JSON: line {err.lineno} column {err.colno}: {err.msg}") from err


@functools.cache
def load_schema(path: str) -> dict:
    """Load a shipped schema (cached) and check that the schema itself is valid."""
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.validators.validator_for(schema).check_schema(schema)
    return schema


def location(parts: Iterable[str | int]) -> str:
    """Format a JSON path like ``data[3].image``; ``(top level)`` for the root."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def schema_problem(instance: Any, schema: dict) -> str | None:
    """One-line description ``"<location>: <message>"`` of the most relevant violation, or None."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    message = " ".join(error.message.split())
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return f"{location(error.absolute_path)}: {message}"


def check_document(instance: Any, schema_path: str | os.PathLike, path: str | os.PathLike | None,
                   error: type[CTHarmonizeError]) -> None:
    """Raise ``error(path, "<location>: <message>")`` if ``instance`` violates the schema."""
    problem = schema_problem(instance, load_schema(os.fspath(schema_path)))
    if problem is not None:
        raise error(path, problem)
