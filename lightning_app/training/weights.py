"""Whether a model's weights changed: since a moment of the run, or against a checkpoint's.

Needed where the step count does not tell: a callback may change the weights after the last evaluation or save
(StochasticWeightAveraging puts in the averaged weights when training ends, ModelPruning prunes). Every answer is
rank zero's, given to every process: under DDP, BatchNorm's running statistics differ between the processes
unless synchronised, and a decision that differs between them leaves one waiting for the others.
"""

import pytorch_lightning as pl
import torch
from torch import Tensor, nn


def tensors(model: nn.Module) -> dict[str, Tensor]:
    """The model's parameters and buffers by name: its weights, without the metrics' running counts that
    ``state_dict`` also holds."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def fingerprint(model: nn.Module) -> Tensor:
    """The sum and the sum of magnitudes of each weight tensor: two numbers each, which any update changes."""
    with torch.no_grad():
        values = [value.detach() for value in tensors(model).values() if value.is_floating_point()]
        # float32, not float64: Apple's MPS devices have no float64.
        sums = [torch.stack([value.sum(dtype=torch.float32), value.abs().sum(dtype=torch.float32)]) for value in values]
    return torch.stack(sums).cpu() if sums else torch.zeros(0)


def unchanged(trainer: "pl.Trainer", since: Tensor | None) -> bool:
    """Whether the model's weights are still those fingerprinted as ``since`` (a collective call under DDP)."""
    same = since is not None and torch.equal(since, fingerprint(trainer.lightning_module))
    return bool(trainer.strategy.broadcast(same))


def holds_weights(trainer: "pl.Trainer", state_dict: dict[str, Tensor]) -> bool:
    """Whether a checkpoint's ``state_dict`` holds exactly the model's weights (a collective call under DDP)."""
    # Buffers that are not persistent are in no checkpoint.
    same = all(
        torch.equal(value.detach().cpu(), state_dict[name])
        for name, value in tensors(trainer.lightning_module).items()
        if name in state_dict
    )
    return bool(trainer.strategy.broadcast(same))
