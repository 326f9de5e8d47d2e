"""The plain CycleGAN bundle: metadata and configs (Zhu et al. defaults), the shipped two-pair weights,
inference.json through ``python -m monai.bundle`` (run, ckpt_export, verify_net_in_out), ``ctharmonize
harmonize`` / ``export``, evaluate.json, train.json (one pair, resume, the second pair by its override, the
two runs merged into the bundle's model) and multi_gpu_train.json under torchrun with gloo.

Expected images are computed by hand: the pair's generator run on numpy-padded, numpy-scaled slices.
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
from ctharmonize.networks import CycleGANPairs, pair_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_bundle_runs import (  # noqa: E402
    bundle_inference_commands,
    copy_bundle_with_weights,
    run_bundle,
    split_scan,
    train_two_gloo_ranks,
)
from multipath_sim_data import write_test_split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "cyclegan_ct_harmonization"
CONFIGS = BUNDLE / "configs"
HU_MIN, HU_MAX = -2048.0, 3072.0
PAIRS = [["ge_bone", "siemens_b30f"], ["siemens_b50f", "siemens_b30f"]]
TINY_NET = ["--ngf", "4", "--n_blocks", "1"]
TINY_TRAIN = [*TINY_NET, "--ndf", "4", "--n_layers", "1", "--roi_size", "[32, 32]", "--batch_size", "2",
              "--num_workers", "0"]


def _json(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _tiny_pairs(seed: int, pairs=PAIRS) -> CycleGANPairs:
    torch.manual_seed(seed)
    return CycleGANPairs(pairs, ngf=4, n_blocks=1)


def by_hand(generator: torch.nn.Module, hu: np.ndarray) -> np.ndarray:
    """Per slice: reflect-pad to 4 (numpy), clip to [-2048, 3072] and scale to [-1, 1], run, rescale, crop."""
    generator = generator.eval()
    pad = ((0, (-hu.shape[1]) % 4), (0, (-hu.shape[2]) % 4))
    half = (HU_MAX - HU_MIN) / 2.0
    out = np.empty(hu.shape, np.float64)
    for k in range(hu.shape[0]):
        x = (np.clip(np.pad(hu[k].astype(np.float64), pad, mode="reflect"), HU_MIN, HU_MAX) - HU_MIN) / half - 1.0
        with torch.no_grad():
            y = generator(torch.from_numpy(x).float()[None, None]).double().numpy()[0, 0]
        out[k] = ((np.clip(y, -1, 1) + 1.0) * half + HU_MIN)[: hu.shape[1], : hu.shape[2]]
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """A tiny simulated test split: 2 subjects per vendor, 36 x 36 x 2 (padded to 36: already a multiple of 4)."""
    return write_test_split(tmp_path_factory.mktemp("cg_sim"), subjects_per_vendor=2, size=36, slices=2)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> tuple[Path, CycleGANPairs]:
    """The bundle's configs with random tiny two-pair weights, its metadata without a trained spacing range."""
    net = _tiny_pairs(0)
    root = tmp_path_factory.mktemp("cg_bundle") / "cyclegan_ct_harmonization"
    return copy_bundle_with_weights(BUNDLE, root, {"ngf": 4, "n_blocks": 1}, net), net


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """The simulator's training data (3 subjects per vendor: train / validation / test), 32 x 32 x 4."""
    return ensure_simulated_dataset(tmp_path_factory.mktemp("cg_train") / "sim", subjects=3, size=32, slices=4,
                                    seed=0, progress=False).parent


# ----------------------------------------------------------------------------- metadata, configs, shipped weights
def test_metadata_and_configs_agree():
    verify_bundle_metadata(BUNDLE)
    meta, inference, train = _json("metadata.json"), _json("inference.json"), _json("train.json")
    assert inference["pairs"] == PAIRS
    domains = {d for p in inference["pairs"] for d in p}
    assert set(meta["source_domains"]) == set(meta["target_domains"]) == domains
    assert meta["hu_window"] == [inference["hu_min"], inference["hu_max"]] == [train["hu_min"], train["hu_max"]]
    # Zhu et al. defaults in the paper configuration
    assert (train["ngf"], train["n_blocks"], train["ndf"], train["n_layers"]) == (64, 9, 64, 3)
    assert train["loss_weights"] == {"adv": 1.0, "cycle": 10.0, "identity": 5.0} and train["pool_size"] == 50
    assert train["trainer"]["adversarial"] == "lsgan" and train["lr"] == 0.0002 and train["betas"] == [0.5, 0.999]
    cpu = _json("train_cpu.json")
    assert (cpu["ngf"], cpu["n_blocks"]) == (inference["ngf"], inference["n_blocks"])
    # the default pair and the override's pair are the two pairs inference ships
    assert [[train["source_domain"], train["target_domain"]],
            [_json("pair_siemens_b50f.json")["source_domain"], train["target_domain"]]] == PAIRS


def test_shipped_weights_are_both_pairs_and_run_through_the_bundle_harmonizer(tmp_path):
    state = torch.load(BUNDLE / "models" / "model.pt", weights_only=True)
    assert {k.split(".")[1] for k in state} == {pair_name(*p) for p in PAIRS}
    harmonizer = load_bundle_harmonizer(BUNDLE, device="cpu")
    assert set(harmonizer.domains) == {"ge_bone", "siemens_b30f", "siemens_b50f"}
    net = CycleGANPairs(PAIRS, ngf=16, n_blocks=9)
    net.load_state_dict(state)
    hu = np.random.default_rng(0).uniform(-1000, 400, size=(1, 40, 44)).astype(np.float32)
    for source, target in (("ge_bone", "siemens_b30f"), ("siemens_b30f", "siemens_b50f")):
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
    want = by_hand(net.pairs[pair_name("ge_bone", "siemens_b30f")].G_AB, vin.array)
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
    np.testing.assert_allclose(got, by_hand(net.pairs[pair_name("ge_bone", "siemens_b30f")].G_AB, hu), atol=0.05)


def test_cli_harmonize_selects_the_pair_by_source_and_target(tmp_path, tiny_bundle, sim, capsys):
    root, net = tiny_bundle
    b30f = split_scan(sim, "siemens_b30f")
    out = tmp_path / "to_b50f.nii.gz"
    assert main(["harmonize", "--bundle", str(root), "--input", b30f, "--out", str(out), "--source", "siemens_b30f",
                 "--target", "siemens_b50f", "--device", "cpu", "--quiet", "--trust_bundle"]) == 0
    assert "siemens_b30f -> siemens_b50f" in capsys.readouterr().out
    vin = read_volume(b30f)
    want = by_hand(net.pairs[pair_name("siemens_b50f", "siemens_b30f")].G_BA, vin.array)  # the pair's B -> A
    inside = vin.fov_mask if vin.fov_mask is not None else np.ones(vin.shape, bool)
    np.testing.assert_allclose(read_volume(out).array[inside], want[inside], atol=0.05)

    # no pair joins GE BONE and Siemens B50f: one line, nothing written
    bone = split_scan(sim, "ge_bone")
    refused = tmp_path / "refused.nii.gz"
    assert main(["harmonize", "--bundle", str(root), "--input", bone, "--out", str(refused), "--target",
                 "siemens_b50f", "--device", "cpu", "--quiet", "--trust_bundle"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CycleGAN pair was trained for ge_bone -> siemens_b50f" in err
    assert not refused.exists()

    # export of the within-vendor path
    ts = tmp_path / "b50f.ts"
    assert main(["export", "--bundle", str(root), "--out", str(ts), "--source", "siemens_b50f", "--trust_bundle"]) == 0
    hu = read_volume(split_scan(sim, "siemens_b50f")).array
    with torch.no_grad():
        got = torch.jit.load(str(ts))(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(net.pairs[pair_name("siemens_b50f", "siemens_b30f")].G_AB, hu), atol=0.05)


def test_evaluate_workflow_end_to_end(tmp_path, tiny_bundle, sim):
    """inference.json + evaluate.json: the paired within-vendor path and both shipped paths to B30f only."""
    from monai.bundle import run

    root, _ = tiny_bundle
    eval_dir = tmp_path / "eval"
    configs = root / "configs"
    run(config_file=[str(configs / "inference.json"), str(configs / "evaluate.json")],
        meta_file=str(configs / "metadata.json"), logging_file=False, bundle_root=str(root), datalist=str(sim),
        eval_dir=str(eval_dir), n_resamples=20, progress=False, device="cpu")
    harmonized = sorted(p.name for p in (eval_dir / "harmonized").iterdir() if p.name.endswith(".nii.gz"))
    assert sum(n.endswith("ge_bone_to_siemens_b30f.nii.gz") for n in harmonized) == 2
    assert sum(n.endswith("siemens_b50f_to_siemens_b30f.nii.gz") for n in harmonized) == 2
    assert len(harmonized) == 4  # GE STANDARD has no pair: not harmonized, not an error
    assert "siemens_b50f vs siemens_b30f" in (eval_dir / "report_paired" / "report.md").read_text()
    assert (eval_dir / "report_to_siemens_b30f" / "per_scan.csv").is_file()


# ----------------------------------------------------------------------------- training
def test_train_both_pairs_resume_and_merge_into_the_bundle_model(simulated, tmp_path):
    train = str(CONFIGS / "train.json")
    runs = {}
    for name, extra in (("bone", []), ("b50f", [str(CONFIGS / "pair_siemens_b50f.json")])):
        out = tmp_path / name
        common = ["--dataset_dir", str(simulated), "--output_dir", str(out), "--model_dir", str(out / "models"),
                  "--subset_fraction", "0.5", "--val_every", "1", *TINY_TRAIN]
        run_bundle([train, *extra], *common, "--max_epochs", "1")
        runs[name] = out
    # 1 train subject per vendor x 4 slices, half per epoch, batch 2 -> 1 iteration per epoch
    ckpt = torch.load(runs["bone"] / "checkpoints" / "checkpoint_1.pt", weights_only=True)
    assert {"network/G_AB", "network/G_BA", "network/D_A", "network/D_B", "optimizer/G", "pool/D_A"} <= set(ckpt)
    ranking = json.loads((runs["bone"] / "models" / "checkpoint_ranking.json").read_text())
    assert set(ranking["ranking"][0]["metrics"]) >= {"kl_bone_b30f", "anat_bone_b30f"}
    ranking = json.loads((runs["b50f"] / "models" / "checkpoint_ranking.json").read_text())
    assert set(ranking["ranking"][0]["metrics"]) >= {"mse_b50f_b30f", "anat_b50f_b30f"}
    for name, pair in (("bone", PAIRS[0]), ("b50f", PAIRS[1])):
        state = torch.load(runs[name] / "models" / "model.pt", weights_only=True)
        assert {k.split(".")[1] for k in state} == {pair_name(*pair)}
        # the selected model holds the checkpoint's generators under the pair's prefix
        g_ab = {k.split("G_AB.", 1)[1]: v for k, v in state.items() if ".G_AB." in k}
        if name == "bone":
            assert all(torch.equal(g_ab[k], v) for k, v in ckpt["network/G_AB"].items())

    log = run_bundle([train], "--dataset_dir", str(simulated), "--output_dir", str(runs["bone"]), "--model_dir",
                  str(runs["bone"] / "models"), "--subset_fraction", "0.5", "--val_every", "1", *TINY_TRAIN,
                  "--max_epochs", "2", "--resume", "auto")
    assert "resumed from" in log
    last = torch.load(runs["bone"] / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    assert last["engine"]["iteration"] == 2 and float(last["optimizer/G"]["state"][0]["step"]) == 2.0

    merged = tmp_path / "model.pt"
    assert main(["merge-weights", "--paths", f"{runs['bone'] / 'models' / 'model.pt'},"
                 f"{runs['b50f'] / 'models' / 'model.pt'}", "--out", str(merged)]) == 0
    net = CycleGANPairs(PAIRS, ngf=4, n_blocks=1)
    net.load_state_dict(torch.load(merged, weights_only=True))  # strict: exactly the bundle's two pairs


def test_torchrun_two_gloo_ranks_end_identical(simulated, tmp_path):
    # 2 items per epoch sharded over 2 ranks, batch 1 -> 1 iteration per rank
    train_two_gloo_ranks([str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")], tmp_path,
                         "--dataset_dir", str(simulated), *TINY_TRAIN, "--batch_size", "1", "--subset_fraction", "0.5")
