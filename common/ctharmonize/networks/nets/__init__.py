"""Generators and discriminators: CycleGAN ResNet pieces, the multipath generator, PatchGAN, CVS-CT, VGG features,
StarGAN v2 (generator, mapping network, style encoder, multi-task discriminator), the segmentation-renormalized
CycleGAN (tissue segmenter, semantic extractor, seg-renorm generator, spectral-norm PatchGAN)."""

from ctharmonize.networks.nets.band_energy_normalizer import BandEnergyNormalizer, BandGainPath
from ctharmonize.networks.nets.ct_kernel_features import (
    CT_KERNEL_DOMAINS,
    CTKernelFeatures,
    load_ct_kernel_features,
)
from ctharmonize.networks.nets.cvsct_discriminator import CVSCTDiscriminator, cvsct_discriminator_output_size
from ctharmonize.networks.nets.cvsct_generator import CVSCTGenerator
from ctharmonize.networks.nets.domain_names import check_domain, check_domain_names
from ctharmonize.networks.nets.domain_select import select_domain
from ctharmonize.networks.nets.mtf_encoder import MTFEncoder
from ctharmonize.networks.nets.mtf_harmonizer import PAPER_001_CHANNELS, MTFHarmonizer
from ctharmonize.networks.nets.multipath_discriminators import MultipathDiscriminators
from ctharmonize.networks.nets.multipath_generator import DEFAULT_DOMAINS, MultipathGenerator
from ctharmonize.networks.nets.multipath_path import MultipathPath
from ctharmonize.networks.nets.new_domain import add_new_domain, trainable_parameters_for_new_domain
from ctharmonize.networks.nets.patch_discriminator import PatchDiscriminator, patch_receptive_field
from ctharmonize.networks.nets.resnet_decoder import ResnetDecoder
from ctharmonize.networks.nets.resnet_encoder import ResnetEncoder
from ctharmonize.networks.nets.resnet_generator import ResnetGenerator
from ctharmonize.networks.nets.segrenorm_generator import SegRenormGenerator
from ctharmonize.networks.nets.semantic_extractor import SemanticExtractor
from ctharmonize.networks.nets.shared_latent import SharedLatent
from ctharmonize.networks.nets.spectral_patch_discriminator import SpectralPatchDiscriminator
from ctharmonize.networks.nets.stargan_discriminator import MultiTaskDiscriminator
from ctharmonize.networks.nets.stargan_generator import StarGANGenerator
from ctharmonize.networks.nets.stargan_init import STARGAN_INITS, stargan_init
from ctharmonize.networks.nets.stargan_mapping import MappingNetwork
from ctharmonize.networks.nets.stargan_style_encoder import StyleEncoder
from ctharmonize.networks.nets.stargan_trunk import StarGANTrunk, stargan_sizes
from ctharmonize.networks.nets.tissue_segmenter import CHEST_CT_TISSUE_CLASSES, TissueSegmenter
from ctharmonize.networks.nets.vgg_features import VGG_CONFIGS, VGGFeatures, vgg_layer_names

__all__ = [
    "BandEnergyNormalizer",
    "BandGainPath",
    "CHEST_CT_TISSUE_CLASSES",
    "CTKernelFeatures",
    "CT_KERNEL_DOMAINS",
    "CVSCTDiscriminator",
    "CVSCTGenerator",
    "DEFAULT_DOMAINS",
    "MTFEncoder",
    "MTFHarmonizer",
    "MappingNetwork",
    "MultiTaskDiscriminator",
    "MultipathDiscriminators",
    "MultipathGenerator",
    "MultipathPath",
    "PAPER_001_CHANNELS",
    "PatchDiscriminator",
    "ResnetDecoder",
    "ResnetEncoder",
    "ResnetGenerator",
    "STARGAN_INITS",
    "SegRenormGenerator",
    "SemanticExtractor",
    "SharedLatent",
    "SpectralPatchDiscriminator",
    "StarGANGenerator",
    "StarGANTrunk",
    "StyleEncoder",
    "TissueSegmenter",
    "VGGFeatures",
    "VGG_CONFIGS",
    "add_new_domain",
    "check_domain",
    "check_domain_names",
    "load_ct_kernel_features",
    "cvsct_discriminator_output_size",
    "patch_receptive_field",
    "select_domain",
    "stargan_init",
    "stargan_sizes",
    "trainable_parameters_for_new_domain",
    "vgg_layer_names",
]
