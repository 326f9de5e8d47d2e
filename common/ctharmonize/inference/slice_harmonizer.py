"""``SliceHarmonizer``: the one volume-level harmonizer, built on any translator (HU in, HU out).

The translator (:mod:`ctharmonize.networks.translator`) maps (B, 1, H, W) slices in **[-1, 1]**
(HU window scaled) from a source to a target domain. :class:`SliceHarmonizer` does everything
around it: HU window scaling, batching of axial slices, padding to the translator's own
``spatial_multiple``, AMP on GPU, a frozen TorchScript path on CPU, clipping the output HU to the
trained window and restoring outside-FOV voxels. Its call is the ``Harmonizer`` protocol: ``harmonizer(volume_hu, source,
target) -> volume_hu``.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.errors import ConfigError
from ctharmonize.inference.hu_path import HUPath
from ctharmonize.inference.source_domain import check_model_domain
from ctharmonize.networks.translator import check_translator
from ctharmonize.transforms import HU_MAX, HU_MIN, hu_to_unit, unit_to_hu

__all__ = ["COMPILE_MIN_VOXELS", "SliceHarmonizer", "VolumeCondition", "default_batch_size", "freeze_path"]

log = logging.getLogger(__name__)

#: ``compile=None`` compiles a CPU call when the volume has at least this many voxels (8 slices of 512²):
#: scripting and freezing the shipped multipath path costs about 0.3-0.7 s, amortised only over a few
#: 512² slices (a 32 x 128² validation volume stays eager).
COMPILE_MIN_VOXELS = 8 * 512 * 512


class VolumeCondition(Protocol):
    """``condition(volume_hu, spacing, fov_mask, source, target) -> {name: tensor}``: what a conditioned translator
    needs besides the slice, measured once on the whole (Z, Y, X) HU volume at (sx, sy, sz) mm."""

    def __call__(self, volume_hu: np.ndarray, spacing: tuple[float, ...], fov_mask: np.ndarray | None,
                 source: str, target: str) -> Mapping[str, torch.Tensor]: ...


def default_batch_size(device: str | torch.device | None = None) -> int:
    """Slices per forward pass: 8 on CUDA, 1 on CPU (at 512², 2 threads, the shipped multipath model ran
    4.4 slices/s with batch 1, 3.4 with 2 and 2.2 with 4: larger activations spill the caches;
    ``benchmarks/bench_clinical_path.py``). ``device`` None: CUDA when available."""
    on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    return 8 if on_cuda else 1


def freeze_path(path: nn.Module) -> torch.jit.ScriptModule:
    """``path`` (one translator path, (B, 1, H, W) in [-1, 1] -> the same) scripted, frozen and optimised for inference
    (``torch.jit.optimize_for_inference``, fp32); ``path`` is put in eval mode. The weights become graph
    constants, some shared with ``path`` and some copied (prepacked convolutions): the result is valid only
    for the weights as they were, so make it anew after they change. Raises what scripting raises."""
    with warnings.catch_warnings():  # torch 2.9+ marks TorchScript deprecated; a failure here falls back to eager
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(path.eval())))


#: Inference precision modes of ``SliceHarmonizer(amp=...)``.
AMP_MODES = ("auto", "bf16", "none")


def amp_mode(amp: bool | str | None) -> str:
    """The precision mode of an ``amp`` argument: ``True``/None → ``"auto"``, ``False`` → ``"none"``, or a mode."""
    if amp is None or amp is True:
        return "auto"
    if amp is False:
        return "none"
    if isinstance(amp, str) and amp.lower() in AMP_MODES:
        return amp.lower()
    raise ConfigError(None, f"amp must be one of {', '.join(AMP_MODES)} (or true / false), got {amp!r}")


class SliceHarmonizer:
    """Harmonize every axial slice of an HU volume with a translator.

    Args:
        translator: a translator module (``domains``, ``spatial_multiple``, ``forward(x, s, t)``).
            It is moved to ``device`` and put in eval mode when a call starts (training code may pass
            the live network: its train/eval mode is restored after the call).
        hu_min, hu_max: the HU window the translator was trained on (paper 000: [-1024, 3072]).
        batch_size: slices per forward pass (default :func:`default_batch_size`).
        device: torch device; default CUDA when available, else CPU.
        amp: bf16 autocast: ``"auto"`` (default; on CUDA only), ``"bf16"`` (on every device, CPU included:
            about 2x faster there, see the model card for what it does to the measurements) or ``"none"``
            (fp32). ``True`` / ``False`` mean ``"auto"`` / ``"none"``.
        compile: on CPU, run the slices through :func:`freeze_path` of the translator's
            ``path(source, target)``: fp32, the same HU as eager within float rounding. The frozen path
            is kept per (source, target) under a hash of the path's class, structure and the bytes of
            every parameter and buffer, so any weight change (checkpoint selection calls the same
            harmonizer on a live network whose weights change between calls) makes a new one; kept,
            because torch never frees a frozen module's graph (about 5 MB per freeze of the shipped
            model, pytorch issue 96726). None (default): on when the volume has at least
            :data:`COMPILE_MIN_VOXELS` voxels. A path that cannot be scripted (e.g. a third-party
            translator) runs eager, with a debug log. Ignored on other devices and under bf16 (eager + AMP).
        progress: optional callback ``progress(done_slices, total_slices)``.
        checkpoint_networks: how the bundle's training checkpoints hold the translator (for
            :meth:`export`, see :class:`HUPath`).
        condition: optional volume-level conditioning, ``condition(volume_hu, spacing, fov_mask, source, target)
            -> {name: tensor}`` ((Z, Y, X) HU, (sx, sy, sz) mm, (Z, Y, X) bool or None), computed once per call
            and given to every batch as the translator's ``condition`` (tensors of batch size 1 broadcast);
            e.g. :class:`~ctharmonize.inference.MeasuredMTF` (paper 001). With it the harmonizer
            :func:`~ctharmonize.inference.needs_spacing` and runs eager (no frozen path).
    """

    def __init__(
        self,
        translator: nn.Module,
        hu_min: float = HU_MIN,
        hu_max: float = HU_MAX,
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        amp: bool | str = "auto",
        progress: Callable[[int, int], None] | None = None,
        checkpoint_networks: Mapping[str, str] | None = None,
        compile: bool | None = None,
        condition: VolumeCondition | None = None,
    ) -> None:
        self.translator = check_translator(translator)
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu"
        )
        if not float(hu_max) > float(hu_min):
            raise ValueError(f"HU window must have hu_max > hu_min, got [{hu_min}, {hu_max}]")
        self.hu_min, self.hu_max = float(hu_min), float(hu_max)
        self.batch_size = int(batch_size) if batch_size is not None else default_batch_size(self.device)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.amp_mode = amp_mode(amp)
        self.amp = self.amp_mode == "bf16" or (self.amp_mode == "auto" and self.device.type == "cuda")
        self.progress = progress
        self.checkpoint_networks = dict(checkpoint_networks or {})
        self.compile = None if compile is None else bool(compile)
        self.condition = condition
        # (source, target) -> (weights hash, frozen path or None when it cannot be scripted)
        self._frozen: dict[tuple[str, str], tuple[str, torch.jit.ScriptModule | None]] = {}

    def __getstate__(self) -> dict[str, object]:
        """Copy / pickle without the frozen paths (TorchScript modules do not pickle; they are remade)."""
        return {**self.__dict__, "_frozen": {}}

    @property
    def domains(self) -> tuple[str, ...]:
        """The translator's kernel domains."""
        return tuple(self.translator.domains)

    @property
    def targets(self) -> tuple[str, ...]:
        """The domains the translator maps to: its ``targets`` when it has them, else its ``domains``."""
        return tuple(getattr(self.translator, "targets", None) or self.translator.domains)

    @property
    def needs_spacing(self) -> bool:
        """True with a volume-level ``condition``: calls then take ``spacing`` (see the Harmonizer protocol)."""
        return self.condition is not None

    @property
    def spatial_multiple(self) -> int:
        return int(self.translator.spatial_multiple)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        m = self.spatial_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, h, w

    def _compiles(self, shape: tuple[int, ...]) -> bool:
        """Whether a call on a volume of ``shape`` runs through a frozen path (see ``compile``)."""
        if self.device.type != "cpu" or self.amp or self.condition is not None:
            return False
        if self.compile is not None:
            return self.compile
        return int(np.prod(shape)) >= COMPILE_MIN_VOXELS

    def _slice_fn(self, net: nn.Module, source: str, target: str,
                  shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
        """The [-1, 1] → [-1, 1] batch function of this call: a frozen path made now, else eager ``net``.

        Falls back to eager (debug log) when the path cannot be scripted or its frozen form fails on the
        first batch: any translator may come here, and eager is always correct."""

        def eager(x: torch.Tensor) -> torch.Tensor:
            return net(x, source, target)

        if not self._compiles(shape):
            return eager
        frozen = self._frozen_path(net, source, target)
        if frozen is None:
            return eager
        chosen: list[Callable[[torch.Tensor], torch.Tensor]] = []

        def run(x: torch.Tensor) -> torch.Tensor:
            if chosen:
                return chosen[0](x)
            try:
                y = frozen(x)
                chosen.append(frozen)
            except Exception as err:
                _not_compiled(net, source, target, err)
                self._frozen[source, target] = (self._frozen[source, target][0], None)
                chosen.append(eager)
                y = eager(x)
            return y

        return run

    def _conditioned_fn(self, net: nn.Module, hu: np.ndarray, spacing: Sequence[float] | None,
                        fov_mask: np.ndarray | None, source: str, target: str
                        ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The batch function of a conditioned call: ``condition`` of the whole volume, then eager ``net``."""
        if spacing is None:
            raise ConfigError(None, f"{type(self.condition).__name__} measures the volume in physical units: "
                                    "the call needs spacing= (sx, sy, sz) mm (harmonize_volume passes it)")
        assert self.condition is not None
        condition = {k: torch.as_tensor(v).to(self.device)
                     for k, v in self.condition(hu, tuple(float(s) for s in spacing), fov_mask, source, target).items()}

        def run(x: torch.Tensor) -> torch.Tensor:
            batch = {k: v.expand(x.shape[0], *v.shape[1:]) if v.shape[0] == 1 else v for k, v in condition.items()}
            return net(x, source, target, batch)

        return run

    def _frozen_path(self, net: nn.Module, source: str, target: str) -> torch.jit.ScriptModule | None:
        """The frozen ``source`` → ``target`` path for the weights ``net`` has now (None: not scriptable)."""
        try:
            path = net.path(source, target)
            key = f"{id(net)}:{_weights_hash(path)}"
        except Exception as err:
            _not_compiled(net, source, target, err)
            return None
        cached = self._frozen.get((source, target))
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            frozen: torch.jit.ScriptModule | None = freeze_path(path)
        except Exception as err:
            _not_compiled(net, source, target, err)
            frozen = None
        self._frozen[source, target] = (key, frozen)
        return frozen

    @torch.no_grad()
    def __call__(self, volume_hu: np.ndarray, source: str, target: str,
                 fov_mask: np.ndarray | None = None, spacing: Sequence[float] | None = None) -> np.ndarray:
        """Harmonize ``volume_hu`` (Z, Y, X) in HU from ``source`` to ``target``; float32 (Z, Y, X) HU.

        Output HU is clipped to ``[hu_min, hu_max]``; where ``fov_mask`` is False the input values are
        kept unchanged. ``spacing`` (sx, sy, sz) mm: required with a ``condition``, ignored without.
        """
        check_model_domain(source, self.domains, "source")
        if target != source:
            check_model_domain(target, self.targets, "target")
        hu = np.asarray(volume_hu, dtype=np.float32)
        if hu.ndim != 3:
            raise ValueError(f"expected a (Z, Y, X) HU volume, got shape {hu.shape}")
        net = self.translator.to(self.device)
        was_training = net.training
        net.eval()
        out = np.empty_like(hu)
        total = hu.shape[0]
        try:
            if self.condition is not None:
                run = self._conditioned_fn(net, hu, spacing, fov_mask, source, target)
            else:
                run = self._slice_fn(net, source, target, hu.shape)
            for start in range(0, total, self.batch_size):
                stop = min(start + self.batch_size, total)
                x = torch.from_numpy(hu[start:stop]).unsqueeze(1).to(self.device)
                x, h, w = self._pad(hu_to_unit(x, self.hu_min, self.hu_max))
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    y = run(x)
                y = unit_to_hu(y.float()[..., :h, :w].clamp(-1.0, 1.0), self.hu_min, self.hu_max)
                out[start:stop] = y.squeeze(1).cpu().numpy()
                if self.progress is not None:
                    self.progress(stop, total)
        finally:
            net.train(was_training)
        if fov_mask is not None:
            outside = ~np.asarray(fov_mask, dtype=bool)
            out[outside] = hu[outside]
        return out

    def export(self, source: str, target: str) -> HUPath:
        """The ``source`` → ``target`` path as an HU-in / HU-out module (shares the weights; TorchScript-able
        when the translator's path is): what ``network_hu`` and ``ctharmonize export`` save."""
        check_model_domain(source, self.domains, "source")
        check_model_domain(target, self.domains, "target")
        return HUPath(self.translator, source, target, self.hu_min, self.hu_max, self.checkpoint_networks).eval()


def _weights_hash(path: nn.Module) -> str:
    """Hash of ``path``'s class, repr and every parameter and buffer (name, dtype, shape, bytes)."""
    head = f"{type(path).__module__}.{type(path).__qualname__}\n{path!r}"
    digest = hashlib.blake2b(head.encode(), digest_size=16)
    for kind, named in (("p", path.named_parameters()), ("b", path.named_buffers())):
        for name, tensor in named:
            t = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{kind}:{name}:{t.dtype}:{tuple(tensor.shape)};".encode())
            digest.update(t.view(torch.uint8).numpy())
    return digest.hexdigest()


def _not_compiled(net: nn.Module, source: str, target: str, err: Exception) -> None:
    """Debug-log why this call runs eager."""
    first = (str(err).strip().splitlines() or [""])[0]
    log.debug("%s path %s -> %s not compiled, running eager (%s: %s)", type(net).__name__, source, target,
              type(err).__name__, first)
