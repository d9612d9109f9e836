"""Whether a model's weights changed: a cheap fingerprint of them, and a comparison with a checkpoint's.

Needed where the step count does not tell: a callback may change the weights after the last evaluation or save
(StochasticWeightAveraging puts in the averaged weights when training ends, ModelPruning prunes).
"""

import torch
from torch import Tensor, nn


def tensors(model: nn.Module) -> dict[str, Tensor]:
    """The model's parameters and buffers by name: its weights, without the metrics' running counts that
    ``state_dict`` also holds."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def fingerprint(model: nn.Module) -> Tensor:
    """Two numbers per weight tensor that change whenever it does: cheap to keep, unlike a copy."""
    with torch.no_grad():
        values = [value.detach().double() for value in tensors(model).values() if value.is_floating_point()]
        sums = [torch.stack([value.sum(), value.abs().sum()]) for value in values]
    return torch.stack(sums).cpu() if sums else torch.zeros(0)


def same_weights(model: nn.Module, state_dict: dict[str, Tensor]) -> bool:
    """Whether a checkpoint's ``state_dict`` holds exactly the model's weights."""
    return all(
        name in state_dict and torch.equal(value.detach().cpu(), state_dict[name])
        for name, value in tensors(model).items()
    )
