"""MTFHarmonizerTrainer (paper 001): logged terms, which network each step moves, gradient clipping, cyclic LR, resume.

Tiny networks on 32 × 32 synthetic slices (CPU, one thread).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from torch import nn
from torch.utils.data import DataLoader

from ctharmonize.engines import (
    MTFHarmonizerTrainer,
    cyclic_lr_schedulers,
    make_cyclic_scheduler,
    mtf_harmonizer_optimizers,
)
from ctharmonize.errors import ConfigError
from ctharmonize.losses import MaskedGramTextureLoss, MTFHarmonizerLoss
from ctharmonize.networks import MTFHarmonizer, PatchDiscriminator

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

SIZE = 32


class TinyFeatures(nn.Module):
    """(B, 1, H, W) → [(B, 4, H, W), (B, 6, H/2, W/2)]: a stand-in for the CT feature network."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = torch.relu(self.conv1(x))
        return [f1, torch.relu(self.conv2(f1))]


def _tiny_generator() -> MTFHarmonizer:
    return MTFHarmonizer(channels=(2, 4), gamma_channels=2, mtf_channels=2, mtf_hidden=2, mtf_strides=(1, 1),
                         head_hidden=4, attention_channels=2)


def _data(n: int = 2) -> list[dict[str, torch.Tensor]]:
    """``n`` items as MTFPairedSlices gives them: source, target in [-1, 1], mtf2d (1, 64, 64), lung mask."""
    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    mtf = torch.exp(-3.0 * (yy**2 + xx**2))[None]
    items = []
    for _ in range(n):
        target = (torch.rand(1, SIZE, SIZE, generator=g) * 1.2 - 0.9)
        source = (target + 0.1 * torch.randn(1, SIZE, SIZE, generator=g)).clamp(-1, 1)
        lung = torch.zeros(1, SIZE, SIZE, dtype=torch.bool)
        lung[:, 6:26, 4:14] = True
        items.append({"source": source, "target": target, "mtf2d": mtf.clone(), "lung": lung})
    return items


def _build(seed: int = 0, lr: float = 1e-3, optimizer: str = "adam", max_epochs: int = 1, epoch_length: int = 1,
           schedulers: bool = False, **kwargs) -> MTFHarmonizerTrainer:
    torch.manual_seed(seed)
    g, d = _tiny_generator(), PatchDiscriminator(in_channels=2, ndf=2, n_layers=3)
    if optimizer == "adam":
        optimizers = mtf_harmonizer_optimizers(g, d, lr=lr)
    else:
        optimizers = {"G": torch.optim.SGD(g.parameters(), lr=lr), "D": torch.optim.SGD(d.parameters(), lr=lr)}
    scheds = cyclic_lr_schedulers(optimizers, base_lr=1e-4, max_lr=5e-4, step_size_up=2) if schedulers else None
    kwargs.setdefault("generator_every", 1)
    return MTFHarmonizerTrainer(
        device="cpu", max_epochs=max_epochs, train_data_loader=DataLoader(_data(), batch_size=2),
        epoch_length=epoch_length, generators={"G": g}, discriminators={"D": d}, optimizers=optimizers,
        schedulers=scheds, loss=MTFHarmonizerLoss(texture_loss=MaskedGramTextureLoss(TinyFeatures())), **kwargs)


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters only (Γ's BatchNorm running statistics follow every forward in train mode)."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def _batch() -> dict[str, torch.Tensor]:
    return next(iter(DataLoader(_data(), batch_size=2)))


def test_one_iteration_logs_finite_terms_whose_weighted_sum_is_the_total():
    trainer = _build()
    trainer.run()
    out = trainer.state.output
    expected = {"G/distance", "G/texture", "G/adversarial", "G/total", "D/real", "D/fake", "D/gp", "D/total"}
    assert expected <= set(out)
    assert all(torch.isfinite(out[k]) for k in expected)
    # paper 001 eq. 8: λd = 1000, λt = 50, λa = 1; critic: real + fake + λ_GP (10) · gp
    g_total = 1000.0 * out["G/distance"] + 50.0 * out["G/texture"] + 1.0 * out["G/adversarial"]
    torch.testing.assert_close(out["G/total"], g_total, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["D/total"], out["D/real"] + out["D/fake"] + 10.0 * out["D/gp"], rtol=1e-5, atol=1e-6)
    assert trainer.auxiliary["texture_network"].training is False


def test_critic_terms_equal_the_conditional_wgan_gp_critic_loss():
    trainer = _build()
    batch = trainer.prepare_batch(_batch())
    with torch.no_grad():
        fake = trainer.forward(batch)["fake"]
    torch.manual_seed(11)
    terms = trainer.discriminator_step(batch, {"fake": fake})["D"]
    torch.manual_seed(11)
    ref = trainer.loss.critic_loss(trainer.get_network("D"), batch["source"], batch["target"], fake)
    torch.testing.assert_close(terms["real"] + terms["fake"] + 10.0 * terms["gp"], ref, rtol=1e-5, atol=1e-6)


def test_critic_step_moves_only_the_critic():
    trainer = _build(generator_every=2)
    g0, d0 = _weights(trainer.networks["G"]), _weights(trainer.networks["D"])
    trainer.state.iteration = 2  # (2 - 1) % 2 != 0: a critic-only iteration
    out = trainer.train_step(_batch())
    assert not any(k.startswith("G/") for k in out) and "D/total" in out
    assert _same(g0, _weights(trainer.networks["G"]))
    assert not _same(d0, _weights(trainer.networks["D"]))


def test_generator_step_moves_only_the_generator():
    trainer = _build()
    trainer.discriminator_step = lambda batch, fakes: {}  # isolate the generator update
    g0, d0 = _weights(trainer.networks["G"]), _weights(trainer.networks["D"])
    trainer.state.iteration = 1
    out = trainer.train_step(_batch())
    assert "G/total" in out and "D/total" not in out
    assert not _same(g0, _weights(trainer.networks["G"]))
    assert _same(d0, _weights(trainer.networks["D"]))
    assert all(p.grad is None for p in trainer.networks["D"].parameters())  # the critic was frozen


def test_gradient_clipping_follows_clip_grad_norm():
    max_norm = 1e-3
    trainer = _build(optimizer="sgd", lr=1.0, grad_clip_norm=max_norm)
    g_ref, d_ref = copy.deepcopy(trainer.networks["G"]), copy.deepcopy(trainer.networks["D"])
    g0, d0 = _params(trainer.networks["G"]), _params(trainer.networks["D"])
    batch = _batch()
    trainer.state.iteration = 1
    trainer.train_step(batch)

    # the same generator step by hand: weighted loss, backward, clip_grad_norm_, SGD(lr=1)
    d_ref.requires_grad_(False)
    fake = g_ref(batch["source"], batch["mtf2d"])
    loss = trainer.loss
    total = (1000.0 * loss.huber(fake, batch["target"]) + 50.0 * loss.texture(fake, batch["target"], batch["lung"])
             + loss.adversarial.generator_loss(d_ref, batch["source"], fake))
    total.backward()
    params = [p for p in g_ref.parameters() if p.grad is not None]
    unclipped = torch.nn.utils.clip_grad_norm_(params, max_norm)
    assert unclipped > 10 * max_norm  # clipping is active
    with torch.no_grad():
        for p in params:
            p -= p.grad
    for name, p in g_ref.named_parameters():
        torch.testing.assert_close(trainer.networks["G"].state_dict()[name], p.detach(), rtol=0, atol=1e-7)
    for before, net in ((g0, trainer.networks["G"]), (d0, trainer.networks["D"])):
        named = dict(net.named_parameters())
        step = torch.sqrt(sum(((named[k].detach() - before[k]) ** 2).sum() for k in named))
        assert 0 < step <= max_norm * (1 + 1e-4)  # SGD(lr=1): the step is the clipped gradient


def test_cyclic_lr_follows_cycliclr():
    n = 7
    trainer = _build(schedulers=True, max_epochs=1, epoch_length=n)
    seen = []
    trainer.add_event_handler(Events.ITERATION_STARTED,
                              lambda e: seen.append([o.param_groups[0]["lr"] for o in e.optimizers.values()]))
    trainer.run()
    ref_opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-4)
    ref = make_cyclic_scheduler(ref_opt, base_lr=1e-4, max_lr=5e-4, step_size_up=2)
    expected = []
    for _ in range(n):
        expected.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step()
    assert [s[0] for s in seen] == pytest.approx(expected) and [s[1] for s in seen] == pytest.approx(expected)
    assert max(expected) == pytest.approx(5e-4) and expected[0] == pytest.approx(1e-4)


def test_resume_continues_identically(tmp_path: Path):
    straight = _build(max_epochs=2, schedulers=True)
    straight.run()
    first = _build(max_epochs=1, schedulers=True, checkpoint_dir=str(tmp_path))
    first.run()
    resumed = _build(max_epochs=2, schedulers=True, checkpoint_dir=str(tmp_path), resume_from="auto")
    resumed.run()
    assert resumed.state.iteration == 2
    for name in ("G", "D"):
        a, b = _params(straight.networks[name]), _params(resumed.networks[name])
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-7)
    assert resumed.optimizers["G"].param_groups[0]["lr"] == pytest.approx(straight.optimizers["G"].param_groups[0]["lr"])


def test_config_errors():
    with pytest.raises(ConfigError, match="WGAN-GP"):
        _build(adversarial="lsgan")
    torch.manual_seed(0)
    g, d = _tiny_generator(), PatchDiscriminator(in_channels=2, ndf=2, n_layers=3)
    with pytest.raises(ConfigError, match="needs generators"):
        MTFHarmonizerTrainer(device="cpu", max_epochs=1, train_data_loader=DataLoader(_data(), batch_size=2),
                             generators={"gen": g}, discriminators={"D": d},
                             optimizers={"G": torch.optim.Adam(g.parameters()), "D": torch.optim.Adam(d.parameters())},
                             loss=MTFHarmonizerLoss(texture_loss=MaskedGramTextureLoss(TinyFeatures())))


def test_trains_on_simulated_force_family(tmp_path: Path):
    from ctharmonize.datasets import MTFPairedSlices
    from ctharmonize.simulation.force_dataset import generate_force_family

    datalist = generate_force_family(tmp_path / "ff", subjects=3, size=64, slices=2, progress=False)
    data = MTFPairedSlices(datalist, kernels=["siemens_br40f", "siemens_br69f"], split="train", roi_size=SIZE)
    torch.manual_seed(0)
    g, d = _tiny_generator(), PatchDiscriminator(in_channels=2, ndf=2, n_layers=3)
    trainer = MTFHarmonizerTrainer(
        device="cpu", max_epochs=1, train_data_loader=DataLoader(data, batch_size=2, shuffle=True), epoch_length=2,
        generators={"G": g}, discriminators={"D": d}, optimizers=mtf_harmonizer_optimizers(g, d), generator_every=1,
        loss=MTFHarmonizerLoss(texture_loss=MaskedGramTextureLoss(TinyFeatures())))
    trainer.run()
    assert trainer.state.iteration == 2
    assert all(torch.isfinite(v) for v in trainer.state.output.values())


def test_docs_train_json_sketch_builds_and_runs(tmp_path: Path):
    import json
    import re

    from monai.bundle import ConfigParser

    doc = (Path(__file__).resolve().parents[2] / "docs" / "engines.md").read_text()
    section = doc[doc.index("### Physics-informed MTF harmonizer"):]
    config = json.loads(re.search(r"```jsonc\n(.*?)```", section, flags=re.S).group(1))
    parser = ConfigParser(config)
    parser["bundle_root"] = str(tmp_path)
    parser["device"] = "cpu"
    parser["train_data"] = _data()  # tiny stand-ins for the simulated data and the paper-size networks
    parser["train_loader#batch_size"] = 2
    parser["train_loader#num_workers"] = 0
    parser["generator"] = {"_target_": "ctharmonize.networks.MTFHarmonizer", "channels": [2, 4], "gamma_channels": 2,
                           "mtf_channels": 2, "mtf_hidden": 2, "mtf_strides": [1, 1], "head_hidden": 4,
                           "attention_channels": 2}
    parser["critic#ndf"] = 2
    parser["trainer#max_epochs"] = 1
    parser["trainer#loss#texture_loss"] = MaskedGramTextureLoss(TinyFeatures())
    parser.parse()
    trainer = parser.get_parsed_content("trainer")
    assert isinstance(trainer, MTFHarmonizerTrainer) and trainer.generator_every == 5
    assert trainer.schedulers["G"].total_size == 4  # step_size_up = 2 epochs of 1 iteration, and 2 down
    parser.get_parsed_content("run")
    assert trainer.state.iteration == 1 and {"G/total", "D/total"} <= set(trainer.state.metrics)
    assert (tmp_path / "runs" / "checkpoints" / "checkpoint_1.pt").is_file()
