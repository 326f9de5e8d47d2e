"""The shared GAN training engine: one ignite/MONAI trainer with overridable hooks, configured from bundle JSON.

:class:`GANTrainer` holds named generators/discriminators, one optimizer (and GradScaler) per group,
schedulers, AMP, DDP and checkpoint save/resume; variants (:class:`CycleGANTrainer`, multipath, MTF harmonizer ...)
override its ``forward`` / ``generator_step`` / ``discriminator_step`` hooks, and use its extension points
(auxiliary networks, ``register_state``, conditioned adversarial helpers, discriminator-term weights, R1,
weight EMA). See ``docs/engines.md``.
"""

from ctharmonize.engines.adversarial import (
    ADVERSARIAL_MODES,
    discriminator_adversarial_terms,
    discriminator_r1_penalty,
    generator_adversarial_loss,
    gradient_penalty,
)
from ctharmonize.engines.band_energy_fit import fit_band_energies
from ctharmonize.engines.checkpointing import (
    AtomicTorchSaver,
    RNGState,
    find_latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from ctharmonize.engines.cvsct_trainer import CVSCTTrainer
from ctharmonize.engines.cyclegan_trainer import CycleGANTrainer
from ctharmonize.engines.cyclic_lr import cyclic_lr_schedulers, make_cyclic_scheduler
from ctharmonize.engines.distributed import (
    get_rank,
    get_world_size,
    init_distributed,
    is_distributed,
    is_main_process,
    main_process_first,
    wrap_ddp,
)
from ctharmonize.engines.epoch_average import EpochAverage
from ctharmonize.engines.gan_trainer import GANTrainer
from ctharmonize.engines.image_pool import ImagePool
from ctharmonize.engines.kernel_classifier_training import KernelCrops, train_kernel_features
from ctharmonize.engines.lr_schedule import (
    linear_decay_lambda,
    linear_decay_schedulers,
    make_linear_decay_scheduler,
)
from ctharmonize.engines.mean_style_update import MeanStyleUpdate
from ctharmonize.engines.mtf_harmonizer_trainer import MTFHarmonizerTrainer, mtf_harmonizer_optimizers
from ctharmonize.engines.multipath_initialization import (
    initialize_from,
    load_generator_state,
    prepare_new_domains,
)
from ctharmonize.engines.multipath_optimizers import multipath_optimizers
from ctharmonize.engines.random_subset_sampler import RandomSubsetSampler
from ctharmonize.engines.segrenorm_cyclegan_trainer import SegRenormCycleGANTrainer, segrenorm_optimizers
from ctharmonize.engines.stargan_trainer import StarGANTrainer, stargan_optimizers
from ctharmonize.engines.tensorboard_handler import GANTensorBoardHandler
from ctharmonize.engines.weight_ema import weight_ema

__all__ = [
    "ADVERSARIAL_MODES",
    "AtomicTorchSaver",
    "CVSCTTrainer",
    "CycleGANTrainer",
    "EpochAverage",
    "GANTensorBoardHandler",
    "GANTrainer",
    "ImagePool",
    "MTFHarmonizerTrainer",
    "KernelCrops",
    "MeanStyleUpdate",
    "RNGState",
    "RandomSubsetSampler",
    "SegRenormCycleGANTrainer",
    "StarGANTrainer",
    "discriminator_adversarial_terms",
    "discriminator_r1_penalty",
    "find_latest_checkpoint",
    "fit_band_energies",
    "generator_adversarial_loss",
    "get_rank",
    "get_world_size",
    "gradient_penalty",
    "init_distributed",
    "initialize_from",
    "is_distributed",
    "is_main_process",
    "cyclic_lr_schedulers",
    "linear_decay_lambda",
    "linear_decay_schedulers",
    "list_checkpoints",
    "load_checkpoint",
    "load_generator_state",
    "main_process_first",
    "make_cyclic_scheduler",
    "make_linear_decay_scheduler",
    "mtf_harmonizer_optimizers",
    "multipath_optimizers",
    "prepare_new_domains",
    "segrenorm_optimizers",
    "stargan_optimizers",
    "train_kernel_features",
    "weight_ema",
    "wrap_ddp",
]
