import json

import nibabel as nib
import numpy as np
import pytest

from ctharmonize.cli import main
from ctharmonize.domains import default_registry
from ctharmonize.domains.commands import domains


def test_list_domains(capsys):
    domains()
    out = capsys.readouterr().out
    for name in default_registry().names():
        assert name in out
    assert "STANDARD" in out and "sharp" in out


def _nifti_with_sidecar(tmp_path, manufacturer, kernel):
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.full((4, 4, 3), -1000, np.int16), np.eye(4)), path)
    (tmp_path / "scan.json").write_text(json.dumps({"Manufacturer": manufacturer, "ConvolutionKernel": kernel}))
    return path


def test_resolve_volume_domain(tmp_path, capsys):
    path = _nifti_with_sidecar(tmp_path, "GE MEDICAL SYSTEMS", "BONE")
    domains(str(path))
    assert "ge_bone" in capsys.readouterr().out


def test_unknown_kernel_via_cli_is_one_line(tmp_path, capsys):
    path = _nifti_with_sidecar(tmp_path, "ACME", "XYZ")
    assert main(["domains", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "unknown kernel 'XYZ'" in err


@pytest.mark.parametrize("content", ["{", json.dumps({"vendors": {}, "domains": {}})])
def test_bad_registry_via_cli(tmp_path, capsys, content):
    reg = tmp_path / "reg.json"
    reg.write_text(content)
    assert main(["domains", "--registry", str(reg)]) == 2
    assert str(reg) in capsys.readouterr().err
