"""The trained model as one plain ``nn.Module`` to export: raw 0-1 images in, ten probabilities out."""

import torch
from torch import Tensor, nn

from lightning_app.model.classifier import MNIST_MEAN, MNIST_STD, MNISTClassifier
from lightning_app.model.ensemble import Ensemble


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

    def forward(self, images: Tensor) -> Tensor:
        """Probabilities (N, 10) for images (N, 1, 28, 28) in [0, 1]."""
        normalised = (images - MNIST_MEAN) / MNIST_STD
        return torch.stack([network(normalised).softmax(dim=1) for network in self.networks]).mean(dim=0)
