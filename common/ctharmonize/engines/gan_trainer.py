"""``GANTrainer``: the one training loop of every GAN bundle, configured from bundle JSON.

nnU-Net v2 style: one trainer whose iteration is composed of overridable hooks; a method (CycleGAN,
multipath CycleGAN, pix2pix, StarGAN ...) is a subclass that overrides :meth:`GANTrainer.forward`,
:meth:`GANTrainer.generator_step` and :meth:`GANTrainer.discriminator_step`. The engine owns
everything else: device placement, DDP, AMP with one ``GradScaler`` per optimizer, loss weighting,
optimizer and scheduler steps, per-epoch loss means, NaN guard, checkpoint save/resume.

One iteration (:meth:`GANTrainer.train_step`)::

    batch = prepare_batch(batch)                         # tensors to device
    discriminators frozen (set_requires_grad)
    fakes = forward(batch)                               # {name: tensor}, autocast
    terms = generator_step(batch, fakes)                 # {term: loss}, weighted by loss_weights
    backward(sum) -> step every generator optimizer      # skipped on non-generator iterations
    EMA copies updated                                   # ema={"G": 0.999}: auxiliary "G_ema"
    discriminators unfrozen
    d_terms = discriminator_step(batch, detached fakes)  # {discriminator: {term: loss}}
    per discriminator optimizer: backward(weighted sum) -> step   # discriminator_loss_weights

Besides the trained networks a trainer holds *auxiliary* networks (frozen feature networks, EMA copies,
fixed critics): on the device, in eval mode, never optimized or DDP-wrapped, checkpointed when asked.
Extra state that must survive a resume joins the checkpoints with :meth:`GANTrainer.register_state`.

Images are whatever the bundle's transforms produce (typically [-1, 1] from HU); the engine does not
look at intensities.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Events
from ignite.handlers import Checkpoint
from monai.data import MetaTensor
from monai.engines import Trainer
from monai.engines.workflow import Workflow
from torch import nn
from torch.optim import Optimizer
from torch.utils.data import DataLoader, DistributedSampler

from ctharmonize.engines.adversarial import (
    check_adversarial_mode,
    discriminator_adversarial_terms,
    discriminator_r1_penalty,
    generator_adversarial_loss,
    gradient_penalty,
)
from ctharmonize.engines.checkpointing import (
    CHECKPOINT_RE,
    AtomicTorchSaver,
    RNGState,
    find_latest_checkpoint,
    load_checkpoint,
)
from ctharmonize.engines.distributed import (
    broadcast_buffers,
    init_distributed,
    is_distributed,
    is_main_process,
    wrap_ddp,
)
from ctharmonize.engines.epoch_average import EpochAverage
from ctharmonize.engines.image_pool import ImagePool
from ctharmonize.engines.weight_ema import weight_ema
from ctharmonize.errors import ConfigError, OutputExistsError

__all__ = ["GANTrainer"]

#: checkpoint keys the engine itself uses; :meth:`GANTrainer.register_state` refuses them
_RESERVED_STATE = ("engine", "epoch_average", "rng", "checkpointer")


def _parse_amp(amp: str | bool | None) -> str | None:
    if amp in (None, False, "none", "None", "", "fp32"):
        return None
    if amp is True:
        return "bf16"
    amp = str(amp).lower()
    if amp not in ("bf16", "fp16"):
        raise ConfigError(None, f"amp must be one of none, bf16, fp16; got {amp!r}")
    return amp


class GANTrainer(Trainer):
    """Adversarial training of any number of named generators and discriminators.

    Args:
        device: device of this process (with ``distributed=True`` the local device from
            :func:`~ctharmonize.engines.init_distributed` replaces it).
        max_epochs: number of epochs.
        train_data_loader: ``DataLoader`` of training batches. A sampler with ``set_epoch`` (e.g.
            :class:`~ctharmonize.engines.RandomSubsetSampler`) is told the epoch at each epoch start.
        generators: ``{name: module}`` trained by the generator loss (generators, and any auxiliary
            trainable network such as a segmentation net, mapping network or style encoder).
        discriminators: ``{name: module}``; each one's parameters must sit in one optimizer.
        optimizers: ``{group: optimizer}``; each optimizer holds parameters of generators only or of
            discriminators only. Generator optimizers all step on the generator loss.
        schedulers: ``{group: lr_scheduler}`` stepped every epoch (``scheduler_interval="epoch"``,
            paper 000 linear decay) or every iteration (``"iteration"``, e.g. cyclic LR).
        adversarial: ``"lsgan"`` (paper 000), ``"vanilla"`` or ``"wgan-gp"`` (paper 001), used by
            :meth:`adversarial_loss` and :meth:`discriminator_terms`.
        loss_weights: weight of each generator term; a term ``"cycle_A"`` takes ``loss_weights["cycle_A"]``,
            else ``loss_weights["cycle"]`` (the part before the first ``_``), else 1.0. Weight 0 drops a term.
        gp_weight: WGAN-GP penalty weight (lambda, default 10); the same as ``discriminator_loss_weights["gp"]``
            (give one of the two).
        generator_every: update generators every n-th iteration (WGAN "n_critic"); discriminators every one.
        grad_clip_norm: clip each optimizer's gradient norm (after unscaling) when given.
        amp: ``None`` (fp32), ``"bf16"`` (autocast bfloat16, CPU or GPU) or ``"fp16"`` (autocast float16
            with one ``torch.amp.GradScaler`` per optimizer).
        grad_scaler_kwargs: extra ``GradScaler`` arguments for fp16 (e.g. ``{"init_scale": 1024}``).
        epoch_length: iterations per epoch (default ``len(train_data_loader)``).
        non_blocking: non-blocking host to device copies.
        train_handlers: ignite handlers with ``attach(engine)``; they see ``engine.networks``,
            ``engine.optimizers``, ``engine.state`` (e.g. an emphysema checkpoint selector); None entries
            (a bundle component switched off with ``_disabled_``) are skipped.
        checkpoint_dir: where checkpoints go (None: no checkpoints).
        checkpoint_every: also checkpoint every n iterations (0: only at epoch ends).
        keep_last: number of training checkpoints kept.
        save_epoch_weights: names of networks (``True``: all generators) whose weights are saved at every
            epoch end as ``weights_epoch<NNNN>.pt`` and never pruned, for checkpoint selection.
        resume_from: ``None``, a checkpoint path, or ``"auto"`` (latest in ``checkpoint_dir``; start fresh
            if there is none).
        overwrite: start fresh even when ``checkpoint_dir`` already holds checkpoints (they are deleted).
        distributed: train with DDP (launch with ``torchrun``); only rank 0 logs and writes.
        ddp_find_unused_parameters: ``True`` for all networks or the names of networks that a step
            uses only partly (multipath generators).
        stop_on_nan: raise when a total loss becomes NaN or infinite.
        pool_size: size of the :class:`ImagePool` that :meth:`image_pool` creates per discriminator.
        discriminator_loss_weights: weight of each discriminator term (see :meth:`discriminator_loss_weight`):
            ``"<D>/<term>"``, else the term name (``"real"``, ``"fake"``, ``"gp"``, ``"r1"``), else its prefix
            before ``_``, else 1.0; weight 0 drops a term. ``"gp"`` defaults to ``gp_weight``. A non-zero
            ``"r1"`` (gamma, Mescheder et al. 2018; StarGAN v2: 1) makes :meth:`discriminator_terms` add the
            R1 penalty on real images.
        auxiliary: ``{name: module}`` of networks that take part in the losses but are not trained (a frozen
            VGG for a Gram loss, a frozen segmenter, fixed critics): moved to the device, frozen
            (``requires_grad=False``), kept in eval mode, never optimized, never DDP-wrapped, not in
            ``save_epoch_weights``. In ``engine.auxiliary``; usable by name in :meth:`adversarial_loss`.
        checkpoint_auxiliary: ``True`` (all) or the names of auxiliary networks saved in checkpoints as
            ``auxiliary/<name>`` and restored on resume (default none: they come from the config).
        ema: ``{generator: decay}``: keep an exponential moving average of that generator's weights as the
            auxiliary network ``<generator>_ema`` (``ema <- decay * ema + (1 - decay) * weights`` after every
            generator step; starts equal to the generator). If ``auxiliary`` already holds
            ``<generator>_ema`` (same architecture), that module holds the average, so a config can hand it
            to a checkpoint selector. Checkpointed as ``ema/<generator>`` (always) and restored on resume.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: DataLoader | Iterable,
        generators: Mapping[str, nn.Module],
        discriminators: Mapping[str, nn.Module],
        optimizers: Mapping[str, Optimizer],
        schedulers: Mapping[str, Any] | None = None,
        scheduler_interval: str = "epoch",
        adversarial: str = "lsgan",
        loss_weights: Mapping[str, float] | None = None,
        gp_weight: float | None = None,
        generator_every: int = 1,
        grad_clip_norm: float | None = None,
        amp: str | bool | None = None,
        grad_scaler_kwargs: Mapping[str, Any] | None = None,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        train_handlers: Sequence | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 0,
        keep_last: int = 2,
        save_epoch_weights: bool | Sequence[str] = False,
        resume_from: str | None = None,
        overwrite: bool = False,
        distributed: bool = False,
        ddp_find_unused_parameters: bool | Sequence[str] = False,
        stop_on_nan: bool = True,
        pool_size: int = 50,
        discriminator_loss_weights: Mapping[str, float] | None = None,
        auxiliary: Mapping[str, nn.Module] | None = None,
        checkpoint_auxiliary: bool | Sequence[str] = False,
        ema: Mapping[str, float] | None = None,
    ):
        if distributed:
            device = init_distributed()
        device = torch.device(device)
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            handlers=None,  # attached below, once networks and optimizers exist
            amp=False,  # AMP is handled here (bf16 / fp16 + per-optimizer scalers)
            decollate=False,
        )
        # Workflow stores its prepare_batch callable on the instance; drop it so the hook method is used.
        vars(self).pop("prepare_batch", None)

        if not generators:
            raise ConfigError(None, "GANTrainer needs at least one generator")
        overlap = set(generators) & set(discriminators)
        if overlap:
            raise ConfigError(None, f"network names used for both generators and discriminators: {sorted(overlap)}")
        if scheduler_interval not in ("epoch", "iteration"):
            raise ConfigError(None, f"scheduler_interval must be 'epoch' or 'iteration', got {scheduler_interval!r}")
        if generator_every < 1:
            raise ConfigError(None, f"generator_every must be >= 1, got {generator_every}")

        self.adversarial = check_adversarial_mode(adversarial)
        self.loss_weights = dict(loss_weights or {})
        self.discriminator_loss_weights = dict(discriminator_loss_weights or {})
        if gp_weight is not None and "gp" in self.discriminator_loss_weights:
            raise ConfigError(None, "give the gradient-penalty weight once: gp_weight or discriminator_loss_weights['gp']")
        self.discriminator_loss_weights.setdefault("gp", 10.0 if gp_weight is None else float(gp_weight))
        self.generator_every = int(generator_every)
        self.grad_clip_norm = grad_clip_norm
        self.amp_mode = _parse_amp(amp)
        self.scheduler_interval = scheduler_interval
        self.stop_on_nan = stop_on_nan
        self.pool_size = int(pool_size)
        self.distributed = is_distributed()

        # networks: raw modules in self.networks (handlers, checkpoints); training modules (DDP-wrapped
        # when distributed) in self.generators / self.discriminators.
        self.networks: dict[str, nn.Module] = {}
        for name, net in {**generators, **discriminators}.items():
            self.networks[name] = net.to(device)
        find_unused = ddp_find_unused_parameters
        unused = set(self.networks) if find_unused is True else set(find_unused or ())
        self.generators = {n: wrap_ddp(self.networks[n], device, n in unused) for n in generators}
        self.discriminators = {n: wrap_ddp(self.networks[n], device, n in unused) for n in discriminators}
        self.auxiliary: dict[str, nn.Module] = self._auxiliary_networks(auxiliary or {}, device)

        # parameters trainable at construction: set_requires_grad(..., True) re-enables only these
        self._trainable = {id(p) for net in self.networks.values() for p in net.parameters() if p.requires_grad}
        self.optimizers = dict(optimizers)
        self.schedulers = dict(schedulers or {})
        self.generator_groups, self.discriminator_group = self._route_optimizers()
        self.scalers = {
            g: torch.amp.GradScaler(device.type, enabled=self.amp_mode == "fp16", **dict(grad_scaler_kwargs or {}))
            for g in self.optimizers
        }
        self.image_pools: dict[str, ImagePool] = {}
        self.epoch_average = EpochAverage()
        self.state.fakes = {}
        self._to_save = self._checkpoint_objects()  # image pools and register_state() join later
        self._register_auxiliary_checkpoints(checkpoint_auxiliary)
        self.emas: dict[str, torch.nn.Module] = {}
        for name, decay in (ema or {}).items():
            self._add_ema(name, decay)

        self._check_sampler(train_data_loader)
        self._register_engine_handlers()
        for handler in train_handlers or ():
            if handler is not None:  # a bundle component switched off with ``_disabled_``
                handler.attach(self)

        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.resume_from = resume_from
        self.overwrite = overwrite
        self._checkpointer: Checkpoint | None = None
        if self.checkpoint_dir is not None:
            self._register_checkpoints(int(checkpoint_every), int(keep_last), save_epoch_weights)

    # ------------------------------------------------------------------ setup
    def _auxiliary_networks(self, auxiliary: Mapping[str, nn.Module], device: torch.device) -> dict[str, nn.Module]:
        """Frozen, eval-mode auxiliary modules on ``device``; refuses names or parameters of trained networks."""
        clash = sorted(set(auxiliary) & set(self.networks))
        if clash:
            raise ConfigError(None, f"auxiliary network names are also trained networks: {clash}")
        trained = {id(p) for net in self.networks.values() for p in net.parameters()}
        out: dict[str, nn.Module] = {}
        for name, module in auxiliary.items():
            if any(id(p) in trained for p in module.parameters()):
                raise ConfigError(None, f"auxiliary network {name!r} shares parameters with a trained network; "
                                        "pass a copy (freezing it would freeze the trained one)")
            module = module.to(device)
            module.requires_grad_(False)
            out[str(name)] = module.eval()
        return out

    def _register_auxiliary_checkpoints(self, names: bool | Sequence[str]) -> None:
        chosen = list(self.auxiliary) if names is True else [str(n) for n in (names or ())]
        unknown = [n for n in chosen if n not in self.auxiliary]
        if unknown:
            raise ConfigError(None, f"checkpoint_auxiliary names unknown auxiliary networks {unknown}; "
                                    f"auxiliary: {sorted(self.auxiliary)}")
        for name in chosen:
            self.register_state(f"auxiliary/{name}", self.auxiliary[name])

    def _add_ema(self, generator: str, decay: float) -> None:
        if generator not in self.generators:
            raise ConfigError(None, f"ema names {generator!r}, which is not a generator ({sorted(self.generators)})")
        name = f"{generator}_ema"
        averaged = weight_ema(self.networks[generator], decay, self.auxiliary.get(name))
        self.emas[generator] = averaged
        self.auxiliary[name] = averaged.module
        self.register_state(f"ema/{generator}", averaged)

    def _route_optimizers(self) -> tuple[list[str], dict[str, str]]:
        """Map discriminators to their optimizer; list the generator optimizers."""
        owner: dict[int, str] = {}
        for group, opt in self.optimizers.items():
            for pg in opt.param_groups:
                for p in pg["params"]:
                    owner[id(p)] = group
        gen_params = {id(p) for n in self.generators for p in self.networks[n].parameters()}
        gen_groups, disc_group = [], {}
        for name in self.discriminators:
            groups = {owner[id(p)] for p in self.networks[name].parameters() if p.requires_grad and id(p) in owner}
            if len(groups) != 1:
                raise ConfigError(
                    None, f"discriminator {name!r} must have its parameters in exactly one optimizer, found {sorted(groups)}"
                )
            disc_group[name] = groups.pop()
        aux_params = {id(p): n for n, m in self.auxiliary.items() for p in m.parameters()}
        for group, opt in self.optimizers.items():
            ids = {id(p) for pg in opt.param_groups for p in pg["params"]}
            aux = sorted({aux_params[i] for i in ids if i in aux_params})
            if aux:
                raise ConfigError(None, f"optimizer {group!r} holds parameters of auxiliary networks {aux}; "
                                        "auxiliary networks are never optimized")
            if group in disc_group.values():
                if ids & gen_params:
                    raise ConfigError(None, f"optimizer {group!r} mixes generator and discriminator parameters")
            elif ids & gen_params:
                gen_groups.append(group)
            else:
                raise ConfigError(None, f"optimizer {group!r} holds no parameter of the trainer's networks")
        if not gen_groups:
            raise ConfigError(None, "no optimizer holds generator parameters")
        for name in self.schedulers:
            if name not in self.optimizers:
                raise ConfigError(None, f"scheduler {name!r} has no optimizer of the same name")
        return gen_groups, disc_group

    def _check_sampler(self, loader: Any) -> None:
        self._sampler = getattr(loader, "sampler", None)
        if self.distributed and not (
            isinstance(self._sampler, DistributedSampler) or getattr(self._sampler, "num_replicas", 1) > 1
        ):
            warnings.warn(
                "distributed training with a sampler that is not rank-aware: every rank sees the same samples; "
                "use DistributedSampler or RandomSubsetSampler",
                stacklevel=3,
            )

    def _register_engine_handlers(self) -> None:
        sampler = self._sampler
        if sampler is not None and hasattr(sampler, "set_epoch") and not isinstance(sampler, DistributedSampler):
            self.add_event_handler(Events.EPOCH_STARTED, lambda e: sampler.set_epoch(e.state.epoch))
        self.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        if self.scheduler_interval == "iteration":
            self.add_event_handler(Events.ITERATION_COMPLETED, self._step_schedulers)

    def _register_checkpoints(self, every: int, keep_last: int, save_epoch_weights: bool | Sequence[str]) -> None:
        saver = AtomicTorchSaver(self.checkpoint_dir, overwrite=True)
        self._checkpointer = Checkpoint(
            self._to_save,
            saver,
            n_saved=keep_last,
            filename_pattern="checkpoint_{global_step}.{ext}",
            global_step_transform=lambda engine, _: engine.state.iteration,
            include_self=True,
        )
        event = Events.EPOCH_COMPLETED
        if every > 0:
            event = event | Events.ITERATION_COMPLETED(
                event_filter=lambda engine, it: it % every == 0
                and not (engine.state.epoch_length and it % engine.state.epoch_length == 0)
            )
        self.add_event_handler(event, self._checkpointer)
        if save_epoch_weights:
            names = list(self.generators) if save_epoch_weights is True else list(save_epoch_weights)
            missing = [n for n in names if n not in self.networks]
            if missing:
                raise ConfigError(None, f"save_epoch_weights names unknown networks {missing}")
            weights = Checkpoint(
                {n: self.networks[n] for n in names} | {"engine": self},
                AtomicTorchSaver(self.checkpoint_dir, overwrite=True),
                n_saved=None,
                filename_pattern="weights_epoch{global_step:04d}.{ext}",
                global_step_transform=lambda engine, _: engine.state.epoch,
            )
            self.add_event_handler(Events.EPOCH_COMPLETED, weights)

    # ------------------------------------------------------------------ run / resume
    def state_dict(self) -> OrderedDict:
        """ignite's engine state (``iteration``, ``epoch_length``, ``max_epochs``) plus ``epoch``: the epoch
        in which (or at whose end) the checkpoint was written, for readers; ``iteration`` is authoritative."""
        state = super().state_dict()
        state["epoch"] = int(self.state.epoch)
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "epoch"})

    def run(self) -> None:  # type: ignore[override]
        """Train (resuming first when ``resume_from`` is set)."""
        self._prepare_checkpoint_dir()
        if self.resume_from is not None:
            self._resume(self.resume_from)
            self.resume_from = None
        Workflow.run(self)

    def _prepare_checkpoint_dir(self) -> None:
        """First run() only: refuse (or, with overwrite, delete) an earlier run's checkpoints."""
        if self.checkpoint_dir is None or self.resume_from is not None or getattr(self, "_dir_checked", False):
            return
        self._dir_checked = True
        old = [p for p in self.checkpoint_dir.glob("*.pt") if CHECKPOINT_RE.match(p.name) or p.name.startswith("weights_epoch")]
        if old and not self.overwrite:
            raise OutputExistsError(
                self.checkpoint_dir, "holds checkpoints of an earlier run; pass resume_from='auto' or overwrite=True"
            )
        if is_main_process():
            for p in old:
                p.unlink(missing_ok=True)

    def _resume(self, resume_from: str) -> None:
        if resume_from == "auto":
            if self.checkpoint_dir is None:
                raise ConfigError(None, "resume_from='auto' needs checkpoint_dir")
            path = find_latest_checkpoint(self.checkpoint_dir)
            if path is None:
                self.logger.info(f"no checkpoint in {self.checkpoint_dir}; starting fresh")
                return
        else:
            path = Path(resume_from)
        ckpt = load_checkpoint(path)
        to_load = {k: v for k, v in self._to_save.items() if k != "rng"}
        missing = [k for k in [*to_load, "rng"] if k not in ckpt]
        if missing:
            raise ConfigError(path, f"checkpoint lacks {missing}; was it written by a different configuration?")
        max_epochs, epoch_length = self.state.max_epochs, self.state.epoch_length
        try:
            Checkpoint.load_objects(to_load, ckpt)
        except (RuntimeError, KeyError, ValueError) as err:
            raise ConfigError(path, f"checkpoint does not match the configured networks/optimizers: {err}") from err
        if self.state.epoch > max_epochs:
            raise ConfigError(path, f"checkpoint is at epoch {self.state.epoch}, beyond max_epochs={max_epochs}")
        self.state.max_epochs = max_epochs  # the configuration may extend a finished run
        if epoch_length is not None and self.state.epoch_length != epoch_length:
            raise ConfigError(
                path,
                f"checkpoint has {self.state.epoch_length} iterations per epoch but the data loader now gives "
                f"{epoch_length}; resume with the same data, batch size, sampler fraction and number of GPUs",
            )
        if self._checkpointer is not None and "checkpointer" in ckpt:
            self._checkpointer.load_state_dict(ckpt["checkpointer"])
        done = self.state.iteration % self.state.epoch_length if self.state.epoch_length else 0
        if done:
            self._skip_batches(done)
            self._restore_rng_at_next_batch(ckpt["rng"])
        else:
            RNGState().load_state_dict(ckpt["rng"])
        self.logger.info(f"resumed from {path} at epoch {self.state.epoch}, iteration {self.state.iteration}")

    def _checkpoint_objects(self) -> dict[str, Any]:
        """Everything a checkpoint holds, by key (networks unwrapped from DDP)."""
        objs: dict[str, Any] = {"engine": self, "epoch_average": self.epoch_average, "rng": RNGState()}
        objs.update({f"network/{n}": m for n, m in self.networks.items()})
        objs.update({f"optimizer/{g}": o for g, o in self.optimizers.items()})
        objs.update({f"scheduler/{g}": s for g, s in self.schedulers.items()})
        if self.amp_mode == "fp16":
            objs.update({f"scaler/{g}": s for g, s in self.scalers.items()})
        return objs

    def _restore_rng_at_next_batch(self, state: dict[str, Any]) -> None:
        """Mid-epoch the killed run's RNG continued with fetching the next batch; the resumed run first
        creates a data iterator (which draws a seed), so the RNG is restored just after that."""

        def restore(_: Any) -> None:
            RNGState().load_state_dict(state)
            handle.remove()

        handle = self.add_event_handler(Events.GET_BATCH_STARTED, restore)

    def _skip_batches(self, n_batches: int) -> None:
        """Make the resumed epoch continue with the batches the killed run had not reached."""
        batch_size = getattr(self.data_loader, "batch_size", None)
        if hasattr(self._sampler, "skip_next") and batch_size:
            self._sampler.skip_next(n_batches * batch_size)
        else:
            warnings.warn(
                f"resuming mid-epoch: the sampler cannot skip the {n_batches} batches already seen, so the rest "
                "of this epoch draws from the start of the epoch's order (use RandomSubsetSampler to continue exactly)",
                stacklevel=3,
            )

    # ------------------------------------------------------------------ hooks
    def prepare_batch(self, batch: Any) -> Any:
        """The batch an iteration works on; default :meth:`to_device`. Called once per iteration on the
        whole batch, so an override may call ``super().prepare_batch(batch)`` and then add to it."""
        return self.to_device(batch)

    def to_device(self, batch: Any) -> Any:
        """Move every tensor of a (nested) batch to the device; MetaTensors become plain tensors."""
        if isinstance(batch, MetaTensor):
            batch = batch.as_tensor()
        if isinstance(batch, torch.Tensor):
            return batch.to(self.state.device, non_blocking=self.non_blocking)
        if isinstance(batch, Mapping):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """Run the generators; return the generated images by name. Runs under autocast; under
        ``torch.no_grad`` on iterations without a generator update."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def generator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unweighted generator loss terms by name (the engine weights, sums, backprops and steps)."""
        raise NotImplementedError(f"{type(self).__name__} must implement generator_step()")

    def discriminator_step(
        self, batch: Any, fakes: dict[str, torch.Tensor]
    ) -> dict[str, dict[str, torch.Tensor]]:
        """Discriminator loss terms ``{discriminator name: {term: loss}}``; ``fakes`` are detached.
        The engine sums each discriminator's terms and steps its optimizer (own GradScaler)."""
        raise NotImplementedError(f"{type(self).__name__} must implement discriminator_step()")

    def set_requires_grad(self, networks: Iterable[nn.Module | str], requires_grad: bool) -> None:
        """Freeze or unfreeze networks (modules or names); unfreezing re-enables only the parameters
        that were trainable when the trainer was built (partly frozen networks stay partly frozen)."""
        for net in networks:
            module = self.networks[net] if isinstance(net, str) else net
            for p in module.parameters():
                p.requires_grad_(requires_grad and id(p) in self._trainable)

    # ------------------------------------------------------------------ helpers for subclasses
    @property
    def generator_modules(self) -> dict[str, nn.Module]:
        """Raw (non-DDP) generator modules by name, e.g. for validation handlers."""
        return {n: self.networks[n] for n in self.generators}

    def get_network(self, name: str) -> nn.Module:
        """Raw (non-DDP) module of a trained or auxiliary network."""
        if name in self.networks:
            return self.networks[name]
        if name in self.auxiliary:
            return self.auxiliary[name]
        raise ConfigError(None, f"no network {name!r}; networks: {sorted(self.networks)}, auxiliary: {sorted(self.auxiliary)}")

    def loss_weight(self, term: str) -> float:
        """Weight of generator term ``term``: exact name, else its prefix before ``_``, else 1.0."""
        if term in self.loss_weights:
            return float(self.loss_weights[term])
        return float(self.loss_weights.get(term.split("_", 1)[0], 1.0))

    def discriminator_loss_weight(self, discriminator: str, term: str) -> float:
        """Weight of term ``term`` of ``discriminator``: ``discriminator_loss_weights["<D>/<term>"]``, else
        ``[term]``, else ``[prefix before _]``, else 1.0."""
        weights = self.discriminator_loss_weights
        for key in (f"{discriminator}/{term}", term, term.split("_", 1)[0]):
            if key in weights:
                return float(weights[key])
        return 1.0

    def _configured(self, discriminator: str, term: str) -> bool:
        """A term the engine adds only on request (``"r1"``): a non-zero weight was configured for it."""
        keys = (f"{discriminator}/{term}", term)
        return any(k in self.discriminator_loss_weights for k in keys) and self.discriminator_loss_weight(
            discriminator, term) != 0

    def adversarial_loss(self, discriminator: str, fake: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor:
        """Generator adversarial term for ``fake`` judged by ``discriminator(fake, *condition)``: a trained
        discriminator (frozen then, called without DDP sync) or an auxiliary one (a fixed critic)."""
        return generator_adversarial_loss(self.get_network(discriminator)(fake, *condition), self.adversarial)

    def discriminator_terms(
        self,
        discriminator: str,
        real: torch.Tensor,
        fake: torch.Tensor,
        *condition: torch.Tensor,
        fake_condition: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Unweighted terms of ``discriminator``: ``"real"`` = objective of ``D(real, *condition)`` as real,
        ``"fake"`` = of ``D(fake, *fake_condition)`` as fake (``fake_condition`` default ``condition``), plus
        ``"gp"`` (wgan-gp, :meth:`gradient_penalty`) and ``"r1"`` (when an ``"r1"`` weight is configured,
        :meth:`r1_penalty`). The engine weights them with :meth:`discriminator_loss_weight`; terms of
        weight 0 are not computed."""
        net = self.discriminators[discriminator]
        fake = fake.detach()
        fake_cond = condition if fake_condition is None else tuple(fake_condition)
        terms = discriminator_adversarial_terms(net(real, *condition), net(fake, *fake_cond), self.adversarial)
        if self.adversarial == "wgan-gp" and self.discriminator_loss_weight(discriminator, "gp") != 0:
            terms["gp"] = self.gradient_penalty(discriminator, real, fake, *condition)
        if self._configured(discriminator, "r1"):
            terms["r1"] = self.r1_penalty(discriminator, real, *condition)
        return terms

    def gradient_penalty(
        self, discriminator: str, real: torch.Tensor, fake: torch.Tensor, *condition: torch.Tensor
    ) -> torch.Tensor:
        """Unweighted WGAN-GP penalty ``mean((||grad D(x_hat, *condition)|| - 1)^2)`` (weight ``"gp"``)."""
        return gradient_penalty(self.get_network(discriminator), real, fake, 1.0, condition)

    def r1_penalty(self, discriminator: str, real: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor:
        """Unweighted R1 penalty ``1/2 * mean_b ||grad_x D(x_b, *condition)||^2`` at real ``x``; its weight
        ``discriminator_loss_weights["r1"]`` is Mescheder et al.'s gamma."""
        return discriminator_r1_penalty(self.get_network(discriminator), real, 1.0, condition)

    def register_state(self, name: str, obj: Any) -> None:
        """Save ``obj`` (anything with ``state_dict()``/``load_state_dict()``) in every checkpoint under key
        ``name`` and restore it on resume. Call it while building the trainer (a subclass's ``__init__``),
        before :meth:`run`: a resumed checkpoint must hold every registered key."""
        if not (callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))):
            raise ConfigError(None, f"register_state({name!r}): a {type(obj).__name__} has no state_dict/load_state_dict")
        if name in _RESERVED_STATE:
            raise ConfigError(None, f"register_state: {name!r} is reserved by the engine")
        if self._to_save.get(name, obj) is not obj:
            raise ConfigError(None, f"register_state: {name!r} is already registered for another object")
        self._to_save[name] = obj

    def image_pool(self, discriminator: str) -> ImagePool:
        """The history pool of ``discriminator`` (created on first use, saved in checkpoints)."""
        if discriminator not in self.image_pools:
            pool = ImagePool(self.pool_size, seed=len(self.image_pools))
            self.image_pools[discriminator] = pool
            self.register_state(f"pool/{discriminator}", pool)
        return self.image_pools[discriminator]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the configured AMP mode (no-op in fp32)."""
        if self.amp_mode is None:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp_mode == "bf16" else torch.float16
        return torch.autocast(device_type=self.state.device.type, dtype=dtype)

    # ------------------------------------------------------------------ iteration
    def _iteration(self, engine: GANTrainer, batchdata: Any) -> dict[str, torch.Tensor]:
        return self.train_step(batchdata)

    def train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """One iteration; returns detached losses ``{"G/<term>", "G/total", "<D>/<term>", "<D>/total"}``."""
        batch = self.prepare_batch(batch)
        for net in self.networks.values():
            net.train()  # a validation handler may have left a network in eval mode
        for net in self.auxiliary.values():
            net.eval()
        update_g = (self.state.iteration - 1) % self.generator_every == 0
        output: dict[str, torch.Tensor] = {}
        totals: dict[str, torch.Tensor] = {}

        self.set_requires_grad(self.discriminators.values(), False)
        with torch.set_grad_enabled(update_g), self.autocast():
            fakes = self.forward(batch)
            g_terms = self.generator_step(batch, fakes) if update_g else {}
        if update_g:
            weighted = [self.loss_weight(k) * v for k, v in g_terms.items() if self.loss_weight(k) != 0]
            if not weighted:
                raise ConfigError(None, "generator_step returned no term with a non-zero weight")
            total = torch.stack([w.float() for w in weighted]).sum()
            self._update(self.generator_groups, total)
            for name, averaged in self.emas.items():
                averaged.update_parameters(self.networks[name])
            output.update({f"G/{k}": v.detach() for k, v in g_terms.items()})
            output["G/total"] = totals["G"] = total.detach()

        self.set_requires_grad(self.discriminators.values(), True)
        fakes = {k: v.detach() for k, v in fakes.items()}
        with self.autocast():
            d_terms = self.discriminator_step(batch, fakes)
        losses: dict[str, list[torch.Tensor]] = {}
        for d_name, terms in d_terms.items():
            if d_name not in self.discriminator_group:
                raise ConfigError(None, f"discriminator_step returned terms for unknown discriminator {d_name!r}")
            if not terms:
                continue
            weighted = [self.discriminator_loss_weight(d_name, k) * v.float() for k, v in terms.items()
                        if self.discriminator_loss_weight(d_name, k) != 0]
            if not weighted:
                raise ConfigError(None, f"discriminator_step returned no term of {d_name!r} with a non-zero weight")
            d_total = torch.stack(weighted).sum()
            losses.setdefault(self.discriminator_group[d_name], []).append(d_total)
            output.update({f"{d_name}/{k}": v.detach() for k, v in terms.items()})
            output[f"{d_name}/total"] = totals[d_name] = d_total.detach()
        for group, group_losses in losses.items():
            self._update([group], torch.stack(group_losses).sum())

        if self.stop_on_nan and totals:
            values = torch.stack(list(totals.values()))
            if not bool(torch.isfinite(values).all()):
                bad = [k for k, v in totals.items() if not math.isfinite(float(v))]
                raise ConfigError(
                    self.checkpoint_dir,
                    f"loss {', '.join(bad)} is not finite at iteration {self.state.iteration}; lower the learning "
                    "rate, use amp=bf16, or resume from the last checkpoint",
                )
        self.state.fakes = fakes
        self.epoch_average.update(output)
        return output

    def _update(self, groups: Sequence[str], loss: torch.Tensor) -> None:
        """Backward ``loss`` and step the optimizers of ``groups``.

        fp16: the loss is scaled by the first group's GradScaler; every optimizer driven by that loss is
        unscaled and stepped through that same scaler, which is then updated once (the PyTorch recipe for
        several optimizers sharing one loss). Each discriminator optimizer has its own loss, so its own
        scaler.
        """
        scaler = self.scalers[groups[0]]
        opts = [self.optimizers[g] for g in groups]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        for opt in opts:
            if self.grad_clip_norm:
                scaler.unscale_(opt)
                params = [p for pg in opt.param_groups for p in pg["params"] if p.grad is not None]
                torch.nn.utils.clip_grad_norm_(params, float(self.grad_clip_norm))
            scaler.step(opt)
        scaler.update()

    # ------------------------------------------------------------------ epoch end
    def _step_schedulers(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    def _epoch_completed(self) -> None:
        if self.distributed:  # BatchNorm statistics of rank 0 on every rank before checkpoints and validation
            for net in self.networks.values():
                broadcast_buffers(net)
        means = self.epoch_average.compute()
        self.state.metrics.update(means)
        if self.scheduler_interval == "epoch":
            self._step_schedulers()
        if is_main_process() and means:
            text = ", ".join(f"{k}={v:.4g}" for k, v in means.items() if k.endswith("/total"))
            self.logger.info(f"epoch {self.state.epoch}/{self.state.max_epochs}: {text}")
