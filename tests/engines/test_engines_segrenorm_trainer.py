"""SegRenormCycleGANTrainer (paper 004): tiny paper-004 networks, 32x32 batches in UnalignedMultiDomainSlices' format."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ignite.engine import Events
from torch.utils.data import DataLoader

from ctharmonize.engines import CycleGANTrainer, SegRenormCycleGANTrainer, segrenorm_optimizers
from ctharmonize.errors import ConfigError
from ctharmonize.networks import SegRenormGenerator, SpectralPatchDiscriminator, TissueSegmenter

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SRC, TGT = "ge_bone", "siemens_b30f"
#: written out independently of ctharmonize.transforms.tissue_classes (nodule 13 -> lungs)
CODE_TO_CLASS = {0: 0, 1: 1, 2: 1, 3: 2, 4: 1, 5: 3, 6: 4, 7: 4, 8: 5, 9: 6, 10: 6, 11: 6, 12: 6, 13: 1}
G_TERMS = {"adv_A", "adv_B", "cycle_A", "cycle_B", "seg_A", "seg_B", "seg_fake_A", "seg_fake_B"}


def _data(n: int = 4, size: int = 32) -> list[dict[str, torch.Tensor]]:
    """Items as UnalignedMultiDomainSlices gives them: image_/labels_/fov_<domain>, every tissue code present."""
    g = torch.Generator().manual_seed(3)
    items = []
    for _ in range(n):
        item = {}
        for d in (SRC, TGT):
            labels = torch.randint(0, 14, (1, size, size), generator=g)
            item[f"image_{d}"] = (labels.float() / 13 * 1.6 - 0.8 + 0.1 * torch.randn(1, size, size, generator=g)).clamp(-1, 1)
            item[f"labels_{d}"] = labels
            item[f"fov_{d}"] = torch.ones(1, size, size, dtype=torch.bool)
        items.append(item)
    return items


def _networks(seed: int = 0) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)

    def gen() -> SegRenormGenerator:
        return SegRenormGenerator(num_classes=7, ngf=4, n_blocks=1, embed_dim=8, extractor_features=(4, 4, 4, 4),
                                  extractor_dropout=0.0)

    def seg() -> TissueSegmenter:
        return TissueSegmenter(num_classes=7, features=(4, 4, 4, 4, 4, 4))

    return {"G_AB": gen(), "G_BA": gen(), "S_A": seg(), "S_B": seg(),
            "D_A": SpectralPatchDiscriminator(ndf=4), "D_B": SpectralPatchDiscriminator(ndf=4)}


def _build(seed: int = 0, max_epochs: int = 1, epoch_length: int = 1, nets=None, optimizers=None, **kwargs):
    nets = nets or _networks(seed)
    optimizers = optimizers or segrenorm_optimizers(**nets)
    return SegRenormCycleGANTrainer(
        device="cpu", max_epochs=max_epochs, train_data_loader=DataLoader(_data(), batch_size=2),
        epoch_length=epoch_length, generators={k: nets[k] for k in ("G_AB", "G_BA", "S_A", "S_B")},
        discriminators={k: nets[k] for k in ("D_A", "D_B")}, optimizers=optimizers,
        image_key_a=f"image_{SRC}", image_key_b=f"image_{TGT}", pool_size=0, **kwargs,
    )


def _record(module: torch.nn.Module) -> list[tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
    calls: list = []
    module.register_forward_hook(lambda m, args, out: calls.append((tuple(a.detach().clone() for a in args),
                                                                    out.detach().clone())))
    return calls


def _ce(logits: torch.Tensor, codes: torch.Tensor, weights: np.ndarray | None = None) -> float:
    """Independent weighted cross-entropy in numpy: Σ w[y] (−log softmax(z)[y]) / Σ w[y]."""
    z = logits.double().numpy()  # (B, C, H, W)
    y = np.vectorize(CODE_TO_CLASS.get)(codes.numpy()[:, 0])  # (B, H, W)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    nll = -np.take_along_axis(logp, y[:, None], axis=1)[:, 0]
    w = np.ones(z.shape[1]) if weights is None else np.asarray(weights, dtype=float)
    return float((w[y] * nll).sum() / w[y].sum())


def _batch() -> dict[str, torch.Tensor]:
    return next(iter(DataLoader(_data(), batch_size=2)))


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_one_iteration_gives_every_term_finite_and_the_weighted_total():
    trainer = _build()
    assert isinstance(trainer, CycleGANTrainer)
    assert trainer.label_keys == {"A": f"labels_{SRC}", "B": f"labels_{TGT}"}
    trainer.run()
    out = trainer.state.output
    assert {k[2:] for k in out if k.startswith("G/") and k != "G/total"} == G_TERMS
    assert {"D_A/real", "D_A/fake", "D_B/real", "D_B/fake"} <= set(out)
    assert all(math.isfinite(float(v)) for v in out.values())
    weights = {"adv": 1.0, "cycle": 10.0, "seg": 1.0}
    expected = sum(weights[t.split("_")[0]] * out[f"G/{t}"] for t in G_TERMS)
    torch.testing.assert_close(out["G/total"], expected)
    assert set(trainer.state.segmentations) == {"A", "B", "fake_A", "fake_B"}
    assert trainer.state.segmentations["A"].shape == (2, 32, 32)


@pytest.mark.parametrize("class_weights", [None, [0.5, 1.0, 2.0, 1.5, 1.0, 0.7, 1.2]])
def test_segmentation_terms_equal_an_independent_cross_entropy_on_the_same_logits(class_weights):
    trainer = _build(class_weights=class_weights)
    s_calls, q_calls = _record(trainer.networks["S_A"]), _record(trainer.networks["S_B"])
    trainer.run()
    out, batch = trainer.state.output, _batch()
    real_a, real_b = batch[f"image_{SRC}"], batch[f"image_{TGT}"]
    # S sees real A, then fake A = G_BA(b); Q sees real B, then fake B = G_AB(a)
    assert len(s_calls) == len(q_calls) == 2
    torch.testing.assert_close(s_calls[0][0][0], real_a)
    torch.testing.assert_close(q_calls[0][0][0], real_b)
    torch.testing.assert_close(s_calls[1][0][0], trainer.state.fakes["fake_A"])
    torch.testing.assert_close(q_calls[1][0][0], trainer.state.fakes["fake_B"])
    w = None if class_weights is None else np.asarray(class_weights)
    labels_a, labels_b = batch[f"labels_{SRC}"], batch[f"labels_{TGT}"]
    expected = {
        "seg_A": _ce(s_calls[0][1], labels_a, w),  # S(a) vs s
        "seg_B": _ce(q_calls[0][1], labels_b, w),  # Q(b) vs q
        "seg_fake_B": _ce(q_calls[1][1], labels_a, w),  # Q(G(a)) vs the SOURCE labels s
        "seg_fake_A": _ce(s_calls[1][1], labels_b, w),  # S(F(b)) vs q
    }
    for term, value in expected.items():
        assert float(out[f"G/{term}"]) == pytest.approx(value, rel=1e-5), term
    assert float(out["G/seg_fake_B"]) != pytest.approx(_ce(q_calls[1][1], labels_b, w), rel=1e-5)  # not the B labels


def test_generators_are_conditioned_on_the_source_segmenters_probabilities():
    trainer = _build()
    s_calls, q_calls = _record(trainer.networks["S_A"]), _record(trainer.networks["S_B"])
    g_ab, g_ba = _record(trainer.networks["G_AB"]), _record(trainer.networks["G_BA"])
    trainer.run()
    # G_AB(a, S(a)), G_AB(fake_A, S(fake_A)); G_BA(b, Q(b)), G_BA(fake_B, Q(fake_B))
    assert len(g_ab) == len(g_ba) == 2
    for g_calls, seg_calls in ((g_ab, s_calls), (g_ba, q_calls)):
        for (g_args, _), (s_args, s_logits) in zip(g_calls, seg_calls, strict=True):
            x, seg = g_args
            torch.testing.assert_close(x, s_args[0])
            torch.testing.assert_close(seg, torch.softmax(s_logits, dim=1))
            assert seg.shape == (2, 7, 32, 32)
            assert not torch.equal(seg, seg.round())  # soft probabilities, not a one-hot label map


def test_segmenters_are_trained_through_the_generators_even_without_the_segmentation_loss():
    trainer = _build(loss_weights={"seg": 0.0})
    before = {n: _params(trainer.networks[n]) for n in ("S_A", "S_B")}
    trainer.run()
    assert "G/seg_A" in trainer.state.output  # logged, weight 0
    for n, params in before.items():
        after = _params(trainer.networks[n])
        assert any(not torch.equal(after[k], v) for k, v in params.items()), n


def test_optimizers_learning_rates_and_betas_follow_the_paper():
    nets = _networks()
    opts = segrenorm_optimizers(**nets)
    assert set(opts) == {"G", "S", "D_A", "D_B"}
    expected_lr = {"G": 2e-4, "S": 2e-4, "D_A": 1e-4, "D_B": 1e-4}
    for group, opt in opts.items():
        assert isinstance(opt, torch.optim.Adam)
        assert opt.param_groups[0]["lr"] == expected_lr[group]
        assert opt.param_groups[0]["betas"] == (0.5, 0.999)
    ids = {g: {id(p) for p in opts[g].param_groups[0]["params"]} for g in opts}
    assert ids["G"] == {id(p) for n in ("G_AB", "G_BA") for p in nets[n].parameters()}  # extractors included
    assert ids["S"] == {id(p) for n in ("S_A", "S_B") for p in nets[n].parameters()}
    trainer = _build(nets=nets, optimizers=opts)
    assert sorted(trainer.generator_groups) == ["G", "S"]
    assert trainer.discriminator_group == {"D_A": "D_A", "D_B": "D_B"}


def test_a_segmenter_outside_every_optimizer_or_missing_is_refused():
    nets = _networks()
    opts = segrenorm_optimizers(**nets)
    del opts["S"]
    with pytest.raises(ConfigError, match="S_A"):
        _build(nets=nets, optimizers=opts)
    nets = _networks()
    opts = segrenorm_optimizers(**nets)
    with pytest.raises(ConfigError, match="segmenters"):
        SegRenormCycleGANTrainer(
            device="cpu", max_epochs=1, train_data_loader=DataLoader(_data(), batch_size=2),
            generators={k: nets[k] for k in ("G_AB", "G_BA")}, discriminators={k: nets[k] for k in ("D_A", "D_B")},
            optimizers={k: opts[k] for k in ("G", "D_A", "D_B")},
        )


def test_batches_without_labels_or_with_unknown_codes_are_one_line_errors():
    trainer = _build()
    batch = {k: v for k, v in _batch().items() if not k.startswith("labels_")}
    with pytest.raises(ConfigError, match=f"labels_{SRC}"):
        trainer.target_classes(batch, "A")
    bad = _batch()
    bad[f"labels_{SRC}"][0, 0, 0, 0] = 200
    with pytest.raises(ConfigError, match="tissue codes"):
        trainer.target_classes(bad, "A")
    classes = trainer.target_classes(_batch(), "A")
    assert classes.shape == (2, 32, 32) and classes.dtype == torch.long and int(classes.max()) == 6


def test_checkpoint_and_resume_restore_the_segmenters(tmp_path):
    first = _build(checkpoint_dir=tmp_path)
    first.run()
    saved = {n: _params(first.networks[n]) for n in ("S_A", "S_B", "G_AB")}
    ckpt = torch.load(tmp_path / "checkpoint_1.pt", weights_only=True)
    assert {"network/S_A", "network/S_B", "optimizer/S", "optimizer/G"} <= set(ckpt)

    resumed = _build(seed=7, max_epochs=2, checkpoint_dir=tmp_path, resume_from="auto")
    fresh = _params(resumed.networks["S_A"])
    assert any(not torch.equal(fresh[k], v) for k, v in saved["S_A"].items())  # another init before resume
    started: dict = {}
    resumed.add_event_handler(Events.STARTED, lambda e: started.update(
        {n: _params(e.networks[n]) for n in saved} | {"opt_S": e.optimizers["S"].state_dict()}))
    resumed.run()
    assert resumed.state.iteration == 2
    for n, params in saved.items():
        assert all(torch.equal(started[n][k], v) for k, v in params.items()), n
    assert started["opt_S"]["state"]  # Adam moments of the segmenters came back too
