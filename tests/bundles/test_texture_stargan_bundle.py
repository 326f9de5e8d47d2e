"""The texture-aware StarGAN v2 bundle (paper 003): metadata and configs (the paper's settings, the baseline ablation),
the shipped weights with their stored mean styles, inference.json through ``python -m monai.bundle`` (run,
ckpt_export, verify_net_in_out; reference-guided mode), ``ctharmonize harmonize`` between any two of the four domains,
evaluate.json, train.json (texture and baseline, resume after a kill with the EMA state intact) and
multi_gpu_train.json under torchrun with gloo.

Expected images are computed by hand: numpy reflect-padding to the generator's multiple, numpy scaling of
[-2048, 3072] HU to [-1, 1], then G(x, s) with s the target's stored mean style (or the style encoder's mean over
reference slices).
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
from ctharmonize.losses import GLCM_ANGLES, GLCM_DISTANCES
from ctharmonize.networks import MappingNetwork, StarGANGenerator, StarGANTranslator, StyleEncoder

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
BUNDLE = REPO / "bundles" / "texture_stargan_ct_harmonization"
CONFIGS = BUNDLE / "configs"
HU_MIN, HU_MAX = -2048.0, 3072.0
DOMAINS = ["siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard"]
TINY = {"dim_in": 4, "max_conv_dim": 8, "n_down": 2, "mapping_hidden_dim": 16}
TINY_TRAIN = [*(a for k, v in TINY.items() for a in (f"--{k}", json.dumps(v))), "--roi_size", "[32, 32]",
              "--batch_size", "1", "--num_workers", "0", "--mean_styles", "200", "--val_every", "1"]
NETWORKS = ("G", "F", "E", "D")


def _json(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _translator(sizes: dict) -> StarGANTranslator:
    kw = {"style_dim": 64, "dim_in": sizes["dim_in"], "max_conv_dim": sizes["max_conv_dim"], "n_down": sizes["n_down"]}
    residual = bool(_json("inference.json")["residual_generator"])
    return StarGANTranslator(DOMAINS, StarGANGenerator(**kw, residual=residual),
                             MappingNetwork(latent_dim=16, style_dim=64, num_domains=4,
                                            hidden_dim=sizes["mapping_hidden_dim"]),
                             StyleEncoder(num_domains=4, **kw), style_dim=64)


def _tiny(seed: int) -> StarGANTranslator:
    """Random tiny weights; the residual generator's zero-initialised last convolution randomised too (else G = x)."""
    torch.manual_seed(seed)
    t = _translator(TINY)
    torch.nn.init.normal_(t.G.to_rgb[2].weight, std=0.5)
    return t.set_mean_styles(n=500, seed=0)


def _unit(hu: np.ndarray) -> np.ndarray:
    return (np.clip(hu.astype(np.float64), HU_MIN, HU_MAX) - HU_MIN) / ((HU_MAX - HU_MIN) / 2.0) - 1.0


def by_hand(t: StarGANTranslator, hu: np.ndarray, style: torch.Tensor) -> np.ndarray:
    """Per slice: reflect-pad (numpy) to the generator's multiple, scale, G(x, style), clamp, rescale, crop."""
    m = t.spatial_multiple
    pad = ((0, (-hu.shape[1]) % m), (0, (-hu.shape[2]) % m))
    out = np.empty(hu.shape, np.float64)
    g = t.G.eval()
    for k in range(hu.shape[0]):
        x = torch.from_numpy(_unit(np.pad(hu[k], pad, mode="reflect"))).float()[None, None]
        with torch.no_grad():
            y = g(x, style.reshape(1, -1)).double().numpy()[0, 0]
        out[k] = ((np.clip(y, -1, 1) + 1.0) * (HU_MAX - HU_MIN) / 2.0 + HU_MIN)[: hu.shape[1], : hu.shape[2]]
    return out


def _assert_written(got: np.ndarray, want: np.ndarray, volume) -> None:
    """``got`` (read back from a written volume) equals ``want`` inside the field of view, except where ``want`` is
    the window's floor: a written -2048 HU reads back as padding (-1024 HU), and the random tiny networks saturate."""
    inside = volume.fov_mask if volume.fov_mask is not None else np.ones(volume.shape, bool)
    inside = inside & (want > HU_MIN + 1.0)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(got[inside], want[inside], atol=0.05)


def _style(t: StarGANTranslator, target: str) -> torch.Tensor:
    return t.mean_styles[DOMAINS.index(target)]


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """A tiny simulated test split: 2 subjects per vendor, 48 x 48 x 2."""
    return write_test_split(tmp_path_factory.mktemp("stargan_sim"), subjects_per_vendor=2, size=48, slices=2)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> tuple[Path, StarGANTranslator]:
    """The bundle's configs with random tiny weights and their mean styles, no trained spacing range."""
    net = _tiny(0)
    root = tmp_path_factory.mktemp("stargan_bundle") / "texture_stargan_ct_harmonization"
    return copy_bundle_with_weights(BUNDLE, root, TINY, net), net


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """The simulator's training data (3 subjects per vendor: train / validation / test), 64 x 64 x 4."""
    return ensure_simulated_dataset(tmp_path_factory.mktemp("stargan_train") / "sim", subjects=3, size=64, slices=4,
                                    seed=0, progress=False).parent


# ----------------------------------------------------------------------------- metadata, configs, shipped weights
def test_metadata_and_configs_follow_the_paper():
    verify_bundle_metadata(BUNDLE)
    meta, inference, train = _json("metadata.json"), _json("inference.json"), _json("train.json")
    assert inference["domains"] == train["domains"] == DOMAINS
    assert set(meta["source_domains"]) == set(meta["target_domains"]) == set(DOMAINS)
    assert meta["hu_window"] == [inference["hu_min"], inference["hu_max"]] == [train["hu_min"], train["hu_max"]]
    # StarGAN v2 at 512^2 (paper 003's slices): dim_in 2^14 / 512 = 32, 5 downsamplings to a 16 x 16 bottleneck,
    # z of 16, style of 64, mapping hidden 512; full native-resolution slices, never resized
    assert (train["dim_in"], train["n_down"], train["max_conv_dim"]) == (32, 5, 512)
    assert (train["latent_dim"], train["style_dim"], train["mapping_hidden_dim"]) == (16, 64, 512)
    assert train["roi_size"] is None and train["sample_data"]["size"] == 512
    # losses: non-saturating adversarial, R1 gamma 1, style, diversity (decaying over 1e5 iterations), cycle, texture 1
    assert train["trainer"]["_target_"].endswith("StarGANTrainer")
    assert train["loss_weights"] == {"adv": 1.0, "sty": 1.0, "ds": 1.0, "cyc": 1.0, "txt": "@texture_weight",
                                     "idt": "@identity_weight"}
    assert train["texture_weight"] == 1.0 and train["discriminator_loss_weights"]["r1"] == 1.0
    # plus an own-style identity term x1, a CT choice as in the CycleGAN bundles (HU values are the measurement)
    assert train["identity_weight"] == 1.0
    # the residual generator (G starts as the identity; a CT choice), the same in inference
    assert train["residual_generator"] is True and inference["residual_generator"] is True
    assert train["generator_def"]["residual"] == inference["network_def"]["generator"]["residual"] == "@residual_generator"
    assert train["ds_iter"] == train["iterations"] == 100000
    # EMA 0.999 of G, F, E; Adam (0, 0.99), lr 1e-4, mapping lr 1e-6; batch 8 = 2 slices x 4 domains
    assert train["trainer"]["ema"] == {"G": "@ema_decay", "F": "@ema_decay", "E": "@ema_decay"}
    assert train["ema_decay"] == 0.999
    assert (train["lr"], train["mapping_lr"], train["betas"]) == (1e-4, 1e-6, [0.0, 0.99])
    assert train["batch_size"] * len(train["domains"]) == 8
    # the multi-scale texture loss: the bounded aggregation by default, the 4 x 4 offsets of the paper
    assert train["texture_loss"]["_target_"].endswith("MultiScaleTextureLoss") and train["texture_mode"] == "bounded"
    assert tuple(GLCM_DISTANCES) == (1, 3, 5, 7) and tuple(GLCM_ANGLES) == (0.0, 45.0, 90.0, 135.0)
    # the ablation: the baseline StarGAN v2 without the texture loss
    assert _json("baseline.json")["texture_weight"] == 0.0 and _json("baseline.json")["texture_loss"] is None
    # the CPU configuration and inference build the same networks
    cpu = _json("train_cpu.json")
    for key in ("dim_in", "max_conv_dim", "n_down"):
        assert cpu[key] == inference[key], key
    assert train["mapping_hidden_dim"] == inference["mapping_hidden_dim"]


def test_shipped_weights_hold_the_mean_styles_and_translate_between_any_two_domains():
    state = torch.load(BUNDLE / "models" / "model.pt", weights_only=True)
    assert {k.split(".")[0] for k in state} == {"G", "F", "E", "mean_styles", "styles_ready"}
    assert bool(state["styles_ready"]) and state["mean_styles"].shape == (4, 64)
    net = _translator(_json("inference.json"))
    net.load_state_dict(state)  # strict
    # the stored styles are the mapping network's mean styles, recomputed here from the shipped F
    recomputed = _translator(_json("inference.json"))
    recomputed.load_state_dict(state)
    recomputed.set_mean_styles(n=int(_json("train.json")["mean_styles"]), seed=0)
    torch.testing.assert_close(recomputed.mean_styles, state["mean_styles"], atol=1e-5, rtol=1e-5)
    harmonizer = load_bundle_harmonizer(BUNDLE, device="cpu")
    assert set(harmonizer.domains) == set(DOMAINS)
    hu = np.random.default_rng(0).uniform(-1000, 400, size=(1, 40, 44)).astype(np.float32)
    for source, target in (("ge_bone", "siemens_b30f"), ("siemens_b30f", "ge_standard")):
        got = harmonizer(hu, source, target)
        np.testing.assert_allclose(got, by_hand(net, hu, _style(net, target)), atol=0.05)
        np.testing.assert_array_equal(harmonizer(hu, source, target), got)  # deterministic


# ----------------------------------------------------------------------------- MONAI bundle commands and the CLI
def test_monai_bundle_run_export_verify_and_reference_mode(tmp_path, tiny_bundle, sim):
    root, net = tiny_bundle
    image = split_scan(sim, "ge_bone")
    out_nifti, ts = tmp_path / "out.nii.gz", tmp_path / "model.ts"
    logs = bundle_inference_commands(root, image, out_nifti, ts, cwd=tmp_path)
    assert "harmonized ge_bone -> siemens_b30f" in logs["run"] and "verified with no error" in logs["verify"]

    vin, vout = read_volume(image), read_volume(out_nifti)
    _assert_written(vout.array, by_hand(net, vin.array, _style(net, "siemens_b30f")), vin)
    np.testing.assert_allclose(vout.affine_ras(), vin.affine_ras(), atol=1e-4)

    module = torch.jit.load(str(ts))
    hu = np.random.default_rng(3).uniform(-1024, 1200, size=(2, 32, 48)).astype(np.float32)
    with torch.no_grad():
        got = module(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(net, hu, _style(net, "siemens_b30f")), atol=0.05)

    # reference-guided: the style encoder's mean style over the slices of a B30f scan
    reference = split_scan(sim, "siemens_b30f")
    out_ref = tmp_path / "ref.nii.gz"
    run_bundle([str(root / "configs" / "inference.json")], "--meta_file", str(root / "configs" / "metadata.json"),
               "--input_path", image, "--output_path", str(out_ref), "--reference_path", reference, "--device", "cpu",
               cwd=tmp_path)
    ref = torch.from_numpy(_unit(read_volume(reference).array)).float()[:, None]
    with torch.no_grad():
        style = net.E(ref, torch.full((ref.shape[0],), DOMAINS.index("siemens_b30f"))).mean(0)
    got = read_volume(out_ref).array
    _assert_written(got, by_hand(net, vin.array, style), vin)
    assert np.abs(got - vout.array).max() > 1.0  # not the mean style's output


def test_cli_harmonize_between_any_two_domains_refuses_unknown_and_exports(tmp_path, tiny_bundle, sim, capsys):
    root, net = tiny_bundle
    for source, target in (("ge_standard", "siemens_b50f"), ("siemens_b30f", "ge_bone")):
        out = tmp_path / f"{source}_to_{target}.nii.gz"
        assert main(["harmonize", "--bundle", str(root), "--input", split_scan(sim, source), "--out", str(out),
                     "--source", source, "--target", target, "--device", "cpu", "--quiet", "--trust_bundle"]) == 0
        assert f"{source} -> {target}" in capsys.readouterr().out
        vin = read_volume(split_scan(sim, source))
        _assert_written(read_volume(out).array, by_hand(net, vin.array, _style(net, target)), vin)

    refused = tmp_path / "refused.nii.gz"
    assert main(["harmonize", "--bundle", str(root), "--input", split_scan(sim, "ge_bone"), "--out", str(refused),
                 "--source", "ge_bone", "--target", "philips_yb", "--device", "cpu", "--quiet", "--trust_bundle"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "philips_yb" in err and "Traceback" not in err
    assert not refused.exists()

    ts = tmp_path / "std.ts"
    assert main(["export", "--bundle", str(root), "--out", str(ts), "--source", "ge_standard", "--target",
                 "siemens_b50f", "--trust_bundle"]) == 0
    hu = read_volume(split_scan(sim, "ge_standard")).array
    with torch.no_grad():
        got = torch.jit.load(str(ts))(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(net, hu, _style(net, "siemens_b50f")), atol=0.05)


def test_evaluate_workflow_end_to_end(tmp_path, tiny_bundle, sim):
    """inference.json + evaluate.json: both within-vendor paths and every kernel to B30f."""
    from monai.bundle import run

    root, _ = tiny_bundle
    eval_dir = tmp_path / "eval"
    configs = root / "configs"
    run(config_file=[str(configs / "inference.json"), str(configs / "evaluate.json")],
        meta_file=str(configs / "metadata.json"), logging_file=False, bundle_root=str(root), datalist=str(sim),
        eval_dir=str(eval_dir), n_resamples=20, progress=False, device="cpu")
    harmonized = sorted(p.name for p in (eval_dir / "harmonized").iterdir() if p.name.endswith(".nii.gz"))
    for path in ("ge_bone_to_ge_standard", "ge_bone_to_siemens_b30f", "ge_standard_to_siemens_b30f",
                 "siemens_b50f_to_siemens_b30f"):
        assert sum(n.endswith(path + ".nii.gz") for n in harmonized) == 2, path
    report = (eval_dir / "report_paired" / "report.md").read_text()
    assert "siemens_b50f vs siemens_b30f" in report and "ge_bone vs ge_standard" in report


# ----------------------------------------------------------------------------- training
def _train(simulated: Path, out: Path, *configs: str, extra: tuple[str, ...] = ()) -> str:
    return run_bundle([str(CONFIGS / "train.json"), str(CONFIGS / "train_cpu.json"), *configs], "--dataset_dir",
                      str(simulated), "--output_dir", str(out), "--model_dir", str(out / "models"), "--subset_fraction",
                      "0.5", *TINY_TRAIN, *extra)


def test_train_texture_and_baseline_and_resume_with_the_ema_intact(simulated, tmp_path):
    """One epoch is 2 iterations (4 training slices per domain, half of them). The texture model logs txt terms, the
    baseline none; a run killed after epoch 1 and resumed ends with the same networks and EMA copies as an
    uninterrupted 2-epoch run."""
    runs = {}
    for name, extra in (("texture", []), ("baseline", [str(CONFIGS / "baseline.json")])):
        out = tmp_path / name
        _train(simulated, out, *extra, losses_dump(tmp_path, name), extra=("--iterations", "2", "--ds_iter", "4"))
        runs[name] = out
        losses = json.loads((tmp_path / f"{name}_losses.json").read_text())
        for term in ("adv_latent", "adv_ref", "sty_latent", "cyc_ref", "ds_latent", "idt"):
            assert f"G/{term}" in losses, (name, sorted(losses))
        assert ("G/txt_latent" in losses and losses["G/txt_latent"] > 0) == (name == "texture"), (name, losses)
        assert "D/r1" in losses
    ckpt = torch.load(runs["texture"] / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    assert {"ema/G", "ema/F", "ema/E", "network/texture", "network/D"} <= set(ckpt)
    assert "network/texture" not in torch.load(runs["baseline"] / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    # the selected model.pt is the translator over the EMA networks, with mean styles of the EMA mapping network
    model = torch.load(runs["texture"] / "models" / "model.pt", weights_only=True)
    assert bool(model["styles_ready"])
    for name in ("G", "F", "E"):
        ema = {k[len("module."):]: v for k, v in ckpt[f"ema/{name}"].items() if k.startswith("module.")}
        for k, v in ema.items():
            assert torch.equal(model[f"{name}.{k}"], v), f"{name}.{k}"
    net = _translator(TINY)
    net.load_state_dict(model)
    styles = net.mean_styles.clone()
    torch.testing.assert_close(net.set_mean_styles(n=200, seed=0).mean_styles, styles)

    whole = tmp_path / "whole"
    _train(simulated, whole, extra=("--iterations", "4", "--ds_iter", "4"))
    log = _train(simulated, runs["texture"], extra=("--iterations", "4", "--ds_iter", "4", "--resume", "auto"))
    assert "resumed from" in log
    a = torch.load(whole / "checkpoints" / "checkpoint_4.pt", weights_only=True)  # named by iteration
    b = torch.load(runs["texture"] / "checkpoints" / "checkpoint_4.pt", weights_only=True)
    assert a["engine"]["iteration"] == b["engine"]["iteration"] == 4
    for key in ("ema/G", "ema/F", "ema/E", "network/G", "network/D"):
        for k, v in a[key].items():
            torch.testing.assert_close(b[key][k], v, msg=f"{key} {k}")
    assert any(not torch.equal(v, ckpt["ema/G"][k]) for k, v in b["ema/G"].items() if k != "n_averaged")


def test_torchrun_two_gloo_ranks_end_identical(simulated, tmp_path):
    # 2 items per epoch sharded over 2 ranks, batch 1 -> 1 iteration per rank
    train_two_gloo_ranks([str(CONFIGS / "train.json"), str(CONFIGS / "train_cpu.json"),
                          str(CONFIGS / "multi_gpu_train.json")], tmp_path, "--dataset_dir", str(simulated),
                         *TINY_TRAIN, "--subset_fraction", "0.5", "--iterations", "1", networks=NETWORKS)
