"""Paper 001's losses: lung-masked Frobenius-Gram texture loss, conditional WGAN-GP, the weighted generator loss."""

import pytest
import torch
from torch import nn

from ctharmonize.losses import (
    MTF_HARMONIZER_LOSS_WEIGHTS,
    ConditionalWGANGP,
    GramStyleLoss,
    MaskedGramTextureLoss,
    MTFHarmonizerLoss,
    gradient_penalty,
)
from ctharmonize.networks import CTKernelFeatures, PatchDiscriminator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _tiny_features():
    torch.manual_seed(0)
    return CTKernelFeatures(widths=(4, 8))


def _images():
    g = torch.Generator().manual_seed(1)
    fake = torch.rand(2, 1, 32, 32, generator=g) * 2 - 1
    target = torch.rand(2, 1, 32, 32, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 6:20] = 1.0
    return fake, target, mask


def test_texture_loss_ignores_pixels_outside_the_mask_and_is_zero_for_identical_images():
    loss = MaskedGramTextureLoss(_tiny_features())
    fake, target, mask = _images()
    base = loss(fake, target, mask)
    assert float(base) > 0
    changed = fake + (1 - mask) * torch.randn_like(fake)
    assert torch.equal(loss(changed, target, mask), base)
    changed_target = target.clone()
    changed_target[mask == 0] = 0.7
    assert torch.equal(loss(fake, changed_target, mask), base)
    assert float(loss(target, target, mask)) == 0.0
    # identical inside the mask, different outside: still zero
    assert float(loss(target + (1 - mask) * 0.5, target, mask)) == 0.0


def test_texture_loss_is_the_frobenius_gram_loss_of_the_masked_images_and_trains_fake_only():
    net = _tiny_features()
    loss = MaskedGramTextureLoss(net, weight=50.0)
    fake, target, mask = _images()
    fake.requires_grad_(True)
    got = loss(fake, target, mask)
    expected = GramStyleLoss(50.0, normalize="frobenius")(net(fake * mask), net(target * mask))
    assert torch.allclose(got, expected)
    got.backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    assert float(fake.grad[mask.expand_as(fake) == 0].abs().max()) == 0.0
    assert all(not p.requires_grad for p in net.parameters())
    loss.train()
    assert not net.training  # BatchNorm statistics stay frozen


def test_texture_loss_default_network_and_fill_option():
    loss = MaskedGramTextureLoss()  # the project's shipped CT kernel feature network
    assert isinstance(loss.features, CTKernelFeatures)
    fake, target, mask = _images()
    filled = MaskedGramTextureLoss(_tiny_features(), fill=-1.0)
    assert torch.equal(filled.mask(fake, mask)[mask == 0], torch.full_like(fake[mask == 0], -1.0))
    assert float(filled(fake + (1 - mask), fake, mask)) == 0.0
    with pytest.raises(ValueError, match="share batch size"):
        loss(fake, target, mask[:1])


def test_conditional_wgan_gp_signs_and_reuse_of_the_project_penalty():
    torch.manual_seed(0)
    critic = PatchDiscriminator(in_channels=2, ndf=4, n_layers=2, norm="none")
    cond, real, fake = (torch.rand(2, 1, 32, 32) * 2 - 1 for _ in range(3))
    adv = ConditionalWGANGP()
    assert adv.lambda_gp == 10.0
    fake.requires_grad_(True)
    g_loss = adv.generator_loss(critic, cond, fake)
    assert torch.allclose(g_loss, -critic(torch.cat([cond, fake], 1)).mean())
    g_loss.backward()
    assert fake.grad is not None
    gen = torch.Generator().manual_seed(3)
    d_loss = adv.critic_loss(critic, cond, real, fake, generator=gen)
    rp, fp = torch.cat([cond, real], 1), torch.cat([cond, fake.detach()], 1)
    expected = (critic(fp).mean() - critic(rp).mean()
                + gradient_penalty(critic, rp, fp, 10.0, generator=torch.Generator().manual_seed(3)))
    assert torch.allclose(d_loss, expected)


def test_generator_loss_weights_and_terms():
    assert MTF_HARMONIZER_LOSS_WEIGHTS == {"distance": 1000.0, "texture": 50.0, "adversarial": 1.0,
                                           "huber_delta": 0.5, "gradient_penalty": 10.0}
    texture = MaskedGramTextureLoss(_tiny_features(), weight=3.0)
    loss = MTFHarmonizerLoss(texture_loss=texture)
    fake, target, mask = _images()
    critic = PatchDiscriminator(in_channels=2, ndf=4, n_layers=2, norm="none")
    terms = loss(critic, target, fake, target, mask)
    assert torch.allclose(terms["distance"], 1000.0 * nn.HuberLoss(delta=0.5)(fake, target))
    assert torch.allclose(terms["texture"], 50.0 * MaskedGramTextureLoss(texture.features)(fake, target, mask))
    assert torch.allclose(terms["adversarial"], -critic(torch.cat([target, fake], 1)).mean())
    assert torch.allclose(terms["total"], terms["distance"] + terms["texture"] + terms["adversarial"])
    no_critic = loss(None, target, fake, target, mask)
    assert "adversarial" not in no_critic
    assert torch.isfinite(loss.critic_loss(critic, target, target, fake))  # λ_GP = 10, random α
    assert loss.adversarial.lambda_gp == 10.0
