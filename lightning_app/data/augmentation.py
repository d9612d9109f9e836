"""Random distortions of training digits, computed on the device a batch is on (no flips: a mirrored digit is
another glyph, or none)."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def uniform(n: int, *size: int, device: torch.device) -> Tensor:
    """Uniform random numbers in [-1, 1)."""
    return torch.rand(n, *size, device=device).mul_(2).sub_(1)


def random_affine_grid(images: Tensor, shift: float, rotation: float, scale: float) -> Tensor:
    """Sampling grid of a random shift (pixels), rotation (degrees) and scaling (fraction) of each image."""
    n, _, height, width = images.shape
    angle = uniform(n, device=images.device) * math.radians(rotation)
    zoom = 1 + uniform(n, device=images.device) * scale
    offset = uniform(n, 2, device=images.device) * shift * 2 / torch.tensor([width, height], device=images.device)
    # affine_grid maps output to input coordinates, so the inverse transform goes into theta.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    return F.affine_grid(theta, list(images.shape), align_corners=False)


def random_affine(images: Tensor, shift: float, rotation: float, scale: float) -> Tensor:
    """Shift (pixels), rotate (degrees) and scale (fraction) each image of a float (N, 1, H, W) batch at random."""
    grid = random_affine_grid(images, shift, rotation, scale)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def smooth(field: Tensor, sigma: float) -> Tensor:
    """Blur each channel of a (N, C, H, W) field with a Gaussian of ``sigma`` pixels (two 1-D passes)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, device=field.device, dtype=field.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = field.shape[1]
    rows = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    field = F.conv2d(field, rows, padding=(radius, 0), groups=channels)
    return F.conv2d(field, cols, padding=(0, radius), groups=channels)


def random_distortion(
    images: Tensor, shift: float, rotation: float, scale: float, elastic: float = 0.0, elastic_sigma: float = 5.0
) -> Tensor:
    """Random affine moves (see ``random_affine``) and, with ``elastic`` > 0, elastic distortions (Simard et al.
    2003: a random displacement field smoothed by a Gaussian of ``elastic_sigma`` pixels and scaled by ``elastic``
    pixels), applied to a float (N, 1, H, W) batch with one resampling."""
    if elastic <= 0:
        return random_affine(images, shift, rotation, scale)
    n, _, height, width = images.shape
    grid = random_affine_grid(images, shift, rotation, scale)
    field = smooth(uniform(n, 2, height, width, device=images.device), elastic_sigma) * elastic
    # Pixels to grid_sample's [-1, 1] coordinates; the field is (x, y) in its two channels.
    field = field * (2 / torch.tensor([width, height], device=images.device)).view(1, 2, 1, 1)
    grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
