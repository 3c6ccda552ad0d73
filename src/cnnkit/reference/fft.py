"""Convolution by the FFT: correlation becomes a pointwise product of spectra (B2, beyond).

For a real kernel ``k`` zero-padded to the padded input's size ``H_p x W_p``,

    corr(x, k)[i, j] = IFFT( FFT(x) . conj(FFT(k)) )[i, j]

is the *circular* correlation; for ``i <= H_p - (d(k_h - 1) + 1)`` (and likewise ``j``) no
window wraps around, so those entries are the ordinary stride-1 correlation (the same holds on
any larger circle, so the transform size may be rounded up). Stride keeps every
``s``-th of them; dilation inserts ``d - 1`` zeros between the taps of the kernel first.
The channel sum of each output channel is a sum of spectra products (linearity of the FFT).
"""

from __future__ import annotations

import torch

from cnnkit.reference._geometry import ConvGeometry
from cnnkit.reference.conv import pad_zeros


def conv2d_fft(x: torch.Tensor, weight: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """``conv2d`` computed as ``irfft2(sum_c rfft2(X_pad[c]) conj(rfft2(W_dilated[o, c])))``.

    The transform size is the padded input's, rounded up to a product of 2, 3 and 5 (fast FFT
    lengths; a larger circle adds no wrap-around). The stride-1 correlation is computed in full
    and then subsampled: a strided FFT convolution does ``s_h s_w`` times more work than it
    keeps. The kernel spectra are as large as the image's (``C_out C_in/g`` of them), which is
    why libraries use FFT only for large kernels. Half and bfloat16 inputs are computed in
    float32 (no CPU FFT for them).
    """
    n, g = geometry.batch, geometry.groups
    if n == 0:  # an empty batch: oneMKL refuses a zero-sized transform, torch gives (0, ...)
        return x.new_zeros(geometry.output_shape)
    compute = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    x_padded = pad_zeros(x, geometry.padding).to(compute)
    size = tuple(fast_length(length) for length in x_padded.shape[-2:])
    kernels = dilate_kernel(weight.to(compute), geometry.dilation)
    x_spectrum = torch.fft.rfft2(x_padded, s=size)  # (N, C_in, U, V)
    k_spectrum = torch.conj_physical(torch.fft.rfft2(kernels, s=size))  # (C_out, C_in/g, U, V)
    frequencies = x_spectrum.shape[-2:]
    # One small matrix product per frequency: (N x C_in/g) @ (C_in/g x C_out/g), per group.
    x_spectrum = x_spectrum.reshape(n, g, -1, frequencies.numel()).permute(3, 1, 0, 2)
    k_spectrum = k_spectrum.reshape(g, -1, k_spectrum.shape[1], frequencies.numel())
    y_spectrum = torch.matmul(x_spectrum, k_spectrum.permute(3, 0, 2, 1))  # (UV, g, N, C_out/g)
    y_spectrum = y_spectrum.permute(2, 1, 3, 0).reshape(n, geometry.out_channels, *frequencies)
    full = torch.fft.irfft2(y_spectrum, s=size)  # circular correlation, stride 1
    (span_h, span_w), (stride_h, stride_w) = geometry.effective_kernel, geometry.stride
    (padded_h, padded_w) = x_padded.shape[-2:]
    valid = full[..., : padded_h - span_h + 1 : stride_h, : padded_w - span_w + 1 : stride_w]
    return valid.to(x.dtype)


def fast_length(length: int) -> int:
    """The smallest ``2^a 3^b 5^c >= length``: lengths the FFT handles fastest."""
    candidate = length
    while True:
        remainder = candidate
        for factor in (2, 3, 5):
            while remainder % factor == 0:
                remainder //= factor
        if remainder == 1:
            return candidate
        candidate += 1


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
