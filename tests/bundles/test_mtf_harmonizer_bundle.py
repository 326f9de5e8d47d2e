"""The physics-informed MTF-conditioned harmonizer bundle (paper 001): metadata and configs against the paper, the
shipped weights, inference.json through ``python -m monai.bundle`` (run, ckpt_export, verify_net_in_out),
``ctharmonize harmonize`` to the ground truth (and the refusal of a kernel target), train.json (resume after a kill
equals an uninterrupted run) and multi_gpu_train.json under torchrun with gloo.

Expected images are computed by hand: the skin-air MTF of the input volume measured with
``ctharmonize.physics.skin_air_mtf``, numpy scaling of [-1024, 3072] HU to [-1, 1], then G(x, MTF2D) per slice.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ctharmonize.bundle import verify_bundle_metadata
from ctharmonize.cli import main
from ctharmonize.datasets import ensure_simulated_dataset
from ctharmonize.domains.reference import TRUTH_DOMAIN
from ctharmonize.inference import load_bundle_harmonizer
from ctharmonize.io import read_volume
from ctharmonize.networks import PAPER_001_CHANNELS, MTFHarmonizer, MTFTranslator, PatchDiscriminator
from ctharmonize.physics import skin_air_mtf
from ctharmonize.simulation.mtf2d import kernel_mtf2d

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_bundle_runs import (  # noqa: E402
    bundle_inference_commands,
    copy_bundle_with_weights,
    losses_dump,
    run_bundle,
    train_two_gloo_ranks,
)

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "mtf_harmonizer_ct_harmonization"
CONFIGS = BUNDLE / "configs"
HU_MIN, HU_MAX = -1024.0, 3072.0
TINY = {"channels": [4, 8]}
TINY_TRAIN = ["--channels", "[4, 8]", "--critic_width", "4", "--roi_size", "[32, 32]", "--batch_size", "2",
              "--num_workers", "0", "--val_every", "1"]
NETWORKS = ("G", "D")


def _json(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _translator(channels) -> MTFTranslator:
    return MTFTranslator(MTFHarmonizer(channels=channels), _json("inference.json")["domains"])


def _tiny(seed: int) -> MTFTranslator:
    torch.manual_seed(seed)
    return _translator(TINY["channels"]).eval()


def _unit(hu: np.ndarray) -> np.ndarray:
    return (np.clip(hu.astype(np.float64), HU_MIN, HU_MAX) - HU_MIN) / ((HU_MAX - HU_MIN) / 2.0) - 1.0


def by_hand(t: MTFTranslator, hu: np.ndarray, mtf2d: np.ndarray) -> np.ndarray:
    """Per slice: reflect-pad (numpy) to the U-Net's multiple, scale, G(x, MTF2D), clamp, rescale, crop."""
    m = t.spatial_multiple
    pad = ((0, (-hu.shape[1]) % m), (0, (-hu.shape[2]) % m))
    g = t.harmonizer.eval()
    mtf = torch.from_numpy(np.asarray(mtf2d, np.float32))[None, None]
    out = np.empty(hu.shape, np.float64)
    for k in range(hu.shape[0]):
        x = torch.from_numpy(_unit(np.pad(hu[k], pad, mode="reflect"))).float()[None, None]
        with torch.no_grad():
            y = g(x, mtf).double().numpy()[0, 0]
        out[k] = ((np.clip(y, -1, 1) + 1.0) * (HU_MAX - HU_MIN) / 2.0 + HU_MIN)[: hu.shape[1], : hu.shape[2]]
    return out


def _measured(volume) -> np.ndarray:
    return skin_air_mtf(volume.array, volume.spacing, fov_mask=volume.fov_mask).mtf2d(64)


def _assert_written(got: np.ndarray, want: np.ndarray, volume) -> None:
    """``got`` (read back) equals ``want`` inside the field of view, except at the window's floor (-1024 HU, which a
    written volume reads back as padding)."""
    inside = (volume.fov_mask if volume.fov_mask is not None else np.ones(volume.shape, bool)) & (want > HU_MIN + 1)
    assert inside.mean() > 0.3
    np.testing.assert_allclose(got[inside], want[inside], atol=0.05)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """The bundle's two training sets, 2 slices each: the Force-like family (3 phantoms, 256^2: at 128^2 over the
    500 mm FOV too few skin-air edge profiles of the sharpest kernels are clean enough to measure the MTF) and the
    clinical preset (3 subjects per vendor: train / validation / test, 128^2), each rendition with its ground truth."""
    root = tmp_path_factory.mktemp("mtf_data")
    force = ensure_simulated_dataset(root / "force", subjects=3, size=256, slices=2, seed=0, preset="force_family",
                                     progress=False)
    clinical = ensure_simulated_dataset(root / "clinical", subjects=3, size=128, slices=2, seed=0, preset="clinical",
                                        progress=False)
    return {"force": force.parent, "clinical": clinical.parent}


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> tuple[Path, MTFTranslator]:
    net = _tiny(0)
    root = tmp_path_factory.mktemp("mtf_bundle") / "mtf_harmonizer_ct_harmonization"
    return copy_bundle_with_weights(BUNDLE, root, TINY, net), net


def _scan(folder: Path, kernel: str, split: str | None = None) -> str:
    from ctharmonize.data import datalist_entries

    entries, _ = datalist_entries(folder / "datalist.json", split)
    return next(e["image"] for e in entries if e["kernel"] == kernel)


# ----------------------------------------------------------------------------- metadata, configs, shipped weights
def test_metadata_and_configs_follow_the_paper():
    verify_bundle_metadata(BUNDLE)
    meta, inference, train, cpu = _json("metadata.json"), _json("inference.json"), _json("train.json"), \
        _json("train_cpu.json")
    assert inference["domains"] == train["domains"] == meta["source_domains"]
    assert meta["target_domains"] == [TRUTH_DOMAIN] == [inference["target_kernel"]] == [train["target_kernel"]]
    # the literal normalisation (HU - 1024) / 2048: HU [-1024, 3072] -> [-1, 1]
    assert meta["hu_window"] == [inference["hu_min"], inference["hu_max"]] == [train["hu_min"], train["hu_max"]] \
        == [-1024.0, 3072.0]
    # paper size: 26.5 M parameters; full 512^2 slices of the Force-like family at 500 mm FOV
    assert train["channels"] == "$ctharmonize.networks.nets.PAPER_001_CHANNELS"
    params = sum(p.numel() for p in MTFHarmonizer(channels=PAPER_001_CHANNELS).parameters())
    assert abs(params - 26.5e6) / 26.5e6 < 0.02
    assert train["roi_size"] is None and train["force_sample_data"]["size"] == 512
    assert train["force_sample_data"]["preset"] == "force_family"
    # losses (eq. 8): Huber delta 0.5 x 1000, texture x 50 (lung-masked Gram), adversarial x 1, gradient penalty 10
    loss = train["loss"]
    assert (loss["distance"], loss["texture"], loss["adversarial"], loss["huber_delta"],
            loss["gradient_penalty"]) == (1000.0, 50.0, 1.0, 0.5, 10.0)
    assert loss["texture_loss"]["_target_"].endswith("MaskedGramTextureLoss")
    # the critic: five-layer fully convolutional on cat(I_nh, image)
    assert train["D"]["in_channels"] == 2 and train["D"]["n_layers"] == 3
    assert len([m for m in PatchDiscriminator(in_channels=2, n_layers=3).modules()
                if isinstance(m, torch.nn.Conv2d)]) == 5
    # Adam, cyclic LR from base 1e-4, gradient clipping, n_critic 5 (spec), measured MTF, augmentations on
    assert (train["lr"], train["max_lr"], train["betas"]) == (1e-4, 5e-4, [0.5, 0.9])
    assert train["schedulers"]["_target_"].endswith("cyclic_lr_schedulers")
    assert train["schedulers"]["mode"] == "triangular2"
    assert (train["grad_clip_norm"], train["generator_every"]) == (1.0, 5)
    assert train["mtf_source"] == "measured" and train["augment"] is True
    assert train["trainer"]["_target_"].endswith("MTFHarmonizerTrainer")
    # validation: every clinical kernel to the ground truth; inference measures the MTF per volume
    assert all(t == TRUTH_DOMAIN for _, t in train["val_paths"])
    assert inference["mtf_condition"]["_target_"].endswith("MeasuredMTF")
    # the CPU configuration trains the network inference builds
    assert cpu["channels"] == inference["channels"]


def test_shipped_weights_harmonize_to_the_ground_truth(tmp_path):
    state = torch.load(BUNDLE / "models" / "model.pt", weights_only=True)
    net = _translator(_json("inference.json")["channels"])
    net.load_state_dict(state)  # strict
    harmonizer = load_bundle_harmonizer(BUNDLE, device="cpu")
    assert harmonizer.targets == (TRUTH_DOMAIN,) and harmonizer.needs_spacing
    from ctharmonize.inference.sample import ensure_sample_volume

    volume = read_volume(ensure_sample_volume(tmp_path / "bone.nii.gz", kernel="ge_bone", size=128, slices=2,
                                              clinical=True))
    # the harmonizer itself (no spacing policy: 128^2 lies outside the trained spacing, harmonize_volume would resample)
    out = harmonizer(volume.array, "ge_bone", TRUTH_DOMAIN, fov_mask=volume.fov_mask, spacing=volume.spacing)
    want = by_hand(net, volume.array, _measured(volume))
    if volume.fov_mask is not None:
        want[~volume.fov_mask] = volume.array[~volume.fov_mask]
    np.testing.assert_allclose(out, want, atol=0.05)


# ----------------------------------------------------------------------------- MONAI bundle commands and the CLI
def _with_header(image: str, out: Path, kernel: str) -> str:
    """``image`` written again with a sidecar naming its scanner (SIEMENS) and kernel, so the domain resolves."""
    import dataclasses

    from ctharmonize.io import write_volume

    volume = read_volume(image)
    header = dataclasses.replace(volume.header, manufacturer="SIEMENS", convolution_kernel=(kernel,))
    write_volume(dataclasses.replace(volume, header=header), out, sidecar=True, nifti_padding=True)
    return str(out)


def test_monai_bundle_run_export_and_verify(tmp_path, tiny_bundle, data):
    root, net = tiny_bundle
    image = _with_header(_scan(data["force"], "siemens_br64f"), tmp_path / "br64f.nii.gz", "Br64f")
    out_nifti, ts = tmp_path / "out.nii.gz", tmp_path / "model.ts"
    logs = bundle_inference_commands(root, image, out_nifti, ts, cwd=tmp_path)
    assert f"harmonized siemens_br64f -> {TRUTH_DOMAIN}" in logs["run"] and "'mtf_source': 'measured'" in logs["run"]
    assert "verified with no error" in logs["verify"]
    vin, vout = read_volume(image), read_volume(out_nifti)
    _assert_written(vout.array, by_hand(net, vin.array, _measured(vin)), vin)
    np.testing.assert_allclose(vout.affine_ras(), vin.affine_ras(), atol=1e-4)
    # the exported module: GE BONE (the export default) with its design MTF at 0.977 mm baked in
    hu = np.random.default_rng(3).uniform(-1000, 1200, size=(2, 32, 48)).astype(np.float32)
    with torch.no_grad():
        got = torch.jit.load(str(ts))(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(net, hu, kernel_mtf2d("ge_bone", (500 / 512, 500 / 512))), atol=0.05)


def test_cli_harmonizes_any_kernel_to_the_truth_and_refuses_a_kernel_target(tmp_path, tiny_bundle, data, capsys):
    root, net = tiny_bundle
    for source, folder in (("siemens_br40f", "force"), ("ge_bone", "clinical")):
        image = _scan(data[folder], source)
        out = tmp_path / f"{source}.nii.gz"
        assert main(["harmonize", "--bundle", str(root), "--input", image, "--out", str(out), "--source", source,
                     "--target", TRUTH_DOMAIN, "--device", "cpu", "--quiet", "--trust_bundle"]) == 0
        assert f"{source} -> {TRUTH_DOMAIN}" in capsys.readouterr().out
        vin = read_volume(image)
        _assert_written(read_volume(out).array, by_hand(net, vin.array, _measured(vin)), vin)
    refused = tmp_path / "refused.nii.gz"
    assert main(["harmonize", "--bundle", str(root), "--input", _scan(data["clinical"], "ge_bone"), "--out",
                 str(refused), "--source", "ge_bone", "--target", "siemens_b30f", "--device", "cpu", "--quiet",
                 "--trust_bundle"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "siemens_b30f" in err and "Traceback" not in err
    assert not refused.exists()


def test_evaluate_workflow_writes_the_table_i_form(tmp_path, tiny_bundle, data):
    """inference.json + evaluate.json: paper 001's Table I form of the bundle on a simulated set with ground truth
    (here the tiny Force-like set; the default draws 2 fresh phantoms at 512²), its per-slice rows those of the
    bundle's harmonizer."""
    from monai.bundle import run

    root, _ = tiny_bundle
    configs = root / "configs"
    eval_dir = tmp_path / "eval"
    run(config_file=[str(configs / "inference.json"), str(configs / "evaluate.json")],
        meta_file=str(configs / "metadata.json"), logging_file=False, bundle_root=str(root),
        eval_data_dir=str(data["force"]), eval_dir=str(eval_dir), slices=1, physics=False, progress=False,
        device="cpu")
    doc = json.loads((eval_dir / "truth_table" / "truth_table.json").read_text())
    methods = {r["method"] for r in doc["rows"]}
    assert {"none", "combat"} <= methods and len(methods) == 3  # the bundle's own row besides
    assert "## Table I form" in (eval_dir / "truth_table" / "truth_table.md").read_text()


# ----------------------------------------------------------------------------- training
def _train(data: dict[str, Path], out: Path, *configs: str, extra: tuple[str, ...] = ()) -> str:
    return run_bundle([str(CONFIGS / "train.json"), str(CONFIGS / "train_cpu.json"), *configs], "--force_data_dir",
                      str(data["force"]), "--clinical_data_dir", str(data["clinical"]), "--output_dir", str(out),
                      "--model_dir", str(out / "models"), *TINY_TRAIN, *extra, timeout=600)


def test_train_logs_the_paper_terms_selects_by_truth_and_resumes_identically(data, tmp_path):
    """An epoch is 2 iterations (subset of 4 slices, batch 2); the generator steps every iteration (train_cpu).
    A run killed after epoch 1 and resumed ends with the same networks as an uninterrupted 2-epoch run."""
    sub = ("--subset_fraction", str(4 / _n_train(data)))
    first = tmp_path / "first"
    _train(data, first, losses_dump(tmp_path, "first"), extra=(*sub, "--max_epochs", "1"))
    losses = json.loads((tmp_path / "first_losses.json").read_text())
    for term in ("G/distance", "G/texture", "G/adversarial", "G/total", "D/real", "D/fake", "D/gp", "D/total"):
        assert term in losses and np.isfinite(losses[term]), term
    ranking = json.loads((first / "models" / "checkpoint_ranking.json").read_text())
    assert set(ranking["ranking"][0]["metrics"]) >= {"mse_b50f_truth", "mse_bone_truth", "mse_standard_truth",
                                                      "mse_b30f_truth"}
    model = torch.load(first / "models" / "model.pt", weights_only=True)
    ckpt = torch.load(first / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    for k, v in ckpt["network/G"].items():  # model.pt is the translator over the trained generator
        assert torch.equal(model[f"harmonizer.{k}"], v), k

    whole = tmp_path / "whole"
    _train(data, whole, extra=(*sub, "--max_epochs", "2"))
    log = _train(data, first, extra=(*sub, "--max_epochs", "2", "--resume", "auto"))
    assert "resumed from" in log
    a = torch.load(whole / "checkpoints" / "checkpoint_4.pt", weights_only=True)
    b = torch.load(first / "checkpoints" / "checkpoint_4.pt", weights_only=True)
    assert a["engine"]["iteration"] == b["engine"]["iteration"] == 4
    for key in ("network/G", "network/D"):
        for k, v in a[key].items():
            torch.testing.assert_close(b[key][k], v, msg=f"{key} {k}")
    assert any(not torch.equal(v, ckpt["network/G"][k]) for k, v in b["network/G"].items())


def _n_train(data: dict[str, Path]) -> int:
    from ctharmonize.data import datalist_entries

    return sum(2 * len(datalist_entries(folder / "datalist.json", "train")[0]) for folder in data.values())


def test_torchrun_two_gloo_ranks_end_identical(data, tmp_path):
    # 4 items per epoch sharded over 2 ranks, batch 2 -> 1 iteration per rank
    train_two_gloo_ranks([str(CONFIGS / "train.json"), str(CONFIGS / "train_cpu.json"),
                          str(CONFIGS / "multi_gpu_train.json")], tmp_path, "--force_data_dir", str(data["force"]),
                         "--clinical_data_dir", str(data["clinical"]), *TINY_TRAIN, "--subset_fraction",
                         str(4 / _n_train(data)), networks=NETWORKS)
