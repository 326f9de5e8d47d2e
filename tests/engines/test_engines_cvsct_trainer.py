"""CVSCTTrainer: CycleGAN + the CVS-CT Gram "domain loss" through a frozen feature network (toy 24x24 nets, CPU)."""

from __future__ import annotations

import pytest
import torch
from engines_toy import ToyDiscriminator, ToyGenerator
from torch import nn
from torch.utils.data import DataLoader

from ctharmonize.engines import CVSCTTrainer, CycleGANTrainer
from ctharmonize.errors import ConfigError

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WEIGHTS = {"adv": 1.0, "cycle": 1.0, "identity": 0.5, "domain": 2.0}


class TinyFeatures(nn.Module):
    """(B, 1, H, W) -> [(B, 4, H, W), (B, 6, H/2, W/2)]: a stand-in for VGGFeatures."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = torch.relu(self.conv1(x))
        return [f1, torch.relu(self.conv2(f1))]


def _data(n: int = 4) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [{"A": torch.rand(1, 24, 24, generator=g) * 2 - 1, "B": (torch.randn(1, 24, 24, generator=g) * 0.5).clamp(-1, 1)}
            for _ in range(n)]


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _build(cls=CVSCTTrainer, loss_weights=WEIGHTS, seed: int = 0, extra_params: nn.Module | None = None, **kwargs):
    torch.manual_seed(seed)
    nets = {"G_AB": ToyGenerator(), "G_BA": ToyGenerator(), "D_A": ToyDiscriminator(), "D_B": ToyDiscriminator()}
    g_params = list(nets["G_AB"].parameters()) + list(nets["G_BA"].parameters())
    if extra_params is not None:
        g_params += list(extra_params.parameters())
    optimizers = {
        "G": torch.optim.Adam(g_params, lr=1e-2, betas=(0.5, 0.999)),
        "D_A": torch.optim.Adam(nets["D_A"].parameters(), lr=1e-2, betas=(0.5, 0.999)),
        "D_B": torch.optim.Adam(nets["D_B"].parameters(), lr=1e-2, betas=(0.5, 0.999)),
    }
    return cls(
        device="cpu", max_epochs=1, train_data_loader=DataLoader(_data(), batch_size=2), epoch_length=1,
        generators={"G_AB": nets["G_AB"], "G_BA": nets["G_BA"]},
        discriminators={"D_A": nets["D_A"], "D_B": nets["D_B"]},
        optimizers=optimizers, loss_weights=loss_weights, **kwargs,
    )


def _gram_mse(fake_maps: list[torch.Tensor], real_maps: list[torch.Tensor]) -> torch.Tensor:
    """Σ_layers mean_{b,c,d} (G(fake) - G(real))², G_bcd = Σ_hw F_bchw F_bdhw / (C·H·W), written independently."""
    total = torch.zeros(())
    for f, r in zip(fake_maps, real_maps, strict=True):
        _, c, h, w = f.shape
        gf = torch.einsum("bchw,bdhw->bcd", f, f) / (c * h * w)
        gr = torch.einsum("bchw,bdhw->bcd", r, r) / (c * h * w)
        total = total + ((gf - gr) ** 2).mean()
    return total


def test_one_iteration_terms_domain_values_and_weighted_total():
    feat = TinyFeatures()
    trainer = _build(feature_network=feat)
    trainer.run()
    out = trainer.state.output
    g_terms = {k[2:] for k in out if k.startswith("G/") and k != "G/total"}
    assert g_terms == {"adv_A", "adv_B", "cycle_A", "cycle_B", "identity_A", "identity_B", "domain_A", "domain_B"}
    batch = next(iter(DataLoader(_data(), batch_size=2)))
    real_a, real_b = batch["A"], batch["B"]
    fakes = trainer.state.fakes  # the (detached) images of this iteration's generator step
    with torch.no_grad():
        domain_b = _gram_mse(feat(fakes["fake_B"]), feat(real_b))  # G_AB(a) against the unpaired real b
        domain_a = _gram_mse(feat(fakes["fake_A"]), feat(real_a))
    assert float(domain_b) > 0 and float(domain_a) > 0
    torch.testing.assert_close(out["G/domain_B"], domain_b, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(out["G/domain_A"], domain_a, rtol=1e-5, atol=1e-9)
    with torch.no_grad():  # not the paired source image
        assert not torch.isclose(out["G/domain_B"], _gram_mse(feat(fakes["fake_B"]), feat(real_a)), rtol=1e-3)
    weights = {"adv": 1.0, "cycle": 1.0, "identity": 0.5, "domain": 2.0}
    expected = sum(weights[name.split("_")[0]] * out[f"G/{name}"] for name in g_terms)
    torch.testing.assert_close(out["G/total"], expected)


def test_feature_input_hook_maps_the_images_for_the_feature_network():
    class UnitRange(CVSCTTrainer):
        def feature_input(self, x, domain):
            return (x + 1) / 2

    feat = TinyFeatures()
    trainer = _build(UnitRange, feature_network=feat)
    trainer.run()
    real_b = next(iter(DataLoader(_data(), batch_size=2)))["B"]
    with torch.no_grad():
        expected = _gram_mse(feat((trainer.state.fakes["fake_B"] + 1) / 2), feat((real_b + 1) / 2))
    torch.testing.assert_close(trainer.state.output["G/domain_B"], expected, rtol=1e-5, atol=1e-9)


def test_a_feature_network_returning_one_tensor_gives_one_map():
    conv = nn.Conv2d(1, 3, 3, padding=1)
    trainer = _build(feature_network=conv)
    trainer.run()
    real_b = next(iter(DataLoader(_data(), batch_size=2)))["B"]
    with torch.no_grad():
        expected = _gram_mse([conv(trainer.state.fakes["fake_B"])], [conv(real_b)])
    torch.testing.assert_close(trainer.state.output["G/domain_B"], expected, rtol=1e-5, atol=1e-9)


def test_feature_network_is_frozen_unchanged_and_not_in_checkpoints(tmp_path):
    feat = TinyFeatures()
    feat.train()
    before = _params(feat)
    trainer = _build(feature_network=feat, checkpoint_dir=tmp_path)
    aux = trainer.get_network(CVSCTTrainer.FEATURE_NETWORK)
    assert aux is feat and not aux.training and not any(p.requires_grad for p in aux.parameters())
    assert all(p.device == trainer.state.device for p in aux.parameters())
    optimized = {id(p) for o in trainer.optimizers.values() for g in o.param_groups for p in g["params"]}
    assert not optimized & {id(p) for p in feat.parameters()}
    trainer.run()
    after = _params(feat)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not feat.training
    ckpt = torch.load(tmp_path / "checkpoint_1.pt", weights_only=True)
    assert {k for k in ckpt if k.startswith("network/")} == {"network/G_AB", "network/G_BA", "network/D_A", "network/D_B"}
    assert not [k for k in ckpt if "feature" in k or k.startswith("auxiliary/")]


def test_domain_loss_gradient_reaches_both_generators_through_the_frozen_network():
    only_domain = {"adv": 0.0, "cycle": 0.0, "identity": 0.0, "domain": 1.0}
    trainer = _build(feature_network=TinyFeatures(), loss_weights=only_domain)
    before = {n: _params(trainer.networks[n]) for n in ("G_AB", "G_BA")}
    trainer.run()
    assert set(trainer.state.output) >= {"G/domain_A", "G/domain_B"}
    for name in ("G_AB", "G_BA"):
        after = _params(trainer.networks[name])
        assert not all(torch.equal(before[name][k], after[k]) for k in after), name


@pytest.mark.parametrize("weights", [{"adv": 1.0, "cycle": 1.0, "identity": 0.5, "domain": 0.0},
                                     {"adv": 1.0, "cycle": 1.0, "identity": 0.5}])
@pytest.mark.parametrize("with_features", [True, False])
def test_zero_or_absent_domain_weight_is_exactly_cyclegan(weights, with_features):
    cvsct = _build(loss_weights=weights, feature_network=TinyFeatures() if with_features else None)
    cvsct.run()
    plain = _build(CycleGANTrainer, loss_weights=weights)
    plain.run()
    assert not [k for k in cvsct.state.output if "domain" in k]
    assert cvsct.state.output.keys() == plain.state.output.keys()
    for k in plain.state.output:
        assert torch.equal(cvsct.state.output[k], plain.state.output[k]), k
    for name, net in plain.networks.items():
        a, b = _params(net), _params(cvsct.networks[name])
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_misconfiguration_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="needs a feature_network") as err:
        _build(feature_network=None)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="needs a feature_network"):
        _build(loss_weights={"domain_B": 1.0}, feature_network=None)  # per-term weight counts too
    with pytest.raises(ConfigError, match="once"):
        _build(feature_network=TinyFeatures(), auxiliary={CVSCTTrainer.FEATURE_NETWORK: TinyFeatures()})
    feat = TinyFeatures()
    with pytest.raises(ConfigError, match="never optimized"):
        _build(feature_network=feat, extra_params=feat)


def test_loss_weights_follow_the_name_prefix_rule():
    trainer = _build(feature_network=TinyFeatures(), loss_weights={"domain": 0.3, "domain_A": 0.0})
    assert trainer.loss_weight("domain_B") == 0.3 and trainer.loss_weight("domain_A") == 0.0
    assert CVSCTTrainer.DEFAULT_WEIGHTS["domain"] == 0.0


def test_cvsct_networks_and_vgg_features_train_with_the_paper_weights():
    from ctharmonize.networks import CVSCTDiscriminator, CVSCTGenerator, VGGFeatures

    torch.manual_seed(0)
    gens = {n: CVSCTGenerator(features=8, cbam_reduction=4) for n in ("G_AB", "G_BA")}
    discs = {n: CVSCTDiscriminator(ndf=4) for n in ("D_A", "D_B")}  # sigmoid maps, LSGAN objective
    optimizers = {"G": torch.optim.Adam([p for m in gens.values() for p in m.parameters()], 1e-4, betas=(0.5, 0.999))}
    optimizers.update({n: torch.optim.Adam(m.parameters(), 1e-4, betas=(0.5, 0.999)) for n, m in discs.items()})
    data = [{"A": torch.rand(1, 48, 48) * 2 - 1, "B": torch.rand(1, 48, 48) * 2 - 1} for _ in range(2)]
    trainer = CVSCTTrainer("cpu", 1, DataLoader(data, batch_size=2), gens, discs, optimizers,
                           loss_weights=CVSCTTrainer.PAPER_WEIGHTS,
                           feature_network=VGGFeatures(None, layers=("relu2_1", "relu3_1")))  # random weights
    trainer.run()
    out = trainer.state.output
    assert {"G/domain_A", "G/domain_B", "G/identity_A"} <= set(out)
    assert all(bool(torch.isfinite(v)) for v in out.values())
    assert trainer.state.fakes["fake_B"].shape == (2, 1, 48, 48)
