"""The segmentation-renormalized CycleGAN bundle (paper 004): metadata and configs (the paper's settings), the
shipped two-pair weights with their segmenters, inference.json through ``python -m monai.bundle`` (run,
ckpt_export, verify_net_in_out), ``ctharmonize harmonize`` / ``export``, evaluate.json, train.json (both pairs, the
segmentation loss, resume, merge) and multi_gpu_train.json under torchrun with gloo.

Expected images are computed by hand: the source domain's segmenter, softmax, then the generator, on numpy-padded
(reflect, to a multiple of 16), numpy-scaled slices of [-2048, 3072] HU.
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
from ctharmonize.inference import ensure_sample_volume, load_bundle_harmonizer
from ctharmonize.io import read_volume
from ctharmonize.networks import (
    SegRenormCycleGANPairs,
    SegRenormGenerator,
    SpectralPatchDiscriminator,
    TissueSegmenter,
    pair_name,
)

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
BUNDLE = REPO / "bundles" / "segrenorm_cyclegan_ct_harmonization"
CONFIGS = BUNDLE / "configs"
HU_MIN, HU_MAX = -2048.0, 3072.0
PAIRS = [["ge_bone", "siemens_b30f"], ["siemens_b50f", "siemens_b30f"]]
TINY = {"ngf": 4, "n_blocks": 1, "embed_dim": 8, "extractor_features": [4, 4, 4, 4], "seg_features": [4] * 6}
TINY_TRAIN = [*(a for k, v in TINY.items() for a in (f"--{k}", json.dumps(v))), "--ndf", "4", "--n_layers", "1",
              "--roi_size", "[32, 32]", "--batch_size", "2", "--num_workers", "0"]
KEEP_LR = ["--lr_constant_epochs", "2", "--lr_decay_epochs", "1"]  # epochs 1-2 at the initial lr
NETWORKS = ("G_AB", "G_BA", "S_A", "S_B", "D_A", "D_B")


def _json(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _pairs(sizes: dict, pairs=PAIRS) -> SegRenormCycleGANPairs:
    def generator() -> SegRenormGenerator:
        return SegRenormGenerator(ngf=sizes["ngf"], n_blocks=sizes["n_blocks"], embed_dim=sizes["embed_dim"],
                                  extractor_features=sizes["extractor_features"])

    return SegRenormCycleGANPairs(pairs, generator=generator,
                                  segmenter=lambda: TissueSegmenter(features=sizes["seg_features"]))


def _tiny_pairs(seed: int) -> SegRenormCycleGANPairs:
    torch.manual_seed(seed)
    return _pairs(TINY)


def by_hand(pair, source: str, hu: np.ndarray) -> np.ndarray:
    """Per slice: reflect-pad to 16 (numpy), clip to [-2048, 3072] and scale to [-1, 1], S_source → softmax → G,
    rescale, crop. ``pair``: the pair's SegRenormPair; the source's segmenter and generator are picked by name."""
    seg, gen = (pair.S_A, pair.G_AB) if source == pair.domains[0] else (pair.S_B, pair.G_BA)
    seg, gen = seg.eval(), gen.eval()
    pad = ((0, (-hu.shape[1]) % 16), (0, (-hu.shape[2]) % 16))
    half = (HU_MAX - HU_MIN) / 2.0
    out = np.empty(hu.shape, np.float64)
    for k in range(hu.shape[0]):
        x = (np.clip(np.pad(hu[k].astype(np.float64), pad, mode="reflect"), HU_MIN, HU_MAX) - HU_MIN) / half - 1.0
        with torch.no_grad():
            t = torch.from_numpy(x).float()[None, None]
            y = gen(t, torch.softmax(seg(t), dim=1)).double().numpy()[0, 0]
        out[k] = ((np.clip(y, -1, 1) + 1.0) * half + HU_MIN)[: hu.shape[1], : hu.shape[2]]
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """A tiny simulated test split: 2 subjects per vendor, 48 x 48 x 2 (a multiple of 16, as the exported module
    needs; the shipped-weights test covers the harmonizer's padding)."""
    return write_test_split(tmp_path_factory.mktemp("srn_sim"), subjects_per_vendor=2, size=48, slices=2)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> tuple[Path, SegRenormCycleGANPairs]:
    """The bundle's configs with random tiny two-pair weights, its metadata without a trained spacing range."""
    net = _tiny_pairs(0)
    root = tmp_path_factory.mktemp("srn_bundle") / "segrenorm_cyclegan_ct_harmonization"
    return copy_bundle_with_weights(BUNDLE, root, TINY, net), net


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """The simulator's training data with tissue maps (3 subjects per vendor: train / validation / test),
    64 x 64 x 4."""
    return ensure_simulated_dataset(tmp_path_factory.mktemp("srn_train") / "sim", subjects=3, size=64, slices=4,
                                    seed=0, progress=False).parent


# ----------------------------------------------------------------------------- metadata, configs, shipped weights
def test_metadata_and_configs_follow_the_paper():
    verify_bundle_metadata(BUNDLE)
    meta, inference, train = _json("metadata.json"), _json("inference.json"), _json("train.json")
    assert inference["pairs"] == PAIRS
    assert set(meta["source_domains"]) == set(meta["target_domains"]) == {d for p in PAIRS for d in p}
    assert meta["hu_window"] == [inference["hu_min"], inference["hu_max"]] == [train["hu_min"], train["hu_max"]]
    # paper 004: LSGAN, cycle x10, segmentation x1, no pool; Adam (0.5, 0.999), 2e-4 G/S, 1e-4 D; identity x5 as
    # the plain CycleGAN bundle (a CT choice: without it the first run shifted muscle and fat by about -240 HU)
    assert train["loss_weights"] == {"adv": 1.0, "cycle": 10.0, "identity": 5.0, "seg": 1.0}
    assert train["trainer"]["_target_"].endswith("SegRenormCycleGANTrainer")
    assert train["trainer"]["adversarial"] == "lsgan" and train["pool_size"] == 0
    assert (train["lr"], train["segmenter_lr"], train["discriminator_lr"]) == (2e-4, 2e-4, 1e-4)
    assert train["betas"] == [0.5, 0.999] and train["embed_dim"] == 512
    assert train["network_def"]["_target_"].endswith("SegRenormCycleGANPairs")
    assert train["train_dataset"]["tissue_labels"] == "datalist"
    # spectral-normalized PatchGAN with a 34 x 34 receptive field (n_layers 2)
    assert train["D_A"]["_target_"].endswith("SpectralPatchDiscriminator") and train["n_layers"] == 2
    d = SpectralPatchDiscriminator(ndf=8, n_layers=train["n_layers"])
    x = torch.zeros(1, 1, 96, 96, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows, cols = np.nonzero(x.grad[0, 0].abs().numpy())
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (34, 34)
    # the CPU configuration and inference build the same networks
    cpu = _json("train_cpu.json")
    for key in ("ngf", "n_blocks", "embed_dim", "extractor_features", "seg_features"):
        assert cpu[key] == inference[key], key
    assert [[train["source_domain"], train["target_domain"]],
            [_json("pair_siemens_b50f.json")["source_domain"], train["target_domain"]]] == PAIRS


def test_shipped_weights_hold_both_pairs_with_their_segmenters():
    state = torch.load(BUNDLE / "models" / "model.pt", weights_only=True)
    assert {k.split(".")[1] for k in state} == {pair_name(*p) for p in PAIRS}
    assert {k.split(".")[2] for k in state} == {"G_AB", "G_BA", "S_A", "S_B"}
    harmonizer = load_bundle_harmonizer(BUNDLE, device="cpu")
    assert set(harmonizer.domains) == {"ge_bone", "siemens_b30f", "siemens_b50f"}
    net = _pairs(_json("inference.json"))
    net.load_state_dict(state)  # strict
    hu = np.random.default_rng(0).uniform(-1000, 400, size=(1, 40, 44)).astype(np.float32)
    for source, target in (("ge_bone", "siemens_b30f"), ("siemens_b30f", "siemens_b50f")):
        got = harmonizer(hu, source, target)
        pair = net.pairs[pair_name(*next(p for p in PAIRS if {source, target} == set(p)))]
        np.testing.assert_allclose(got, by_hand(pair, source, hu), atol=0.05)


def test_the_shipped_generators_use_their_segmentation(tmp_path):
    """A flat segmentation (every class 1/C) instead of the segmenter's changes the trained output (by 4.4 HU on
    average for the 0.1.0 weights; exactly 0 if the generator ignored its condition)."""
    net = _pairs(_json("inference.json"))
    net.load_state_dict(torch.load(BUNDLE / "models" / "model.pt", weights_only=True))
    pair = net.pairs[pair_name(*PAIRS[0])].eval()
    sample = ensure_sample_volume(tmp_path / "bone.nii.gz", kernel="ge_bone", size=512, slices=1, seed=0, clinical=True)
    hu = read_volume(sample).array[:1, 128:384, 128:384]
    x = torch.from_numpy(np.clip((hu - HU_MIN) / ((HU_MAX - HU_MIN) / 2) - 1, -1, 1)).float()[:, None]
    with torch.no_grad():
        seg = torch.softmax(pair.S_A(x), dim=1)
        flat = torch.full_like(seg, 1.0 / seg.shape[1])
        diff = (pair.G_AB(x, seg) - pair.G_AB(x, flat)).abs().mean().item() * (HU_MAX - HU_MIN) / 2
    assert diff > 2.0, diff  # mean |difference| in HU


# ----------------------------------------------------------------------------- MONAI bundle commands and the CLI
def test_monai_bundle_run_export_and_verify(tmp_path, tiny_bundle, sim):
    root, net = tiny_bundle
    image = split_scan(sim, "ge_bone")
    out_nifti, ts = tmp_path / "out.nii.gz", tmp_path / "model.ts"
    logs = bundle_inference_commands(root, image, out_nifti, ts, cwd=tmp_path)
    assert "harmonized ge_bone -> siemens_b30f" in logs["run"] and "verified with no error" in logs["verify"]

    pair = net.pairs[pair_name(*PAIRS[0])]
    vin, vout = read_volume(image), read_volume(out_nifti)
    want = by_hand(pair, "ge_bone", vin.array)
    inside = vin.fov_mask if vin.fov_mask is not None else np.ones(vin.shape, bool)
    np.testing.assert_allclose(vout.array[inside], want[inside], atol=0.05)
    assert np.abs(vout.array - vin.array).max() > 10
    np.testing.assert_allclose(vout.affine_ras(), vin.affine_ras(), atol=1e-4)

    extra = {"metadata.json": "", "inference.json": ""}
    module = torch.jit.load(str(ts), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["hu_window"] == [HU_MIN, HU_MAX]
    hu = np.random.default_rng(3).uniform(-1024, 1200, size=(2, 32, 48)).astype(np.float32)
    with torch.no_grad():
        got = module(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(pair, "ge_bone", hu), atol=0.05)


def test_cli_harmonize_selects_the_pair_refuses_others_and_exports(tmp_path, tiny_bundle, sim, capsys):
    root, net = tiny_bundle
    b30f = split_scan(sim, "siemens_b30f")
    out = tmp_path / "to_b50f.nii.gz"
    assert main(["harmonize", "--bundle", str(root), "--input", b30f, "--out", str(out), "--source", "siemens_b30f",
                 "--target", "siemens_b50f", "--device", "cpu", "--quiet", "--trust_bundle"]) == 0
    assert "siemens_b30f -> siemens_b50f" in capsys.readouterr().out
    vin = read_volume(b30f)
    want = by_hand(net.pairs[pair_name(*PAIRS[1])], "siemens_b30f", vin.array)  # the pair's B -> A, with S_B
    inside = vin.fov_mask if vin.fov_mask is not None else np.ones(vin.shape, bool)
    np.testing.assert_allclose(read_volume(out).array[inside], want[inside], atol=0.05)

    # no pair joins GE BONE and Siemens B50f, GE STANDARD is no domain: one line each, nothing written
    for kernel, target in (("ge_bone", "siemens_b50f"), ("ge_standard", "siemens_b30f")):
        refused = tmp_path / f"refused_{kernel}.nii.gz"
        assert main(["harmonize", "--bundle", str(root), "--input", split_scan(sim, kernel), "--out", str(refused),
                     "--source", kernel, "--target", target, "--device", "cpu", "--quiet", "--trust_bundle"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and kernel in err and "Traceback" not in err
        assert not refused.exists()

    ts = tmp_path / "b50f.ts"
    assert main(["export", "--bundle", str(root), "--out", str(ts), "--source", "siemens_b50f", "--trust_bundle"]) == 0
    hu = read_volume(split_scan(sim, "siemens_b50f")).array
    with torch.no_grad():
        got = torch.jit.load(str(ts))(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(net.pairs[pair_name(*PAIRS[1])], "siemens_b50f", hu), atol=0.05)


def test_evaluate_workflow_end_to_end(tmp_path, tiny_bundle, sim):
    """inference.json + evaluate.json: the paired within-vendor path and both shipped paths to B30f."""
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
    assert len(harmonized) == 4
    assert "siemens_b50f vs siemens_b30f" in (eval_dir / "report_paired" / "report.md").read_text()
    assert (eval_dir / "report_to_siemens_b30f" / "per_scan.csv").is_file()


# ----------------------------------------------------------------------------- training
def test_train_both_pairs_with_the_segmentation_loss_resume_and_merge(simulated, tmp_path):
    train = str(CONFIGS / "train.json")
    runs = {}
    for name, extra in (("bone", []), ("b50f", [str(CONFIGS / "pair_siemens_b50f.json")])):
        out = tmp_path / name
        run_bundle([train, *extra, losses_dump(tmp_path, name)], "--dataset_dir", str(simulated), "--output_dir",
                   str(out), "--model_dir", str(out / "models"), "--subset_fraction", "0.5", "--val_every", "1",
                   *TINY_TRAIN, *KEEP_LR, "--max_epochs", "1")
        runs[name] = out
        losses = json.loads((tmp_path / f"{name}_losses.json").read_text())
        assert all(losses[f"G/{k}"] > 0 for k in ("seg_A", "seg_B", "seg_fake_A", "seg_fake_B", "cycle_A")), losses
        assert losses["G/identity_A"] > 0 and losses["G/identity_B"] > 0
    ckpt = torch.load(runs["bone"] / "checkpoints" / "checkpoint_1.pt", weights_only=True)
    assert {f"network/{n}" for n in NETWORKS} | {"optimizer/G"} <= set(ckpt)
    ranking = json.loads((runs["b50f"] / "models" / "checkpoint_ranking.json").read_text())
    assert set(ranking["ranking"][0]["metrics"]) >= {"mse_b50f_b30f", "anat_b50f_b30f"}
    for name, pair in (("bone", PAIRS[0]), ("b50f", PAIRS[1])):
        state = torch.load(runs[name] / "models" / "model.pt", weights_only=True)
        assert {k.split(".")[1] for k in state} == {pair_name(*pair)}
        if name == "bone":  # the selected model holds the checkpoint's segmenters and generators
            for n in ("G_AB", "S_A", "S_B"):
                part = {k.split(f".{n}.", 1)[1]: v for k, v in state.items() if f".{n}." in k}
                assert all(torch.equal(part[k], v) for k, v in ckpt[f"network/{n}"].items()), n

    log = run_bundle([train], "--dataset_dir", str(simulated), "--output_dir", str(runs["bone"]), "--model_dir",
                     str(runs["bone"] / "models"), "--subset_fraction", "0.5", "--val_every", "1", *TINY_TRAIN,
                     *KEEP_LR, "--max_epochs", "2", "--resume", "auto")
    assert "resumed from" in log
    last = torch.load(runs["bone"] / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    # the segmenters train: S_A moved in epoch 2 (kept at the initial lr; the linear decay reaches 0 at max_epochs)
    assert last["engine"]["iteration"] == 2
    assert any(not torch.equal(v, ckpt["network/S_A"][k]) for k, v in last["network/S_A"].items())

    merged = tmp_path / "model.pt"
    assert main(["merge-weights", "--paths", f"{runs['bone'] / 'models' / 'model.pt'},"
                 f"{runs['b50f'] / 'models' / 'model.pt'}", "--out", str(merged)]) == 0
    _pairs(TINY).load_state_dict(torch.load(merged, weights_only=True))  # strict: exactly the bundle's two pairs


def test_torchrun_two_gloo_ranks_end_identical(simulated, tmp_path):
    # 2 items per epoch sharded over 2 ranks, batch 1 -> 1 iteration per rank; the segmenters synchronise too
    train_two_gloo_ranks([str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")], tmp_path,
                         "--dataset_dir", str(simulated), *TINY_TRAIN, "--batch_size", "1", "--subset_fraction", "0.5",
                         networks=NETWORKS)
