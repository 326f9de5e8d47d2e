"""The 64 × 64 MTF2D map of a kernel domain (paper 001's conditioning input)."""

import numpy as np
import pytest
import torch

from ctharmonize.networks.blocks import centered_fft2
from ctharmonize.simulation import KERNELS, MTF2D_SIZE, kernel_mtf2d, mtf2d_from_profile
from ctharmonize.simulation.mtf2d import centered_frequencies, kernel_mtf_profile


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_map_radial_profile_centre_and_symmetry(name):
    spacing = 500.0 / 512  # the paper's 500 mm FOV on 512 px
    m = kernel_mtf2d(name, spacing)
    assert m.shape == (MTF2D_SIZE, MTF2D_SIZE) and m.dtype == np.float32
    assert m[32, 32] == pytest.approx(1.0)
    # radial profile along +u and +v = the kernel's 1-D MTF at k / (64 · spacing) cycles/mm
    k = np.arange(0, 32)
    freqs_lp_cm = k / (64 * spacing) * 10.0
    expected = KERNELS[name].mtf(freqs_lp_cm)
    np.testing.assert_allclose(m[32, 32 + k], expected, rtol=1e-6)
    np.testing.assert_allclose(m[32 + k, 32], expected, rtol=1e-6)
    # diagonal: radial frequency √2 · f
    np.testing.assert_allclose(m[32 + k, 32 + k], KERNELS[name].mtf(np.sqrt(2) * freqs_lp_cm), rtol=1e-5)
    # symmetric about DC (index 0 is −Nyquist, without a +Nyquist partner) and under transposition
    inner = m[1:, 1:]
    np.testing.assert_array_equal(inner, inner[::-1, :])
    np.testing.assert_array_equal(inner, inner[:, ::-1])
    np.testing.assert_array_equal(m, m.T)


def test_grid_matches_the_image_fft_layout_and_anisotropic_spacing():
    # the map's DC is where centered_fft2 puts the DC of a 64 × 64 image
    z = centered_fft2(torch.ones(1, 1, 64, 64, dtype=torch.float64))
    assert int(z.abs().flatten().argmax()) == 32 * 64 + 32
    assert centered_frequencies(64, 1.0)[0] == pytest.approx(-5.0)  # −Nyquist in lp/cm at 1 mm
    m = kernel_mtf2d("siemens_b50f", (0.5, 1.0))  # rows 0.5 mm, columns 1 mm
    f = KERNELS["siemens_b50f"].mtf
    assert m[32, 40] == pytest.approx(f(8 / 64 * 10.0))
    assert m[40, 32] == pytest.approx(f(8 / 32 * 10.0))


def test_map_from_a_sampled_profile_matches_the_kernel_map():
    spacing = 0.8
    freqs, values = kernel_mtf_profile("ge_bone", spacing)  # 64 samples on [0, Nyquist]
    assert freqs.shape == (64,) and freqs[-1] == pytest.approx(10.0 / (2 * spacing))
    m = mtf2d_from_profile(freqs, values, spacing)
    direct = kernel_mtf2d("ge_bone", spacing)
    assert m[32, 32] == 1.0
    r = np.hypot(*np.meshgrid(np.arange(64) - 32, np.arange(64) - 32, indexing="ij"))
    inside = r <= 32  # within Nyquist; beyond, the last sample is held
    assert np.abs(m - direct)[inside].max() < 0.02
    assert mtf2d_from_profile(freqs, 2 * values, spacing)[32, 32] == 1.0
    with pytest.raises(ValueError, match="start at 0"):
        mtf2d_from_profile(freqs[1:], values[1:], spacing)
    with pytest.raises(ValueError, match="unknown kernel"):
        kernel_mtf2d("nope", spacing)
    with pytest.raises(ValueError, match="positive"):
        kernel_mtf2d("ge_bone", 0.0)
