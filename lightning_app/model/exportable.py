"""The trained model as one plain ``nn.Module`` to export: raw 0-1 images in, ten probabilities out."""

from functools import partial

import torch
from torch import Tensor, nn

from lightning_app.model.classifier import MNIST_MEAN, MNIST_STD, MNISTClassifier
from lightning_app.model.ensemble import Ensemble
from lightning_app.model.shift_averaging import shift_averaged


class Exportable(nn.Module):
    """The network(s) of a trained model with MNIST's normalisation in front and softmax behind.

    Other runtimes (onnxruntime, TorchScript) then need no code of this project: they pass float images of shape
    ``(N, 1, 28, 28)`` in [0, 1], bright ink on black, and get ``(N, 10)`` probabilities.

    Args:
        model: A trained classifier, or an ensemble (its members' probabilities are averaged, as it does).
    """

    def __init__(self, model: MNISTClassifier | Ensemble) -> None:
        super().__init__()
        members = model.members if isinstance(model, Ensemble) else [model]
        self.networks = nn.ModuleList([member.network for member in members]).float().eval()
        # Each member's test-time shifts, as it answers in evaluate, predict and serve.
        self.shifts = [member.hparams.get("test_time_shifts", 0) for member in members]

    def forward(self, images: Tensor) -> Tensor:
        """Probabilities (N, 10) for images (N, 1, 28, 28) in [0, 1]."""
        answers = [
            shift_averaged(partial(normalised_logits, network), images, reach).softmax(dim=1)
            for network, reach in zip(self.networks, self.shifts, strict=True)
        ]
        return torch.stack(answers).mean(dim=0)


def normalised_logits(network: nn.Module, images: Tensor) -> Tensor:
    """The network's logits for images in [0, 1], normalised as in training."""
    return network((images - MNIST_MEAN) / MNIST_STD)
