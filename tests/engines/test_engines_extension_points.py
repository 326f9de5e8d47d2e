"""GANTrainer extension points: auxiliary networks, register_state, conditioned adversarial helpers,
discriminator-term weights, R1, the CycleGAN translate hook and the weight EMA (toy 16x16 CycleGAN, CPU)."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.nn.functional as F
from engines_toy import ToyDiscriminator, ToyGenerator, build_trainer, toy_data
from ignite.engine import Events
from torch import nn
from torch.utils.data import DataLoader

from ctharmonize.engines import CycleGANTrainer, GANTrainer
from ctharmonize.errors import ConfigError
from ctharmonize.losses import r1_penalty


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _build(cls, **kwargs):
    """build_trainer with a CycleGANTrainer subclass."""
    import engines_toy

    original = engines_toy.CycleGANTrainer
    engines_toy.CycleGANTrainer = cls
    try:
        return build_trainer(**kwargs)
    finally:
        engines_toy.CycleGANTrainer = original


# ---------------------------------------------------------------- auxiliary networks
def test_auxiliary_networks_are_frozen_eval_never_optimized_and_checkpointed_only_when_asked(tmp_path):
    feat, critic = ToyDiscriminator(), ToyDiscriminator()
    feat.train()
    before = {"feat": _params(feat), "critic": _params(critic)}
    used = []

    class WithAux(CycleGANTrainer):  # a Gram-like loss through a frozen network, and a fixed critic
        def generator_step(self, batch, fakes):
            terms = super().generator_step(batch, fakes)
            used.append(self.auxiliary["feat"].training)
            terms["feat_B"] = F.l1_loss(self.auxiliary["feat"](fakes["fake_B"]), self.auxiliary["feat"](batch["B"]))
            terms["adv_fixed"] = self.adversarial_loss("critic", fakes["fake_B"])
            return terms

    class TrainModeLeaver:  # a careless handler
        def attach(self, engine):
            engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: e.auxiliary["feat"].train())

    trainer = _build(WithAux, max_epochs=1, auxiliary={"feat": feat, "critic": critic}, checkpoint_dir=tmp_path,
                     train_handlers=[TrainModeLeaver()])
    assert set(trainer.auxiliary) == {"feat", "critic"} and not set(trainer.auxiliary) & set(trainer.networks)
    assert not any(p.requires_grad for m in (feat, critic) for p in m.parameters())
    opt_params = {id(p) for o in trainer.optimizers.values() for g in o.param_groups for p in g["params"]}
    assert not opt_params & {id(p) for m in (feat, critic) for p in m.parameters()}
    trainer.run()
    out = trainer.state.output
    assert "G/feat_B" in out and "G/adv_fixed" in out
    assert used == [False, False]  # eval mode in every iteration although the handler switched it to train
    assert _same(_params(feat), before["feat"]) and _same(_params(critic), before["critic"])  # never optimized
    ckpt = torch.load(tmp_path / "checkpoint_2.pt", weights_only=True)
    assert not [k for k in ckpt if k.startswith("auxiliary/")]  # not asked

    ask = build_trainer(max_epochs=1, auxiliary={"feat": ToyDiscriminator(), "critic": ToyDiscriminator()},
                        checkpoint_auxiliary=["feat"], checkpoint_dir=tmp_path / "ask")
    ask.run()
    ckpt = torch.load(tmp_path / "ask" / "checkpoint_2.pt", weights_only=True)
    assert [k for k in ckpt if k.startswith("auxiliary/")] == ["auxiliary/feat"]
    assert _same(ckpt["auxiliary/feat"], _params(ask.auxiliary["feat"]))
    # resume restores a checkpointed auxiliary network
    torch.manual_seed(123)
    other = ToyDiscriminator()
    resumed = build_trainer(max_epochs=2, auxiliary={"feat": other, "critic": ToyDiscriminator()},
                            checkpoint_auxiliary=True, checkpoint_dir=tmp_path / "ask", resume_from="auto")
    with pytest.raises(ConfigError, match="lacks"):  # True = both; the checkpoint has only feat
        resumed.run()
    resumed = build_trainer(max_epochs=2, auxiliary={"feat": other}, checkpoint_auxiliary=["feat"],
                            checkpoint_dir=tmp_path / "ask", resume_from="auto")
    assert not _same(_params(other), ckpt["auxiliary/feat"])
    resumed.run()
    assert _same(_params(other), ckpt["auxiliary/feat"])


def test_auxiliary_misuse_is_a_one_line_config_error():
    shared = ToyDiscriminator()
    with pytest.raises(ConfigError, match="also trained networks"):
        build_trainer(auxiliary={"D_A": ToyDiscriminator()})
    with pytest.raises(ConfigError, match="unknown auxiliary networks"):
        build_trainer(auxiliary={"feat": shared}, checkpoint_auxiliary=["nope"])
    nets = {"G_AB": ToyGenerator(), "G_BA": ToyGenerator(), "D_A": ToyDiscriminator(), "D_B": ToyDiscriminator()}
    opts = {"G": torch.optim.Adam([*nets["G_AB"].parameters(), *nets["G_BA"].parameters(), *shared.parameters()]),
            "D_A": torch.optim.Adam(nets["D_A"].parameters()), "D_B": torch.optim.Adam(nets["D_B"].parameters())}
    loader = DataLoader(toy_data(4), batch_size=2)
    gens, discs = {"G_AB": nets["G_AB"], "G_BA": nets["G_BA"]}, {"D_A": nets["D_A"], "D_B": nets["D_B"]}
    with pytest.raises(ConfigError, match="auxiliary networks are never optimized") as err:
        CycleGANTrainer("cpu", 1, loader, gens, discs, opts, auxiliary={"feat": shared})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="shares parameters with a trained network"):
        CycleGANTrainer("cpu", 1, loader, gens, discs, {**opts, "G": torch.optim.Adam(nets["G_AB"].parameters())},
                        auxiliary={"copy": nets["G_AB"]})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_auxiliary_networks_are_not_ddp_wrapped():
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        feat = ToyDiscriminator()
        trainer = build_trainer(max_epochs=1, auxiliary={"feat": feat}, ema={"G_AB": 0.5})
        assert isinstance(trainer.generators["G_AB"], DistributedDataParallel)
        assert isinstance(trainer.discriminators["D_A"], DistributedDataParallel)
        assert trainer.auxiliary["feat"] is feat and trainer.get_network("feat") is feat
        assert not isinstance(trainer.auxiliary["G_AB_ema"], DistributedDataParallel)
        assert not any(isinstance(m, DistributedDataParallel) for m in trainer.auxiliary["G_AB_ema"].modules())
        trainer.run()  # one DDP process trains with the auxiliary networks in place
        assert trainer.state.iteration == 2
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------- register_state
class Counter:
    """Extra per-method state: counts generator iterations."""

    def __init__(self) -> None:
        self.count = 0

    def state_dict(self) -> dict:
        return {"count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])


def _counting(counter: Counter):
    class Counting(CycleGANTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.register_state("counter", counter)

        def generator_step(self, batch, fakes):
            counter.count += 1
            return super().generator_step(batch, fakes)

    return Counting


def test_register_state_is_checkpointed_and_restored_on_resume(tmp_path):
    first = Counter()
    _build(_counting(first), max_epochs=1, checkpoint_dir=tmp_path).run()
    assert first.count == 2
    assert torch.load(tmp_path / "checkpoint_2.pt", weights_only=True)["counter"] == {"count": 2}
    second = Counter()
    resumed = _build(_counting(second), max_epochs=2, checkpoint_dir=tmp_path, resume_from="auto")
    resumed.run()
    assert second.count == 4  # 2 restored + 2 more iterations
    assert torch.load(tmp_path / "checkpoint_4.pt", weights_only=True)["counter"] == {"count": 4}
    # a checkpoint written without the state cannot silently resume a configuration that needs it
    build_trainer(max_epochs=1, checkpoint_dir=tmp_path / "plain").run()
    with pytest.raises(ConfigError, match="lacks \\['counter'\\]"):
        _build(_counting(Counter()), max_epochs=2, checkpoint_dir=tmp_path / "plain", resume_from="auto").run()


def test_register_state_refuses_bad_objects_and_names():
    trainer = build_trainer(max_epochs=1)
    with pytest.raises(ConfigError, match="no state_dict/load_state_dict"):
        trainer.register_state("x", object())
    with pytest.raises(ConfigError, match="reserved"):
        trainer.register_state("engine", Counter())
    trainer.register_state("x", c := Counter())
    trainer.register_state("x", c)  # the same object again is harmless
    with pytest.raises(ConfigError, match="already registered"):
        trainer.register_state("x", Counter())


# ---------------------------------------------------------------- conditioning
class ConditionalCritic(nn.Module):
    """``D(x, y) = w * y * mean(x)`` per sample, as a (B, 1, 2, 2) patch map; ``y``: (B,) condition."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.w * y * x.mean(dim=(1, 2, 3))).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)


def _conditional_trainer(**kwargs) -> CycleGANTrainer:
    nets = {"G_AB": ToyGenerator(), "G_BA": ToyGenerator(), "D_A": ConditionalCritic(), "D_B": ConditionalCritic()}
    opts = {"G": torch.optim.Adam([*nets["G_AB"].parameters(), *nets["G_BA"].parameters()]),
            "D_A": torch.optim.SGD(nets["D_A"].parameters(), lr=0.0), "D_B": torch.optim.SGD(nets["D_B"].parameters(), lr=0.0)}
    return CycleGANTrainer("cpu", 1, DataLoader(toy_data(4), batch_size=2), {"G_AB": nets["G_AB"], "G_BA": nets["G_BA"]},
                           {"D_A": nets["D_A"], "D_B": nets["D_B"]}, opts, **kwargs)


def test_condition_reaches_the_discriminator_in_every_adversarial_helper():
    trainer = _conditional_trainer(adversarial="wgan-gp", discriminator_loss_weights={"r1": 1.0})
    x_real = torch.full((2, 1, 4, 4), 0.5)
    x_fake = torch.full((2, 1, 4, 4), -0.25)
    y_real, y_fake = torch.tensor([1.0, 3.0]), torch.tensor([2.0, -1.0])
    # wgan-gp generator term -mean(D(fake, y)) with D = 2 * y * mean(x)
    assert float(trainer.adversarial_loss("D_A", x_fake, y_fake)) == pytest.approx(-(2 * -0.25 * (2 - 1) / 2))
    terms = trainer.discriminator_terms("D_A", x_real, x_fake, y_real, fake_condition=(y_fake,))
    assert float(terms["real"]) == pytest.approx(-(2 * 0.5 * (1 + 3) / 2))
    assert float(terms["fake"]) == pytest.approx(2 * -0.25 * (2 - 1) / 2)
    # grad_x of the patch-map sum: 4 patches * w * y / 16 pixels per pixel -> |grad|^2 = 16 * (w y / 4)^2 = (w y)^2
    gp_hand = sum((abs(2 * y) - 1) ** 2 for y in (1.0, 3.0)) / 2  # the real condition
    assert float(terms["gp"]) == pytest.approx(gp_hand, rel=1e-5)
    assert float(terms["r1"]) == pytest.approx(0.5 * sum((2 * y) ** 2 for y in (1.0, 3.0)) / 2, rel=1e-5)
    with pytest.raises(TypeError):  # the critic needs its condition: nothing is dropped silently
        trainer.adversarial_loss("D_A", x_fake)


def test_conditional_variant_trains_with_condition_from_the_batch():
    seen = []

    class Labelled(CycleGANTrainer):  # condition: a per-sample label, here the image mean sign
        def generator_step(self, batch, fakes):
            y = torch.ones(fakes["fake_B"].shape[0])
            return {"adv_B": self.adversarial_loss("D_B", fakes["fake_B"], y),
                    "adv_A": self.adversarial_loss("D_A", fakes["fake_A"], y),
                    "cycle_A": F.l1_loss(fakes["rec_A"], batch["A"])}

        def discriminator_step(self, batch, fakes):
            y = 2 * torch.ones(batch["A"].shape[0])
            seen.append(y)
            return {d: self.discriminator_terms(d, batch[d[-1]], fakes[f"fake_{d[-1]}"], y) for d in ("D_A", "D_B")}

    nets = {"G_AB": ToyGenerator(), "G_BA": ToyGenerator(), "D_A": ConditionalCritic(), "D_B": ConditionalCritic()}
    opts = {"G": torch.optim.Adam([*nets["G_AB"].parameters(), *nets["G_BA"].parameters()]),
            "D_A": torch.optim.SGD(nets["D_A"].parameters(), lr=0.1), "D_B": torch.optim.SGD(nets["D_B"].parameters(), lr=0.1)}
    trainer = Labelled("cpu", 1, DataLoader(toy_data(4), batch_size=2), {"G_AB": nets["G_AB"], "G_BA": nets["G_BA"]},
                       {"D_A": nets["D_A"], "D_B": nets["D_B"]}, opts, epoch_length=1)
    trainer.run()
    out, batch, fakes = trainer.state.output, trainer.state.batch, trainer.state.fakes
    # lsgan D term of real A under condition 2 with w = 2 (before the update): 0.5 * mean((4 * mean(a) - 1)^2)
    real_a = 4 * batch["A"].mean(dim=(1, 2, 3))
    assert float(out["D_A/real"]) == pytest.approx(float(0.5 * ((real_a - 1) ** 2).mean()), rel=1e-5)
    fake_b = 4 * fakes["fake_B"].mean(dim=(1, 2, 3))
    assert float(out["D_B/fake"]) == pytest.approx(float(0.5 * (fake_b**2).mean()), rel=1e-5)
    assert len(seen) == 1


# ---------------------------------------------------------------- discriminator-term weights and R1
def test_discriminator_terms_are_weighted_by_name_per_discriminator_and_dropped_at_zero():
    trainer = build_trainer(max_epochs=1, discriminator_loss_weights={"fake": 3.0, "D_B/real": 0.5})
    outputs = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(dict(e.state.output)))
    trainer.run()
    for out in outputs:
        assert float(out["D_A/total"]) == pytest.approx(float(out["D_A/real"] + 3 * out["D_A/fake"]), rel=1e-6)
        assert float(out["D_B/total"]) == pytest.approx(float(0.5 * out["D_B/real"] + 3 * out["D_B/fake"]), rel=1e-6)
    dropped = build_trainer(max_epochs=1, discriminator_loss_weights={"D_A/fake": 0.0})
    dropped.run()
    out = dropped.state.output
    assert "D_A/fake" in out and float(out["D_A/total"]) == pytest.approx(float(out["D_A/real"]), rel=1e-6)
    with pytest.raises(ConfigError, match="no term of 'D_A' with a non-zero weight"):
        build_trainer(max_epochs=1, discriminator_loss_weights={"D_A/fake": 0.0, "D_A/real": 0}).run()


def test_gradient_penalty_weight_is_the_gp_term_weight_and_gp_weight_still_works():
    outputs = {}
    for label, kwargs in (("legacy", {"gp_weight": 4.0}), ("named", {"discriminator_loss_weights": {"gp": 4.0}}),
                          ("default", {})):
        trainer = build_trainer(max_epochs=1, adversarial="wgan-gp", **kwargs)
        trainer.run()
        outputs[label] = out = trainer.state.output
        weight = 10.0 if label == "default" else 4.0
        for d in ("D_A", "D_B"):
            expected = out[f"{d}/real"] + out[f"{d}/fake"] + weight * out[f"{d}/gp"]
            assert float(out[f"{d}/total"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(outputs["legacy"]["D_A/total"]) == pytest.approx(float(outputs["named"]["D_A/total"]), rel=1e-6)
    with pytest.raises(ConfigError, match="once"):
        build_trainer(adversarial="wgan-gp", gp_weight=4.0, discriminator_loss_weights={"gp": 4.0})
    no_gp = build_trainer(max_epochs=1, adversarial="wgan-gp", discriminator_loss_weights={"gp": 0})
    no_gp.run()
    assert "D_A/gp" not in no_gp.state.output  # weight 0: not even computed


def test_r1_penalty_matches_hand_values_and_trains_the_critic():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    real = torch.randn(5, 2)
    r1 = r1_penalty(lambda x: x @ w, real, gamma=2.0)  # grad_x (w . x) = w: gamma/2 |w|^2 = 25
    assert float(r1) == pytest.approx(25.0)
    r1.backward()  # keeps the graph: d/dw gamma/2 |w|^2 = gamma w
    torch.testing.assert_close(w.grad, 2.0 * torch.tensor([3.0, 4.0]))
    x = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    # D(x) = sum x^2: grad 2x, |grad|^2 = 4 |x|^2 = 20 and 4; mean 12; gamma 1 -> 6
    assert float(r1_penalty(lambda v: (v**2).sum(1), x)) == pytest.approx(6.0)
    assert not x.requires_grad  # the input itself is untouched


def test_r1_term_is_added_when_its_weight_is_configured():
    trainer = build_trainer(max_epochs=1, epoch_length=1, discriminator_loss_weights={"r1": 2.0})
    trainer.run()
    out, batch = trainer.state.output, trainer.state.batch
    assert "D_A/r1" in out and "D_B/r1" in out
    assert float(out["D_A/total"]) == pytest.approx(float(out["D_A/real"] + out["D_A/fake"] + 2 * out["D_A/r1"]),
                                                    rel=1e-6)
    # independent value: 1/2 mean_b |grad_x sum D_B(x_b)|^2 at the batch's real B, with D_B's pre-update weights
    fresh = build_trainer(max_epochs=1, epoch_length=1)  # same seed: same initial discriminator
    x = batch["B"].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fresh.networks["D_B"](x).sum(), x)
    assert float(out["D_B/r1"]) == pytest.approx(float(0.5 * grad.flatten(1).pow(2).sum(1).mean()), rel=1e-5)
    plain = build_trainer(max_epochs=1, epoch_length=1)
    plain.run()
    assert not [k for k in plain.state.output if k.endswith("/r1")]


# ---------------------------------------------------------------- translate hook
def test_translate_override_changes_forward_cycle_and_identity_terms():
    calls = []
    shift = {("A", "B"): 0.25, ("B", "A"): -0.5}

    class Shifted(CycleGANTrainer):
        def translate(self, x, source, target, batch):
            calls.append((source, target))
            assert "A" in batch and "B" in batch
            return super().translate(x, source, target, batch) + shift[(source, target)]

    trainer = _build(Shifted, max_epochs=1, epoch_length=1, lr=0.0, loss_weights={"identity": 5.0})
    trainer.run()
    assert calls == [("A", "B"), ("B", "A"), ("B", "A"), ("A", "B"), ("B", "A"), ("A", "B")]
    out, batch, fakes = trainer.state.output, trainer.state.batch, trainer.state.fakes
    g_ab, g_ba = trainer.networks["G_AB"], trainer.networks["G_BA"]  # lr 0: the weights used in the step
    a, b = batch["A"], batch["B"]
    with torch.no_grad():
        fake_b = g_ab(a) + 0.25
        torch.testing.assert_close(fakes["fake_B"], fake_b)
        rec_a = g_ba(fake_b) - 0.5
        assert float(out["G/cycle_A"]) == pytest.approx(float((rec_a - a).abs().mean()), rel=1e-5)
        assert float(out["G/identity_A"]) == pytest.approx(float((g_ba(a) - 0.5 - a).abs().mean()), rel=1e-5)
        assert float(out["G/identity_B"]) == pytest.approx(float((g_ab(b) + 0.25 - b).abs().mean()), rel=1e-5)


# ---------------------------------------------------------------- EMA
def test_ema_follows_the_hand_computed_average_and_survives_a_resume(tmp_path):
    decay = 0.75
    trainer = build_trainer(max_epochs=1, ema={"G_AB": decay}, checkpoint_dir=tmp_path)
    g, ema = trainer.networks["G_AB"], trainer.auxiliary["G_AB_ema"]
    assert _same(_params(ema), _params(g))  # starts equal to the generator
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    hand = {k: v.clone() for k, v in _params(g).items()}
    history = []

    def follow(engine):
        for k, v in _params(g).items():
            hand[k] = decay * hand[k] + (1 - decay) * v
        history.append(_params(ema))

    trainer.add_event_handler(Events.ITERATION_COMPLETED, follow)
    trainer.run()
    assert len(history) == 2
    for k, v in hand.items():
        torch.testing.assert_close(history[-1][k], v, rtol=0, atol=1e-6)
    assert not _same(history[-1], _params(g))  # an average, not a copy
    ckpt = torch.load(tmp_path / "checkpoint_2.pt", weights_only=True)
    assert int(ckpt["ema/G_AB"]["n_averaged"]) == 3  # the initial copy + 2 steps
    assert _same({k[len("module."):]: v for k, v in ckpt["ema/G_AB"].items() if k.startswith("module.")}, history[-1])
    assert not [k for k in ckpt if k.startswith("auxiliary/")]  # the EMA copy is saved once, as ema/G_AB

    resumed = build_trainer(max_epochs=2, ema={"G_AB": decay}, checkpoint_dir=tmp_path, resume_from="auto")
    g2, ema2 = resumed.networks["G_AB"], resumed.auxiliary["G_AB_ema"]
    started = {}
    resumed.add_event_handler(Events.STARTED, lambda e: started.update(_params(ema2)))
    hand2 = {}

    def follow2(engine):
        base = hand2 or started
        for k, v in _params(g2).items():
            hand2[k] = decay * base[k] + (1 - decay) * v

    resumed.add_event_handler(Events.ITERATION_COMPLETED, follow2)
    resumed.run()
    assert _same(started, history[-1])  # restored, not re-initialised from the generator
    for k, v in hand2.items():
        torch.testing.assert_close(_params(ema2)[k], v, rtol=0, atol=1e-6)


def test_ema_into_a_config_built_module_visible_to_handlers():
    holder = ToyGenerator()
    seen = []

    class Probe:  # what a checkpoint selector over the EMA weights would do
        def attach(self, engine):
            engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(e.auxiliary["G_AB_ema"]))

    trainer = build_trainer(max_epochs=1, ema={"G_AB": 0.9}, auxiliary={"G_AB_ema": holder}, train_handlers=[Probe()])
    assert trainer.auxiliary["G_AB_ema"] is holder
    assert _same(_params(holder), _params(trainer.networks["G_AB"]))
    trainer.run()
    assert seen == [holder] and not _same(_params(holder), _params(trainer.networks["G_AB"]))
    with pytest.raises(ConfigError, match="architecture"):
        build_trainer(ema={"G_AB": 0.9}, auxiliary={"G_AB_ema": ToyDiscriminator()})
    with pytest.raises(ConfigError, match="not a generator"):
        build_trainer(ema={"D_A": 0.9})
    with pytest.raises(ConfigError, match="decay"):
        build_trainer(ema={"G_AB": 1.5})


def test_gantrainer_is_abstract_about_its_hooks_only():
    nets = {"G": ToyGenerator(), "D": ToyDiscriminator()}
    trainer = GANTrainer("cpu", 1, DataLoader(toy_data(2), batch_size=2), {"G": nets["G"]}, {"D": nets["D"]},
                         {"G": torch.optim.Adam(nets["G"].parameters()), "D": torch.optim.Adam(nets["D"].parameters())})
    with pytest.raises(ConfigError, match="no network 'nope'"):
        trainer.get_network("nope")
    with pytest.raises(NotImplementedError):
        trainer.forward({})
