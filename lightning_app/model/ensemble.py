"""The ensemble as a LightningModule: several trained classifiers answer together by averaging their probabilities."""

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_app.model.classifier import MNISTClassifier
from lightning_app.model.network import NUM_CLASSES


class Ensemble(pl.LightningModule):
    """Average the class probabilities of several trained ``MNISTClassifier``s (raw images in, as theirs).

    Args:
        members: The trained classifiers.
    """

    def __init__(self, members: list[MNISTClassifier]) -> None:
        super().__init__()
        if not members:
            raise ValueError("members must hold at least one classifier.")
        self.members = nn.ModuleList(members)
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_class_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average=None)

    def forward(self, images: Tensor) -> Tensor:
        """The members' mean class probabilities (N, 10)."""
        return torch.stack([member(images).float().softmax(dim=1) for member in self.members]).mean(dim=0)

    @torch.inference_mode()
    def probabilities(self, images: Tensor, batch_size: int = 1000) -> Tensor:
        """Mean class probabilities for raw images, computed on the ensemble's device in batches, in eval mode."""
        self.eval()
        return torch.cat([self(chunk.to(self.device)).cpu() for chunk in images.split(batch_size)])

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        probabilities = self(images)
        loss, accuracy = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_acc")
        loss.update(F.nll_loss(probabilities.clamp_min(1e-12).log(), labels, reduction="none"))
        accuracy.update(probabilities, labels)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True)
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True)
        return probabilities

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "val")

    def on_test_epoch_start(self) -> None:
        self.test_class_acc.reset()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        probabilities = self._evaluate(batch, "test")
        self.test_class_acc.update(probabilities, batch[1])
        return probabilities

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self(batch[0] if isinstance(batch, (tuple, list)) else batch)


def choose_members(probabilities: list[Tensor], labels: Tensor, most: int = 5) -> list[int]:
    """Greedy forward selection (after Caruana et al. 2004, without replacement) of the members to average.

    Starts from the member most accurate on ``labels`` and adds, one at a time, the member that makes the mean of
    the chosen members' ``probabilities`` most accurate (ties: the lower log loss), while that improves it and at
    most ``most`` are chosen; returns their indices in ascending order. Give it validation data only: what it
    chooses is judged there, so the chosen ensemble's validation figure flatters it.
    """

    def score(chosen: list[int]) -> tuple[float, float]:
        mean = torch.stack([probabilities[index] for index in chosen]).mean(dim=0)
        accuracy = (mean.argmax(dim=1) == labels).float().mean().item()
        return accuracy, -F.nll_loss(mean.clamp_min(1e-12).log(), labels).item()

    chosen: list[int] = []
    best = (-1.0, -float("inf"))
    while len(chosen) < min(most, len(probabilities)):
        # Ties go to the member listed first.
        candidates = [(score([*chosen, index]), -index) for index in range(len(probabilities)) if index not in chosen]
        figures, index = max(candidates)
        if figures <= best:
            break
        chosen.append(-index)
        best = figures
    return sorted(chosen)
