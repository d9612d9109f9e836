"""Test-time augmentation: classify copies of each image moved by a pixel or two and average their probabilities."""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# 49 copies of each image: beyond that the copies cost more than they could add.
MOST_TEST_TIME_SHIFTS = 3


def shifted_copies(images: Tensor, reach: int) -> list[Tensor]:
    """Copies of raw images (..., H, W) moved by -reach to reach pixels down and across, the image itself first.

    Raw images have a blank (0) background, so what moves in is blank, as in the training shifts; nothing wraps
    round from the other side.
    """
    height, width = images.shape[-2:]
    padded = F.pad(images, (reach, reach, reach, reach))
    moves = [(0, 0)] + [(down, across) for down in range(-reach, reach + 1) for across in range(-reach, reach + 1)]
    return [
        padded[..., reach - down : reach - down + height, reach - across : reach - across + width]
        for down, across in dict.fromkeys(moves)
    ]


def shift_averaged(classify: Callable[[Tensor], Tensor], images: Tensor, reach: int) -> Tensor:
    """Class logits for raw images: ``classify``'s own with reach 0, else the log of its mean probabilities over
    the ``(2 * reach + 1) ** 2`` copies of ``shifted_copies`` (log-probabilities are logits of those probabilities).
    """
    if reach == 0:
        return classify(images)
    views = [classify(view).float().log_softmax(dim=-1) for view in shifted_copies(images, reach)]
    return torch.stack(views).logsumexp(dim=0) - math.log(len(views))
