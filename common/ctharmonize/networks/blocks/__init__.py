"""Building blocks of the GAN networks: norm factory, conv-norm-act layer lists, residual and attention blocks,
AdaIN and the StarGAN v2 ResBlk / AdaIN-ResBlk, segmentation renormalization (paper 004)."""

from ctharmonize.networks.blocks.adain import AdaIN
from ctharmonize.networks.blocks.adain_resblock import AdainResBlk
from ctharmonize.networks.blocks.attention_output_head import OUTPUT_ACTIVATIONS, AttentionOutputHead
from ctharmonize.networks.blocks.cbam import CBAM
from ctharmonize.networks.blocks.conv_norm_act import ACTIVATIONS, activation, conv_norm_act, deconv_norm_act
from ctharmonize.networks.blocks.frequency_grid import centered_fft2, centered_ifft2, resample_centered
from ctharmonize.networks.blocks.frequency_mixing import LAMBDA_INITS, FrequencyMixing
from ctharmonize.networks.blocks.hu_window_map import HUWindowMap
from ctharmonize.networks.blocks.norm import NORM_TYPES, conv_bias, norm_layer
from ctharmonize.networks.blocks.resnet_block import ResnetBlock
from ctharmonize.networks.blocks.seg_renorm import SegRenorm
from ctharmonize.networks.blocks.seg_renorm_conv import SegRenormConv
from ctharmonize.networks.blocks.seg_renorm_resblock import SegRenormResnetBlock
from ctharmonize.networks.blocks.stargan_resblock import ResBlk

__all__ = [
    "ACTIVATIONS",
    "AdaIN",
    "AdainResBlk",
    "AttentionOutputHead",
    "CBAM",
    "FrequencyMixing",
    "HUWindowMap",
    "LAMBDA_INITS",
    "NORM_TYPES",
    "OUTPUT_ACTIVATIONS",
    "ResBlk",
    "ResnetBlock",
    "SegRenorm",
    "SegRenormConv",
    "SegRenormResnetBlock",
    "activation",
    "centered_fft2",
    "centered_ifft2",
    "conv_bias",
    "conv_norm_act",
    "deconv_norm_act",
    "norm_layer",
    "resample_centered",
]
