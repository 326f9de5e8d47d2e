"""harmonize-cohort: a bad input mid-run, a SIGKILL mid-run, resume without recomputing, two torchrun ranks."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from multipath_sim_data import write_test_split
from tiny_multipath_bundle import write_tiny_bundle

from ctharmonize.cli import main
from ctharmonize.inference.cohort_manifest import MANIFEST_FIELDS, read_manifest_rows
from ctharmonize.io import read_volume


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("cohort_bundle"))


@pytest.fixture
def datalist(tmp_path) -> Path:
    """8 scans (2 Siemens subjects: B30f, B50f; 2 GE: STANDARD, BONE): 6 jobs to siemens_b30f."""
    return write_test_split(tmp_path / "data", subjects_per_vendor=2, size=32, slices=2)


@contextlib.contextmanager
def one_thread():
    """Like the subprocesses (OMP_NUM_THREADS=1), so that float results are comparable bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def _cohort(datalist: Path, bundle: Path, out: Path, *extra: str) -> int:
    with one_thread():
        return main(["harmonize-cohort", "--datalist", str(datalist), "--bundle", str(bundle), "--out", str(out),
                     "--trust_bundle", "--noprogress", *extra])


def _rows(path: Path) -> list[dict[str, str]]:
    """Manifest rows without the timing column."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_manifest_rows(path)]


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


def _same_outputs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.nii.gz"))
    assert names == sorted(p.name for p in b.glob("*.nii.gz")) and len(names) == 6
    for name in names:
        np.testing.assert_array_equal(read_volume(a / name).array, read_volume(b / name).array, err_msg=name)


def test_bad_input_mid_run_then_resume_redoes_nothing_finished(datalist, bundle, tmp_path, capsys):
    clean = tmp_path / "clean"
    assert _cohort(datalist, bundle, clean) == 0
    assert "6 scans harmonized, 0 already done, 6 in the cohort (2 entries already" in capsys.readouterr().out
    reference = _rows(clean / "manifest.csv")
    assert [int(r["index"]) for r in reference] == sorted(int(r["index"]) for r in reference)
    assert {r["source_kernel"] for r in reference} == {"siemens_b50f", "ge_standard", "ge_bone"}
    assert {(r["bundle"], r["bundle_version"], r["target_kernel"]) for r in reference} == {
        ("Tiny multipath test bundle", "0.0.1", "siemens_b30f")}
    for row in reference:  # the manifest names each input by path and hash, each output relative to it
        assert len(row["input_sha256"]) == 64 and (clean / row["output"]).is_file()
        assert row["input_sha256"] == hashlib.sha256(Path(row["input"]).read_bytes()).hexdigest()

    # the third scan is unreadable: the run stops there with one line, the first two are done
    bad = Path(reference[2]["input"])
    good_bytes = bad.read_bytes()
    bad.write_bytes(b"this is not a NIfTI file")
    out = tmp_path / "cohort"
    assert _cohort(datalist, bundle, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
    done = [out / r["output"] for r in reference[:2]]
    assert all(p.is_file() for p in done) and not (out / reference[2]["output"]).exists()
    assert _rows(out / "manifest_shards" / "rank0_of_1.csv") == reference[:2]
    assert not (out / "manifest.csv").exists() and not _leftovers(out)
    stamps = [_stamp(p) for p in done]

    bad.write_bytes(good_bytes)
    assert _cohort(datalist, bundle, out) == 0
    assert "4 scans harmonized, 2 already done" in capsys.readouterr().out
    assert [_stamp(p) for p in done] == stamps  # not recomputed, not rewritten
    assert _rows(out / "manifest.csv") == reference
    _same_outputs(out, clean)

    assert _cohort(datalist, bundle, out) == 0
    assert "0 scans harmonized, 6 already done" in capsys.readouterr().out
    assert [_stamp(p) for p in done] == stamps and _rows(out / "manifest.csv") == reference

    # another bundle version is not "done": its outputs are refused unless --overwrite, before any work
    other = write_tiny_bundle(tmp_path / "v2", version="0.0.2")
    shutil.copyfile(bundle / "models" / "model.pt", other / "models" / "model.pt")
    assert _cohort(datalist, other, out) == 2
    assert "another input, bundle version or target" in capsys.readouterr().err
    assert [_stamp(p) for p in done] == stamps


def test_sigkill_mid_run_then_resume(datalist, bundle, tmp_path, capsys):
    clean = tmp_path / "clean"
    assert _cohort(datalist, bundle, clean) == 0
    reference = _rows(clean / "manifest.csv")
    capsys.readouterr()
    # the second scan is a FIFO: the run finishes the first scan, then blocks reading the second, and is killed
    second = Path(reference[1]["input"])
    aside = second.with_name("aside.nii.gz")
    second.rename(aside)
    os.mkfifo(second)
    out = tmp_path / "cohort"
    proc = subprocess.Popen([sys.executable, "-m", "ctharmonize", "harmonize-cohort", "--datalist", str(datalist),
                             "--bundle", str(bundle), "--out", str(out), "--trust_bundle", "--noprogress"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    shard = out / "manifest_shards" / "rank0_of_1.csv"
    deadline = time.time() + 240
    while not read_manifest_rows(shard):
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "the cohort run never finished its first scan"
        time.sleep(0.1)
    time.sleep(0.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = out / reference[0]["output"]
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [first.name]
    assert _rows(shard) == reference[:1] and not (out / "manifest.csv").exists()
    stamp = _stamp(first)
    # what a kill during a write leaves: a hidden temporary next to the output (ctharmonize.io.atomic_path)
    stale = out / f".{reference[1]['output']}.k1ll3d.tmp.nii.gz"
    stale.write_bytes(b"half a file")

    second.unlink()
    aside.rename(second)
    assert _cohort(datalist, bundle, out) == 0
    assert "5 scans harmonized, 1 already done" in capsys.readouterr().out
    assert _stamp(first) == stamp and not stale.exists() and not _leftovers(out)
    assert _rows(out / "manifest.csv") == reference
    _same_outputs(out, clean)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_ranks_write_disjoint_shards_equal_to_one_process(datalist, bundle, tmp_path):
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "ctharmonize", "harmonize-cohort", "--datalist", str(datalist), "--bundle", str(bundle),
           "--out", str(two), "--trust_bundle", "--noprogress"]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "rank 0/2: 3 scans harmonized" in res.stdout and "rank 1/2: 3 scans harmonized" in res.stdout
    one = tmp_path / "one"
    assert _cohort(datalist, bundle, one) == 0
    reference = _rows(one / "manifest.csv")
    shards = [_rows(two / "manifest_shards" / f"rank{r}_of_2.csv") for r in (0, 1)]
    outputs = [{row["output"] for row in shard} for shard in shards]
    assert len(outputs[0]) == len(outputs[1]) == 3 and not outputs[0] & outputs[1]  # disjoint
    assert [row["output"] for row in shards[0]] == [row["output"] for row in reference[0::2]]  # round-robin
    assert sorted(shards[0] + shards[1], key=lambda r: int(r["index"])) == reference
    assert _rows(two / "manifest.csv") == reference  # rank 0 merged them
    with open(two / "manifest.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == MANIFEST_FIELDS
    _same_outputs(two, one)
