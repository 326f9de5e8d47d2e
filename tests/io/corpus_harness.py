"""Helpers for the bad-input corpus tests: run the CLI in-process, check one-line errors, snapshot trees.

A corpus case asserts one of two outcomes:

* a one-line error on stderr naming the file and the problem, exit status 2, no output left behind
  and every input (and its neighbours) byte-identical afterwards: :func:`expect_refusal`;
* a correct result, checked against an independent computation by the test itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from ctharmonize.cli import main


def run_cli(capsys, *args: str | os.PathLike, cwd: str | os.PathLike | None = None) -> tuple[int, str, str]:
    """``ctharmonize ARGS`` in this process; returns (exit status, stdout, stderr)."""
    capsys.readouterr()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        rc = main([os.fspath(a) for a in args])
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(root: str | os.PathLike) -> dict[str, str]:
    """Relative path -> SHA-256 (files), ``"<dir>"`` (folders) or ``"-> target"`` (symlinks) under ``root``."""
    root = Path(root)
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = os.fspath(p.relative_to(root))
            if p.is_symlink():
                state[rel] = f"-> {os.readlink(p)}"
            elif p.is_dir():
                state[rel] = "<dir>"
            else:
                state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def one_line_error(err: str, *must_contain: str) -> str:
    """The single stderr line of a refused command; asserts no traceback and that it names ``must_contain``."""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("\r")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err}"
    for text in must_contain:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


def expect_refusal(capsys, args: Iterable[str | os.PathLike], *must_contain: str, watch: str | os.PathLike,
                   absent: Iterable[str | os.PathLike] = (), cwd: str | os.PathLike | None = None) -> str:
    """Run the CLI, assert exit 2 with one error line naming ``must_contain``, ``watch`` unchanged byte for
    byte (inputs, neighbours, the output's folder) and nothing at the ``absent`` paths. Returns the line."""
    before = snapshot(watch)
    rc, _, err = run_cli(capsys, *args, cwd=cwd)
    line = one_line_error(err, *must_contain)
    assert rc == 2, (rc, err)
    assert snapshot(watch) == before, "input tree changed"
    for path in absent:
        assert not os.path.lexists(path), f"{path} was left behind"
    return line


def dciodvfy_errors(folder: str | os.PathLike) -> list[str]:
    """The ``Error`` lines dciodvfy (dicom3tools) reports for every file of a DICOM series folder."""
    import shutil
    import subprocess

    import pytest

    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.fail("dciodvfy (dicom3tools) is required for this test; apt-get install dicom3tools")
    errors = []
    for f in sorted(Path(folder).iterdir()):
        if f.name.startswith("."):
            continue
        out = subprocess.run([tool, str(f)], capture_output=True, text=True, timeout=60, check=False)
        errors += [f"{f.name}: {line}" for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    return errors
