"""The LightningModule that trains ``MNISTCNN``: loss, Adam, and torchmetrics accuracy per stage."""

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from lightning_app.model import NUM_CLASSES, MNISTCNN


class MNISTClassifier(pl.LightningModule):
    """Classify MNIST digits with the write-up's CNN, trained by Adam on cross-entropy.

    Args:
        conv1_channels: Output channels of the first convolution.
        conv2_channels: Output channels of the second convolution.
        kernel_size: Kernel size of both convolutions.
        hidden_units: Width of the first fully connected layer.
        dropout: Dropout rate before the fully connected layers, in [0, 1).
        lr: Adam's learning rate.
    """

    def __init__(
        self,
        conv1_channels: int = 32,
        conv2_channels: int = 64,
        kernel_size: int = 5,
        hidden_units: int = 128,
        dropout: float = 0.5,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = MNISTCNN(conv1_channels, conv2_channels, kernel_size, hidden_units, dropout)
        self.train_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        # Read by `evaluate` after a test pass; not logged, as TensorBoard scalars hold one number each.
        self.test_class_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average=None)

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        self.train_acc(logits, labels)
        size = len(labels)
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, batch_size=size)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        # Loader 0 is the validation split, loader 1 the test set evaluated after every epoch (see the data module).
        if dataloader_idx == 0:
            self._evaluate(batch, "val", self.val_acc)
        else:
            self._evaluate(batch, "test", self.test_acc)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            # TensorBoard's HParams tab compares runs by hp_metric: make it the validation accuracy.
            self.log("hp_metric", self.val_acc.compute())

    def on_test_epoch_start(self) -> None:
        self.test_class_acc.reset()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        # The per-epoch test curve comes from the validation loop; a later test pass (of the best checkpoint,
        # or by `evaluate`) is reported, not added to that curve as a second point at the same step.
        logits = self._evaluate(batch, "test", self.test_acc, logger=False)
        self.test_class_acc(logits, batch[1])

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(images).softmax(dim=1)

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str, accuracy: MulticlassAccuracy, logger=True) -> Tensor:
        images, labels = batch
        logits = self(images)
        accuracy(logits, labels)
        options = dict(on_step=False, on_epoch=True, batch_size=len(labels), add_dataloader_idx=False, logger=logger)
        self.log(f"{stage}/loss", F.cross_entropy(logits, labels), **options)
        self.log(f"{stage}/acc", accuracy, **options)
        return logits

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
