"""The LightningModule that trains ``MNISTCNN``: loss, Adam, and torchmetrics accuracy per stage."""

from typing import Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_app.data import normalize
from lightning_app.errors import UserError, require
from lightning_app.model import NUM_CLASSES, MNISTCNN


class MNISTClassifier(pl.LightningModule):
    """Classify MNIST digits with the write-up's CNN, trained by Adam on cross-entropy.

    Args:
        conv1_channels: Output channels of the first convolution.
        conv2_channels: Output channels of the second convolution.
        kernel_size: Kernel size of both convolutions.
        hidden_units: Width of the first fully connected layer.
        dropout: Dropout rate before the fully connected layers, in [0, 1).
        batch_norm: Batch normalisation in the network (not in the write-up).
        lr: Adam's learning rate (the peak rate with the one-cycle schedule).
        lr_schedule: "constant" (the write-up), "exponential" (times ``lr_decay`` after every epoch),
            or "onecycle" (warm up to ``lr`` then anneal, over the whole run, per step).
        lr_decay: Factor per epoch of the exponential schedule.
        channels_last: Run the convolutions in channels-last memory layout (faster on CPUs with oneDNN).
        compile: Compile the network with ``torch.compile`` when training starts.
    """

    def __init__(
        self,
        conv1_channels: int = 32,
        conv2_channels: int = 64,
        kernel_size: int = 5,
        hidden_units: int = 256,
        dropout: float = 0.5,
        batch_norm: bool = False,
        lr: float = 1e-3,
        lr_schedule: Literal["constant", "exponential", "onecycle"] = "exponential",
        lr_decay: float = 0.8,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        require(lr > 0, f"--model.lr must be greater than 0 (got {lr}); the write-up uses 0.001.")
        require(0 <= dropout < 1, f"--model.dropout must be in [0, 1) (got {dropout}); the write-up uses 0.5.")
        require(0 < lr_decay <= 1, f"--model.lr_decay must be in (0, 1] (got {lr_decay}).")
        for name, value in (("conv1_channels", conv1_channels), ("conv2_channels", conv2_channels),
                            ("hidden_units", hidden_units)):
            require(value >= 1, f"--model.{name} must be at least 1 (got {value}).")
        self.save_hyperparameters()
        self.model = MNISTCNN(conv1_channels, conv2_channels, kernel_size, hidden_units, dropout, batch_norm)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self._compiled = False
        # Updated on every training step, so without the per-update checks (input validation, a NaN scan):
        # a NaN loss then shows as a NaN epoch loss instead of a warning.
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.train_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro", validate_args=False)
        # Evaluation figures as torchmetrics objects, so that under DDP they are summed over all ranks' shards
        # (a logged per-rank mean would be averaged without weights).
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        # Read by `evaluate` after a test pass; not logged, as TensorBoard scalars hold one number each.
        self.test_class_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average=None)

    def configure_model(self) -> None:
        # Lightning calls this before fit and again before test; compile once, in place, so that the
        # state_dict keys (and checkpoints) stay those of the plain network.
        if self.hparams.compile and not self._compiled:
            self.model.compile()
            self._compiled = True

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images.contiguous(memory_format=self.memory_format))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        # Each self.log call costs about 0.7 ms of Lightning bookkeeping, 5% of a CPU step here: accumulate the
        # epoch figures in torchmetrics objects and log the step loss only on the steps the logger writes.
        self.train_loss.update(loss.detach(), weight=len(labels))
        self.train_acc.update(logits.detach(), labels)
        if (self.global_step + 1) % max(self.trainer.log_every_n_steps, 1) == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, batch_size=len(labels))
        if self.trainer.is_last_batch:
            # Logged before validation runs, so that the epoch's figures are complete when callbacks read them;
            # Lightning computes and resets the two objects at the end of the epoch.
            self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
            self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        # Loader 0 is the validation split, loader 1 the test set evaluated after every epoch (see the data module).
        if dataloader_idx == 0:
            self._evaluate(batch, "val", self.val_loss, self.val_acc)
        else:
            self._evaluate(batch, "test", self.test_loss, self.test_acc)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            # TensorBoard's HParams tab compares runs by hp_metric: make it the validation accuracy.
            # compute() has already gathered all ranks' counts; sync_dist only silences Lightning's reminder.
            self.log("hp_metric", self.val_acc.compute(), sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self.test_class_acc.reset()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        # The per-epoch test curve comes from the validation loop; a later test pass (of the best checkpoint,
        # or by `evaluate`) is reported, not added to that curve as a second point at the same step.
        logits = self._evaluate(batch, "test", self.test_loss, self.test_acc, logger=False)
        self.test_class_acc(logits, batch[1])

    @torch.inference_mode()
    def probabilities(self, images: Tensor, batch_size: int = 1000) -> Tensor:
        """Class probabilities for uint8 images (N, 28, 28), computed on the model's device in batches."""
        self.eval()
        chunks = [self(normalize(chunk.to(self.device))).softmax(dim=1).cpu() for chunk in images.split(batch_size)]
        return torch.cat(chunks)

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(images).softmax(dim=1)

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str, loss: MeanMetric, accuracy: MulticlassAccuracy,
                  logger: bool = True) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss.update(F.cross_entropy(logits, labels), weight=len(labels))
        accuracy.update(logits, labels)
        options = dict(on_step=False, on_epoch=True, add_dataloader_idx=False, logger=logger)
        self.log(f"{stage}/loss", loss, **options)
        self.log(f"{stage}/acc", accuracy, **options)
        return logits

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["world_size"] = self.trainer.world_size

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("world_size", 1)
        if self._trainer is None or saved == self.trainer.world_size or "loops" not in checkpoint:
            return
        # Another number of processes splits an epoch into another number of steps, so Lightning would take an
        # epoch-end checkpoint for a mid-epoch one. Mark the saved epoch as finished and start the next afresh.
        loop = checkpoint["loops"]["fit_loop"]
        batches = loop["epoch_loop.batch_progress"]
        if not batches["is_last_batch"]:
            raise UserError(
                f"This checkpoint was saved in the middle of an epoch by {saved} process(es); it can only be "
                f"continued by {saved}. Resume with --trainer.devices/--trainer.num_nodes giving {saved} processes, "
                f"or from a checkpoint saved at the end of an epoch (the default last.ckpt)."
            )
        batches["current"] = dict.fromkeys(batches["current"], 0)
        batches["is_last_batch"] = False
        for counts in (loop["epoch_progress"]["current"], loop["epoch_progress"]["total"]):
            counts["completed"] = counts["processed"]

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        if self.hparams.lr_schedule == "exponential":
            scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.hparams.lr_decay)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        if self.hparams.lr_schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.hparams.lr, total_steps=int(self.trainer.estimated_stepping_batches)
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        return optimizer
