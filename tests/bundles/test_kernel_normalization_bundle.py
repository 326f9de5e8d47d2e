"""The kernel-normalization baseline bundle: metadata, shipped statistics, train.json (fit, no overwrite of
models/), inference.json through ``python -m monai.bundle`` (run, ckpt_export, verify_net_in_out), the
``harmonize`` / ``evaluate`` / ``select-checkpoint`` commands, and evaluate.json.

Statistics for the tests are fitted on tiny simulated scans (72 x 72 x 2) in a tmp folder; expected
outputs are computed independently with scipy.ndimage from the fitted ``band_energy``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from ctharmonize.bundle import verify_bundle_metadata
from ctharmonize.cli import main
from ctharmonize.data import datalist_entries
from ctharmonize.engines import fit_band_energies
from ctharmonize.errors import ConfigError, OutputExistsError, PixelSpacingError
from ctharmonize.inference import load_bundle_harmonizer, read_bundle_config
from ctharmonize.io import read_volume, write_volume
from ctharmonize.io.volume import Volume
from ctharmonize.networks import BandEnergyNormalizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multipath_sim_data import write_test_split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "kernel_normalization_ct_harmonization"
CONFIGS = BUNDLE / "configs"
HU_MIN, HU_MAX = -2048.0, 3072.0


def inference_config() -> dict:
    return json.loads((CONFIGS / "inference.json").read_text())


def expected_hu(model_pt: Path, source: str, target: str, hu: np.ndarray, fov: np.ndarray | None = None) -> np.ndarray:
    """Independent reference from the fitted energies: scale HU by hand, DoG bands by scipy (mirror =
    torch reflect), gains E_t / E_s, sum, rescale, clip, keep outside-FOV voxels."""
    config = inference_config()
    state = torch.load(model_pt, weights_only=True)
    energy = state["band_energy"].numpy()
    domains = config["domains"]
    gains = energy[domains.index(target), :-1] / energy[domains.index(source), :-1]
    half = (HU_MAX - HU_MIN) / 2.0
    x = (np.clip(hu.astype(np.float64), HU_MIN, HU_MAX) - HU_MIN) / half - 1.0
    lows = [x] + [ndimage.gaussian_filter(x, (0, s, s), mode="mirror", truncate=4.0) for s in config["sigmas"]]
    y = x + sum((g - 1.0) * (lows[k] - lows[k + 1]) for k, g in enumerate(gains))
    out = (np.clip(y, -1.0, 1.0) + 1.0) * half + HU_MIN
    if fov is not None:
        out[~fov] = hu[~fov]
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """Datalist of a tiny simulated 'test' split: 2 subjects per vendor, 72 x 72 x 2, with lung masks."""
    return write_test_split(tmp_path_factory.mktemp("sim"), subjects_per_vendor=2, size=72, slices=2)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory, sim) -> Path:
    """A copy of the shipped bundle (configs, LICENSE) with statistics fitted on ``sim`` as models/model.pt, its
    metadata stating the spacings they were fitted at as trained_pixel_spacing_mm."""
    root = tmp_path_factory.mktemp("bundle") / "kernel_normalization_ct_harmonization"
    shutil.copytree(CONFIGS, root / "configs")
    shutil.copy(BUNDLE / "LICENSE", root)
    config = inference_config()
    net = BandEnergyNormalizer(config["domains"], config["sigmas"])
    fit_band_energies(net, sim, "test", hu_min=HU_MIN, hu_max=HU_MAX, out_path=root / "models" / "model.pt",
                      progress=False)
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    meta["trained_pixel_spacing_mm"] = [float(net.pixel_spacing.min()), float(net.pixel_spacing.max())]
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    return root


def root_cause(err: BaseException) -> BaseException:
    """The innermost ``__cause__`` (MONAI wraps errors raised while a config item is built)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def bone_scan(sim: Path) -> dict:
    entries, _ = datalist_entries(sim, "test")
    return next(e for e in entries if e["kernel"] == "ge_bone")


# ----------------------------------------------------------------------------- metadata and shipped statistics
def test_metadata_and_configs_agree():
    verify_bundle_metadata(BUNDLE)
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    config = inference_config()
    train = json.loads((CONFIGS / "train.json").read_text())
    fmt = meta["network_data_format"]
    assert fmt["inputs"]["image"]["value_range"] == [config["hu_min"], config["hu_max"]] == [HU_MIN, HU_MAX]
    assert fmt["outputs"]["pred"]["value_range"] == meta["hu_window"] == [HU_MIN, HU_MAX]
    assert (train["hu_min"], train["hu_max"]) == (HU_MIN, HU_MAX)  # the fit measures in inference's window
    assert train["sigmas"] == config["sigmas"] and train["domains"] == config["domains"]
    assert meta["default_target_domain"] == config["target_kernel"] == "siemens_b30f"
    assert meta["source_domains"] == meta["target_domains"] == config["domains"]
    assert meta["version"] in meta["changelog"]
    assert (BUNDLE / "LICENSE").read_text() == (REPO / "LICENSE").read_text()
    assert not (CONFIGS / "multi_gpu_train.json").exists()  # a statistics fit has nothing to distribute


def test_shipped_statistics_load_through_the_bundle_harmonizer():
    harmonizer = load_bundle_harmonizer(BUNDLE, device="cpu")  # shipped: trusted by location
    net = harmonizer.translator
    assert isinstance(net, BandEnergyNormalizer) and harmonizer.domains == tuple(inference_config()["domains"])
    assert (harmonizer.hu_min, harmonizer.hu_max) == (HU_MIN, HU_MAX)
    assert bool((net.band_energy > 0).all()) and net.voxel_count.min() > 1e5
    # fitted on configs/train_clinical.json's data: the clinical preset's training split (seed 0, 10 subjects
    # per vendor, 512 x 512), each subject at its own FOV: the stored spacing is the mean over the 6 training
    # subjects, and the metadata's trained range spans them (recomputed here from the simulator's draws)
    from ctharmonize.simulation.dataset import assign_splits, draw_acquisition
    from ctharmonize.simulation.vendors import get_vendor

    spans = []
    for vi, (vendor, domain) in enumerate((("siemens", "siemens_b50f"), ("ge", "ge_bone"))):
        train = [i for i, split in enumerate(assign_splits(10)) if split == "train"]
        fovs = [draw_acquisition(get_vendor(vendor), np.random.default_rng([0, vi, i, 1])).fov_mm for i in train]
        spacing = float(np.mean(fovs)) / 512
        assert net.fitted_spacing(domain) == pytest.approx((spacing, spacing), rel=1e-5)
        spans += [min(fovs) / 512, max(fovs) / 512]
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert meta["trained_pixel_spacing_mm"] == pytest.approx([min(spans), max(spans)], abs=1e-4)
    gains = net.gains("siemens_b50f", "siemens_b30f").numpy()
    # sharp -> soft at 0.6-0.8 mm pixels: the three finest bands (sigma <= 2 px ~ 1.4 mm) down, the gain rising
    # towards 1 with the band's scale, the coarsest band (sigma 8 px) within 5 % of 1
    assert np.all(gains[:3] < 0.8) and np.all(np.diff(gains) > 0) and abs(gains[-1] - 1) < 0.05


# ----------------------------------------------------------------------------- train.json
def test_train_json_fits_into_the_output_folder_and_never_overwrites(tmp_path, sim):
    from monai.bundle import run

    root = tmp_path / "bundle"
    shutil.copytree(CONFIGS, root / "configs")
    (root / "models").mkdir()
    (root / "models" / "model.pt").write_bytes(b"shipped weights")
    args = {"config_file": str(root / "configs" / "train.json"), "bundle_root": str(root), "logging_file": False,
            "dataset_dir": str(sim.parent), "split": "test", "fit#progress": False}
    run(**args)
    assert (root / "models" / "model.pt").read_bytes() == b"shipped weights"
    out = root / "train_output" / "model.pt"
    summary = json.loads((root / "train_output" / "band_energy_fit.json").read_text())
    assert summary["statistic"] == "rms" and summary["region"] == "soft_tissue" and summary["split"] == "test"
    net = BandEnergyNormalizer(inference_config()["domains"], inference_config()["sigmas"])
    net.load_state_dict(torch.load(out, weights_only=True))
    hu_scale = (HU_MAX - HU_MIN) / 2
    np.testing.assert_allclose(net.band_energy.numpy() * hu_scale,
                               [summary["domains"][d]["band_energy_hu"] for d in net.domains], rtol=1e-4)
    stamp = hashlib.sha256(out.read_bytes()).hexdigest()
    with pytest.raises(RuntimeError) as err:  # MONAI wraps the one-line error of the fit
        run(**args)
    assert isinstance(root_cause(err.value), OutputExistsError) and "already exists" in str(root_cause(err.value))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == stamp


# ----------------------------------------------------------------------------- MONAI bundle commands
def test_monai_bundle_run_export_and_verify(tmp_path, tiny_bundle, sim):
    """``python -m monai.bundle run | ckpt_export | verify_net_in_out`` on the bundle's own configs
    (subprocesses, concurrently), with the tiny fitted statistics."""
    entry = bone_scan(sim)
    out_nifti, ts = tmp_path / "out.nii.gz", tmp_path / "model.ts"
    config = ["--config_file", str(tiny_bundle / "configs" / "inference.json")]
    meta = ["--meta_file", str(tiny_bundle / "configs" / "metadata.json")]
    weights = tiny_bundle / "models" / "model.pt"
    commands = {
        "run": ["run", *config, "--input_path", entry["image"], "--output_path", str(out_nifti), "--device", "cpu"],
        "export": ["ckpt_export", "network_hu", *config, *meta, "--filepath", str(ts), "--ckpt_file", str(weights),
                   "--device", "cpu"],
        "verify": ["verify_net_in_out", "network_hu", *config, *meta, "--n", "24", "--device", "cpu"],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {k: subprocess.Popen([sys.executable, "-m", "monai.bundle", *c], cwd=tmp_path, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for k, c in commands.items()}
    logs = {k: p.communicate(timeout=300)[0] for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, f"{k}:\n{logs[k][-3000:]}"
    assert "harmonized ge_bone -> siemens_b30f" in logs["run"] and "verified with no error" in logs["verify"]

    vin, vout = read_volume(entry["image"]), read_volume(out_nifti)
    want = expected_hu(weights, "ge_bone", "siemens_b30f", vin.array, vin.fov_mask)
    np.testing.assert_allclose(vout.array, want, atol=0.02)
    assert np.abs(vout.array - vin.array).max() > 20  # it did change the image
    np.testing.assert_allclose(vout.affine_ras(), vin.affine_ras(), atol=1e-4)
    assert vout.header.extra.get("harmonized_to", "siemens_b30f") == "siemens_b30f"

    extra = {"metadata.json": "", "inference.json": ""}
    module = torch.jit.load(str(ts), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["hu_window"] == [HU_MIN, HU_MAX]
    hu = vin.array[:, 4:60, 8:52]  # any size: the spatial multiple is 1
    with torch.no_grad():
        got = module(torch.from_numpy(np.ascontiguousarray(hu))[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, expected_hu(weights, "ge_bone", "siemens_b30f", hu), atol=0.02)


def test_demo_resamples_or_refuses_another_pixel_spacing(tmp_path, tiny_bundle, sim, caplog):
    """The demo applies the general spacing policy (trained_pixel_spacing_mm; it replaced the demo's own
    spacing_check): resample by default, one-line PixelSpacingError with spacing_policy refuse."""
    volume = read_volume(bone_scan(sim)["image"])
    sx, sy, sz = volume.spacing
    coarse = write_volume(Volume(volume.array, (1.5 * sx, 1.5 * sy, sz), volume.origin, volume.direction,
                                 volume.header, volume.fov_mask), tmp_path / "coarse.nii.gz")
    parser = read_bundle_config(tiny_bundle, trust=True, input_path=str(coarse), source_kernel="ge_bone",
                                output_path=str(tmp_path / "o.nii.gz"), device="cpu", spacing_policy="refuse")
    with pytest.raises(RuntimeError) as err:
        parser.get_parsed_content("writer")
    cause = root_cause(err.value)
    assert isinstance(cause, PixelSpacingError) and len(str(cause).splitlines()) == 1
    lo, hi = json.loads((tiny_bundle / "configs" / "metadata.json").read_text())["trained_pixel_spacing_mm"]
    assert hi < 1.5 * min(sx, sy)
    assert "coarse.nii.gz: input pixel spacing" in str(cause) and f"trained range {lo:.4g}-{hi:.4g} mm" in str(cause)
    assert not (tmp_path / "o.nii.gz").exists()
    parser = read_bundle_config(tiny_bundle, trust=True, input_path=str(coarse), source_kernel="ge_bone",
                                output_path=str(tmp_path / "o.nii.gz"), device="cpu")
    with caplog.at_level("WARNING", logger="ctharmonize.inference.spacing_policy"):
        parser.get_parsed_content("writer")  # default: resampled in-plane to the fitted spacing and back
    assert (tmp_path / "o.nii.gz").is_file() and read_volume(tmp_path / "o.nii.gz").shape == volume.shape
    assert f"resampled in-plane to {hi:.4g} x {hi:.4g} mm and back" in caplog.text


def test_cli_harmonize_and_unknown_bundle_errors(tmp_path, tiny_bundle, sim, capsys):
    entry = bone_scan(sim)
    out = tmp_path / "harmonized.nii.gz"
    assert main(["harmonize", "--bundle", str(tiny_bundle), "--input", entry["image"], "--out", str(out),
                 "--device", "cpu", "--quiet", "--trust_bundle"]) == 0
    assert "ge_bone -> siemens_b30f" in capsys.readouterr().out
    vin, vout = read_volume(entry["image"]), read_volume(out)
    np.testing.assert_allclose(vout.array, expected_hu(tiny_bundle / "models" / "model.pt", "ge_bone",
                                                       "siemens_b30f", vin.array, vin.fov_mask), atol=0.02)
    # cross-vendor, unpaired path chosen on the command line
    out2 = tmp_path / "to_standard.nii.gz"
    assert main(["harmonize", "--bundle", str(tiny_bundle), "--input", entry["image"], "--out", str(out2),
                 "--target", "ge_standard", "--quiet", "--trust_bundle"]) == 0
    assert not np.allclose(read_volume(out2).array, vout.array)
    # export: one path as TorchScript, HU in / HU out
    ts = tmp_path / "path.ts"
    assert main(["export", "--bundle", str(tiny_bundle), "--out", str(ts), "--source", "ge_bone", "--trust_bundle"]) == 0
    with torch.no_grad():
        got = torch.jit.load(str(ts))(torch.from_numpy(vin.array)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, expected_hu(tiny_bundle / "models" / "model.pt", "ge_bone", "siemens_b30f",
                                                vin.array), atol=0.02)
    # the shipped bundle runs without --trust_bundle (trusted by location)
    out3 = tmp_path / "shipped.nii.gz"
    assert main(["harmonize", "--bundle", str(BUNDLE), "--input", entry["image"], "--out", str(out3), "--quiet"]) == 0
    assert out3.is_file()
    # weights of another band design: one line naming the file
    other = tmp_path / "other.pt"
    torch.save(BandEnergyNormalizer(inference_config()["domains"], [1.0, 2.0]).state_dict(), other)
    capsys.readouterr()
    assert main(["harmonize", "--bundle", str(tiny_bundle), "--input", entry["image"], "--out",
                 str(tmp_path / "x.nii.gz"), "--weights", str(other), "--trust_bundle"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another shape" in err and "band_energy" in err
    assert not (tmp_path / "x.nii.gz").exists()


def test_evaluate_workflow_end_to_end(tmp_path, tiny_bundle, sim):
    """inference.json + evaluate.json (in process): both reports from the tiny simulated test split."""
    from monai.bundle import run

    eval_dir = tmp_path / "eval"
    configs = tiny_bundle / "configs"
    run(config_file=[str(configs / "inference.json"), str(configs / "evaluate.json")],
        meta_file=str(configs / "metadata.json"), logging_file=False, bundle_root=str(tiny_bundle),
        datalist=str(sim), eval_dir=str(eval_dir), n_resamples=20, progress=False, device="cpu")
    harmonized = sorted(p.name for p in (eval_dir / "harmonized").iterdir())
    assert sum(n.endswith("ge_bone_to_ge_standard.nii.gz") for n in harmonized) == 2
    assert sum(n.endswith("ge_bone_to_siemens_b30f.nii.gz") for n in harmonized) == 2
    assert sum(n.endswith("siemens_b50f_to_siemens_b30f.nii.gz") for n in harmonized) == 2
    assert "ge_bone vs ge_standard" in (eval_dir / "report_paired" / "report.md").read_text()
    rows = (eval_dir / "report_to_siemens_b30f" / "per_scan.csv").read_text().splitlines()
    assert len(rows) == 1 + 8


def test_evaluate_and_select_checkpoint_commands_accept_the_bundle(tmp_path, tiny_bundle, sim, capsys):
    report = tmp_path / "report"
    assert main(["evaluate", "--bundle", str(tiny_bundle), "--datalist", str(sim), "--out", str(report),
                 "--target", '{"siemens_b50f": "siemens_b30f", "ge_bone": "ge_standard"}', "--n_resamples", "20",
                 "--nobody_composition", "--nosimilarity", "--noprogress", "--trust_bundle"]) == 0
    assert (report / "per_scan.csv").is_file()
    # two candidate fits (RMS and MAD statistics) ranked with the bundle's harmonizer
    candidates = tmp_path / "candidates"
    config = inference_config()
    for epoch, statistic in ((1, "rms"), (2, "mad")):
        fit_band_energies(BandEnergyNormalizer(config["domains"], config["sigmas"]), sim, "test", statistic=statistic,
                          hu_min=HU_MIN, hu_max=HU_MAX, out_path=candidates / f"epoch_{epoch:04d}.pt", progress=False)
    chosen = tmp_path / "chosen"
    assert main(["select-checkpoint", "--bundle", str(tiny_bundle), "--checkpoints", str(candidates),
                 "--datalist", str(sim), "--split", "test", "--out", str(chosen), "--device", "cpu",
                 "--trust_bundle"]) == 0
    ranking = json.loads((chosen / "checkpoint_ranking.json").read_text())
    assert sorted(r["epoch"] for r in ranking["ranking"]) == [1, 2]
    best = ranking["model_epoch"]
    assert (chosen / "model.pt").read_bytes() == (candidates / f"epoch_{best:04d}.pt").read_bytes()


def test_untrusted_copy_is_refused(tmp_path, tiny_bundle, sim, capsys):
    copy = tmp_path / "modified"
    shutil.copytree(tiny_bundle, copy)
    config = json.loads((copy / "configs" / "inference.json").read_text())
    config["sigmas"] = config["sigmas"][:-1]  # changed code: no longer the shipped bundle
    (copy / "configs" / "inference.json").write_text(json.dumps(config))
    assert main(["harmonize", "--bundle", str(copy), "--input", bone_scan(sim)["image"], "--out",
                 str(tmp_path / "o.nii.gz")]) == 2
    assert "trust" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        load_bundle_harmonizer(copy)
