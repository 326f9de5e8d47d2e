"""Multipath cycleGAN training: the trainer's loss terms and paths, and the bundle's train / multi-GPU / add-domain
configs run through ``python -m monai.bundle run`` on tiny data (ngf 4, one residual block, 32x32 slices)."""

from __future__ import annotations

import copy
import json
import math
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigParser
from multipath_training_data import VENDORS, make_dataset
from torch import nn
from torch.utils.data import DataLoader

from ctharmonize.datasets import UnalignedMultiDomainSlices, ensure_simulated_dataset
from ctharmonize.engines import RandomSubsetSampler, initialize_from, multipath_optimizers
from ctharmonize.engines.multipath_cyclegan_trainer import MultipathCycleGANTrainer
from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.networks import MultipathDiscriminators, MultipathGenerator

DOMAINS = ["siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard"]
CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "multipath_cyclegan_ct_harmonization" / "configs"
TINY = ["--ngf", "4", "--n_blocks", "1", "--ndf", "4", "--n_layers", "2", "--batch_size", "2", "--val_batch_size", "4"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("mp_train") / "toy", size=32, slices=4, subjects=2)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """The simulator's data (3 subjects per vendor: train / validation / test), 32x32x4."""
    return ensure_simulated_dataset(tmp_path_factory.mktemp("mp_sim") / "sim", subjects=3, size=32, slices=4, seed=0,
                                    progress=False).parent


def _trainer(datalist: Path, guidance: str = "tissue", max_epochs: int = 1, **kwargs) -> MultipathCycleGANTrainer:
    torch.manual_seed(0)
    ds = UnalignedMultiDomainSlices(datalist, DOMAINS, tissue_labels="datalist" if guidance == "tissue" else None)
    g = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1)
    d = MultipathDiscriminators(DOMAINS, ndf=4, n_layers=2)
    opts = {"G": torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.5, 0.999))}
    opts |= {f"D_{n}": torch.optim.Adam(d[n].parameters(), lr=2e-3, betas=(0.5, 0.999)) for n in DOMAINS}
    loader = DataLoader(ds, batch_size=2, sampler=RandomSubsetSampler(len(ds), 0.5, seed=0))
    return MultipathCycleGANTrainer(device="cpu", max_epochs=max_epochs, train_data_loader=loader, generators={"G": g},
                                    discriminators={f"D_{n}": d[n] for n in DOMAINS}, optimizers=opts,
                                    guidance=guidance, **kwargs)


def _tissue_mse(real: np.ndarray, fake: np.ndarray, labels: np.ndarray, use=None) -> float:
    """Paper 000 tissue statistic by hand: per sample and label (> 5 pixels, not 0), squared mean difference."""
    diffs = []
    for b in range(real.shape[0]):
        for lab in np.unique(labels[b]):
            m = labels[b] == lab
            if lab != 0 and m.sum() > 5 and (use is None or lab in use):
                diffs.append((real[b][m].mean() - fake[b][m].mean()) ** 2)
    return float(np.mean(diffs))


@pytest.mark.parametrize("guidance, extra", [("tissue", "tissue"), ("identity", "identity"), ("none", None)])
def test_guidance_selects_loss_terms_and_weights(toy, guidance, extra):
    trainer = _trainer(toy, guidance, max_epochs=1, epoch_length=1)
    before = {n: [p.detach().clone() for p in m.parameters()] for n, m in trainer.networks.items()}
    trainer.run()
    out = trainer.state.output
    ((s, t),) = trainer.paths_for_iteration(1)
    g_terms = {k[2:] for k in out if k.startswith("G/") and k != "G/total"}
    expected = {f"{kind}_{a}_to_{b}" for kind in ("adv", "cycle", extra) if kind for a, b in ((s, t), (t, s))}
    assert g_terms == expected
    weights = {"adv": 1.0, "cycle": 10.0, "tissue": 0.01, "identity": 1.0}
    total = sum(weights[k.split("_")[0]] * float(out[f"G/{k}"]) for k in g_terms)
    assert math.isclose(float(out["G/total"]), total, rel_tol=1e-5)
    batch, fakes = trainer.state.batch, trainer.state.fakes
    real_s = batch[f"image_{s}"].numpy()
    # cycle s -> t -> s and the guidance term, recomputed by hand from the iteration's images
    cycle = np.abs(fakes[f"rec_{s}_via_{t}"].numpy() - real_s).mean()
    assert math.isclose(float(out[f"G/cycle_{s}_to_{t}"]), cycle, rel_tol=1e-5)
    fake_t = fakes[f"fake_{t}_from_{s}"].numpy()
    if guidance == "tissue":
        tissue = _tissue_mse(real_s[:, 0], fake_t[:, 0], batch[f"labels_{s}"].numpy()[:, 0])
        assert math.isclose(float(out[f"G/tissue_{s}_to_{t}"]), tissue, rel_tol=1e-4)
    if guidance == "identity":
        pool = lambda x: x.reshape(x.shape[0], 1, 16, 2, 16, 2).mean(axis=(3, 5))  # noqa: E731
        assert math.isclose(float(out[f"G/identity_{s}_to_{t}"]), ((pool(real_s) - pool(fake_t)) ** 2).mean(),
                            rel_tol=1e-4)
    # only the two domains of the path have a discriminator update
    assert {k.split("/")[0] for k in out if not k.startswith("G/")} == {f"D_{s}", f"D_{t}"}
    for name, module in trainer.networks.items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters(), strict=True))
        assert changed == (name in ("G", f"D_{s}", f"D_{t}")), name


def test_tissue_loss_labels_restrict_the_statistic(toy):
    """``tissue_loss_labels`` (e.g. without the air-filled lungs) changes the term to the hand-computed subset."""
    trainer = _trainer(toy, "tissue", max_epochs=1, epoch_length=1, tissue_loss_labels=[5, 6])
    trainer.run()
    out, batch, fakes = trainer.state.output, trainer.state.batch, trainer.state.fakes
    ((s, t),) = trainer.paths_for_iteration(1)
    real, fake = batch[f"image_{s}"].numpy()[:, 0], fakes[f"fake_{t}_from_{s}"].numpy()[:, 0]
    labels = batch[f"labels_{s}"].numpy()[:, 0]
    assert {1, 5, 6} <= set(np.unique(labels).tolist())  # lungs are present but not used
    subset = _tissue_mse(real, fake, labels, use={5, 6})
    assert math.isclose(float(out[f"G/tissue_{s}_to_{t}"]), subset, rel_tol=1e-4)
    assert not math.isclose(subset, _tissue_mse(real, fake, labels), rel_tol=1e-3)


def test_cycle_factor_compares_block_averages(toy):
    """``cycle_factor`` 4: the cycle L1 is between 4x4 block means (hand-computed), not pixels; < 1 is refused."""
    trainer = _trainer(toy, "none", max_epochs=1, epoch_length=1, cycle_factor=4)
    trainer.run()
    out, batch, fakes = trainer.state.output, trainer.state.batch, trainer.state.fakes
    ((s, t),) = trainer.paths_for_iteration(1)
    real, rec = batch[f"image_{s}"].numpy(), fakes[f"rec_{s}_via_{t}"].numpy()
    n, _, h, w = real.shape
    pool = lambda x: x.reshape(n, 1, h // 4, 4, w // 4, 4).mean(axis=(3, 5))  # noqa: E731
    pooled = np.abs(pool(rec) - pool(real)).mean()
    assert math.isclose(float(out[f"G/cycle_{s}_to_{t}"]), pooled, rel_tol=1e-5)
    assert not math.isclose(pooled, np.abs(rec - real).mean(), rel_tol=1e-4)
    with pytest.raises(ConfigError, match="cycle_factor must be >= 1"):
        _trainer(toy, "none", cycle_factor=0)


def test_paths_are_seeded_per_iteration_and_configurable(toy):
    a = _trainer(toy, "none", seed=5)
    b = _trainer(toy, "none", seed=5)
    drawn = [a.paths_for_iteration(i)[0] for i in range(1, 400)]
    assert drawn == [b.paths_for_iteration(i)[0] for i in range(1, 400)]
    assert set(drawn) == {(s, t) for s in DOMAINS for t in DOMAINS if s != t}  # all 12 ordered pairs by default
    assert drawn != [_trainer(toy, "none", seed=6).paths_for_iteration(i)[0] for i in range(1, 400)]
    every = _trainer(toy, "none", path_sampling="all")
    assert len(every.paths_for_iteration(1)) == 6  # unordered pairs, each run in both directions
    only = _trainer(toy, "none", paths=[["ge_bone", "siemens_b30f"]])
    assert {only.paths_for_iteration(i)[0] for i in range(1, 50)} == {("ge_bone", "siemens_b30f")}
    twice = _trainer(toy, "none", paths=[["ge_bone", "ge_standard"], ["ge_bone", "ge_standard"], ["ge_bone", "siemens_b30f"]])
    counts = Counter(twice.paths_for_iteration(i)[0] for i in range(1, 3001))
    assert 1.8 < counts[("ge_bone", "ge_standard")] / counts[("ge_bone", "siemens_b30f")] < 2.2  # listed twice: drawn 2x
    with pytest.raises(ConfigError, match="unknown domain 'ge_lung'"):
        _trainer(toy, "none", paths=[["ge_lung", "siemens_b30f"]])
    with pytest.raises(ConfigError, match="guidance must be one of"):
        _trainer(toy, "anatomy")


class ProbeCritic(nn.Module):
    """``D(x) = bias + mean(x)`` per sample as a (B, 1, 2, 2) patch map: each domain's critic answers
    distinguishably (its own bias), and the answer depends on which images it is shown."""

    def __init__(self, bias: float) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.bias + x.float().mean(dim=(1, 2, 3))).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)


BIAS = {"siemens_b50f": -1.5, "siemens_b30f": -0.5, "ge_bone": 0.75, "ge_standard": 2.0}


def _probe_trainer(datalist: Path, frozen: tuple[str, ...] = (), **kwargs) -> MultipathCycleGANTrainer:
    torch.manual_seed(0)
    ds = UnalignedMultiDomainSlices(datalist, DOMAINS, tissue_labels=None)
    g = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1)
    critics = nn.ModuleDict({d: ProbeCritic(BIAS[d]) for d in DOMAINS})  # keyed by domain, as MultipathDiscriminators
    for d in frozen:
        critics[d].requires_grad_(False)
    loader = DataLoader(ds, batch_size=2, sampler=RandomSubsetSampler(len(ds), 0.5, seed=0))
    return MultipathCycleGANTrainer("cpu", 1, loader, {"G": g}, critics, multipath_optimizers(g, critics, lr=0.1),
                                    guidance="none", path_sampling="all", epoch_length=1, **kwargs)


def _lsgan(pred: torch.Tensor, target: float) -> float:
    return float(((pred - target) ** 2).mean())


def _hand_adversarial(trainer: MultipathCycleGANTrainer) -> tuple[dict[str, float], dict[str, float]]:
    """``adv_<a>_to_<b>`` (fake judged by the TARGET b's critic) and ``D_<d>/{real,fake}`` from the iteration's images."""
    batch, fakes = trainer.state.batch, trainer.state.fakes
    mean = lambda x: x.float().mean(dim=(1, 2, 3))  # noqa: E731
    adv, disc, into = {}, {}, {}
    for s, t in trainer.paths_for_iteration(1):
        for a, b in ((s, t), (t, s)):
            fake = fakes[f"fake_{b}_from_{a}"]
            adv[f"adv_{a}_to_{b}"] = _lsgan(BIAS[b] + mean(fake), 1.0)
            into.setdefault(b, []).append(fake)
    for d, generated in into.items():
        disc[f"D_{d}/real"] = 0.5 * _lsgan(BIAS[d] + mean(batch[f"image_{d}"]), 1.0)
        disc[f"D_{d}/fake"] = 0.5 * _lsgan(BIAS[d] + mean(torch.cat(generated)), 0.0)  # pool still filling
    return adv, disc


def test_adversarial_terms_route_fakes_to_the_target_domains_discriminator(toy):
    trainer = _probe_trainer(toy)
    assert sorted(trainer.discriminators) == sorted(f"D_{d}" for d in DOMAINS)  # a domain-keyed dict was renamed
    trainer.run()
    out = trainer.state.output
    adv, disc = _hand_adversarial(trainer)
    assert len(adv) == 12 and len(disc) == 8  # "all": every ordered pair; every domain's critic trained
    for term, value in adv.items():
        assert math.isclose(float(out[f"G/{term}"]), value, rel_tol=1e-5), term
        a, b = term[len("adv_"):].split("_to_")
        fake = trainer.state.fakes[f"fake_{b}_from_{a}"]
        by_source = _lsgan(BIAS[a] + fake.float().mean(dim=(1, 2, 3)), 1.0)  # the authors' routing
        assert not math.isclose(float(out[f"G/{term}"]), by_source, rel_tol=1e-3), term
    for term, value in disc.items():
        assert math.isclose(float(out[term]), value, rel_tol=1e-5), term
    # each critic moved (its own optimizer, its own terms): d/d bias of its loss is non-zero here
    assert all(float(trainer.networks[f"D_{d}"].bias) != BIAS[d] for d in DOMAINS)


def test_stage_two_fixed_critics_are_auxiliary_networks_that_judge_but_never_train(toy):
    frozen = ("siemens_b50f", "ge_bone")
    trainer = _probe_trainer(toy, frozen=frozen)
    assert sorted(trainer.fixed_critics) == ["D_ge_bone", "D_siemens_b50f"]
    assert set(trainer.fixed_critics) <= set(trainer.auxiliary) and not set(trainer.fixed_critics) & set(trainer.networks)
    assert sorted(trainer.optimizers) == ["D_ge_standard", "D_siemens_b30f", "G"]  # no optimizer for a fixed critic
    trainer.run()
    out = trainer.state.output
    adv, disc = _hand_adversarial(trainer)
    for term, value in adv.items():  # fakes into a frozen domain are judged by its fixed critic
        assert math.isclose(float(out[f"G/{term}"]), value, rel_tol=1e-5), term
    assert {k.split("/")[0] for k in out if not k.startswith("G/")} == {"D_siemens_b30f", "D_ge_standard"}
    for term in ("D_siemens_b30f/real", "D_ge_standard/fake"):
        assert math.isclose(float(out[term]), disc[term], rel_tol=1e-5), term
    for d in DOMAINS:
        assert (float(trainer.get_network(f"D_{d}").bias) == BIAS[d]) == (d in frozen), d


def test_reference_identity_schedule_sets_the_authors_weight_each_epoch(toy):
    trainer = _trainer(toy, "identity", max_epochs=3, epoch_length=1, identity_schedule="reference")
    outputs = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(dict(e.state.output)))
    trainer.run()
    for out, weight in zip(outputs, (1e7, 1e5, 1e3), strict=True):  # the authors' 1e7, / 100 per epoch
        terms = {k[2:]: float(v) for k, v in out.items() if k.startswith("G/") and k != "G/total"}
        total = sum((weight if k.startswith("identity") else {"adv": 1.0, "cycle": 10.0}[k.split("_")[0]]) * v
                    for k, v in terms.items())
        assert math.isclose(float(out["G/total"]), total, rel_tol=1e-5)
    constant = _trainer(toy, "identity", max_epochs=2, epoch_length=1, loss_weights={"identity": 3.0})
    constant.run()
    assert constant.loss_weights["identity"] == 3.0


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def _bundle(configs: list[str], *args: str, cwd: Path = CONFIGS, launcher: list[str] | None = None, timeout: int = 240):
    files = configs[0] if len(configs) == 1 else repr(configs)
    cmd = [*(launcher or [sys.executable]), "-m", "monai.bundle", "run", "--config_file", files, *args]
    res = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _epoch_losses(log_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"] if tag.startswith("epoch/")}


def test_bundle_train_writes_checkpoints_model_and_resumes(simulated, tmp_path):
    common = ["--dataset_dir", str(simulated), "--output_dir", str(tmp_path / "out"), "--model_dir",
              str(tmp_path / "models"), "--subset_fraction", "0.5", *TINY]
    _bundle([str(CONFIGS / "train.json")], *common, "--max_epochs", "1", cwd=CONFIGS.parents[2])
    ckpts = sorted((tmp_path / "out" / "checkpoints").glob("checkpoint_*.pt"))
    # 1 train subject per kernel x 4 slices = 4 items, half per epoch, batch 2 -> 1 iteration per epoch
    assert [p.name for p in ckpts] == ["checkpoint_1.pt"]
    ckpt = torch.load(ckpts[0], weights_only=True)
    assert {"network/G", "optimizer/G", *(f"network/D_{d}" for d in DOMAINS)} <= set(ckpt)
    losses = _epoch_losses(tmp_path / "out" / "tensorboard")
    assert losses["epoch/G/total"] and all(math.isfinite(v) for vals in losses.values() for v in vals)
    # the emphysema checkpoint selector kept the generator of the best epoch as a plain state dict
    g = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1)
    g.load_state_dict(torch.load(tmp_path / "models" / "model.pt", weights_only=True))
    ranking = json.loads((tmp_path / "models" / "checkpoint_ranking.json").read_text())
    assert ranking["model_epoch"] == 1 and set(ranking["ranking"][0]["metrics"]) == {
        "mse_b50f_b30f", "mld_b50f_b30f", "kl_bone_b30f", "kl_standard_b30f"}

    # "resume": "auto" continues the run to epoch 2 (run from the configs folder this time)
    log = _bundle(["train.json"], *common, "--max_epochs", "2", "--resume", "auto")
    assert "resumed from" in log and "checkpoint_1.pt" in log
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").glob("checkpoint_*.pt")) == [
        "checkpoint_1.pt", "checkpoint_2.pt"]
    last = torch.load(tmp_path / "out" / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    assert last["engine"]["iteration"] == 2 and last["engine"]["max_epochs"] == 2
    assert float(last["optimizer/G"]["state"][0]["step"]) == 2.0
    ranking = json.loads((tmp_path / "models" / "checkpoint_ranking.json").read_text())
    assert sorted(r["epoch"] for r in ranking["ranking"]) == [1, 2]


def test_cpu_demo_config_selects_with_limits_and_keeps_every_epoch(simulated, tmp_path):
    """train_cpu_demo.json over train.json: its selection scores the six named metrics, applies its
    requirements (limits) and keeps every validated epoch's weights (re-ranking stays possible)."""
    demo = json.loads((CONFIGS / "train_cpu_demo.json").read_text())
    _bundle([str(CONFIGS / "train.json"), str(CONFIGS / "train_cpu_demo.json")], "--dataset_dir", str(simulated),
            "--output_dir", str(tmp_path / "out"), "--model_dir", str(tmp_path / "models"), *TINY,
            "--n_downsampling", "2", "--roi_size", "[16, 16]", "--max_epochs", "2", "--val_every", "1",
            "--subset_fraction", "0.5", cwd=CONFIGS.parents[2])
    doc = json.loads((tmp_path / "models" / "checkpoint_ranking.json").read_text())
    assert doc["limits"] == demo["checkpoint_selector#metric_limits"]
    assert set(doc["weights"]) == set(demo["checkpoint_selector#metric_weights"])
    assert set(doc["limits"]) <= set(doc["ranking"][0]["metrics"])
    for r in doc["ranking"]:
        assert r["feasible"] == all(r["metrics"][m] <= v for m, v in doc["limits"].items())
    flags = [r["feasible"] for r in doc["ranking"]]
    assert flags == sorted(flags, reverse=True)
    assert sorted(p.name for p in (tmp_path / "models" / "candidates").glob("*.pt")) == [
        "epoch_0001.pt", "epoch_0002.pt"]
    assert (tmp_path / "models" / "model.pt").read_bytes() == (
        tmp_path / "models" / "candidates" / f"epoch_{doc['model_epoch']:04d}.pt").read_bytes()


def test_checkpoint_selector_validates_the_ema_weights_with_the_documented_override(simulated, tmp_path):
    """docs/engines.md's EMA override: the selector ranks and keeps the EMA copy, not the live generator."""
    import re

    doc = (CONFIGS.parents[2] / "docs" / "engines.md").read_text()
    (ema,) = [b for b in map(json.loads, re.findall(r"```json\n(.*?)```", doc, flags=re.S)) if "trainer#ema" in b]
    (tmp_path / "ema.json").write_text(json.dumps(ema))
    _bundle([str(CONFIGS / "train.json"), str(tmp_path / "ema.json")], "--dataset_dir", str(simulated),
            "--output_dir", str(tmp_path / "out"), "--model_dir", str(tmp_path / "models"), *TINY, "--max_epochs", "2",
            "--subset_fraction", "0.5", "--val_keep_top", "None", cwd=CONFIGS.parents[2])
    ckpt = torch.load(tmp_path / "out" / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    averaged = {k[len("module."):]: v for k, v in ckpt["ema/G"].items() if k.startswith("module.")}
    assert int(ckpt["ema/G"]["n_averaged"]) == 3  # start + 2 generator steps
    kept = torch.load(tmp_path / "models" / "candidates" / "epoch_0002.pt", weights_only=True)
    assert kept.keys() == averaged.keys() == ckpt["network/G"].keys()
    assert all(torch.equal(kept[k], averaged[k]) for k in kept)
    assert any(not torch.equal(kept[k], ckpt["network/G"][k]) for k in kept)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_gpu_config_keeps_everything_train_json_initializes():
    """multi_gpu_train.json only overrides items: train.json's imports, initialize (with initialize_from) and run stay."""
    train = json.loads((CONFIGS / "train.json").read_text())
    multi = json.loads((CONFIGS / "multi_gpu_train.json").read_text())
    assert not {"imports", "initialize", "run"} & set(multi)
    parser = ConfigParser(ConfigParser.load_config_files([str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")]))
    assert parser["initialize"] == train["initialize"] and parser["imports"] == train["imports"]
    assert "@initialize_networks" in parser["initialize"]
    assert "initialize_from(@network_def, @discriminators, @init_checkpoint)" in parser["initialize_networks"]
    assert parser["trainer"]["distributed"] is True


def test_default_model_dir_is_the_run_output_not_the_shipped_model():
    """Running train.json as documented must not replace the tracked models/model.pt."""
    for files, out in ((["train.json"], "train_output"), (["train.json", "train_add_domain.json"], "train_output_add_domain")):
        parser = ConfigParser(ConfigParser.load_config_files([str(CONFIGS / f) for f in files]))
        parser["bundle_root"] = "/bundle"
        assert parser.get_parsed_content("model_dir") == os.path.join("/bundle", out, "models")
        assert parser["checkpoint_selector"]["save_dir"] == "@model_dir"


def test_torchrun_two_gloo_ranks_end_identical(simulated, tmp_path):
    torch.manual_seed(3)  # a training checkpoint to fine-tune from (init_checkpoint), with one discriminator
    g0, d0 = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1), MultipathDiscriminators(DOMAINS, ndf=4, n_layers=2)
    init = {"network/G": g0.state_dict(), "network/D_ge_bone": d0["ge_bone"].state_dict()}
    torch.save(init, tmp_path / "init.pt")
    dump = tmp_path / "dump.json"  # extra config: every rank saves its networks before and after training
    state = ("{k: v for n, m in [('G', @network_def), *[(f'D_{d}', @discriminators[d]) for d in @domains]] "
             "for k, v in m.state_dict(prefix=n + '.').items()}")
    save = "$torch.save(" + state + f", os.path.join({str(tmp_path)!r}, 'TAG_rank' + os.environ['RANK'] + '.pt'))"
    dump.write_text(json.dumps({"run": [save.replace("TAG", "init"), "$@trainer.run()", save.replace("TAG", "final")]}))
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}"]
    _bundle([str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json"), str(dump)],
            "--dataset_dir", str(simulated), "--output_dir", str(tmp_path / "out"), "--model_dir",
            str(tmp_path / "models"), "--max_epochs", "1", "--subset_fraction", "1.0", *TINY, "--batch_size", "1",
            "--init_checkpoint", str(tmp_path / "init.pt"), launcher=launcher)
    for r in (0, 1):  # initialize_from ran on every rank
        first = torch.load(tmp_path / f"init_rank{r}.pt", weights_only=True)
        for prefix, name in (("G.", "network/G"), ("D_ge_bone.", "network/D_ge_bone")):
            for key, value in init[name].items():
                assert torch.equal(first[prefix + key], value), (r, prefix + key)
    p0, p1 = (torch.load(tmp_path / f"final_rank{r}.pt", weights_only=True) for r in (0, 1))
    assert p0.keys() == p1.keys() and any(k.startswith("D_ge_bone.") for k in p0)
    for key in p0:
        assert torch.equal(p0[key], p1[key]), f"{key} differs between ranks"
    # 4 items per epoch sharded over 2 ranks with batch 1 -> 2 iterations; only rank 0 wrote the checkpoint
    ckpt = torch.load(tmp_path / "out" / "checkpoints" / "checkpoint_2.pt", weights_only=True)
    assert [p.name for p in (tmp_path / "out" / "checkpoints").glob("*.pt")] == ["checkpoint_2.pt"]
    assert float(ckpt["optimizer/G"]["state"][0]["step"]) == 2.0
    for key, value in ckpt["network/G"].items():  # the checkpoint holds the final (shared) weights
        assert torch.equal(p0[f"G.{key}"], value), key
    assert (tmp_path / "models" / "model.pt").is_file()


def test_add_domain_trains_only_the_new_kernel(tmp_path):
    vendors = dict(VENDORS)
    vendors["siemens"] = (*vendors["siemens"], "siemens_b70f")
    data = make_dataset(tmp_path / "data", size=32, slices=4, subjects=2, vendors=vendors).parent
    torch.manual_seed(1)
    g = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1)
    d = MultipathDiscriminators(DOMAINS, ndf=4, n_layers=2)
    stage_one = {"network/G": g.state_dict(), **{f"network/D_{n}": d[n].state_dict() for n in DOMAINS}}
    torch.save(stage_one, tmp_path / "stage1.pt")
    _bundle(["train.json", "train_add_domain.json"], "--dataset_dir", str(data), "--output_dir", str(tmp_path / "out"),
            "--model_dir", str(tmp_path / "models"), "--pretrained_checkpoint", str(tmp_path / "stage1.pt"),
            "--max_epochs", "2", "--subset_fraction", "1.0", "--val_keep_top", "None", *TINY)
    epochs = [torch.load(tmp_path / "models" / "candidates" / f"epoch_000{e}.pt", weights_only=True) for e in (1, 2)]
    for state in epochs:
        assert {k.split(".")[1] for k in state if k.startswith("encoders.")} == {*DOMAINS, "siemens_b70f"}
        for key, value in stage_one["network/G"].items():  # shared latent and old kernels: bit-identical
            assert torch.equal(state[key], value), key
    new = [k for k in epochs[0] if ".siemens_b70f." in k]
    assert new and any(not torch.equal(epochs[0][k], epochs[1][k]) for k in new)  # the new kernel trained
    ckpt = torch.load(tmp_path / "out" / "checkpoints" / "checkpoint_4.pt", weights_only=True)
    assert [k for k in ckpt if k.startswith("network/D_")] == ["network/D_siemens_b70f"]
    assert sorted(k for k in ckpt if k.startswith("optimizer/")) == ["optimizer/D_siemens_b70f", "optimizer/G"]
    ranking = json.loads((tmp_path / "models" / "checkpoint_ranking.json").read_text())
    assert set(ranking["weights"]) == {"mse_b70f_b30f"}


def test_initialize_from_loads_generator_and_the_discriminators_a_checkpoint_holds(tmp_path):
    torch.manual_seed(1)
    src_g, src_d = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1), MultipathDiscriminators(DOMAINS, ndf=4, n_layers=2)
    torch.save(src_g.state_dict(), tmp_path / "model.pt")  # a plain model.pt: generator only
    torch.save({"network/G": src_g.state_dict(), "network/D_ge_bone": src_d["ge_bone"].state_dict()},
               tmp_path / "checkpoint_7.pt")
    g, d = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1), MultipathDiscriminators(DOMAINS, ndf=4, n_layers=2)
    fresh = {k: v.clone() for k, v in d.state_dict().items()}
    assert initialize_from(g, d, tmp_path / "model.pt") == []
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), src_g.state_dict().values(), strict=True))
    assert all(torch.equal(v, fresh[k]) for k, v in d.state_dict().items())
    assert initialize_from(g, d, tmp_path / "checkpoint_7.pt") == ["ge_bone"]
    assert all(torch.equal(a, b) for a, b in zip(d["ge_bone"].state_dict().values(),
                                                  src_d["ge_bone"].state_dict().values(), strict=True))
    assert all(torch.equal(v, fresh[k]) for k, v in d.state_dict().items() if not k.startswith("ge_bone."))
    with pytest.raises(WeightsError, match="model.pt: does not match the generator") as err:  # another width
        initialize_from(MultipathGenerator(DOMAINS, ngf=8, n_blocks=1), d, tmp_path / "model.pt")
    assert "\n" not in str(err.value)
    torch.save({f"module.{k}": v for k, v in src_g.state_dict().items()}, tmp_path / "ddp.pt")  # a DDP-saved model.pt
    g2 = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1)
    assert initialize_from(g2, d, tmp_path / "ddp.pt") == []
    assert all(torch.equal(a, b) for a, b in zip(g2.state_dict().values(), src_g.state_dict().values(), strict=True))
    torch.save({"network/D_ge_bone": src_d["ge_bone"].state_dict()}, tmp_path / "only_d.pt")
    with pytest.raises(WeightsError, match="holds no network 'G'"):
        initialize_from(g2, d, tmp_path / "only_d.pt")


def test_paired_paths_add_an_l1_term_against_the_aligned_target_instead_of_guidance(toy):
    """A paired direction gets ``paired`` = mean|fake_t - x_t| (hand-computed) at weight 100 and no guidance
    term; its reverse keeps the guidance; a paired path that is not trained is refused."""
    path = ["siemens_b50f", "siemens_b30f"]
    torch.manual_seed(0)
    ds = UnalignedMultiDomainSlices(toy, DOMAINS, tissue_labels=None, paired_groups=[path])
    g = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1)
    d = MultipathDiscriminators(DOMAINS, ndf=4, n_layers=2)
    opts = {"G": torch.optim.Adam(g.parameters(), lr=2e-3)}
    opts |= {f"D_{n}": torch.optim.Adam(d[n].parameters(), lr=2e-3) for n in DOMAINS}
    kwargs = dict(device="cpu", max_epochs=1, train_data_loader=DataLoader(ds, batch_size=2), generators={"G": g},
                  discriminators={f"D_{n}": d[n] for n in DOMAINS}, optimizers=opts, guidance="identity",
                  paths=[path], epoch_length=1)
    trainer = MultipathCycleGANTrainer(**kwargs, paired_paths=[path])
    trainer.run()
    out, batch, fakes = trainer.state.output, trainer.state.batch, trainer.state.fakes
    s, t = path
    g_terms = {k[2:] for k in out if k.startswith("G/") and k != "G/total"}
    assert g_terms == {f"adv_{s}_to_{t}", f"adv_{t}_to_{s}", f"cycle_{s}_to_{t}", f"cycle_{t}_to_{s}",
                       f"paired_{s}_to_{t}", f"identity_{t}_to_{s}"}
    l1 = np.abs(fakes[f"fake_{t}_from_{s}"].numpy() - batch[f"image_{t}"].numpy()).mean()
    assert math.isclose(float(out[f"G/paired_{s}_to_{t}"]), l1, rel_tol=1e-5)
    weights = {"adv": 1.0, "cycle": 10.0, "identity": 1.0, "paired": 100.0}
    total = sum(weights[k.split("_")[0]] * float(out[f"G/{k}"]) for k in g_terms)
    assert math.isclose(float(out["G/total"]), total, rel_tol=1e-5)
    with pytest.raises(ConfigError, match="paired_paths: \\['ge_bone', 'ge_standard'\\] is not a trained path"):
        MultipathCycleGANTrainer(**kwargs, paired_paths=[["ge_bone", "ge_standard"]])


def test_clinical_cpu_configs_train_paired_then_finetune_the_ema_from_stage_one(simulated, tmp_path):
    """The shipped weights' two stages (train_clinical_cpu.json, then train_clinical_cpu_finetune.json from
    stage one's checkpoint): paired L1 terms on the within-vendor paths, the stage-two adversarial weight 0 on
    those directions, and the EMA generator is what the selector validates and keeps."""
    tiny = [*TINY, "--roi_size", "[16, 16]", "--val_every", "1", "--path_sampling", "all"]
    stage1 = [str(CONFIGS / n) for n in ("train.json", "train_clinical_cpu.json")]
    _bundle(stage1, "--dataset_dir", str(simulated), "--output_dir", str(tmp_path / "s1"), "--model_dir",
            str(tmp_path / "s1" / "models"), "--max_epochs", "1", *tiny, cwd=CONFIGS.parents[2])
    (ckpt1,) = (tmp_path / "s1" / "checkpoints").glob("checkpoint_*.pt")
    losses = _epoch_losses(tmp_path / "s1" / "tensorboard")
    for s, t in (("siemens_b50f", "siemens_b30f"), ("ge_bone", "ge_standard")):
        assert f"epoch/G/paired_{s}_to_{t}" in losses and f"epoch/G/identity_{s}_to_{t}" not in losses
        assert f"epoch/G/identity_{t}_to_{s}" in losses  # the reverse direction keeps the guidance
    log = _bundle([*stage1, str(CONFIGS / "train_clinical_cpu_finetune.json")], "--dataset_dir", str(simulated),
                  "--output_dir", str(tmp_path / "s2"), "--model_dir", str(tmp_path / "s2" / "models"),
                  "--init_checkpoint", str(ckpt1), "--max_epochs", "1", *tiny, cwd=CONFIGS.parents[2])
    assert f"initialised from {ckpt1}" in log
    (ckpt2,) = (tmp_path / "s2" / "checkpoints").glob("checkpoint_*.pt")
    ckpt = torch.load(ckpt2, weights_only=True)
    ema = {k[len("module."):]: v for k, v in ckpt["ema/G"].items() if k.startswith("module.")}
    kept = torch.load(tmp_path / "s2" / "models" / "model.pt", weights_only=True)
    assert kept.keys() == ema.keys() and all(torch.equal(kept[k], ema[k]) for k in kept)
    assert not all(torch.equal(kept[k], ckpt["network/G"][k]) for k in kept)  # the average, not the last step
    finetune = json.loads((CONFIGS / "train_clinical_cpu_finetune.json").read_text())
    assert finetune["loss_weights#adv_siemens_b50f_to_siemens_b30f"] == finetune["loss_weights#adv_ge_bone_to_ge_standard"] == 0


def test_chain_paths_pull_an_unpaired_path_towards_the_path_through_the_aligned_slice(toy):
    """``chain_paths`` [a, c, b]: ``chain`` = mean|G(x_a, a, b) - G(x_c, c, b)| with x_c the aligned slice of
    the same scan (hand-computed with the generator before the step), no guidance term on a -> b, and the
    teacher gets no gradient; a chain whose direction is not trained is refused."""
    torch.manual_seed(0)
    ds = UnalignedMultiDomainSlices(toy, DOMAINS, tissue_labels=None, paired_groups=[["ge_bone", "ge_standard"]])
    g = MultipathGenerator(DOMAINS, ngf=4, n_blocks=1)
    d = MultipathDiscriminators(DOMAINS, ndf=4, n_layers=2)
    opts = {"G": torch.optim.Adam(g.parameters(), lr=2e-3)}
    opts |= {f"D_{n}": torch.optim.Adam(d[n].parameters(), lr=2e-3) for n in DOMAINS}
    kwargs = dict(device="cpu", max_epochs=1, train_data_loader=DataLoader(ds, batch_size=2), generators={"G": g},
                  discriminators={f"D_{n}": d[n] for n in DOMAINS}, optimizers=opts, guidance="identity",
                  paths=[["ge_bone", "siemens_b30f"]], epoch_length=1)
    trainer = MultipathCycleGANTrainer(**kwargs, chain_paths=[["ge_bone", "ge_standard", "siemens_b30f"]])
    before = copy.deepcopy(g)
    trainer.run()
    out, batch, fakes = trainer.state.output, trainer.state.batch, trainer.state.fakes
    g_terms = {k[2:] for k in out if k.startswith("G/") and k != "G/total"}
    assert g_terms == {"adv_ge_bone_to_siemens_b30f", "adv_siemens_b30f_to_ge_bone", "cycle_ge_bone_to_siemens_b30f",
                       "cycle_siemens_b30f_to_ge_bone", "chain_ge_bone_to_siemens_b30f", "identity_siemens_b30f_to_ge_bone"}
    with torch.no_grad():
        teacher = before(batch["image_ge_standard"], "ge_standard", "siemens_b30f").numpy()
    l1 = np.abs(fakes["fake_siemens_b30f_from_ge_bone"].numpy() - teacher).mean()
    assert math.isclose(float(out["G/chain_ge_bone_to_siemens_b30f"]), l1, rel_tol=1e-4)
    weights = {"adv": 1.0, "cycle": 10.0, "identity": 1.0, "chain": 100.0}
    total = sum(weights[k.split("_")[0]] * float(out[f"G/{k}"]) for k in g_terms)
    assert math.isclose(float(out["G/total"]), total, rel_tol=1e-5)
    # the STANDARD encoder is used only by the teacher: no gradient, so Adam leaves it untouched
    for a, b in zip(before.encoders["ge_standard"].parameters(), g.encoders["ge_standard"].parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="chain_paths: \\['ge_bone', 'ge_standard', 'siemens_b50f'\\] must be"):
        MultipathCycleGANTrainer(**kwargs, chain_paths=[["ge_bone", "ge_standard", "siemens_b50f"]])
