"""Bad-input corpus, weights files: a model.pt that is not a torch file, or whose pickle would run code,
gives one line naming the file; the pickle's code never runs (its marker file never appears)."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from corpus_harness import expect_refusal

from ctharmonize.errors import WeightsError
from ctharmonize.io.network_weights import load_network_weights
from ctharmonize.io.weights_file import load_weights_file
from ctharmonize.networks import MultipathGenerator

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "multipath_cyclegan_ct_harmonization"
TINY = {"ngf": 4, "n_blocks": 1, "residual": False, "n_downsampling": 2}


class _RunsShell:
    """Unpickling this calls ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _generator() -> MultipathGenerator:
    torch.manual_seed(0)
    return MultipathGenerator(**TINY).eval()


def _bad_files(folder: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, text the one-line error must hold)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = io.BytesIO()
    torch.save(_generator().state_dict(), good)
    files = {
        "text": (b"this is not a checkpoint\n", "not a PyTorch weights file: it starts with b'this is "),
        "zeros": (b"\0" * 4096, "not a PyTorch weights file: it starts with b'\\x00"),
        "empty": (b"", "the file is empty (0 bytes)"),
        "truncated_zip": (good.getvalue()[: len(good.getvalue()) // 2], "truncated or damaged zip archive"),
    }
    out = {}
    for name, (data, text) in files.items():
        (folder / f"{name}.pt").write_bytes(data)
        out[name] = (folder / f"{name}.pt", text)
    other_zip = folder / "other_zip.pt"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("notes.txt", "hello")
    out["other_zip"] = (other_zip, "a zip archive but not a complete torch.save file")
    refused = "refused to unpickle: its pickle calls posix.system" if os.name == "posix" else "refused to unpickle"
    torch.save({"G": _RunsShell(marker)}, folder / "exploit.pt")  # a torch.save zip whose pickle runs a shell
    out["exploit_torch_save"] = (folder / "exploit.pt", refused)
    with open(folder / "exploit_legacy.pt", "wb") as f:  # a plain pickle, protocol 2 (legacy torch format)
        pickle.dump({"state_dict": _RunsShell(marker)}, f, protocol=2)
    out["exploit_legacy_pickle"] = (folder / "exploit_legacy.pt", refused)
    with open(folder / "exploit_p4.pt", "wb") as f:  # protocol 4: refused before reaching the GLOBAL
        pickle.dump({"state_dict": _RunsShell(marker)}, f, protocol=4)
    out["exploit_pickle4"] = (folder / "exploit_p4.pt", "nothing in it was run")
    return out


CASES = ["text", "zeros", "empty", "truncated_zip", "other_zip", "exploit_torch_save", "exploit_legacy_pickle",
         "exploit_pickle4"]


def test_exploit_files_really_run_code_when_unpickled_unsafely(tmp_path):
    """Guard for the tests below: the crafted files DO run the shell command with an unsafe load."""
    marker = tmp_path / "MARKER"
    files = _bad_files(tmp_path / "w", marker)
    with open(files["exploit_legacy_pickle"][0], "rb") as f:
        pickle.load(f)  # noqa: S301 - deliberately unsafe, on our own test file
    assert marker.exists()
    marker.unlink()
    torch.load(files["exploit_torch_save"][0], weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("case", CASES)
def test_load_network_weights_refuses_bad_files(tmp_path, case):
    marker = tmp_path / "MARKER"
    path, text = _bad_files(tmp_path / "w", marker)[case]
    before = path.read_bytes()
    generator = _generator()
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    with pytest.raises(WeightsError) as info:
        load_network_weights(generator, path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot read weights from the file: ") and "\n" not in message, message
    assert text in message, message
    assert "weights_only` set to `False`" not in message and "Re-running" not in message  # no unsafe advice
    assert not marker.exists()
    assert path.read_bytes() == before
    for k, v in generator.state_dict().items():  # the network is left as it was
        assert torch.equal(v, state[k])


def test_good_weights_still_load(tmp_path):
    """The same loader reads a real torch.save state dict (and a legacy non-zip one) exactly."""
    source = _generator()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p))
    for name, zip_format in (("new.pt", True), ("legacy.pt", False)):
        torch.save(source.state_dict(), tmp_path / name, _use_new_zipfile_serialization=zip_format)
        target = load_network_weights(_generator(), tmp_path / name)
        for k, v in source.state_dict().items():
            assert torch.equal(target.state_dict()[k], v)
    assert set(load_weights_file(tmp_path / "new.pt")) == set(source.state_dict())


def test_weights_warning_does_not_reach_stderr(tmp_path, capfd):
    """A protocol-4 pickle makes torch warn; the refusal must stay the only output line."""
    path, _ = _bad_files(tmp_path / "w", tmp_path / "MARKER")["exploit_pickle4"]
    with pytest.raises(WeightsError):
        load_weights_file(path)
    out, err = capfd.readouterr()
    assert out == "" and err == "", err


@pytest.mark.parametrize("case", ["text", "truncated_zip", "exploit_torch_save", "exploit_legacy_pickle"])
def test_cli_harmonize_refuses_bad_weights(tmp_path, capsys, case):
    """ctharmonize harmonize --bundle <shipped bundle> --weights BAD.pt: one line, exit 2, no output, no marker."""
    assert (BUNDLE / "configs" / "inference.json").is_file()
    work = tmp_path / "work"
    marker = work / "MARKER"
    path, text = _bad_files(work / "weights", marker)[case]
    hu = np.random.default_rng(0).uniform(-1000, 400, size=(32, 32, 4)).astype(np.float32)
    image = work / "scan.nii.gz"
    img = nib.Nifti1Image(hu, np.diag([-0.8, -0.8, 2.5, 1.0]))
    nib.save(img, str(image))
    out = work / "out" / "harm.nii.gz"
    expect_refusal(capsys, ["harmonize", "--bundle", BUNDLE, "--input", image, "--out", out, "--weights", path,
                            "--source", "ge_bone", "--device", "cpu", "--quiet"],
                   str(path), text, watch=work, absent=[out, out.parent, marker])
