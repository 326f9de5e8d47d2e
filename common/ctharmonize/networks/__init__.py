"""Networks for CT kernel harmonization (MONAI style: ``blocks`` and ``nets``, re-exported here).

Images enter and leave the generators in network space [-1, 1] (HU clipped to [-1024, 3072] and
scaled, see paper 000), shape (B, 1, H, W).
"""

from ctharmonize.networks.blocks import (
    CBAM,
    ResnetBlock,
    activation,
    conv_bias,
    conv_norm_act,
    deconv_norm_act,
    norm_layer,
)
from ctharmonize.networks.cyclegan_pairs import CycleGANPairs, pair_name
from ctharmonize.networks.nets import (
    DEFAULT_DOMAINS,
    VGG_CONFIGS,
    BandEnergyNormalizer,
    BandGainPath,
    MultipathDiscriminators,
    MultipathGenerator,
    MultipathPath,
    PatchDiscriminator,
    ResnetDecoder,
    ResnetEncoder,
    ResnetGenerator,
    SharedLatent,
    VGGFeatures,
    add_new_domain,
    patch_receptive_field,
    trainable_parameters_for_new_domain,
    vgg_layer_names,
)
from ctharmonize.networks.translator import CycleGANPair, IdentityPath, Translator, check_translator

__all__ = [
    "BandEnergyNormalizer",
    "BandGainPath",
    "CBAM",
    "CycleGANPair",
    "CycleGANPairs",
    "pair_name",
    "IdentityPath",
    "Translator",
    "check_translator",
    "DEFAULT_DOMAINS",
    "MultipathDiscriminators",
    "MultipathGenerator",
    "MultipathPath",
    "PatchDiscriminator",
    "ResnetBlock",
    "ResnetDecoder",
    "ResnetEncoder",
    "ResnetGenerator",
    "SharedLatent",
    "VGGFeatures",
    "VGG_CONFIGS",
    "activation",
    "add_new_domain",
    "conv_bias",
    "conv_norm_act",
    "deconv_norm_act",
    "norm_layer",
    "patch_receptive_field",
    "trainable_parameters_for_new_domain",
    "vgg_layer_names",
]
