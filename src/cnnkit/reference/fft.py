"""Convolution by the FFT: correlation becomes a pointwise product of spectra (B2, beyond).

For a real kernel ``k`` zero-padded to the padded input's size ``H_p x W_p``,

    corr(x, k)[i, j] = IFFT( FFT(x) . conj(FFT(k)) )[i, j]

is the *circular* correlation; for ``i <= H_p - (d(k_h - 1) + 1)`` (and likewise ``j``) no
window wraps around, so those entries are the ordinary stride-1 correlation. Stride keeps every
``s``-th of them; dilation inserts ``d - 1`` zeros between the taps of the kernel first.
The channel sum of each output channel is a sum of spectra products (linearity of the FFT).
"""

from __future__ import annotations

import torch

from cnnkit.reference._geometry import ConvGeometry
from cnnkit.reference.conv import pad_zeros


def conv2d_fft(x: torch.Tensor, weight: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """``conv2d`` computed as ``irfft2(sum_c rfft2(X_pad[c]) conj(rfft2(W_dilated[o, c])))``.

    The stride-1 correlation is computed in full and then subsampled: a strided FFT convolution
    does ``s_h s_w`` times more work than it keeps, which is why libraries only use FFT for large
    stride-1 kernels. Half and bfloat16 inputs are computed in float32 (no CPU FFT for them).
    """
    n, g = geometry.batch, geometry.groups
    compute = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    x_padded = pad_zeros(x, geometry.padding).to(compute)
    size = x_padded.shape[-2:]
    kernels = dilate_kernel(weight.to(compute), geometry.dilation)
    x_spectrum = torch.fft.rfft2(x_padded, s=size).reshape(n, g, -1, size[0], size[1] // 2 + 1)
    k_spectrum = torch.fft.rfft2(kernels, s=size)
    k_spectrum = k_spectrum.reshape(g, -1, *k_spectrum.shape[1:])  # (g, C_out/g, C_in/g, ...)
    y_spectrum = torch.einsum("ngcuv,gocuv->ngouv", x_spectrum, k_spectrum.conj())
    full = torch.fft.irfft2(y_spectrum, s=size)  # circular correlation, stride 1
    (span_h, span_w), (stride_h, stride_w) = geometry.effective_kernel, geometry.stride
    valid = full[..., : size[0] - span_h + 1 : stride_h, : size[1] - span_w + 1 : stride_w]
    return valid.reshape(geometry.output_shape).to(x.dtype)


def dilate_kernel(weight: torch.Tensor, dilation: tuple[int, int]) -> torch.Tensor:
    """The kernel with ``d - 1`` zeros between taps: size ``d(k - 1) + 1`` per axis (002)."""
    if dilation == (1, 1):
        return weight
    dilation_h, dilation_w = dilation
    kernel_h, kernel_w = weight.shape[-2:]
    dilated = weight.new_zeros(
        *weight.shape[:-2], dilation_h * (kernel_h - 1) + 1, dilation_w * (kernel_w - 1) + 1
    )
    dilated[..., ::dilation_h, ::dilation_w] = weight
    return dilated
