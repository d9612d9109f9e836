"""Random distortions of training digits, computed on the device a batch is on (no flips: a mirrored digit is
another glyph, or none)."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def uniform(n: int, *size: int, device: torch.device) -> Tensor:
    """Uniform random numbers in [-1, 1)."""
    return torch.rand(n, *size, device=device).mul_(2).sub_(1)


def random_affine(images: Tensor, shift: float, rotation: float, scale: float) -> Tensor:
    """Shift (pixels), rotate (degrees) and scale (fraction) each image of a float (N, 1, H, W) batch at random."""
    n, _, height, width = images.shape
    angle = uniform(n, device=images.device) * math.radians(rotation)
    zoom = 1 + uniform(n, device=images.device) * scale
    offset = uniform(n, 2, device=images.device) * shift * 2 / torch.tensor([width, height], device=images.device)
    # affine_grid maps output to input coordinates, so the inverse transform goes into theta.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
