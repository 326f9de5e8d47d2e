"""GANTrainer / CycleGANTrainer behaviour on toy 16x16 data (single process, CPU)."""

from __future__ import annotations

import pytest
import torch
from engines_toy import ToyDiscriminator, ToyGenerator, build_trainer, toy_data
from ignite.engine import Events
from torch.utils.data import DataLoader

from ctharmonize.engines import CycleGANTrainer, GANTensorBoardHandler, linear_decay_lambda
from ctharmonize.errors import ConfigError, OutputExistsError


def _record_outputs(trainer):
    outputs = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append({k: float(v) for k, v in e.state.output.items()}))
    return outputs


def test_iteration_weights_terms_steps_every_optimizer_and_averages_per_epoch():
    trainer = build_trainer(max_epochs=2, loss_weights={"cycle": 10, "identity": 5, "adv_A": 2})
    outputs = _record_outputs(trainer)
    epoch_metrics = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: epoch_metrics.append(dict(e.state.metrics)))
    trainer.run()
    assert trainer.state.iteration == 4 and len(outputs) == 4
    for out in outputs:
        expected = (2 * out["G/adv_A"] + out["G/adv_B"] + 10 * (out["G/cycle_A"] + out["G/cycle_B"])
                    + 5 * (out["G/identity_A"] + out["G/identity_B"]))
        assert out["G/total"] == pytest.approx(expected, rel=1e-5)
        for d in ("D_A", "D_B"):
            assert out[f"{d}/total"] == pytest.approx(out[f"{d}/real"] + out[f"{d}/fake"], rel=1e-5)
    for opt in trainer.optimizers.values():
        assert all(s["step"] == 4 for s in opt.state.values())
    # epoch means of the per-iteration values (2 iterations per epoch)
    for epoch, metrics in enumerate(epoch_metrics):
        for key in ("G/total", "D_A/real", "G/cycle_B"):
            assert metrics[key] == pytest.approx((outputs[2 * epoch][key] + outputs[2 * epoch + 1][key]) / 2, rel=1e-5)
    # learning rate decayed per epoch with the CycleGAN rule (1 constant + 1 decay epoch)
    rule = linear_decay_lambda(1, 1)
    assert trainer.optimizers["G"].param_groups[0]["lr"] == pytest.approx(2e-3 * rule(2))


def test_discriminators_frozen_in_generator_step_and_trainable_in_their_own():
    seen = {}

    class Spy(CycleGANTrainer):
        def generator_step(self, batch, fakes):
            seen["g"] = [p.requires_grad for n in self.discriminators for p in self.networks[n].parameters()]
            seen["g_fake_grad"] = fakes["fake_B"].requires_grad
            return super().generator_step(batch, fakes)

        def discriminator_step(self, batch, fakes):
            seen["d"] = [p.requires_grad for n in self.discriminators for p in self.networks[n].parameters()]
            seen["d_fake_grad"] = fakes["fake_B"].requires_grad
            return super().discriminator_step(batch, fakes)

    trainer = _build(Spy, max_epochs=1)
    g_before = {k: v.clone() for k, v in trainer.networks["G_AB"].state_dict().items()}
    trainer.run()
    assert not any(seen["g"]) and all(seen["d"])
    assert seen["g_fake_grad"] and not seen["d_fake_grad"]
    assert any(not torch.equal(v, trainer.networks["G_AB"].state_dict()[k]) for k, v in g_before.items())


def test_generator_every_updates_generators_on_every_nth_iteration():
    trainer = build_trainer(max_epochs=2, generator_every=3)
    outputs = _record_outputs(trainer)
    trainer.run()
    g_steps = trainer.optimizers["G"].state[trainer.optimizers["G"].param_groups[0]["params"][0]]["step"]
    d_steps = trainer.optimizers["D_A"].state[trainer.optimizers["D_A"].param_groups[0]["params"][0]]["step"]
    assert (float(g_steps), float(d_steps)) == (2.0, 4.0)  # iterations 1 and 4
    assert ["G/total" in o for o in outputs] == [True, False, False, True]


def test_bf16_autocast_runs_on_cpu():
    dtypes = []

    class Spy(CycleGANTrainer):
        def forward(self, batch):
            fakes = super().forward(batch)
            dtypes.append(fakes["fake_B"].dtype)
            return fakes

    trainer = _build(Spy, max_epochs=1, amp="bf16")
    outputs = _record_outputs(trainer)
    trainer.run()
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    assert all(torch.isfinite(torch.tensor(list(o.values()))).all() for o in outputs)
    assert all(p.dtype == torch.float32 for p in trainer.networks["G_AB"].parameters())


def test_fp16_uses_one_grad_scaler_per_optimizer():
    class InfOnDA(CycleGANTrainer):
        def discriminator_step(self, batch, fakes):
            terms = super().discriminator_step(batch, fakes)
            if self.state.iteration == 1:
                terms["D_A"]["real"] = terms["D_A"]["real"] * float("inf")
            return terms

    init = 256.0  # low enough that the toy nets never overflow by themselves
    trainer = _build(InfOnDA, max_epochs=1, amp="fp16", stop_on_nan=False, grad_scaler_kwargs={"init_scale": init})
    assert set(trainer.scalers) == {"G", "D_A", "D_B"}
    assert len({id(s) for s in trainer.scalers.values()}) == 3
    d_a = {k: v.clone() for k, v in trainer.networks["D_A"].state_dict().items()}
    d_b = {k: v.clone() for k, v in trainer.networks["D_B"].state_dict().items()}
    trainer.state.max_epochs = 1
    trainer.state.epoch_length = 1  # run exactly one iteration
    trainer.run()
    assert trainer.scalers["D_A"].get_scale() == init * 0.5  # inf gradient: D_A step skipped, its scale backed off
    assert trainer.scalers["D_B"].get_scale() == init and trainer.scalers["G"].get_scale() == init
    assert all(torch.equal(v, trainer.networks["D_A"].state_dict()[k]) for k, v in d_a.items())
    assert any(not torch.equal(v, trainer.networks["D_B"].state_dict()[k]) for k, v in d_b.items())


def test_non_finite_loss_stops_training_with_one_line_error():
    class Diverge(CycleGANTrainer):
        def generator_step(self, batch, fakes):
            terms = super().generator_step(batch, fakes)
            terms["cycle_A"] = terms["cycle_A"] * float("nan")
            return terms

    trainer = _build(Diverge, max_epochs=1)
    with pytest.raises(ConfigError, match="G is not finite at iteration 1") as err:
        trainer.run()
    assert "\n" not in str(err.value)


def test_configuration_errors_are_one_line_config_errors():
    nets = {"G_AB": ToyGenerator(), "G_BA": ToyGenerator(), "D_A": ToyDiscriminator(), "D_B": ToyDiscriminator()}
    loader = DataLoader(toy_data(4), batch_size=2)
    gens = {"G_AB": nets["G_AB"], "G_BA": nets["G_BA"]}
    discs = {"D_A": nets["D_A"], "D_B": nets["D_B"]}
    opt_g = torch.optim.Adam([*nets["G_AB"].parameters(), *nets["G_BA"].parameters()])
    mixed = torch.optim.Adam([*nets["D_A"].parameters(), *nets["G_AB"].parameters()])
    with pytest.raises(ConfigError, match="mixes generator and discriminator"):
        CycleGANTrainer("cpu", 1, loader, gens, discs, {"G": opt_g, "D": mixed,
                                                        "D_B": torch.optim.Adam(nets["D_B"].parameters())})
    with pytest.raises(ConfigError, match="'D_B' must have its parameters in exactly one optimizer"):
        CycleGANTrainer("cpu", 1, loader, gens, discs, {"G": opt_g, "D_A": torch.optim.Adam(nets["D_A"].parameters())})
    with pytest.raises(ConfigError, match="missing"):
        CycleGANTrainer("cpu", 1, loader, {"G_AB": nets["G_AB"]}, discs,
                        {"G": torch.optim.Adam(nets["G_AB"].parameters()),
                         "D_A": torch.optim.Adam(nets["D_A"].parameters()),
                         "D_B": torch.optim.Adam(nets["D_B"].parameters())})
    with pytest.raises(ConfigError, match="amp must be"):
        build_trainer(amp="fp8")


def test_checkpoint_dir_refuses_earlier_run_unless_resume_or_overwrite(tmp_path):
    build_trainer(max_epochs=1, checkpoint_dir=tmp_path, save_epoch_weights=True).run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_2.pt", "weights_epoch0001.pt"]
    weights = torch.load(tmp_path / "weights_epoch0001.pt", weights_only=True)
    assert set(weights) == {"G_AB", "G_BA", "engine"}
    with pytest.raises(OutputExistsError, match="resume_from='auto' or overwrite=True"):
        build_trainer(max_epochs=1, checkpoint_dir=tmp_path).run()
    resumed = build_trainer(max_epochs=2, checkpoint_dir=tmp_path, resume_from="auto")
    resumed.run()  # continues epoch 2 only
    assert resumed.state.iteration == 4
    assert float(resumed.optimizers["G"].state[resumed.optimizers["G"].param_groups[0]["params"][0]]["step"]) == 4.0
    fresh = build_trainer(max_epochs=1, checkpoint_dir=tmp_path, overwrite=True)
    fresh.run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_2.pt"]
    fresh.state.max_epochs = 2
    fresh.run()  # a second run() of the same trainer continues (its own checkpoints are not "earlier")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_2.pt", "checkpoint_4.pt"]
    with pytest.raises(ConfigError, match="does not exist"):
        build_trainer(max_epochs=1, resume_from=str(tmp_path / "nope.pt")).run()


def test_handlers_see_networks_and_tensorboard_gets_losses_lrs_images(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class GeneratorProbe:  # what a checkpoint-selection handler does: run a raw generator at epoch end
        outputs = []

        def attach(self, engine):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)

        def __call__(self, engine):
            with torch.no_grad():
                self.outputs.append(engine.networks["G_AB"](torch.zeros(1, 1, 16, 16)).shape)

    tb = GANTensorBoardHandler(tmp_path / "tb", log_every=1, image_every=1)
    trainer = build_trainer(max_epochs=2, train_handlers=[GeneratorProbe(), tb])
    trainer.run()
    assert GeneratorProbe.outputs == [torch.Size([1, 1, 16, 16])] * 2
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"iteration/G/total", "iteration/D_A/fake", "epoch/G/cycle_A", "lr/G", "lr/D_B"} <= set(tags["scalars"])
    assert [e.value for e in acc.Scalars("lr/G")] == pytest.approx([2e-3, 1e-3])
    assert len(acc.Scalars("iteration/G/total")) == 4
    assert {"images/fake_B", "images/rec_A"} <= set(tags["images"])


def _build(cls, **kwargs):
    """build_trainer with a CycleGANTrainer subclass."""
    import engines_toy

    original = engines_toy.CycleGANTrainer
    engines_toy.CycleGANTrainer = cls
    try:
        return build_trainer(**kwargs)
    finally:
        engines_toy.CycleGANTrainer = original


def test_partly_frozen_discriminator_stays_frozen_and_eval_mode_is_undone():
    nets = {"G_AB": ToyGenerator(), "G_BA": ToyGenerator(), "D_A": ToyDiscriminator(), "D_B": ToyDiscriminator()}
    frozen = nets["D_A"].net[0].weight
    frozen.requires_grad_(False)
    frozen_before = frozen.detach().clone()
    opts = {
        "G": torch.optim.Adam([*nets["G_AB"].parameters(), *nets["G_BA"].parameters()]),
        "D_A": torch.optim.Adam([p for p in nets["D_A"].parameters() if p.requires_grad]),
        "D_B": torch.optim.Adam(nets["D_B"].parameters()),
    }
    modes = []

    class Spy(CycleGANTrainer):
        def forward(self, batch):
            modes.append(self.networks["G_AB"].training)
            return super().forward(batch)

    class EvalLeaver:  # a careless validation handler
        def attach(self, engine):
            engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: e.networks["G_AB"].eval())

    trainer = Spy(
        "cpu", 2, DataLoader(toy_data(4), batch_size=2),
        {"G_AB": nets["G_AB"], "G_BA": nets["G_BA"]}, {"D_A": nets["D_A"], "D_B": nets["D_B"]}, opts,
        train_handlers=[EvalLeaver()],
    )
    trainer.run()
    assert not frozen.requires_grad and torch.equal(frozen, frozen_before)
    assert nets["D_A"].net[2].weight.requires_grad
    assert nets["G_AB"].training is False  # the handler left it in eval mode after every iteration,
    assert modes == [True] * 4  # yet every iteration trained in training mode


def test_resume_with_a_different_epoch_length_is_refused(tmp_path):
    build_trainer(max_epochs=1, checkpoint_dir=tmp_path).run()
    with pytest.raises(ConfigError, match="iterations per epoch"):
        build_trainer(max_epochs=2, fraction=1.0, checkpoint_dir=tmp_path, resume_from="auto").run()


def test_checkpoint_engine_state_names_epoch_and_iteration(tmp_path):
    build_trainer(max_epochs=2, checkpoint_dir=tmp_path, checkpoint_every=1).run()
    mid = torch.load(tmp_path / "checkpoint_3.pt", weights_only=True)["engine"]
    end = torch.load(tmp_path / "checkpoint_4.pt", weights_only=True)["engine"]
    assert (mid["iteration"], mid["epoch"], mid["epoch_length"]) == (3, 2, 2)  # written during epoch 2
    assert (end["iteration"], end["epoch"], end["max_epochs"]) == (4, 2, 2)


def _sgd_trainer(**kwargs) -> CycleGANTrainer:
    """Toy CycleGAN with plain SGD (lr 1): a parameter step is exactly minus the (clipped) gradient."""
    torch.manual_seed(0)
    nets = {"G_AB": ToyGenerator(), "G_BA": ToyGenerator(), "D_A": ToyDiscriminator(), "D_B": ToyDiscriminator()}
    opts = {"G": torch.optim.SGD([*nets["G_AB"].parameters(), *nets["G_BA"].parameters()], lr=1.0),
            "D_A": torch.optim.SGD(nets["D_A"].parameters(), lr=1.0),
            "D_B": torch.optim.SGD(nets["D_B"].parameters(), lr=1.0)}
    return CycleGANTrainer("cpu", 1, DataLoader(toy_data(4), batch_size=2), {"G_AB": nets["G_AB"], "G_BA": nets["G_BA"]},
                           {"D_A": nets["D_A"], "D_B": nets["D_B"]}, opts, epoch_length=1, **kwargs)


def _step_norms(trainer) -> dict[str, float]:
    """Run one iteration; the norm of each optimizer's parameter change."""
    before = {g: [p.detach().clone() for pg in o.param_groups for p in pg["params"]] for g, o in trainer.optimizers.items()}
    trainer.run()
    norms = {}
    for g, o in trainer.optimizers.items():
        now = [p.detach() for pg in o.param_groups for p in pg["params"]]
        norms[g] = float(torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(now, before[g], strict=True))))
    return norms


def test_grad_clip_norm_bounds_each_optimizers_gradient_norm():
    free = _step_norms(_sgd_trainer())
    clip = 1e-3
    assert all(n > 10 * clip for n in free.values())  # unclipped steps are far larger than the bound
    clipped = _step_norms(_sgd_trainer(grad_clip_norm=clip))
    for group, norm in clipped.items():  # SGD lr 1: |step| = |clipped gradient| = the bound, per optimizer
        assert norm == pytest.approx(clip, rel=1e-3), group
    loose = _step_norms(_sgd_trainer(grad_clip_norm=1e6))  # a bound above the norm changes nothing
    assert loose == pytest.approx(free, rel=1e-6)


def test_iteration_scheduler_interval_steps_after_every_iteration_not_every_epoch():
    trainer = build_trainer(max_epochs=2, scheduler_interval="iteration")
    for name, opt in trainer.optimizers.items():
        trainer.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 0.5**it)
    lrs = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: lrs.append(e.optimizers["G"].param_groups[0]["lr"]))
    trainer.run()
    assert lrs == pytest.approx([2e-3 * 0.5**k for k in range(4)])  # 4 iterations in 2 epochs
    assert trainer.optimizers["D_B"].param_groups[0]["lr"] == pytest.approx(2e-3 * 0.5**4)
    per_epoch = build_trainer(max_epochs=2)
    for name, opt in per_epoch.optimizers.items():
        per_epoch.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 0.5**it)
    per_epoch.run()
    assert per_epoch.optimizers["G"].param_groups[0]["lr"] == pytest.approx(2e-3 * 0.5**2)
    with pytest.raises(ConfigError, match="scheduler_interval"):
        build_trainer(scheduler_interval="step")
