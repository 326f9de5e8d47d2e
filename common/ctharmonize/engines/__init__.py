"""The shared GAN training engine: one ignite/MONAI trainer with overridable hooks, configured from bundle JSON.

:class:`GANTrainer` holds named generators/discriminators, one optimizer (and GradScaler) per group,
schedulers, AMP, DDP and checkpoint save/resume; variants (:class:`CycleGANTrainer`, multipath ...)
override its ``forward`` / ``generator_step`` / ``discriminator_step`` hooks. See ``docs/engines.md``.
"""

from ctharmonize.engines.adversarial import (
    ADVERSARIAL_MODES,
    discriminator_adversarial_terms,
    generator_adversarial_loss,
    gradient_penalty,
)
from ctharmonize.engines.checkpointing import (
    AtomicTorchSaver,
    RNGState,
    find_latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from ctharmonize.engines.cyclegan_trainer import CycleGANTrainer
from ctharmonize.engines.distributed import (
    get_rank,
    get_world_size,
    init_distributed,
    is_distributed,
    is_main_process,
    wrap_ddp,
)
from ctharmonize.engines.epoch_average import EpochAverage
from ctharmonize.engines.gan_trainer import GANTrainer
from ctharmonize.engines.image_pool import ImagePool
from ctharmonize.engines.lr_schedule import linear_decay_lambda, make_linear_decay_scheduler
from ctharmonize.engines.random_subset_sampler import RandomSubsetSampler
from ctharmonize.engines.tensorboard_handler import GANTensorBoardHandler

__all__ = [
    "ADVERSARIAL_MODES",
    "AtomicTorchSaver",
    "CycleGANTrainer",
    "EpochAverage",
    "GANTensorBoardHandler",
    "GANTrainer",
    "ImagePool",
    "RNGState",
    "RandomSubsetSampler",
    "discriminator_adversarial_terms",
    "find_latest_checkpoint",
    "generator_adversarial_loss",
    "get_rank",
    "get_world_size",
    "gradient_penalty",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "linear_decay_lambda",
    "list_checkpoints",
    "load_checkpoint",
    "make_linear_decay_scheduler",
    "wrap_ddp",
]
