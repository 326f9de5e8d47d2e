"""Inference side of the multipath cycleGAN bundle: HU wrapper, weights, harmonize CLI (NIfTI and DICOM),
MONAI bundle run / ckpt_export / verify_net_in_out, evaluation workflow, metadata.

Weights are random tiny generators written to tmp files; nothing depends on the committed models/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from monai.bundle import ConfigParser

from ctharmonize.bundle import verify_bundle_metadata
from ctharmonize.cli import main
from ctharmonize.errors import UnknownDomainError, WeightsError
from ctharmonize.inference import (
    HUPath,
    HUWrapper,
    SliceHarmonizer,
    ensure_sample_volume,
    harmonize_volume,
    load_bundle_harmonizer,
    load_network_weights,
    resolve_source_domain,
)
from ctharmonize.io import read_volume, write_volume
from ctharmonize.io.volume import HeaderSummary, Volume
from ctharmonize.networks import MultipathGenerator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multipath_sim_data import TINY, simulated_scans, tiny_generator, write_test_split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "multipath_cyclegan_ct_harmonization"
CONFIGS = BUNDLE / "configs"


# the shipped inference.json's HU window (the defaults of HUWrapper / SliceHarmonizer are [-1024, 3072])
SHIPPED_WINDOW = (json.loads((CONFIGS / "inference.json").read_text())["hu_min"],
                  json.loads((CONFIGS / "inference.json").read_text())["hu_max"])


def expected_hu(generator, source: str, target: str, hu: np.ndarray,
                window: tuple[float, float] = (-1024.0, 3072.0)) -> np.ndarray:
    """Independent reference: per slice, clip+scale by hand, run the path, rescale by hand (float64 maths)."""
    lo, hi = window
    half = (hi - lo) / 2.0
    path = generator.path(source, target).eval()
    out = np.empty(hu.shape, np.float64)
    for k in range(hu.shape[0]):
        x = (np.clip(hu[k].astype(np.float64), lo, hi) - lo) / half - 1.0
        with torch.no_grad():
            y = path(torch.from_numpy(x).float()[None, None]).double().numpy()[0, 0]
        out[k] = (np.clip(y, -1, 1) + 1.0) * half + lo
    return out


@pytest.fixture(scope="module")
def gen():
    return tiny_generator(seed=0)


@pytest.fixture(scope="module")
def ge_scans():
    return simulated_scans(seed=7, vendor="ge", size=32, slices=2)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory, gen):
    """A copy of the shipped bundle configs with ngf/n_blocks shrunk and random weights as models/model.pt
    (nested under "G", as a training checkpoint)."""
    root = tmp_path_factory.mktemp("bundle") / "multipath_cyclegan_ct_harmonization"
    (root / "configs").mkdir(parents=True)
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    meta.pop("trained_pixel_spacing_mm")  # random weights: no spacing check (tests/inference covers it)
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    config = json.loads((CONFIGS / "inference.json").read_text())
    config.update(TINY)
    (root / "configs" / "inference.json").write_text(json.dumps(config))
    (root / "models").mkdir()
    torch.save({"G": gen.state_dict(), "epoch": 3}, root / "models" / "model.pt")
    return root


# ----------------------------------------------------------------------------- modules
def test_hu_wrapper_is_hu_in_hu_out_and_scriptable(gen):
    wrapper = HUWrapper(gen.path("ge_bone", "siemens_b30f")).eval()
    hu = np.random.default_rng(0).uniform(-2000, 4000, size=(3, 16, 20)).astype(np.float32)
    with torch.no_grad():
        got = wrapper(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
        scripted = torch.jit.script(wrapper)(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    want = expected_hu(gen, "ge_bone", "siemens_b30f", hu)
    np.testing.assert_allclose(got, want, atol=0.02)
    np.testing.assert_allclose(scripted, want, atol=0.02)
    assert got.min() >= -1024 and got.max() <= 3072


@pytest.mark.parametrize("wrap", ["plain", "G", "network/G", "module"])
def test_hu_path_loads_the_translator_state(gen, wrap):
    state = gen.state_dict()
    ckpt = {"plain": state, "G": {"G": state, "D_ge_bone": {}}, "network/G": {"network/G": state, "engine": {}},
            "module": {f"module.{k}": v for k, v in state.items()}}[wrap]
    fresh = tiny_generator(seed=123)  # different weights until loaded
    exported = HUPath(fresh, "siemens_b50f", "siemens_b30f", checkpoint_networks={"G": ""}).eval()
    exported.load_state_dict(ckpt)
    hu = np.random.default_rng(1).uniform(-1024, 1500, size=(2, 12, 12)).astype(np.float32)
    with torch.no_grad():
        got = exported(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, expected_hu(gen, "siemens_b50f", "siemens_b30f", hu), atol=0.02)
    other = expected_hu(gen, "ge_bone", "siemens_b30f", hu)
    assert np.abs(got - other).max() > 1.0  # the requested path, not another one


def test_load_network_weights_one_line_errors(tmp_path, gen):
    missing = tmp_path / "nope.pt"
    with pytest.raises(WeightsError) as err:
        load_network_weights(tiny_generator(), missing)
    assert str(err.value).startswith(str(missing) + ":") and "\n" not in str(err.value)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights"):
        load_network_weights(tiny_generator(), garbage)
    wide = tmp_path / "wide.pt"
    torch.save(tiny_generator(ngf=8).state_dict(), wide)
    with pytest.raises(WeightsError, match="another shape"):
        load_network_weights(tiny_generator(), wide)
    two = tmp_path / "two.pt"
    torch.save(tiny_generator(domains=["ge_bone", "siemens_b30f"]).state_dict(), two)
    with pytest.raises(WeightsError, match=r"missing keys .*in decoders.ge_standard, decoders.siemens_b50f"):
        load_network_weights(tiny_generator(), two)
    nogen = tmp_path / "nogen.pt"
    torch.save({"optimizer": {"lr": 1.0}}, nogen)
    with pytest.raises(WeightsError, match="holds no network weights"):
        load_network_weights(tiny_generator(), nogen)
    good = tmp_path / "good.pt"
    torch.save({"network/G": gen.state_dict(), "network/D_ge_bone": {"w": torch.zeros(1)}}, good)
    with pytest.raises(WeightsError, match=r"several networks \(G, D_ge_bone\).*checkpoint_networks"):
        load_network_weights(tiny_generator(), good)  # which network is the model: the config must say
    with pytest.raises(WeightsError, match="holds no network 'G_AB'"):
        load_network_weights(tiny_generator(), good, {"G_AB": "G_AB"})
    loaded = load_network_weights(tiny_generator(seed=5), good, {"G": ""})
    for k, v in gen.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_harmonize_volume_restores_fov_pads_and_keeps_geometry(gen):
    rng = np.random.default_rng(2)
    hu = rng.uniform(-1100, 900, size=(3, 18, 22)).astype(np.float32)  # not multiples of 4: padded
    fov = np.zeros(hu.shape, bool)
    fov[:, 2:16, 3:19] = True
    vol = Volume(hu.copy(), (0.7, 0.7, 2.5), (-10.0, 5.0, 30.0), np.eye(3), HeaderSummary(manufacturer="GE"), fov)
    harmonizer = SliceHarmonizer(gen, batch_size=2, device="cpu")
    out = harmonize_volume(vol, harmonizer, "ge_bone", "siemens_b30f", model_name="m 1")
    np.testing.assert_array_equal(vol.array, hu)  # input untouched
    np.testing.assert_array_equal(out.array[~fov], hu[~fov])
    # reference: reflect-pad bottom/right to a multiple of 4 with numpy, run, crop
    padded = np.pad(hu, ((0, 0), (0, 2), (0, 2)), mode="reflect")
    want = expected_hu(gen, "ge_bone", "siemens_b30f", padded)[:, :18, :22]
    np.testing.assert_allclose(out.array[fov], want[fov], atol=0.02)
    assert out.spacing == vol.spacing and out.origin == vol.origin and out.array.dtype == np.float32
    assert out.header.extra["harmonized_to"] == "siemens_b30f" and out.header.extra["harmonization_model"] == "m 1"


@pytest.mark.parametrize("residual", [True, False])
def test_slice_harmonizer_pads_to_the_translators_own_multiple(residual):
    """n_downsampling=3: slices of 36 px are padded to 40 (a multiple of 8), not to 36 (multiple of 4)."""
    torch.manual_seed(4)
    deep = MultipathGenerator(domains=["ge_bone", "siemens_b30f"], ngf=4, n_blocks=1, residual=residual,
                              n_downsampling=3).eval()
    if residual:  # the zero-initialised last conv would make the residual path the identity
        for p in deep.decoders.parameters():
            torch.nn.init.normal_(p, std=0.1)
    assert deep.spatial_multiple == 8 and deep.path("ge_bone", "siemens_b30f").spatial_multiple == 8
    hu = np.random.default_rng(5).uniform(-1000, 800, size=(2, 36, 36)).astype(np.float32)
    got = SliceHarmonizer(deep, batch_size=2, device="cpu")(hu, "ge_bone", "siemens_b30f")
    padded = np.pad(hu, ((0, 0), (0, 4), (0, 4)), mode="reflect")
    want = expected_hu(deep, "ge_bone", "siemens_b30f", padded)[:, :36, :36]
    np.testing.assert_allclose(got, want, atol=0.02)
    assert np.abs(got - hu).max() > 1.0


def test_resolve_source_domain(ge_scans, gen):
    bone = ge_scans["ge_bone"]
    assert resolve_source_domain(bone) == "ge_bone"
    assert resolve_source_domain(bone, "ge_standard", gen.domains) == "ge_standard"
    with pytest.raises(UnknownDomainError) as err:
        resolve_source_domain(bone, "agfa_x", path="scan.nii.gz")
    msg = str(err.value)
    assert msg.startswith("scan.nii.gz: unknown domain 'agfa_x'") and "siemens_b30f" in msg and "\n" not in msg
    with pytest.raises(UnknownDomainError, match="not one this model was trained on.*ge_standard"):
        resolve_source_domain(bone, "philips_b", gen.domains)
    unknown = Volume(bone.array, header=HeaderSummary(manufacturer="GE MEDICAL SYSTEMS", convolution_kernel=("CHEST",)))
    with pytest.raises(UnknownDomainError, match="unknown kernel 'CHEST'"):
        resolve_source_domain(unknown)


def test_ensure_sample_volume_creates_once(tmp_path):
    path = tmp_path / "sample" / "bone.nii.gz"
    assert ensure_sample_volume(path, kernel="ge_bone", size=32, slices=2, seed=1) == str(path)
    vol = read_volume(path)
    assert vol.shape == (2, 32, 32) and resolve_source_domain(vol) == "ge_bone"
    stamp = path.stat().st_mtime_ns
    ensure_sample_volume(path, kernel="ge_bone", size=32, slices=2, seed=1)
    assert path.stat().st_mtime_ns == stamp


# ----------------------------------------------------------------------------- CLI
def test_cli_dicom_in_gives_valid_derived_dicom_out(tmp_path, tiny_bundle, gen, ge_scans, capsys):
    dicom_in = write_volume(ge_scans["ge_bone"], tmp_path / "bone_dicom")
    src_files = sorted(dicom_in.iterdir())
    src = [pydicom.dcmread(f) for f in src_files]
    assert src[0].Manufacturer == "GE MEDICAL SYSTEMS" and src[0].ConvolutionKernel == "BONE"
    before = {f.name: f.read_bytes() for f in src_files}
    out = tmp_path / "harmonized_dicom"
    assert main(["harmonize", "--bundle", str(tiny_bundle), "--input", str(dicom_in), "--out", str(out),
                 "--device", "cpu", "--quiet", "--trust_bundle"]) == 0
    assert "ge_bone -> siemens_b30f" in capsys.readouterr().out
    assert {f.name: f.read_bytes() for f in sorted(dicom_in.iterdir())} == before  # input unchanged

    files = sorted(out.iterdir())
    assert len(files) == len(src_files)
    for f in files:
        report = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True, check=False)
        errors = [ln for ln in (report.stdout + report.stderr).splitlines() if ln.startswith("Error")]
        assert not errors, f"{f.name}: {errors}"
    ds = [pydicom.dcmread(f) for f in files]
    assert len({d.SeriesInstanceUID for d in ds}) == 1 and ds[0].SeriesInstanceUID != src[0].SeriesInstanceUID
    assert {d.StudyInstanceUID for d in ds} == {src[0].StudyInstanceUID}
    assert {d.FrameOfReferenceUID for d in ds} == {src[0].FrameOfReferenceUID}
    sops = {d.SOPInstanceUID for d in ds}
    assert len(sops) == len(ds) and not sops & {d.SOPInstanceUID for d in src}
    assert "DERIVED" in ds[0].ImageType and ds[0].ConvolutionKernel == "siemens_b30f"
    assert "siemens_b30f" in ds[0].DerivationDescription and "Multipath cycleGAN" in ds[0].DerivationDescription

    vin, vout = read_volume(dicom_in), read_volume(out)
    assert vout.shape == vin.shape and vout.spacing == pytest.approx(vin.spacing)
    np.testing.assert_allclose(vout.origin, vin.origin, atol=1e-3)
    np.testing.assert_allclose(vout.direction, vin.direction, atol=1e-6)
    np.testing.assert_array_equal(vout.fov_mask, vin.fov_mask)
    want = expected_hu(gen, "ge_bone", "siemens_b30f", vin.array, SHIPPED_WINDOW)
    inside = vin.fov_mask
    assert np.abs(vout.array[inside] - want[inside]).max() <= 0.6  # int16 rounding in DICOM
    assert np.abs(vout.array[inside] - vin.array[inside]).max() > 10  # it did change the image

    # again without --overwrite: refused in one line
    assert main(["harmonize", "--bundle", str(tiny_bundle), "--input", str(dicom_in), "--out", str(out),
                 "--trust_bundle"]) == 2
    assert "exists" in capsys.readouterr().err


def test_cli_unknown_source_and_missing_weights(tmp_path, tiny_bundle, ge_scans, capsys):
    nifti = write_volume(ge_scans["ge_bone"], tmp_path / "bone.nii.gz")  # no sidecar: header unknown
    args = ["harmonize", "--bundle", str(tiny_bundle), "--input", str(nifti), "--out", str(tmp_path / "o.nii.gz"),
            "--trust_bundle"]
    assert main([*args, "--source", "agfa_x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown domain 'agfa_x'" in err and "ge_bone" in err
    assert main(args) == 2  # no header, no --source
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "known domains" in err
    assert not (tmp_path / "o.nii.gz").exists()

    no_weights = tmp_path / "bundle_without_weights"
    shutil.copytree(tiny_bundle / "configs", no_weights / "configs")
    assert main(["harmonize", "--bundle", str(no_weights), "--input", str(nifti), "--out",
                 str(tmp_path / "o.nii.gz"), "--source", "ge_bone", "--trust_bundle"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(no_weights / "models" / "model.pt") in err and "not found" in err


def test_load_bundle_harmonizer_reads_config(tiny_bundle, gen):
    harmonizer = load_bundle_harmonizer(tiny_bundle, device="cpu", trust=True)
    loaded = harmonizer.translator
    assert harmonizer.domains == gen.domains and loaded.ngf == TINY["ngf"]
    for k, v in gen.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


# ----------------------------------------------------------------------------- MONAI bundle
def test_monai_bundle_run_export_and_verify(tmp_path, gen, ge_scans):
    """``python -m monai.bundle run | ckpt_export | verify_net_in_out`` on the shipped configs (three
    subprocesses run concurrently), with tiny-architecture overrides and random weights."""
    plain, nested = tmp_path / "plain.pt", tmp_path / "nested.pt"
    torch.save(gen.state_dict(), plain)
    torch.save({"G": gen.state_dict(), "D": {}}, nested)
    nifti_in = write_volume(ge_scans["ge_bone"], tmp_path / "in.nii.gz", sidecar=True)
    out_nifti, ts = tmp_path / "out.nii.gz", tmp_path / "model.ts"
    common = ["--config_file", str(CONFIGS / "inference.json"), "--ngf", "4", "--n_blocks", "1", "--residual", "False",
              "--n_downsampling", "2"]
    meta = ["--meta_file", str(CONFIGS / "metadata.json")]
    # random weights on 32² scans (11.9 mm pixels): the metadata without its trained range, so no resampling
    untrained = json.loads((CONFIGS / "metadata.json").read_text())
    untrained.pop("trained_pixel_spacing_mm")
    (tmp_path / "metadata.json").write_text(json.dumps(untrained))
    commands = {
        "run": ["run", *common, "--meta_file", str(tmp_path / "metadata.json"), "--ckpt_path", str(plain),
                "--input_path", str(nifti_in), "--output_path", str(out_nifti), "--device", "cpu"],
        "export": ["ckpt_export", "network_hu", *common, *meta, "--filepath", str(ts), "--ckpt_file", str(nested),
                   "--key_in_ckpt", "G"],
        "verify": ["verify_net_in_out", "network_hu", *common, *meta, "--n", "16", "--device", "cpu"],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {k: subprocess.Popen([sys.executable, "-m", "monai.bundle", *c], cwd=REPO, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for k, c in commands.items()}
    logs = {k: p.communicate(timeout=300)[0] for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, f"{k}:\n{logs[k][-3000:]}"
    assert "verified with no error" in logs["verify"]

    vin, vout = read_volume(nifti_in), read_volume(out_nifti)
    want = expected_hu(gen, "ge_bone", "siemens_b30f", vin.array, SHIPPED_WINDOW)
    np.testing.assert_allclose(vout.array[vin.fov_mask], want[vin.fov_mask], atol=0.02)
    np.testing.assert_allclose(vout.affine_ras(), vin.affine_ras(), atol=1e-4)

    extra = {"metadata.json": "", "inference.json": ""}
    module = torch.jit.load(str(ts), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["network_data_format"]["inputs"]["image"]["value_range"] == list(SHIPPED_WINDOW)
    assert json.loads(extra["inference.json"])["target_kernel"] == "siemens_b30f"
    hu = np.random.default_rng(3).uniform(-1024, 1200, size=(2, 24, 24)).astype(np.float32)
    with torch.no_grad():
        got = module(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, expected_hu(gen, "ge_bone", "siemens_b30f", hu, SHIPPED_WINDOW), atol=0.02)


def test_evaluate_workflow_end_to_end(tmp_path, gen):
    """inference.json + evaluate.json (in process): harmonize a tiny simulated test split, write both reports."""
    from monai.bundle import run

    datalist = write_test_split(tmp_path / "data", subjects_per_vendor=2, size=32, slices=2)
    weights = tmp_path / "model.pt"
    torch.save(gen.state_dict(), weights)
    eval_dir = tmp_path / "eval"
    run(config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "evaluate.json")], meta_file=str(CONFIGS / "metadata.json"),
        logging_file=False, ngf=4, n_blocks=1, residual=False, n_downsampling=2, ckpt_path=str(weights), datalist=str(datalist),
        eval_dir=str(eval_dir), n_resamples=20, progress=False, device="cpu")
    harmonized = sorted(p.name for p in (eval_dir / "harmonized").iterdir())
    # Table 1 run: B50f -> B30f and BONE -> STANDARD; Table 2 run: everything not B30f -> B30f
    assert sum(n.endswith("ge_bone_to_ge_standard.nii.gz") for n in harmonized) == 2
    assert sum(n.endswith("ge_standard_to_siemens_b30f.nii.gz") for n in harmonized) == 2
    assert sum(n.endswith("siemens_b50f_to_siemens_b30f.nii.gz") for n in harmonized) == 2
    paired = json.loads((eval_dir / "report_paired" / "summary.json").read_text())
    assert "ge_bone vs ge_standard" in (eval_dir / "report_paired" / "report.md").read_text()
    assert paired["settings"]["split"] is None
    rows = (eval_dir / "report_to_siemens_b30f" / "per_scan.csv").read_text().splitlines()
    assert len(rows) == 1 + 8  # header + 8 scans
    assert (eval_dir / "report_to_siemens_b30f" / "dice_muscle_sat.png").is_file()


def test_bundle_metadata(tmp_path):
    verify_bundle_metadata(BUNDLE)
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    fmt = meta["network_data_format"]
    assert fmt["inputs"]["image"]["value_range"] == list(SHIPPED_WINDOW) == fmt["outputs"]["pred"]["value_range"]
    assert meta["hu_window"] == list(SHIPPED_WINDOW) == [-2048.0, 3072.0]
    train = ConfigParser.load_config_files([str(CONFIGS / "train.json"), str(CONFIGS / "train_clinical_cpu.json")])
    assert [train["hu_min"], train["hu_max"]] == list(SHIPPED_WINDOW)  # the shipped weights' training window
    assert meta["default_target_domain"] == "siemens_b30f" and meta["version"] in meta["changelog"]
    assert (BUNDLE / "LICENSE").read_text() == (REPO / "LICENSE").read_text()
