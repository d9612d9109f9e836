"""The model: the network (plain PyTorch), the LightningModule that trains it, ensembles, and loading checkpoints."""

from lightning_app.model.classifier import MNISTClassifier
from lightning_app.model.ensemble import Ensemble
from lightning_app.model.network import MNISTCNN

__all__ = ["MNISTCNN", "Ensemble", "MNISTClassifier"]
