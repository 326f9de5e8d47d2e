"""StarGANTranslator (paper 003 inference): the translator contract, deterministic mean styles stored with the
weights, style / reference conditions, the TorchScript path; the bundle's model.pt from a training checkpoint's
EMA weights (AveragedModel states)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctharmonize.engines.weight_ema import weight_ema
from ctharmonize.errors import OutputExistsError, UnknownDomainError, WeightsError
from ctharmonize.inference import reference_slices, stargan_translator_from_checkpoint, write_stargan_model
from ctharmonize.io import Volume, write_volume
from ctharmonize.networks import (
    MappingNetwork,
    StarGANGenerator,
    StarGANTranslator,
    StyleEncoder,
    check_translator,
    compute_mean_styles,
)

DOMAINS = ["siemens_b30f", "siemens_b50f", "ge_standard", "ge_bone"]


def tiny(seed: int = 0) -> StarGANTranslator:
    torch.manual_seed(seed)
    kw = {"dim_in": 4, "max_conv_dim": 8, "style_dim": 8}
    return StarGANTranslator(DOMAINS, StarGANGenerator(n_down=2, **kw),
                             MappingNetwork(style_dim=8, num_domains=4, hidden_dim=16),
                             StyleEncoder(num_domains=4, n_down=2, **kw), style_dim=8)


def test_mean_styles_are_the_mean_over_seeded_z_whatever_the_batching():
    t = tiny()
    styles = compute_mean_styles(t.F, 4, n=300, seed=0)
    z = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = torch.stack([t.F(z, torch.full((300,), k)).mean(0) for k in range(4)])
    assert torch.allclose(styles, want, atol=1e-5)
    assert torch.allclose(compute_mean_styles(t.F, 4, n=300, seed=0, batch=7), styles, atol=1e-5)
    assert not torch.allclose(compute_mean_styles(t.F, 4, n=300, seed=1), styles, atol=1e-4)
    assert not torch.allclose(styles[0], styles[3])


def test_contract_styles_conditions_and_scripted_path():
    t = check_translator(tiny().eval())
    assert t.spatial_multiple == 4 and t.domains == tuple(DOMAINS)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with pytest.raises(RuntimeError, match="mean styles are not set"):
        t(x, "ge_bone", "siemens_b30f")
    t.set_mean_styles(n=300, seed=0)
    with torch.no_grad():
        y = t(x, "ge_bone", "siemens_b30f")
        assert y.shape == x.shape and y.abs().max() <= 1
        want = t.G(x, t.mean_styles[0].expand(2, -1)).clamp(-1, 1)  # the target's (index 0) stored style
        assert torch.allclose(y, want)
        assert not torch.allclose(t(x, "ge_bone", "ge_standard"), y)
        assert torch.equal(t(x, "ge_bone", "ge_bone"), x)
        scripted = torch.jit.script(t.path("ge_bone", "siemens_b30f").eval())
        assert torch.allclose(scripted(x), y, atol=1e-5)
        s = t.F(torch.randn(1, 16), torch.tensor([0]))
        assert torch.allclose(t(x, "ge_bone", "siemens_b30f", {"style": s}), t.G(x, s.expand(2, -1)).clamp(-1, 1))
        ref = torch.rand(3, 1, 16, 16) * 2 - 1
        r = t(x, "ge_bone", "siemens_b30f", {"reference": ref})
        assert torch.allclose(r, t.G(x, t.E(ref, torch.zeros(3, dtype=torch.long)).mean(0).expand(2, -1)).clamp(-1, 1))
        t.use_reference("siemens_b30f", ref)
        assert torch.allclose(t(x, "ge_bone", "siemens_b30f"), r, atol=1e-6)
    with pytest.raises(UnknownDomainError, match="philips_b"):
        t.path("ge_bone", "philips_b")


def test_a_path_built_before_the_weights_load_follows_them():
    """monai.bundle ckpt_export builds HUPath(translator.path(...)) first and loads model.pt afterwards."""
    from ctharmonize.inference import HUPath

    trained = tiny(1).set_mean_styles(n=100, seed=0)
    fresh = tiny(2)
    exported = HUPath(fresh, "ge_bone", "ge_standard", -1024.0, 3072.0).eval()
    hu = torch.rand(2, 1, 16, 16) * 2000 - 1000
    with pytest.raises(RuntimeError, match="mean styles are not set"):
        exported(hu)
    exported.load_state_dict(trained.state_dict())  # the translator's model.pt
    with torch.no_grad():
        x = (hu + 1024.0) / 2048.0 - 1.0
        want = (trained.G(x, trained.mean_styles[2].expand(2, -1)).clamp(-1, 1) + 1.0) * 2048.0 - 1024.0
        assert torch.allclose(exported(hu), want, atol=1e-3)
        assert torch.allclose(torch.jit.script(exported)(hu), want, atol=1e-3)


def test_model_pt_from_the_checkpoints_ema_weights_keeps_the_styles(tmp_path):
    trained = tiny(0)
    ema = {name: weight_ema(getattr(trained, name), 0.999) for name in ("G", "F", "E")}
    with torch.no_grad():  # the raw networks move on; the EMA copies hold the weights to ship
        for name in ("G", "F", "E"):
            for p in getattr(trained, name).parameters():
                p.add_(1.0)
    ckpt = {f"network/{n}": getattr(trained, n).state_dict() for n in ("G", "F", "E")}
    ckpt.update({f"ema/{n}": ema[n].state_dict() for n in ema})
    ckpt["engine"] = {"iteration": 3}
    torch.save(ckpt, tmp_path / "checkpoint_3.pt")
    assert "n_averaged" in ckpt["ema/G"] and all(k.startswith("module.") for k in ckpt["ema/G"] if k != "n_averaged")

    out = write_stargan_model(tiny(5), tmp_path / "checkpoint_3.pt", tmp_path / "model.pt", n_styles=200)
    loaded = tiny(9)
    loaded.load_state_dict(torch.load(out, weights_only=True))  # strict: G, F, E, mean_styles, styles_ready
    reference = tiny(0)  # the EMA weights are the seed-0 initial weights
    for name in ("G", "F", "E"):
        for k, v in getattr(reference, name).state_dict().items():
            assert torch.equal(getattr(loaded, name).state_dict()[k], v), f"{name}.{k}"
    assert bool(loaded.styles_ready)
    assert torch.allclose(loaded.mean_styles, compute_mean_styles(reference.F, 4, n=200, seed=0))
    with pytest.raises(OutputExistsError):
        write_stargan_model(tiny(5), tmp_path / "checkpoint_3.pt", tmp_path / "model.pt", n_styles=10)

    raw = stargan_translator_from_checkpoint(tiny(5), tmp_path / "checkpoint_3.pt", use_ema=False, n_styles=10)
    assert torch.equal(raw.G.state_dict()[next(iter(raw.G.state_dict()))],
                       trained.G.state_dict()[next(iter(trained.G.state_dict()))])
    torch.save({k: v for k, v in ckpt.items() if k != "ema/F"}, tmp_path / "no_ema.pt")
    with pytest.raises(WeightsError, match="no_ema.pt.*ema/F"):
        stargan_translator_from_checkpoint(tiny(5), tmp_path / "no_ema.pt")


def test_reference_slices_are_evenly_spaced_and_scaled(tmp_path):
    hu = np.stack([np.full((8, 8), v, np.float32) for v in (-2000, -1024, 0, 1000, 3000)])
    path = write_volume(Volume(hu, spacing=(0.7, 0.7, 1.0)), tmp_path / "ref.nii.gz")
    x = reference_slices(path, -1024.0, 3072.0, max_slices=3)
    assert x.shape == (3, 1, 8, 8) and x.dtype == torch.float32
    np.testing.assert_allclose(x[:, 0, 0, 0].numpy(), [-1.0, -0.5, (3000 + 1024) / 2048 - 1], atol=1e-6)
