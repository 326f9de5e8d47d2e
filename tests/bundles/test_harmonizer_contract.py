"""The harmonizer contract end to end with a method the tools have no code for: a tiny CycleGAN pair.

A test bundle (written to a tmp folder) holds a ``CycleGANPair`` of two ``ResnetGenerator``s between
GE BONE and GE STANDARD, trained for two epochs by ``CycleGANTrainer``. Its training checkpoints
(``network/G_AB``, ``network/G_BA``) go through ``ctharmonize select-checkpoint --bundle``, the
selected weights through ``ctharmonize harmonize``, ``evaluate --bundle`` and ``export``. Every
result is checked against the generators run by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ctharmonize.cli import main
from ctharmonize.engines import CycleGANTrainer
from ctharmonize.errors import ConfigError
from ctharmonize.evaluation.checkpoint_selection import ValidationSet
from ctharmonize.inference import SliceHarmonizer, load_bundle_harmonizer
from ctharmonize.io import read_volume
from ctharmonize.networks import CycleGANPair, PatchDiscriminator, ResnetGenerator, check_translator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multipath_sim_data import write_test_split  # noqa: E402
from tiny_bundle_config import inference_config  # noqa: E402

DOMAINS = ["ge_bone", "ge_standard"]
INFERENCE = inference_config(DOMAINS, "ge_standard")


def _pair(seed: int) -> CycleGANPair:
    torch.manual_seed(seed)
    return CycleGANPair(ResnetGenerator(ngf=4, n_blocks=1), ResnetGenerator(ngf=4, n_blocks=1), DOMAINS)


def by_hand(generator: torch.nn.Module, hu: np.ndarray) -> np.ndarray:
    """Independent reference: per slice, reflect-pad to 4 with numpy, clip and scale, run, rescale (float64)."""
    generator = generator.eval()
    pad = ((0, (-hu.shape[1]) % 4), (0, (-hu.shape[2]) % 4))
    out = np.empty(hu.shape, np.float64)
    for k in range(hu.shape[0]):
        x = (np.clip(np.pad(hu[k].astype(np.float64), pad, mode="reflect"), -1024, 3072) + 1024) / 2048.0 - 1.0
        with torch.no_grad():
            y = generator(torch.from_numpy(x).float()[None, None]).double().numpy()[0, 0]
        out[k] = ((np.clip(y, -1, 1) + 1.0) * 2048.0 - 1024.0)[: hu.shape[1], : hu.shape[2]]
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    path = write_test_split(folder, subjects_per_vendor=2, size=30, slices=2)  # 30 px: padded to 32
    doc = json.loads(path.read_text())
    doc["data"] = [e for e in doc["data"] if e["vendor"] == "ge"]
    for e in doc["data"]:
        e["split"] = "validation"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A bundle folder and the training checkpoints of a 2-epoch CycleGAN run (random 32x32 batches)."""
    root = tmp_path_factory.mktemp("bundles") / "tiny_cyclegan"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "inference.json").write_text(json.dumps(INFERENCE))
    (root / "configs" / "metadata.json").write_text(json.dumps({"name": "tiny cyclegan", "version": "0.0.1"}))
    pair = _pair(0)
    torch.manual_seed(1)
    d_a, d_b = PatchDiscriminator(1, ndf=4, n_layers=1), PatchDiscriminator(1, ndf=4, n_layers=1)
    params = [*pair.G_AB.parameters(), *pair.G_BA.parameters()]
    batches = [{"A": torch.rand(2, 1, 32, 32) * 2 - 1, "B": torch.rand(2, 1, 32, 32) * 2 - 1} for _ in range(2)]
    trainer = CycleGANTrainer(
        device="cpu", max_epochs=2, train_data_loader=batches,
        generators={"G_AB": pair.G_AB, "G_BA": pair.G_BA}, discriminators={"D_A": d_a, "D_B": d_b},
        optimizers={"G": torch.optim.Adam(params, lr=1e-2), "D_A": torch.optim.Adam(d_a.parameters(), lr=1e-2),
                    "D_B": torch.optim.Adam(d_b.parameters(), lr=1e-2)},
        checkpoint_dir=str(root / "train_output"), keep_last=2,
    )
    trainer.run()
    checkpoints = sorted((root / "train_output").glob("checkpoint*.pt"))
    assert len(checkpoints) == 2
    return root, checkpoints


def _pair_from_checkpoint(path: Path) -> CycleGANPair:
    """Load a training checkpoint into a fresh pair by hand (not through the loader under test)."""
    ckpt = torch.load(path, weights_only=True)
    pair = _pair(99)
    pair.G_AB.load_state_dict(ckpt["network/G_AB"])
    pair.G_BA.load_state_dict(ckpt["network/G_BA"])
    return pair


def test_cycle_gan_pair_is_a_translator():
    pair = _pair(0)
    assert check_translator(pair) is pair and pair.domains == tuple(DOMAINS) and pair.spatial_multiple == 4
    x = torch.rand(1, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(pair(x, "ge_bone", "ge_standard"), pair.G_AB(x))
    torch.testing.assert_close(pair(x, "ge_standard", "ge_bone"), pair.G_BA(x))
    torch.testing.assert_close(pair(x, "ge_bone", "ge_bone"), x)
    with pytest.raises(ConfigError, match="not a translator: it lacks domains, spatial_multiple, path"):
        SliceHarmonizer(torch.nn.Identity())


def test_select_checkpoint_harmonize_evaluate_export_with_no_cyclegan_code(trained, data, tmp_path, capsys):
    root, checkpoints = trained
    selected = tmp_path / "selected"
    assert main(["select-checkpoint", "--checkpoints", str(root / "train_output"), "--datalist", str(data),
                 "--bundle", str(root), "--trust_bundle", "--out", str(selected), "--reference_kernel", "ge_standard",
                 "--paths", '[["ge_bone", "ge_standard"]]', "--weights", '{"mse_bone_standard": 1.0}',
                 "--device", "cpu"]) == 0, capsys.readouterr().err
    ranking = json.loads((selected / "checkpoint_ranking.json").read_text())["ranking"]
    for row in ranking:  # each checkpoint's score equals the one of the pair loaded by hand
        validation = ValidationSet(str(data), "ge_standard", [["ge_bone", "ge_standard"]], split="validation")
        want = validation.metrics(SliceHarmonizer(_pair_from_checkpoint(Path(row["checkpoint"])), device="cpu"))
        assert row["metrics"]["mse_bone_standard"] == pytest.approx(want["mse_bone_standard"], abs=1e-9)
    best = Path(ranking[0]["checkpoint"])
    assert (selected / "model.pt").read_bytes() == best.read_bytes()

    # the selected training checkpoint as the bundle's model.pt: checkpoint_networks names G_AB, G_BA
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / "model.pt").write_bytes(best.read_bytes())
    pair = _pair_from_checkpoint(best)
    bone = [e for e in json.loads(data.read_text())["data"] if e["kernel"] == "ge_bone"][0]
    image = data.parent / bone["image"]
    out = tmp_path / "harmonized.nii.gz"
    assert main(["harmonize", "--bundle", str(root), "--input", str(image), "--out", str(out), "--trust_bundle",
                 "--quiet"]) == 0
    assert "ge_bone -> ge_standard" in capsys.readouterr().out  # the bundle's target_kernel is the default
    vin, vout = read_volume(image), read_volume(out)
    want = by_hand(pair.G_AB, vin.array)
    assert vin.fov_mask is None  # a NIfTI without FOV information: every voxel is harmonized
    np.testing.assert_allclose(vout.array, want, atol=0.05)
    assert np.abs(vout.array - vin.array).max() > 10

    report = tmp_path / "report"
    assert main(["evaluate", "--bundle", str(root), "--trust_bundle", "--datalist", str(data), "--out", str(report),
                 "--reference_kernel", "ge_standard", "--n_resamples", "10", "--noprogress"]) == 0
    rows = (report / "per_scan.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and (report / "report.md").is_file()
    harmonized = sorted((tmp_path / "report_harmonized").glob("*.nii.gz"))
    assert [p.name.endswith("ge_bone_to_ge_standard.nii.gz") for p in harmonized] == [True, True]
    again = read_volume(next(p for p in harmonized if bone["subject"] in p.name))
    np.testing.assert_allclose(again.array, vout.array, atol=1e-4)

    ts = tmp_path / "bone_to_standard.ts"
    assert main(["export", "--bundle", str(root), "--trust_bundle", "--source", "ge_bone", "--out", str(ts)]) == 0
    extra = {"metadata.json": ""}
    module = torch.jit.load(str(ts), _extra_files=extra)
    info = json.loads(extra["metadata.json"])["ctharmonize_export"]
    assert info["source"] == "ge_bone" and info["target"] == "ge_standard" and info["spatial_multiple"] == 4
    hu = np.random.default_rng(0).uniform(-1024, 1500, size=(2, 32, 32)).astype(np.float32)
    with torch.no_grad():
        got = module(torch.from_numpy(hu)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(got, by_hand(pair.G_AB, hu), atol=0.05)


def test_bundle_harmonizer_errors_name_the_config(trained, tmp_path):
    root, checkpoints = trained
    broken = tmp_path / "no_harmonizer"
    (broken / "configs").mkdir(parents=True)
    config = {k: v for k, v in INFERENCE.items() if k != "harmonizer"}
    (broken / "configs" / "inference.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"inference.json: defines no 'harmonizer' item") as err:
        load_bundle_harmonizer(broken, trust=True)
    assert "\n" not in str(err.value)
    assert load_bundle_harmonizer(root, trust=True, weights=checkpoints[0]).domains == tuple(DOMAINS)


def test_cli_refuses_ambiguous_harmonizer_choices(trained, data, tmp_path, capsys):
    root, _ = trained
    assert main(["evaluate", "--datalist", str(data), "--out", str(tmp_path / "r"), "--target", "ge_standard"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--target and --harmonized_dir need --bundle" in err
    base = ["select-checkpoint", "--checkpoints", str(root / "train_output"), "--datalist", str(data),
            "--out", str(tmp_path / "s")]
    for extra in ([], ["--bundle", str(root), "--harmonizer", "pkg.mod:factory"]):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "exactly one of --bundle" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()
