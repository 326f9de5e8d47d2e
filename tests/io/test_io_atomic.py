"""atomic_path: rename-into-place, no partial outputs, usual permissions, overwrite rules."""

import os
import stat

import pytest

from ctharmonize.errors import OutputExistsError
from ctharmonize.io import atomic_path


def test_file_appears_only_on_success_with_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "out.nii.gz"
        with atomic_path(target) as tmp:
            assert tmp.name.endswith(".nii.gz") and tmp.parent == tmp_path
            tmp.write_bytes(b"data")
            assert not target.exists()
        assert target.read_bytes() == b"data"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


def test_error_leaves_existing_output_untouched_and_no_temporaries(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_refuses_overwrite_and_replaces_directory_when_asked(tmp_path):
    target = tmp_path / "series"
    target.mkdir()
    (target / "old.dcm").write_text("x")
    with pytest.raises(OutputExistsError, match="already exists"):
        with atomic_path(target, directory=True):
            pass
    with atomic_path(target, overwrite=True, directory=True) as tmp:
        assert tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "new.dcm").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new.dcm"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
