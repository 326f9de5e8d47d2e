"""Checkpoint selection (paper 000 eq. 1) with a toy harmonizer whose quality is known per epoch.

The toy network holds one parameter ``alpha``; its harmonizer blends the input towards an
oracle soft-kernel image: ``out = (1 - alpha) * input + alpha * oracle``. With alpha = 1 the
harmonized LAA equals the reference exactly (MSE = 0 and KL = 0), so that epoch must win and
``model.pt`` must hold its state, even when later epochs are worse.
"""

import hashlib
import json

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from ctharmonize.errors import ConfigError
from ctharmonize.evaluation.checkpoint_selection import (
    EmphysemaCheckpointSelector,
    ValidationSet,
    select_checkpoint,
)
from ctharmonize.io import Volume, read_volume, write_volume

SHAPE = (3, 16, 18)
SPACING = (0.8, 0.8, 2.5)
ALPHAS = [0.0, 0.6, 1.0, 0.8]  # epoch 3 is perfect


def _lung() -> np.ndarray:
    lung = np.zeros(SHAPE, np.uint8)
    lung[:, 3:13, 2:8] = 1
    lung[:, 3:13, 10:16] = 2
    return lung


def _laa(hu, lung):  # independent LAA-950 (%) over both lungs
    inside = lung > 0
    return 100.0 * np.count_nonzero(hu[inside] < -950) / np.count_nonzero(inside)


class Toy(torch.nn.Module):
    def __init__(self, alpha: float = 0.0):
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.tensor(float(alpha)))


class OracleHarmonizer:
    def __init__(self, network: Toy, oracle: dict):
        self.network = network
        self.oracle = oracle

    def __call__(self, hu, source, target):
        assert target == "siemens_b30f"
        a = float(self.network.alpha.detach())
        return ((1 - a) * hu + a * self.oracle[hashlib.sha1(hu.tobytes()).hexdigest()]).astype(np.float32)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    rng = np.random.default_rng(0)
    lung = _lung()
    write_volume(Volume(lung.astype(np.float32), SPACING), root / "lung.nii.gz")
    entries, soft_by_index = [], {}
    for vendor, (soft_k, sharp_k) in (("siemens", ("siemens_b30f", "siemens_b50f")), ("ge", ("ge_standard", "ge_bone"))):
        for i in range(3):
            soft = np.full(SHAPE, 40.0, np.float32)
            soft[lung > 0] = rng.uniform(-1010 + 10 * i, -880, size=int((lung > 0).sum()))
            sharp = soft + rng.normal(-20, 80, size=SHAPE).astype(np.float32) * (lung > 0)
            for kernel, arr in ((soft_k, soft), (sharp_k, sharp)):
                path = root / f"{vendor}{i}_{kernel}.nii.gz"
                write_volume(Volume(arr.astype(np.float32), SPACING), path)
                entries.append({"image": str(path), "kernel": kernel, "subject": f"{vendor}{i}", "lung": str(root / "lung.nii.gz"),
                                "split": "validation"})
            if vendor == "siemens":
                soft_by_index[i] = soft
    # the oracle maps each validation image (as read back) to Siemens subject i's B30f image
    oracle, laa = {}, {}
    for e in entries:
        i = int(e["subject"][-1])
        hu = read_volume(e["image"]).array
        ref = read_volume(str(root / f"siemens{i}_siemens_b30f.nii.gz")).array
        oracle[hashlib.sha1(hu.tobytes()).hexdigest()] = ref
        laa[(e["subject"], e["kernel"])] = _laa(hu, lung)
    return root, entries, oracle, laa


def test_validation_metrics_against_independent_laa(cohort):
    root, entries, oracle, laa = cohort
    val = ValidationSet(entries, split="validation")
    assert val.metric_names == ["kl_bone_b30f", "kl_standard_b30f", "mse_b50f_b30f", "mld_b50f_b30f"]
    m0 = val.metrics(OracleHarmonizer(Toy(0.0), oracle))
    expected = np.mean([(laa[(f"siemens{i}", "siemens_b50f")] - laa[(f"siemens{i}", "siemens_b30f")]) ** 2 for i in range(3)])
    assert m0["mse_b50f_b30f"] == pytest.approx(expected)
    assert m0["mse_b50f_b30f"] > 1.0
    lung = read_volume(str(root / "lung.nii.gz")).array > 0

    def mean_in_lung(name):
        return read_volume(str(root / name)).array[lung].astype(float).mean()

    mld = [abs(mean_in_lung(f"siemens{i}_siemens_b50f.nii.gz") - mean_in_lung(f"siemens{i}_siemens_b30f.nii.gz"))
           for i in range(3)]
    assert m0["mld_b50f_b30f"] == pytest.approx(np.mean(mld), rel=1e-4)  # the sharp images are ~20 HU darker
    assert 10.0 < m0["mld_b50f_b30f"] < 30.0
    assert m0["kl_bone_b30f"] > 0.1
    m1 = val.metrics(OracleHarmonizer(Toy(1.0), oracle))
    assert m1 == pytest.approx({"mse_b50f_b30f": 0.0, "mld_b50f_b30f": 0.0, "kl_bone_b30f": 0.0, "kl_standard_b30f": 0.0},
                               abs=1e-6)


def test_selector_handler_keeps_best_epoch(cohort, tmp_path):
    root, entries, oracle, _ = cohort
    net = Toy()
    selector = EmphysemaCheckpointSelector(entries, OracleHarmonizer(net, oracle), tmp_path / "sel", network=net,
                                           keep_top=2)
    engine = Engine(lambda e, batch: None)

    @engine.on(Events.EPOCH_STARTED)
    def _train(e):  # "training" sets the weights of this epoch
        with torch.no_grad():
            net.alpha.fill_(ALPHAS[e.state.epoch - 1])

    selector.attach(engine)
    engine.run([0], max_epochs=4)
    assert [r["epoch"] for r in selector.ranking][0] == 3
    assert selector.model_epoch == 3
    state = torch.load(tmp_path / "sel" / "model.pt")
    assert float(state["alpha"]) == 1.0
    assert (tmp_path / "sel" / "checkpoint_ranking.csv").read_text().splitlines()[1].startswith("1,3,")
    assert len(list((tmp_path / "sel" / "candidates").glob("*.pt"))) == 2
    # epochs 1 (alpha = 0) and 2 tie last: epoch 1 is worst on the LAA MSE, epoch 2 on the GE STANDARD KL,
    # and the BONE KL is saturated for both (equal up to float noise, which must not break the tie)
    assert [(r["epoch"], r["rank"]) for r in selector.ranking[2:]] == [(1, 3), (2, 3)]
    assert selector.ranking[2]["ranks"]["kl_bone_b30f"] == selector.ranking[3]["ranks"]["kl_bone_b30f"] == 3.5
    assert net.training  # validated in eval mode, training mode restored


def test_select_checkpoint_from_files(cohort, tmp_path):
    root, entries, oracle, _ = cohort
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    for epoch, a in enumerate(ALPHAS, start=1):
        torch.save(Toy(a).state_dict(), ckpts / f"net_epoch_{epoch}.pt")

    def factory(path):
        net = Toy()
        net.load_state_dict(torch.load(path))
        return OracleHarmonizer(net, oracle)

    ranking = select_checkpoint(ckpts, entries, factory, tmp_path / "out", progress=False)
    assert ranking[0]["epoch"] == 3
    assert (tmp_path / "out" / "model.pt").read_bytes() == (ckpts / "net_epoch_3.pt").read_bytes()
    with pytest.raises(ConfigError, match="metric_weights"):
        select_checkpoint(ckpts, entries, factory, tmp_path / "out2", metric_weights={"mse_bone_standard": 1.0})
    # limits are plumbed through: epochs over the limit are flagged and rank after those within it
    mse = {r["epoch"]: r["metrics"]["mse_b50f_b30f"] for r in ranking}
    limit = float(np.median(list(mse.values())))
    limited = select_checkpoint(ckpts, entries, factory, tmp_path / "out3", progress=False,
                                metric_limits={"mse_b50f_b30f": limit})
    assert {r["epoch"]: r["feasible"] for r in limited} == {e: v <= limit for e, v in mse.items()}
    flags = [r["feasible"] for r in limited]
    assert flags == sorted(flags, reverse=True) and 0 < sum(flags) < len(flags)
    assert limited[0]["epoch"] == 3
    assert json.loads((tmp_path / "out3" / "checkpoint_ranking.json").read_text())["limits"] == {"mse_b50f_b30f": limit}
    with pytest.raises(ConfigError, match="metric_limits"):
        select_checkpoint(ckpts, entries, factory, tmp_path / "out4", metric_limits={"anat_bone_b30f": 0.1})


TOY_MODULE = '''
import hashlib
import numpy as np
import torch

ORACLE = {}


def factory(path):
    alpha = float(torch.load(path)["alpha"])

    def harmonize(hu, source, target):
        return ((1 - alpha) * hu + alpha * ORACLE[hashlib.sha1(hu.tobytes()).hexdigest()]).astype(np.float32)

    return harmonize
'''


def test_cli_select_checkpoint(cohort, tmp_path, monkeypatch, capsys):
    import importlib
    import json

    from ctharmonize.cli import main

    root, entries, oracle, _ = cohort
    (tmp_path / "toy_h5_harmonizer.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("toy_h5_harmonizer").ORACLE.update(oracle)
    datalist = tmp_path / "val.json"
    datalist.write_text(json.dumps({"data": entries}))
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    for epoch, a in zip((10, 20, 30), (0.3, 1.0, 0.0), strict=True):
        torch.save(Toy(a).state_dict(), ckpts / f"epoch={epoch}.pt")
    args = ["select-checkpoint", "--checkpoints", str(ckpts), "--datalist", str(datalist),
            "--harmonizer", "toy_h5_harmonizer:factory", "--out", str(tmp_path / "sel")]
    assert main(args) == 0
    assert "best epoch 20" in capsys.readouterr().out
    doc = json.loads((tmp_path / "sel" / "checkpoint_ranking.json").read_text())
    assert [r["epoch"] for r in doc["ranking"]] [0] == 20 and doc["model_epoch"] == 20
    assert main(args) == 2  # refuses to overwrite
    assert "already exists" in capsys.readouterr().err
    assert main([*args[:-4], "--harmonizer", "no_such_module:f", "--out", str(tmp_path / "x")]) == 2
    limited = [*args[:-1], str(tmp_path / "sel_limited"), "--limits", '{"mse_b50f_b30f": -1}']
    assert main(limited) == 0
    assert "no checkpoint is within the limits" in capsys.readouterr().out
    assert main([*args[:-1], str(tmp_path / "y"), "--anatomy_paths", "[1, 2]"]) == 2
    assert "anatomy_paths" in capsys.readouterr().err


def test_anatomy_paths_score_muscle_and_sat_dice(tmp_path):
    """``anat_<src>_<tgt>`` = 1 - mean(muscle, SAT Dice) of body-composition labels, original vs harmonized."""
    import sys
    from pathlib import Path

    from ctharmonize.metrics.dice import dice as dice_fn
    from ctharmonize.segmentation import body_composition

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))
    from multipath_sim_data import write_test_split

    datalist = write_test_split(tmp_path, subjects_per_vendor=1, size=96, slices=2)
    validation = ValidationSet(datalist, split="test", paths=[("siemens_b50f", "siemens_b30f")],
                               anatomy_paths=[("ge_bone", "siemens_b30f")])
    assert validation.metric_names == ["mse_b50f_b30f", "mld_b50f_b30f", "anat_bone_b30f"]
    kept = validation.metrics(lambda hu, s, t: hu)
    assert kept["anat_bone_b30f"] == 0.0

    def fat_to_muscle(hu, s, t):  # a "hallucination": every fat voxel moved 120 HU up, into the muscle range
        out = hu.copy()
        out[(hu > -190) & (hu < -30)] += 120.0
        return out

    changed = validation.metrics(fat_to_muscle)
    # independent: label both images and compute the Dice by hand
    bone = read_volume(tmp_path / "sub110_ge_bone.nii.gz")
    lung = read_volume(tmp_path / "sub110_lung.nii.gz").array.astype(np.uint8)
    a = body_composition(bone, lung=lung)
    moved = Volume(fat_to_muscle(bone.array, "", ""), bone.spacing, bone.origin, bone.direction, fov_mask=bone.fov_mask)
    b = body_composition(moved, lung=lung)

    def hand_dice(code):
        x, y = a == code, b == code
        return 2 * (x & y).sum() / (x.sum() + y.sum())

    expected = 1 - (hand_dice(5) + hand_dice(6)) / 2
    assert changed["anat_bone_b30f"] == pytest.approx(expected, abs=1e-6)
    assert expected > 0.2  # the hallucination is seen
    assert dice_fn(a, b, labels=[5])[5] == pytest.approx(hand_dice(5))
    no_anatomy = ValidationSet(datalist, split="test", paths=[("siemens_b50f", "siemens_b30f")])
    with pytest.raises(ConfigError, match="anat_bone_b30f"):
        EmphysemaCheckpointSelector(no_anatomy, lambda hu, s, t: hu, tmp_path / "sel",
                                    metric_weights={"mse_b50f_b30f": 1.0, "anat_bone_b30f": 1.0})
