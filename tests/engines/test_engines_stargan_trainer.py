"""StarGANTrainer: StarGAN v2 + paper 003's texture loss on tiny networks (dim_in 8, max_conv_dim 16, n_down 2,
32x32 images, 3 domains, CPU), batches in UnalignedMultiDomainSlices' format."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Events
from torch import nn
from torch.utils.data import DataLoader

from ctharmonize.engines import StarGANTrainer, stargan_optimizers
from ctharmonize.errors import ConfigError
from ctharmonize.losses import MultiScaleTextureLoss
from ctharmonize.networks import MappingNetwork, MultiTaskDiscriminator, StarGANGenerator, StyleEncoder

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DOMAINS = ["siemens_b30f", "ge_bone", "ge_standard"]
K, SIZE, STYLE, LATENT = len(DOMAINS), 32, 16, 16
G_TERMS = {f"G/{t}_{m}" for t in ("adv", "sty", "ds", "cyc", "txt") for m in ("latent", "ref")} | {"G/total"}
D_TERMS = {"D/real", "D/fake_latent", "D/fake_ref", "D/r1", "D/total"}


def _item(g: torch.Generator) -> dict[str, torch.Tensor]:
    """One dataset item: a slice of every domain (image, tissue labels, FOV), as UnalignedMultiDomainSlices gives."""
    item = {}
    for i, d in enumerate(DOMAINS):
        smooth = F.interpolate(torch.rand(1, 1, 8, 8, generator=g), size=(SIZE, SIZE), mode="bilinear")[0]
        item[f"image_{d}"] = (smooth * 1.5 - 0.75 + 0.1 * (i + 1) * torch.randn(1, SIZE, SIZE, generator=g)).clamp(-1, 1)
        item[f"labels_{d}"] = torch.zeros(1, SIZE, SIZE, dtype=torch.long)
        item[f"fov_{d}"] = torch.ones(1, SIZE, SIZE, dtype=torch.bool)
    return item


def _data(n: int = 4, seed: int = 1) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [_item(g) for _ in range(n)]


def _nets(texture: str | None = "paper") -> dict[str, nn.Module]:
    nets = {
        "G": StarGANGenerator(style_dim=STYLE, dim_in=8, max_conv_dim=16, n_down=2),
        "F": MappingNetwork(latent_dim=LATENT, style_dim=STYLE, num_domains=K, hidden_dim=16),
        "E": StyleEncoder(style_dim=STYLE, num_domains=K, dim_in=8, max_conv_dim=16, n_down=2),
        "D": MultiTaskDiscriminator(num_domains=K, dim_in=8, max_conv_dim=16, n_down=2),
    }
    if texture is not None:
        nets["texture"] = MultiScaleTextureLoss(mode=texture, n_levels=8)
    return nets


def _build(texture: str | None = "paper", seed: int = 0, epoch_length: int = 1, max_epochs: int = 1,
           batch_size: int = 2, lr: float = 1e-3, mapping_lr: float = 1e-5, **kwargs) -> StarGANTrainer:
    torch.manual_seed(seed)
    nets = _nets(texture)
    optimizers = stargan_optimizers(nets["G"], nets["F"], nets["E"], nets["D"], nets.get("texture"), lr=lr,
                                    mapping_lr=mapping_lr)
    return StarGANTrainer(
        device="cpu", max_epochs=max_epochs, train_data_loader=DataLoader(_data(), batch_size=batch_size),
        epoch_length=epoch_length,
        generators={"G": nets["G"], "F": nets["F"], "E": nets["E"]}, discriminators={"D": nets["D"]},
        optimizers=optimizers, domains=DOMAINS, texture_loss=nets.get("texture"), **kwargs,
    )


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.named_parameters())


def _first_batch(trainer: StarGANTrainer) -> dict[str, torch.Tensor]:
    return next(iter(trainer.data_loader))


def _outputs(trainer: StarGANTrainer) -> list[dict[str, float]]:
    seen: list[dict[str, float]] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: seen.append({k: float(v) for k, v in e.state.output.items()}))
    return seen


# ---------------------------------------------------------------- (a) terms
def test_one_iteration_logs_every_term_finite_and_the_weighted_total():
    trainer = _build(ds_iter=None)
    outputs = _outputs(trainer)
    trainer.run()
    out = outputs[0]
    assert set(out) == G_TERMS | D_TERMS
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values())
    assert out["G/ds_latent"] <= 0 and out["G/ds_ref"] <= 0  # -|fake - fake2|: its weight lambda_ds is >= 0
    g_total = sum(v for k, v in out.items() if k.startswith("G/") and k != "G/total")  # all weights 1
    assert out["G/total"] == pytest.approx(g_total, rel=1e-5)
    d_total = out["D/real"] + 0.5 * (out["D/fake_latent"] + out["D/fake_ref"]) + out["D/r1"]
    assert out["D/total"] == pytest.approx(d_total, rel=1e-5)
    assert set(trainer.auxiliary) == {"G_ema", "F_ema", "E_ema"}
    assert set(trainer.networks) == {"G", "F", "E", "D", "texture"}


def test_identity_term_is_the_own_style_reconstruction_and_off_by_default():
    """idt = |G(x, E(x, y_src)) - x|_1 with the networks of the iteration's start (a CT choice; StarGAN v2 has
    none, so the default weight is 0 and the term is not computed)."""
    trainer = _build(ds_iter=None, loss_weights={"idt": 2.0})
    g0, e0 = copy.deepcopy(trainer.networks["G"]), copy.deepcopy(trainer.networks["E"])
    batch = _first_batch(trainer)
    outputs = _outputs(trainer)
    trainer.run()
    out = outputs[0]
    x = torch.cat([batch[f"image_{d}"] for d in DOMAINS])  # x_real: the domains' images in domain order
    y_src = torch.arange(K).repeat_interleave(batch[f"image_{DOMAINS[0]}"].shape[0])
    with torch.no_grad():
        want = (g0(x, e0(x, y_src)) - x).abs().mean().item()
    assert out["G/idt"] == pytest.approx(want, rel=1e-4)
    others = sum(v for k, v in out.items() if k.startswith("G/") and k not in ("G/total", "G/idt"))
    assert out["G/total"] == pytest.approx(others + 2.0 * out["G/idt"], rel=1e-5)

    default = _build(ds_iter=None)
    seen = _outputs(default)
    default.run()
    assert "G/idt" not in seen[0]


# ---------------------------------------------------------------- (b) which step moves what
def test_d_step_moves_only_d_and_g_step_only_g_f_e_and_the_texture_attention():
    trainer = _build()
    names = ["G", "F", "E", "texture", "D"]
    calls = []
    original = trainer._update

    def grads(n: str) -> list[torch.Tensor | None]:
        return [None if p.grad is None else p.grad.clone() for p in trainer.networks[n].parameters()]

    def spy(groups, loss):
        before = {n: _params(trainer.networks[n]) for n in names}
        grads_before = {n: grads(n) for n in names}
        original(groups, loss)
        new_grads = {n for n in names if any(
            (a is None) != (b is None) or (a is not None and not torch.equal(a, b))
            for a, b in zip(grads_before[n], grads(n), strict=True))}
        calls.append((list(groups), {n for n in names if _changed(before[n], trainer.networks[n])}, new_grads))

    trainer._update = spy
    trainer.run()
    (g_groups, g_moved, g_grads), (d_groups, d_moved, d_grads) = calls
    assert sorted(g_groups) == ["E", "F", "G"] and d_groups == ["D"]
    assert g_moved == g_grads == {"G", "F", "E", "texture"}  # D is frozen during the G step
    assert d_moved == d_grads == {"D"}  # fakes are detached: the D step backpropagates into D only


def test_reference_terms_train_g_but_not_the_style_encoder_unless_asked():
    for trains_e in (False, True):
        trainer = _build(reference_trains_style_encoder=trains_e)
        batch = trainer.prepare_batch(_first_batch(trainer))
        fakes = trainer.forward(batch)
        terms = trainer.generator_step(batch, fakes)
        ref = sum(v for k, v in terms.items() if k.endswith("_ref"))
        ref.backward()
        e_grad = [p.grad for p in trainer.networks["E"].parameters()]
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.networks["G"].parameters())
        assert all(p.grad is None for p in trainer.networks["F"].parameters())  # F is not in the reference path
        if trains_e:
            assert any(g is not None and g.abs().sum() > 0 for g in e_grad)
        else:
            assert all(g is None for g in e_grad)
        assert all(p.requires_grad for p in trainer.networks["E"].parameters())  # unfrozen again


# ---------------------------------------------------------------- (c) R1
def test_r1_term_equals_an_independent_autograd_computation_on_the_same_reals():
    trainer = _build()
    d_before = copy.deepcopy(trainer.networks["D"])  # the G step does not touch D: D of the D step
    outputs = _outputs(trainer)
    trainer.run()
    batch = _first_batch(trainer)
    x = torch.cat([batch[f"image_{d}"] for d in DOMAINS]).requires_grad_(True)
    y = torch.arange(K).repeat_interleave(2)
    logits = d_before(x, y)
    (grad,) = torch.autograd.grad(logits.sum(), x)
    r1 = 0.5 * (grad**2).flatten(1).sum(1).mean()
    assert outputs[0]["D/r1"] == pytest.approx(float(r1), rel=1e-4)
    assert outputs[0]["D/real"] == pytest.approx(float(F.softplus(-logits).mean().detach()), rel=1e-5)

    no_r1 = _build(discriminator_loss_weights={"r1": 0.0})
    outputs = _outputs(no_r1)
    no_r1.run()
    assert "D/r1" not in outputs[0]


# ---------------------------------------------------------------- (d) lambda_ds
def test_lambda_ds_decays_linearly_to_zero_at_the_configured_iteration():
    trainer = _build(epoch_length=4, ds_iter=2, loss_weights={"ds": 2.0})
    assert [trainer.ds_factor(i) for i in (1, 2, 3, 4)] == [1.0, 0.5, 0.0, 0.0]
    weights = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: weights.append(e.loss_weight("ds_latent")))
    outputs = _outputs(trainer)
    trainer.run()
    assert weights == [2.0, 1.0, 0.0, 0.0]
    for out, w in zip(outputs, weights, strict=True):
        ds = [k for k in out if k.startswith("G/ds_")]
        assert (sorted(ds) == ["G/ds_latent", "G/ds_ref"]) == (w != 0)  # not even computed at weight 0
        rest = sum(v for k, v in out.items() if k.startswith("G/") and k != "G/total" and k not in ds)
        assert out["G/total"] == pytest.approx(rest + w * sum(out[k] for k in ds), rel=1e-5)
    assert trainer.loss_weights["ds"] == 2.0  # the schedule does not rewrite the configured weight


# ---------------------------------------------------------------- (e) EMA
def test_ema_moves_toward_the_live_weights_by_one_minus_decay_of_the_difference():
    trainer = _build(epoch_length=2, lr=1e-2, mapping_lr=1e-2)  # steps well above float32 rounding of the EMA
    assert {n: d for n, d in ((n, 0.999) for n in ("G", "F", "E"))} == StarGANTrainer.DEFAULT_EMA
    snaps = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: snaps.append(
        {n: (_params(e.auxiliary[f"{n}_ema"]), _params(e.networks[n])) for n in ("G", "F", "E")}))
    trainer.run()
    for n in ("G", "F", "E"):
        ema1, _ = snaps[0][n]
        ema2, live2 = snaps[1][n]
        for k in ema1:  # ema2 = ema1 + (1 - 0.999) * (live2 - ema1), to float32 rounding
            expected = ema1[k].double() + (1 - 0.999) * (live2[k].double() - ema1[k].double())
            torch.testing.assert_close(ema2[k].double(), expected, rtol=1e-6, atol=1e-9)
        step = torch.cat([(ema2[k].double() - ema1[k].double()).flatten() for k in ema1])
        gap = torch.cat([(live2[k].double() - ema1[k].double()).flatten() for k in ema1])
        assert float(gap.abs().max()) > 0, n
        assert float((step * gap).sum() / (gap * gap).sum()) == pytest.approx(1 - 0.999, rel=1e-2)  # the fraction moved


# ---------------------------------------------------------------- (f) resume
def test_checkpoint_and_resume_restore_the_ema_state_exactly(tmp_path):
    first = _build(epoch_length=2, checkpoint_dir=tmp_path)
    first.run()
    saved = {n: _params(first.auxiliary[f"{n}_ema"]) for n in ("G", "F", "E")}
    saved["texture"] = _params(first.networks["texture"])
    ckpt = torch.load(tmp_path / "checkpoint_2.pt", weights_only=True)
    assert {"ema/G", "ema/F", "ema/E", "network/texture", "optimizer/F"} <= set(ckpt)
    assert all(int(ckpt[f"ema/{n}"]["n_averaged"]) == 3 for n in ("G", "F", "E"))  # copy + 2 steps

    resumed = _build(seed=5, epoch_length=2, max_epochs=2, checkpoint_dir=tmp_path, resume_from="auto")
    fresh = {n: _params(resumed.auxiliary[f"{n}_ema"]) for n in ("G", "F", "E")}
    assert any(not torch.equal(fresh["G"][k], saved["G"][k]) for k in saved["G"])  # another init before resume
    started = {}
    resumed.add_event_handler(Events.STARTED, lambda e: started.update(
        {n: _params(e.auxiliary[f"{n}_ema"]) for n in ("G", "F", "E")} | {"texture": _params(e.networks["texture"])}))
    resumed.run()
    assert resumed.state.iteration == 4
    for n, params in saved.items():
        assert all(torch.equal(started[n][k], v) for k, v in params.items()), n
    assert int(resumed.emas["G"].n_averaged) == 5


# ---------------------------------------------------------------- (g) texture weight 0
def test_texture_weight_zero_drops_the_term_and_leaves_the_attention_unused():
    trainer = _build(loss_weights={"txt": 0.0})
    texture = trainer.networks["texture"]
    before = _params(texture)
    outputs = _outputs(trainer)
    trainer.run()
    assert not [k for k in outputs[0] if "txt" in k]
    assert set(outputs[0]) == (G_TERMS - {"G/txt_latent", "G/txt_ref"}) | D_TERMS
    assert all(p.grad is None for p in texture.parameters())
    assert not _changed(before, texture)

    baseline = _build(texture=None, loss_weights={"txt": 0})  # the baseline StarGAN v2: no texture module at all
    baseline.run()
    assert "texture" not in baseline.networks
    with pytest.raises(ConfigError, match="texture_loss"):
        _build(texture=None)  # the paper's default weight 1 needs the module


# ---------------------------------------------------------------- (h) targets and references
def test_targets_differ_from_sources_and_references_come_from_the_target_domain():
    trainer = _build(batch_size=4)
    b = 4
    marked = {f"image_{d}": torch.stack([torch.full((1, SIZE, SIZE), 10.0 * i + j) for j in range(b)])
              for i, d in enumerate(DOMAINS)}  # image value = 10 * domain + position
    torch.manual_seed(3)
    seen = torch.zeros(K, K, dtype=torch.long)
    for _ in range(20):
        drawn = trainer.prepare_batch(marked)
        y_src, y_trg = drawn["y_src"], drawn["y_trg"]
        assert torch.equal(y_src, torch.arange(K).repeat_interleave(b))
        assert torch.equal(drawn["x_real"][:, 0, 0, 0], (10.0 * y_src + torch.arange(b).repeat(K)))
        assert bool((y_trg != y_src).all())
        for key in ("x_ref", "x_ref2"):
            assert torch.equal(torch.div(drawn[key][:, 0, 0, 0], 10, rounding_mode="floor").long(), y_trg)
        assert bool((drawn["x_ref"][:, 0, 0, 0] != drawn["x_ref2"][:, 0, 0, 0]).all())  # two distinct references
        assert drawn["z"].shape == drawn["z2"].shape == (K * b, LATENT) and not torch.equal(drawn["z"], drawn["z2"])
        seen.index_put_((y_src, y_trg), torch.ones_like(y_src), accumulate=True)
    assert bool((seen.diagonal() == 0).all()) and bool((seen + torch.eye(K, dtype=torch.long) > 0).all())

    anyone = _build(batch_size=4, target_sampling="any")
    torch.manual_seed(3)
    same = sum(int((d["y_trg"] == d["y_src"]).sum()) for d in (anyone.prepare_batch(marked) for _ in range(20)))
    assert same > 0  # "any": a sample may keep its own domain (StarGAN v2's sampler)


def test_domain_order_maps_names_to_indices_and_the_batch_keys():
    trainer = _build()
    assert [trainer.domain_index(d) for d in DOMAINS] == [0, 1, 2]
    with pytest.raises(ConfigError, match="unknown domain"):
        trainer.domain_index("philips_b")
    with pytest.raises(ConfigError, match="image_ge_standard"):
        trainer.prepare_batch({f"image_{d}": torch.zeros(2, 1, SIZE, SIZE) for d in DOMAINS[:2]})


# ---------------------------------------------------------------- configuration
def test_stargan_optimizers_defaults_are_stargan_v2s():
    nets = _nets()
    opts = stargan_optimizers(nets["G"], nets["F"], nets["E"], nets["D"], nets["texture"])
    assert sorted(opts) == ["D", "E", "F", "G"]
    for name, opt in opts.items():
        (group,) = opt.param_groups
        assert group["lr"] == (1e-6 if name == "F" else 1e-4)
        assert group["betas"] == (0.0, 0.99) and group["weight_decay"] == 1e-4
    g_ids = {id(p) for p in opts["G"].param_groups[0]["params"]}
    assert {id(p) for p in nets["texture"].parameters()} <= g_ids  # attention trained with the GENERATOR
    assert len(g_ids) == len(list(nets["G"].parameters())) + len(list(nets["texture"].parameters()))


def test_misconfiguration_is_a_one_line_config_error():
    nets = _nets()
    opts = stargan_optimizers(nets["G"], nets["F"], nets["E"], nets["D"])  # texture not in optimizer G
    base = dict(device="cpu", max_epochs=1, train_data_loader=DataLoader(_data(), batch_size=2),
                generators={"G": nets["G"], "F": nets["F"], "E": nets["E"]}, discriminators={"D": nets["D"]},
                optimizers=opts)
    cases = [
        (dict(domains=DOMAINS, texture_loss=nets["texture"]), "no generator optimizer"),
        (dict(domains=DOMAINS[:2], loss_weights={"txt": 0}), "domains"),
        (dict(domains=["a", "a", "b"], loss_weights={"txt": 0}), "distinct"),
        (dict(domains=DOMAINS, loss_weights={"txt": 0}, adversarial="lsgan"), "vanilla"),
        (dict(domains=DOMAINS, loss_weights={"txt": 0}, target_sampling="self"), "target_sampling"),
        (dict(domains=DOMAINS, loss_weights={"txt": 0}, ds_iter=0), "ds_iter"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ConfigError, match=match) as err:
            StarGANTrainer(**base, **kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="G, F, E"):
        StarGANTrainer(**{**base, "generators": {"G": nets["G"], "F": nets["F"]}}, domains=DOMAINS,
                       loss_weights={"txt": 0})


def test_bf16_autocast_iteration_is_finite():
    trainer = _build(amp="bf16")
    outputs = _outputs(trainer)
    trainer.run()
    assert set(outputs[0]) == G_TERMS | D_TERMS
    assert all(torch.isfinite(torch.tensor(v)) for v in outputs[0].values())
