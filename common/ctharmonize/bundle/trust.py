"""Bundle trust: a MONAI bundle config is code, so decide whether to run it before it is parsed.

MONAI evaluates every ``"$..."`` value of a config with ``eval`` and calls every ``"_target_"``. Loading
weights with ``weights_only=True`` protects nothing if the config beside them can run anything. A bundle
is run by ctharmonize's commands only when it is trusted:

* it is one of the bundles shipped with ctharmonize (by location), or a copy whose code is identical
  (same :func:`bundle_code_digest` as a shipped bundle);
* its code digest is recorded in the trusted-bundles file (``$CTHARMONIZE_HOME/trusted_bundles.json``,
  default ``~/.cache/ctharmonize``), written by :func:`record_trusted_bundle`, i.e. by
  ``ctharmonize trust-bundle DIR`` after the user has reviewed it, or by a verified download;
* or the caller passes ``trust=True`` (``--trust_bundle``) explicitly.

Any change to a config or a Python file of the bundle changes the digest and withdraws the trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from ctharmonize.errors import ConfigError

__all__ = [
    "UntrustedBundleError",
    "bundle_code_digest",
    "check_bundle_trusted",
    "record_trusted_bundle",
    "shipped_bundles_dir",
    "trusted_bundles_file",
]

# Files that MONAI or Python may execute or that steer execution: every config, and code anywhere.
_CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyd", ".so", ".pth", ".json", ".yaml", ".yml"})
# Folders of outputs and data, never code.
_DATA_FOLDERS = frozenset({"models", "eval", "sample", "sample_data", "eval_data", "docs"})


class UntrustedBundleError(ConfigError):
    """A bundle's configs would be executed, but the bundle is not trusted."""


def shipped_bundles_dir() -> Path:
    """``bundles/`` of the ctharmonize source tree this package was installed from."""
    return Path(__file__).resolve().parents[3] / "bundles"


def trusted_bundles_file() -> Path:
    """The record of user-trusted bundle digests."""
    home = os.environ.get("CTHARMONIZE_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "ctharmonize")
    return Path(home) / "trusted_bundles.json"


def _code_files(bundle: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(bundle):
        rel = Path(root).relative_to(bundle)
        in_configs = rel.parts[:1] == ("configs",)
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (rel == Path(".") and (d in _DATA_FOLDERS or d.startswith("train_output"))))
        files += [Path(root, n) for n in sorted(names) if in_configs or Path(n).suffix.lower() in _CODE_SUFFIXES]
    return files


def bundle_code_digest(bundle: str | os.PathLike) -> str:
    """SHA-256 over the relative names and bytes of every config (``configs/**``) and code file
    (``*.py``, ``*.json``, ``*.yaml`` … outside models/, docs/ and output folders) of a bundle."""
    bundle = Path(bundle)
    h = hashlib.sha256()
    for p in _code_files(bundle):
        h.update(p.relative_to(bundle).as_posix().encode() + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _recorded() -> dict:
    path = trusted_bundles_file()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(path, f"cannot read the trusted-bundles record ({type(err).__name__})") from err
    return data if isinstance(data, dict) else {}


def _shipped_digests() -> dict[str, Path]:
    root = shipped_bundles_dir()
    if not root.is_dir():
        return {}
    return {bundle_code_digest(b): b for b in sorted(root.iterdir()) if (b / "configs").is_dir()}


def check_bundle_trusted(bundle: str | os.PathLike, trust: bool = False) -> str:
    """Return why ``bundle`` may run ("shipped", "copy of shipped …", "recorded", "--trust_bundle");
    raise :class:`UntrustedBundleError` (one line) otherwise. Call it before parsing any config."""
    path = Path(bundle)
    if trust:
        return "--trust_bundle"
    real = path.resolve()
    shipped = shipped_bundles_dir().resolve()
    if real.parent == shipped:
        return "shipped with ctharmonize"
    digest = bundle_code_digest(path)
    original = _shipped_digests().get(digest)
    if original is not None:
        return f"identical to the shipped bundle {original.name}"
    if digest in _recorded():
        return f"recorded in {trusted_bundles_file()}"
    raise UntrustedBundleError(
        path, f"not a trusted bundle: its configs are code that would run on this machine, and it is neither "
        f"shipped with ctharmonize nor recorded as trusted (code sha256 {digest[:16]}…); review its configs, "
        "then pass --trust_bundle, or record it once with 'ctharmonize trust-bundle --bundle DIR'")


def record_trusted_bundle(bundle: str | os.PathLike, source: str = "reviewed by the user") -> str:
    """Record ``bundle``'s code digest as trusted (atomically); returns the digest."""
    path = Path(bundle)
    if not (path / "configs").is_dir():
        raise ConfigError(path, "not a bundle (no configs folder)")
    digest = bundle_code_digest(path)
    record = _recorded()
    meta = {}
    meta_file = path / "configs" / "metadata.json"
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            meta = {}
    record[digest] = {"name": meta.get("name", path.name), "version": meta.get("version"),
                      "path": os.fspath(path.resolve()), "source": source}
    target = trusted_bundles_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".trusted_bundles.", suffix=".tmp", dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
    os.replace(name, target)
    return digest
