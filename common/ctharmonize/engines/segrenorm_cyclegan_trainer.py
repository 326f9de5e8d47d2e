"""``SegRenormCycleGANTrainer``: the segmentation-renormalized CycleGAN of paper 004 (Ren et al., TMI 2021)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Adam, Optimizer

from ctharmonize.engines.cyclegan_trainer import CycleGANTrainer
from ctharmonize.errors import ConfigError
from ctharmonize.transforms.tissue_classes import chest_ct_class_lookup, tissue_codes_to_classes

__all__ = ["SegRenormCycleGANTrainer", "segrenorm_optimizers"]


def _params(*modules: nn.Module) -> list[nn.Parameter]:
    return [p for m in modules for p in m.parameters()]


def segrenorm_optimizers(
    G_AB: nn.Module, G_BA: nn.Module, S_A: nn.Module, S_B: nn.Module, D_A: nn.Module, D_B: nn.Module,
    lr: float = 2e-4, segmenter_lr: float = 2e-4, discriminator_lr: float = 1e-4,
    betas: Sequence[float] = (0.5, 0.999),
) -> dict[str, Optimizer]:
    """Paper 004's optimizers: ``{"G": Adam(G_AB + G_BA, lr), "S": Adam(S_A + S_B, segmenter_lr),
    "D_A": Adam(D_A, discriminator_lr), "D_B": ...}``, all with ``betas`` (0.5, 0.999). The generators own
    their semantic extractors, so the extractors are in ``"G"``. ``"G"`` and ``"S"`` both step on the
    generator loss (the engine steps every generator-side optimizer on it)."""
    b = (float(betas[0]), float(betas[1]))
    return {
        "G": Adam(_params(G_AB, G_BA), lr=lr, betas=b),
        "S": Adam(_params(S_A, S_B), lr=segmenter_lr, betas=b),
        "D_A": Adam(D_A.parameters(), lr=discriminator_lr, betas=b),
        "D_B": Adam(D_B.parameters(), lr=discriminator_lr, betas=b),
    }


def _label_key(image_key: str) -> str:
    """``image_<domain>`` (the dataset's key) → ``labels_<domain>``; any other key ``k`` → ``labels_<k>``."""
    return "labels_" + (image_key[len("image_"):] if image_key.startswith("image_") else image_key)


class SegRenormCycleGANTrainer(CycleGANTrainer):
    """:class:`CycleGANTrainer` with one jointly trained segmenter per domain conditioning the generators.

    Networks (fixed names; all generator-side ones are ``generators``, trained by the generator loss and
    saved in checkpoints as ``network/<name>``): ``G_AB``, ``G_BA`` (:class:`~ctharmonize.networks.SegRenormGenerator`,
    ``G(x, seg)``), ``S_A`` (the paper's S, source) and ``S_B`` (its Q, target), both
    :class:`~ctharmonize.networks.TissueSegmenter` (``S(x)`` → logits (B, C, H, W)); discriminators ``D_A``,
    ``D_B`` (:class:`~ctharmonize.networks.SpectralPatchDiscriminator`). Images (B, 1, H, W) in [-1, 1].

    Translation (:meth:`translate`, the one generator call): ``G_st(x, softmax(S_s(x)))``, the *source*
    domain's segmenter on the generator's own input. So forward: ``fake_B = G_AB(a, S(a))``,
    ``rec_A = G_BA(fake_B, Q(fake_B))``; backward: ``fake_A = G_BA(b, Q(b))``, ``rec_B = G_AB(fake_A, S(fake_A))``.
    The condition is always the *predicted* soft segmentation, never the label map (paper §II-A/B: "derived
    from a predicted segmentation mask"; the labels exist only for training, and inference needs S and G
    only), and gradients flow through it into the segmenter.

    Generator terms (weights through ``loss_weights``; defaults :attr:`DEFAULT_WEIGHTS`: adv 1, cycle 10,
    identity 0, seg 1): CycleGAN's ``adv_A``, ``adv_B``, ``cycle_A``, ``cycle_B`` (``identity_*`` when
    weighted) plus paper 004's Eq. 3, four class-weighted cross-entropies (mean over pixels, PyTorch's
    weighted mean), each weight ``seg``:

    * ``seg_A`` = CE(S(a), s) and ``seg_B`` = CE(Q(b), q): each segmenter on its own domain's real images;
    * ``seg_fake_B`` = CE(Q(G(a)), s) and ``seg_fake_A`` = CE(S(F(b)), q): the *other* domain's segmenter on
      the fakes against the labels of the image they were made from (the anatomy is inherited). These are
      the logits that condition the cycle's second translation, so no extra forward pass is needed.

    Labels: ``label_key_a``/``label_key_b`` (default ``labels_<domain>`` for ``image_<domain>`` image keys, as
    :class:`~ctharmonize.datasets.UnalignedMultiDomainSlices` gives them with ``tissue_labels`` set), integer
    (B, 1, H, W) or (B, H, W), cropped with the images. ``class_lookup`` maps them to class indices:
    ``"chest_ct"`` (default) = :func:`~ctharmonize.transforms.chest_ct_class_lookup` (simulator tissue codes →
    the 7 ``CHEST_CT_TISSUE_CLASSES``), a sequence = a table ``class = table[code]``, None = already class
    indices. ``class_weights`` (C,): the CE's λ_c (paper: background/foreground 0.5/0.5 on dense IXI labels,
    which equals uniform, the default None). ``identity_*`` (off by default) condition ``G_BA(a)`` on
    ``S_B(a)``: the generator's own segmenter. Use :func:`segrenorm_optimizers` (lr 2e-4 G and S, 1e-4 D,
    Adam (0.5, 0.999)); every G/S parameter must sit in a generator optimizer. Other args: see
    :class:`CycleGANTrainer` / :class:`~ctharmonize.engines.GANTrainer`.
    """

    DEFAULT_WEIGHTS = {**CycleGANTrainer.DEFAULT_WEIGHTS, "seg": 1.0}
    #: segmenter of each domain: S (source A) and Q (target B) of the paper
    SEGMENTERS = {"A": "S_A", "B": "S_B"}

    def __init__(
        self,
        *args: Any,
        label_key_a: str | None = None,
        label_key_b: str | None = None,
        class_lookup: str | Sequence[int] | None = "chest_ct",
        class_weights: Sequence[float] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        missing = sorted(set(self.SEGMENTERS.values()) - set(self.generators))
        if missing:
            raise ConfigError(None, f"SegRenormCycleGANTrainer needs the segmenters S_A, S_B as generators; missing {missing}")
        held = {id(p) for g in self.generator_groups for pg in self.optimizers[g].param_groups for p in pg["params"]}
        for name in self.generators:
            if any(p.requires_grad and id(p) not in held for p in self.networks[name].parameters()):
                raise ConfigError(None, f"parameters of {name!r} are in no generator optimizer (see segrenorm_optimizers)")
        self.label_keys = {"A": label_key_a or _label_key(self.image_key_a), "B": label_key_b or _label_key(self.image_key_b)}
        if class_lookup == "chest_ct":
            lookup: np.ndarray | None = chest_ct_class_lookup()
        elif class_lookup is None:
            lookup = None
        elif isinstance(class_lookup, str):
            raise ConfigError(None, f"class_lookup must be 'chest_ct', a table or None, got {class_lookup!r}")
        else:
            lookup = np.asarray(list(class_lookup), dtype=np.int64)
        self.class_lookup = lookup
        self.class_weights = (None if class_weights is None
                              else torch.as_tensor(list(class_weights), dtype=torch.float32, device=self.state.device))
        self._seg_logits: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ segmentation
    def segment(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Logits (B, C, H, W) of ``domain``'s segmenter (``S_A`` = S or ``S_B`` = Q, training module) on ``x``."""
        return self.generators[self.SEGMENTERS[domain]](x)

    @staticmethod
    def condition(logits: torch.Tensor) -> torch.Tensor:
        """The generator's condition: softmax over classes (float32), (B, C, H, W) in [0, 1]."""
        return torch.softmax(logits.float(), dim=1)

    def translate(
        self, x: torch.Tensor, source: str, target: str, batch: Any, segmentation: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``G_<source><target>(x, segmentation)``; ``segmentation`` (B, C, H, W) probabilities, default
        ``softmax(S_<source>(x))`` (the generator's own input segmented by its source-domain segmenter)."""
        if segmentation is None:
            segmentation = self.condition(self.segment(x, source))
        return self.generators[f"G_{source}{target}"](x, segmentation)

    def target_classes(self, batch: Any, domain: str) -> torch.Tensor:
        """int64 (B, H, W) class indices of ``domain``'s label map in ``batch`` (mapped by ``class_lookup``)."""
        key = self.label_keys[domain]
        if not isinstance(batch, Mapping) or key not in batch:
            raise ConfigError(None, f"SegRenormCycleGANTrainer needs label maps under {key!r} in every batch "
                                    "(UnalignedMultiDomainSlices with tissue_labels set)")
        labels = batch[key]
        if labels.ndim == 4:
            labels = labels[:, 0]
        if self.class_lookup is not None:
            try:
                labels = tissue_codes_to_classes(labels, self.class_lookup)
            except ValueError as err:
                raise ConfigError(None, f"{key}: {err}") from err
        return labels.long()

    def segmentation_loss(self, logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Class-weighted cross-entropy (mean over pixels; float32) of logits (B, C, H, W) against (B, H, W)."""
        n = logits.shape[1]
        if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= n):
            raise ConfigError(None, f"label classes must be in [0, {n - 1}] for a {n}-class segmenter, "
                                    f"found [{int(classes.min())}, {int(classes.max())}]; check class_lookup")
        if self.class_weights is not None and self.class_weights.numel() != n:
            raise ConfigError(None, f"class_weights has {self.class_weights.numel()} entries for {n} classes")
        return F.cross_entropy(logits.float(), classes, weight=self.class_weights)

    # ------------------------------------------------------------------ hooks
    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """``fake_B = G_AB(a, S(a))``, ``fake_A = G_BA(b, Q(b))``, ``rec_A = G_BA(fake_B, Q(fake_B))``,
        ``rec_B = G_AB(fake_A, S(fake_A))``; the four segmenter logits are kept for :meth:`generator_step`
        (and, detached as class maps, in ``engine.state.segmentations``)."""
        real_a, real_b = self._images(batch)
        logits = {"A": self.segment(real_a, "A"), "B": self.segment(real_b, "B")}
        fake_b = self.translate(real_a, "A", "B", batch, self.condition(logits["A"]))
        fake_a = self.translate(real_b, "B", "A", batch, self.condition(logits["B"]))
        logits["fake_B"] = self.segment(fake_b, "B")  # Q(G(a))
        logits["fake_A"] = self.segment(fake_a, "A")  # S(F(b))
        rec_a = self.translate(fake_b, "B", "A", batch, self.condition(logits["fake_B"]))
        rec_b = self.translate(fake_a, "A", "B", batch, self.condition(logits["fake_A"]))
        self._seg_logits = logits
        self.state.segmentations = {k: v.detach().argmax(1) for k, v in logits.items()}
        return {"fake_B": fake_b, "fake_A": fake_a, "rec_A": rec_a, "rec_B": rec_b}

    def generator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms = super().generator_step(batch, fakes)
        logits, classes = self._seg_logits, {d: self.target_classes(batch, d) for d in ("A", "B")}
        terms["seg_A"] = self.segmentation_loss(logits["A"], classes["A"])  # S(a) vs s
        terms["seg_B"] = self.segmentation_loss(logits["B"], classes["B"])  # Q(b) vs q
        terms["seg_fake_B"] = self.segmentation_loss(logits["fake_B"], classes["A"])  # Q(G(a)) vs s
        terms["seg_fake_A"] = self.segmentation_loss(logits["fake_A"], classes["B"])  # S(F(b)) vs q
        self._seg_logits = {}
        return terms

    @property
    def segmenters(self) -> dict[str, nn.Module]:
        """Raw (non-DDP) segmenters by domain: ``{"A": S, "B": Q}`` (for export with the generators)."""
        return {d: self.networks[n] for d, n in self.SEGMENTERS.items()}
