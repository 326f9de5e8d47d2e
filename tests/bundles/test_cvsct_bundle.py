"""The CVS-CT bundle (paper 002): metadata and configs (the paper's settings, the two ablations), the shipped
weights, inference.json through ``python -m monai.bundle`` (run, ckpt_export, verify_net_in_out), ``ctharmonize
harmonize`` both ways along the pair / ``export``, evaluate.json, train.json (domain loss on, resume), the
ablation configs (CVS-CT¹: ResNet CycleGAN + domain loss; CVS-CT²: no domain loss) and multi_gpu_train.json
under torchrun with gloo.

Expected images are computed by hand: the pair's generator run on numpy-scaled slices of [-1000, 900] HU.
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
from ctharmonize.inference import load_bundle_harmonizer
from ctharmonize.io import read_volume
from ctharmonize.networks import CBAM, CVSCTGenerator, CycleGANPairs, ResnetGenerator, pair_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_bundle_runs import (  # noqa: E402
    bundle_inference_commands,
    copy_bundle_with_weights,
    losses_dump,
    run_bundle,
    split_scan,
    train_two_gloo_ranks,
)
from multipath_sim_data import write_test_split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "cvsct_ct_harmonization"
CONFIGS = BUNDLE / "configs"
HU_MIN, HU_MAX = -1000.0, 900.0
PAIRS = [["ge_bone", "siemens_b30f"]]
PAIR = pair_name(*PAIRS[0])
# the discriminator's 3 stride-2 and 5 stride-1 4x4 convs need >= 48 pixels
TINY_TRAIN = ["--features", "4", "--ndf", "4", "--roi_size", "[48, 48]", "--batch_size", "2", "--num_workers", "0"]


def _json(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _tiny_pairs(seed: int) -> CycleGANPairs:
    torch.manual_seed(seed)
    return CycleGANPairs(PAIRS, generator=lambda: CVSCTGenerator(features=4))


def by_hand(generator: torch.nn.Module, hu: np.ndarray) -> np.ndarray:
    """Per slice: clip to [-1000, 900] HU and scale to [-1, 1], run, rescale (no padding: stride 1)."""
    generator = generator.eval()
    half = (HU_MAX - HU_MIN) / 2.0
    out = np.empty(hu.shape, np.float64)
    for k in range(hu.shape[0]):
        x = (np.clip(hu[k].astype(np.float64), HU_MIN, HU_MAX) - HU_MIN) / half - 1.0
        with torch.no_grad():
            y = generator(torch.from_numpy(x).float()[None, None]).double().numpy()[0, 0]
        out[k] = (np.clip(y, -1, 1) + 1.0) * half + HU_MIN
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """A tiny simulated test split: 2 subjects per vendor, 36 x 36 x 2."""
    return write_test_split(tmp_path_factory.mktemp("cvsct_sim"), subjects_per_vendor=2, size=36, slices=2)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> tuple[Path, CycleGANPairs]:
    """The bundle's configs with random tiny weights, its metadata without a trained spacing range."""
    net = _tiny_pairs(0)
    root = tmp_path_factory.mktemp("cvsct_bundle") / "cvsct_ct_harmonization"
    return copy_bundle_with_weights(BUNDLE, root, {"features": 4}, net), net


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """The simulator's training data (3 subjects per vendor: train / validation / test), 64 x 64 x 4 (the
    clinical preset's label codes, so soft-tissue crops find their labels)."""
    return ensure_simulated_dataset(tmp_path_factory.mktemp("cvsct_train") / "sim", subjects=3, size=64, slices=4,
                                    seed=0, progress=False).parent


# ----------------------------------------------------------------------------- metadata, configs, shipped weights
def test_metadata_and_configs_follow_the_paper():
    verify_bundle_metadata(BUNDLE)
    meta, inference, train = _json("metadata.json"), _json("inference.json"), _json("train.json")
    assert inference["pairs"] == PAIRS and train["pairs"] == [["@source_domain", "@target_domain"]]
    assert [train["source_domain"], train["target_domain"]] == PAIRS[0]
    assert set(meta["source_domains"]) == set(meta["target_domains"]) == {"ge_bone", "siemens_b30f"}
    assert meta["hu_window"] == [inference["hu_min"], inference["hu_max"]] == [train["hu_min"], train["hu_max"]]
    assert [train["hu_min"], train["hu_max"]] == [HU_MIN, HU_MAX]
    # the paper's training: 80x80 soft-tissue patches, Adam 1e-4 (beta1 0.5), batch 32, 50 epochs, 64 filters
    assert train["roi_size"] == [80, 80] and train["crop_labels"] == [5, 6, 7, 9]
    assert (train["lr"], train["betas"][0], train["batch_size"], train["max_epochs"]) == (1e-4, 0.5, 32, 50)
    assert train["features"] == 64 and train["trainer"]["_target_"].endswith("CVSCTTrainer")
    assert train["trainer"]["adversarial"] == "lsgan" and train["loss_weights"]["domain"] > 0
    assert train["network_def"]["generator"]["_target_"].endswith("CVSCTGenerator")
    assert train["D_A"]["_target_"].endswith("CVSCTDiscriminator")
    gen = CVSCTGenerator(features=train["features"])
    convs = [m for m in gen.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (4, 4)]
    assert len(convs) == 7 and all(c.stride == (1, 1) for c in convs)
    assert {c.out_channels for c in convs[:-1]} == {64} and sum(isinstance(m, CBAM) for m in gen.modules()) == 3
    assert isinstance(list(gen.modules())[-1], torch.nn.Tanh)
    # the CPU configuration and inference build the same generator
    assert _json("train_cpu.json")["features"] == inference["features"]
    # the ablations: CVS-CT^2 drops the domain loss; CVS-CT^1 is the ResNet CycleGAN with the domain loss
    assert _json("ablation_cbam_only.json") == {"loss_weights#domain": 0.0}
    domain_only = _json("ablation_domain_only.json")
    assert "generator" not in domain_only["network_def"] and domain_only["D_A"]["_target_"].endswith("PatchDiscriminator")


def test_shipped_weights_run_through_the_bundle_harmonizer_both_ways():
    state = torch.load(BUNDLE / "models" / "model.pt", weights_only=True)
    assert {k.split(".")[1] for k in state} == {PAIR}
    harmonizer = load_bundle_harmonizer(BUNDLE, device="cpu")
    assert set(harmonizer.domains) == {"ge_bone", "siemens_b30f"}
    net = CycleGANPairs(PAIRS, generator=lambda: CVSCTGenerator(features=_json("inference.json")["features"]))
    net.load_state_dict(state)
    hu = np.random.default_rng(0).uniform(-1000, 400, size=(1, 40, 44)).astype(np.float32)
    for source, target in (("ge_bone", "siemens_b30f"), ("siemens_b30f", "ge_bone")):
        got = harmonizer(hu, source, target)
        np.testing.assert_allclose(got, by_hand(net.path(source, target), hu), atol=0.05)


# ----------------------------------------------------------------------------- MONAI bundle commands and the CLI
def test_monai_bundle_run_export_and_verify(tmp_path, tiny_bundle, sim):
    root, net = tiny_bundle
    image = split_scan(sim, "ge_bone")
    out_nifti, ts = tmp_path / "out.nii.gz", tmp_path / "model.ts"
    logs = bundle_inference_commands(root, image, out_nifti, ts, cwd=tmp_path)
    assert "harmonized ge_bone -> siemens_b30f" in logs["run"] and "verified with no error" in logs["verify"]

    vin, vout = read_volume(image), read_volume(out_nifti)
    want = by_hand(net.pairs[PAIR].G_AB, vin.array)
    inside = vin.fov_mask if vin.fov_mask is not None else np.ones(vin.shape, bool)
    np.testing.assert_allclose(vout.array[inside], want[inside], atol=0.05)
    assert np.abs(vout.array - vin.array).max() > 10
    np.testing.assert_allclose(vout.affine_ras(), vin.affine_ras(), atol=1e-4)

    extra = {"metadata.json": "", "inference.json": ""}
    module = torch.jit.load(str(ts), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["hu_window"] == [HU_MIN, HU_MAX]
    hu = np.random.default_rng(3).uniform(-1024, 1200, size=(2, 24, 28)).astype(np.float32)
    with torch.no_grad():
        got = module(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(net.pairs[PAIR].G_AB, hu), atol=0.05)


def test_cli_harmonize_both_ways_refuses_other_paths_and_exports(tmp_path, tiny_bundle, sim, capsys):
    root, net = tiny_bundle
    b30f = split_scan(sim, "siemens_b30f")
    out = tmp_path / "to_bone.nii.gz"
    assert main(["harmonize", "--bundle", str(root), "--input", b30f, "--out", str(out), "--source", "siemens_b30f",
                 "--target", "ge_bone", "--device", "cpu", "--quiet", "--trust_bundle"]) == 0
    assert "siemens_b30f -> ge_bone" in capsys.readouterr().out
    vin = read_volume(b30f)
    want = by_hand(net.pairs[PAIR].G_BA, vin.array)  # the pair's B -> A
    inside = vin.fov_mask if vin.fov_mask is not None else np.ones(vin.shape, bool)
    np.testing.assert_allclose(read_volume(out).array[inside], want[inside], atol=0.05)

    # GE STANDARD is not a domain of this model: one line, nothing written
    std = split_scan(sim, "ge_standard")
    refused = tmp_path / "refused.nii.gz"
    assert main(["harmonize", "--bundle", str(root), "--input", std, "--out", str(refused), "--source", "ge_standard",
                 "--target", "siemens_b30f", "--device", "cpu", "--quiet", "--trust_bundle"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ge_standard" in err and "Traceback" not in err
    assert not refused.exists()

    ts = tmp_path / "bone.ts"
    assert main(["export", "--bundle", str(root), "--out", str(ts), "--source", "ge_bone", "--trust_bundle"]) == 0
    hu = read_volume(split_scan(sim, "ge_bone")).array
    with torch.no_grad():
        got = torch.jit.load(str(ts))(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(net.pairs[PAIR].G_AB, hu), atol=0.05)


def test_evaluate_workflow_end_to_end(tmp_path, tiny_bundle, sim):
    """inference.json + evaluate.json: GE BONE harmonized to Siemens B30f, compared as distributions."""
    from monai.bundle import run

    root, _ = tiny_bundle
    eval_dir = tmp_path / "eval"
    configs = root / "configs"
    run(config_file=[str(configs / "inference.json"), str(configs / "evaluate.json")],
        meta_file=str(configs / "metadata.json"), logging_file=False, bundle_root=str(root), datalist=str(sim),
        eval_dir=str(eval_dir), n_resamples=20, progress=False, device="cpu")
    harmonized = sorted(p.name for p in (eval_dir / "harmonized").iterdir() if p.name.endswith(".nii.gz"))
    assert len(harmonized) == 2 and all(n.endswith("ge_bone_to_siemens_b30f.nii.gz") for n in harmonized)
    rows = (eval_dir / "report_to_siemens_b30f" / "per_scan.csv").read_text()
    assert "ge_bone" in rows and (eval_dir / "report_to_siemens_b30f" / "report.md").is_file()


# ----------------------------------------------------------------------------- training
def test_train_with_the_domain_loss_then_resume(simulated, tmp_path):
    out = tmp_path / "run"
    common = ["--dataset_dir", str(simulated), "--output_dir", str(out), "--model_dir", str(out / "models"),
              "--subset_fraction", "0.5", "--val_every", "1", *TINY_TRAIN]
    run_bundle([str(CONFIGS / "train.json"), losses_dump(tmp_path, "full")], *common, "--max_epochs", "1")
    losses = json.loads((tmp_path / "full_losses.json").read_text())
    assert losses["G/domain_A"] > 0 and losses["G/domain_B"] > 0 and {"G/cycle_A", "G/idt_A"} & set(losses)
    ckpt = torch.load(out / "checkpoints" / "checkpoint_1.pt", weights_only=True)
    assert {"network/G_AB", "network/G_BA", "network/D_A", "network/D_B", "optimizer/G", "pool/D_A"} <= set(ckpt)
    assert "network/feature_network" not in ckpt  # the frozen feature network is not trained or saved
    ranking = json.loads((out / "models" / "checkpoint_ranking.json").read_text())
    assert set(ranking["ranking"][0]["metrics"]) >= {"kl_bone_b30f", "anat_bone_b30f"}
    state = torch.load(out / "models" / "model.pt", weights_only=True)
    assert {k.split(".")[1] for k in state} == {PAIR}
    net = CycleGANPairs(PAIRS, generator=lambda: CVSCTGenerator(features=4))
    net.load_state_dict(state)  # strict: the inference layout
    g_ab = {k.split("G_AB.", 1)[1]: v for k, v in state.items() if ".G_AB." in k}
    assert all(torch.equal(g_ab[k], v) for k, v in ckpt["network/G_AB"].items())

    log = run_bundle([str(CONFIGS / "train.json")], *common, "--max_epochs", "2", "--resume", "auto")
    assert "resumed from" in log
    last = torch.load(out / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    assert last["engine"]["iteration"] == 2 and float(last["optimizer/G"]["state"][0]["step"]) == 2.0


def test_ablation_configs_train(simulated, tmp_path):
    for name, extra, generator in (("cbam_only", "ablation_cbam_only.json", CVSCTGenerator),
                                   ("domain_only", "ablation_domain_only.json", ResnetGenerator)):
        out = tmp_path / name
        run_bundle([str(CONFIGS / "train.json"), str(CONFIGS / extra), losses_dump(tmp_path, name)],
                "--dataset_dir", str(simulated), "--output_dir", str(out), "--model_dir", str(out / "models"),
                "--subset_fraction", "0.5", "--max_epochs", "1", "--val_every", "1", *TINY_TRAIN,
                "--network_def#ngf", "4", "--network_def#n_blocks", "1", "--D_A#ndf", "4", "--D_B#ndf", "4")
        losses = json.loads((tmp_path / f"{name}_losses.json").read_text())
        assert ("G/domain_A" in losses) == (name == "domain_only")
        state = torch.load(out / "models" / "model.pt", weights_only=True)
        if generator is ResnetGenerator:
            net = CycleGANPairs(PAIRS, ngf=4, n_blocks=1)
        else:
            net = CycleGANPairs(PAIRS, generator=lambda: CVSCTGenerator(features=4))
        net.load_state_dict(state)


def test_torchrun_two_gloo_ranks_end_identical(simulated, tmp_path):
    # 2 items per epoch sharded over 2 ranks, batch 1 -> 1 iteration per rank
    train_two_gloo_ranks([str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")], tmp_path,
                         "--dataset_dir", str(simulated), *TINY_TRAIN, "--batch_size", "1", "--subset_fraction", "0.5")
