"""The LightningModule: trains an injected network on raw digit images with an injected optimizer and schedule."""

import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities.parsing import AttributeDict
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_app.model.network import MNISTCNN, NUM_CLASSES
from lightning_app.model.shift_averaging import MOST_TEST_TIME_SHIFTS, shift_averaged

# The same shapes as LightningCLI's OptimizerCallable and LRSchedulerCallable, declared here so that the module does
# not import the command line: a config names the class by class_path and the module calls it.
OptimizerFactory = Callable[[Iterable], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]

# The training set's pixel statistics, as used by torchvision's and PyTorch's MNIST examples.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def normalize(images: Tensor) -> Tensor:
    """Raw digits (uint8 0-255, or floats in [0, 1]; (N, 28, 28) or (N, 1, 28, 28)) as the network's float input.

    The floats are of the default dtype, which Lightning's true-precision settings (16-true, 64-true) set while the
    model runs.
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    scale = 255 if images.dtype == torch.uint8 else 1
    return images.to(torch.get_default_dtype()).div(scale).sub(MNIST_MEAN).div(MNIST_STD)


def check_optimizer(factory: OptimizerFactory) -> None:
    """Build the optimizer once on a dummy parameter, so that a bad setting fails now, not when training starts."""
    lr = (getattr(factory, "keywords", None) or {}).get("lr")
    if isinstance(lr, (int, float)) and not lr > 0:
        raise ValueError(f"optimizer.lr must be greater than 0 (got {lr}); the write-up uses Adam at 0.001.")
    try:
        factory([nn.Parameter(torch.zeros(1))])
    except (TypeError, ValueError) as err:
        raise ValueError(f"optimizer cannot be built with its settings: {err}") from None


def check_network(network: nn.Module) -> None:
    """Run two blank digits through the network, so that one that does not fit MNIST fails now, saying why."""
    name = type(network).__name__
    training = network.training
    network.eval()
    try:
        with torch.no_grad():
            logits = network(normalize(torch.zeros(2, 28, 28, dtype=torch.uint8)))
    except Exception as err:  # whatever a user's network raises, its message says what did not fit
        reason = (str(err).strip().splitlines() or [""])[0].rstrip(".")
        raise ValueError(
            f"network {name} cannot take MNIST images, normalised tensors of shape (N, 1, 28, 28): "
            f"{type(err).__name__}: {reason}."
        ) from None
    finally:
        network.train(training)
    shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
    if shape != (2, NUM_CLASSES):
        raise ValueError(
            f"network {name} must return {NUM_CLASSES} logits per image, a tensor of shape (N, {NUM_CLASSES}); for "
            f"2 images it returned {shape}."
        )


def sized_by_the_run(factory: Callable) -> bool:
    """Whether a schedule takes its length in steps from the run: sized in steps, and not given ``total_steps``."""
    return takes_total_steps(factory) and not (getattr(factory, "keywords", None) or {}).get("total_steps")


def takes_total_steps(factory: Callable) -> bool:
    """Whether a learning-rate schedule is sized in optimizer steps (``total_steps``, as OneCycleLR is)."""
    if "total_steps" in (getattr(factory, "keywords", None) or {}):
        return True
    try:
        return "total_steps" in inspect.signature(getattr(factory, "func", factory)).parameters
    except (TypeError, ValueError):  # builtins and some callables have no signature
        return False


class MNISTClassifier(pl.LightningModule):
    """Classify handwritten digits with any network: cross-entropy, an optimizer, a schedule, accuracy per stage.

    The module takes raw images (uint8 in 0-255 or floats in [0, 1], of shape (N, 28, 28) or (N, 1, 28, 28)) and
    normalises them itself, so that a checkpoint is all a script needs to classify digits.

    Args:
        network: The network, an ``nn.Module`` from normalised (N, 1, 28, 28) images to 10 logits; by default the
            write-up's CNN (``lightning_app.model.network.MNISTCNN``) with its default settings.
        optimizer: The optimizer, called with the parameters; by default Adam at 0.001, as in the write-up.
        scheduler: The learning-rate schedule, called with the optimizer; none by default. Schedules sized in steps
            (``total_steps``, as OneCycleLR) get the run's length from the Trainer and step after every optimizer
            step; the others step after every epoch.
        label_smoothing: Label smoothing of the training loss (0 in the write-up); evaluation uses plain cross-entropy.
        channels_last: Run the convolutions in channels-last memory layout (faster on CPUs with oneDNN and on GPUs).
        compile: Compile the network with ``torch.compile`` when training starts.
        test_time_shifts: After training (test, validation by ``evaluate``, prediction, serving, export), also
            classify copies of each image moved by up to this many pixels each way and average the probabilities of
            all ``(2k + 1) ** 2`` of them; 0 (the default) classifies the image alone. The evaluation after each
            epoch of fit classifies the images alone.
    """

    def __init__(
        self,
        network: nn.Module | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        label_smoothing: float = 0.0,
        channels_last: bool = True,
        compile: bool = False,
        test_time_shifts: int = 0,
    ) -> None:
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1) (got {label_smoothing}).")
        if not 0 <= test_time_shifts <= MOST_TEST_TIME_SHIFTS:
            raise ValueError(
                f"test_time_shifts must be from 0 (none) to {MOST_TEST_TIME_SHIFTS} pixels (got {test_time_shifts}); "
                f"configs/stacked.yaml uses 1."
            )
        if optimizer is not None:
            check_optimizer(optimizer)
        with warnings.catch_warnings():
            # Lightning warns when a hyperparameter is a module: a network given in Python rather than by a config.
            warnings.filterwarnings("ignore", message="Attribute 'network' is an instance of `nn.Module`")
            self.save_hyperparameters()
        if isinstance(self.hparams.get("network"), nn.Module):
            # Its weights are in the checkpoint, but the object is no hyperparameter: load_from_checkpoint then
            # takes it again as network=... (a network chosen by class_path in a config is saved as that config).
            del self.hparams["network"]
        self.network = network if network is not None else MNISTCNN()
        check_network(self.network)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.network.to(memory_format=self.memory_format)
        self._compiled = False
        # Per-image losses go into the means, so that an uneven last batch weighs by its size. The training metrics
        # run on every step without per-update checks (input validation, a NaN scan that syncs a GPU).
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.train_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro", validate_args=False)
        # Saved in checkpoints, so that an epoch resumed mid-way reports the figures of all its batches.
        self.train_loss.persistent(True)
        self.train_acc.persistent(True)
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        # Read by `evaluate` after a test pass; not logged, as a logger's scalars hold one number each.
        self.test_class_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average=None)
        self._train_figures_logged = False
        # Lets Lightning's model summary show input and output sizes and count the operations.
        self.example_input_array = torch.zeros(2, 28, 28, dtype=torch.uint8)  # two: batch norm needs more than one

    @property
    def hparams_initial(self) -> AttributeDict:
        """The hyperparameters sent to the loggers, without LightningCLI's private entries (``_instantiator``)."""
        initial = super().hparams_initial.items()
        return AttributeDict({k: v for k, v in initial if not k.startswith("_") and not isinstance(v, nn.Module)})

    def configure_model(self) -> None:
        # Lightning calls this before fit and again before test; compile once, in place, so that the state_dict
        # keys (and checkpoints) stay those of the plain network.
        if self.hparams.compile and not self._compiled:
            self.network.compile()
            self._compiled = True

    @property
    def answers_otherwise_after_fit(self) -> bool:
        """Whether the model answers otherwise after fit than in each epoch's evaluation (with its test-time shifts),
        so that the final model's test figures need a test pass of their own."""
        return self.hparams.test_time_shifts > 0

    def forward(self, images: Tensor) -> Tensor:
        """Class logits (N, 10) for raw images: in eval mode, of the shifted copies together if the model has them."""
        return shift_averaged(self._network_logits, images, 0 if self.training else self.hparams.test_time_shifts)

    def _network_logits(self, images: Tensor) -> Tensor:
        return self.network(normalize(images).contiguous(memory_format=self.memory_format))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self(images)
        losses = F.cross_entropy(logits, labels, reduction="none", label_smoothing=self.hparams.label_smoothing)
        loss = losses.mean()
        # A self.log call per step costs more than the metric updates: the epoch figures accumulate in
        # torchmetrics objects, and the step loss is logged only on the steps the logger writes.
        self.train_loss.update(losses.detach())
        self.train_acc.update(logits.detach(), labels)
        if (self.global_step + 1) % max(self.trainer.log_every_n_steps, 1) == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, batch_size=len(labels))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Logged before the epoch's validation and before the callbacks' epoch end, so that the epoch's figures are
        # complete when they read them; also in an epoch cut short by max_steps, or by a callback that has just
        # asked to stop (the callbacks' hooks run before this one).
        trainer = self.trainer
        ends = trainer.is_last_batch or trainer.should_stop or 0 <= trainer.max_steps <= self.global_step
        if ends and not self._train_figures_logged:
            self._log_train_figures()

    def on_train_epoch_start(self) -> None:
        self._train_figures_logged = False

    def on_train_epoch_end(self) -> None:
        # An epoch ended otherwise (a signal, a limit met between batches): log its figures here, late as it is.
        if not self._train_figures_logged and self.train_acc.update_count:
            self._log_train_figures()
        if self.train_loss.update_count and not torch.isfinite(loss := self.train_loss.compute()):
            # Nothing more can be learnt once the weights hold NaN or infinity: stop instead of training on.
            raise FloatingPointError(
                f"the training loss is {float(loss)} after epoch {self.current_epoch + 1} (step {self.global_step}): "
                f"training diverged."
            )

    def _log_train_figures(self) -> None:
        # Lightning computes and resets the metric objects at the end of the epoch.
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        self._train_figures_logged = True

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        # Loader 0 is the validation split; a second loader, when the data module gives one during fit, is the test
        # set evaluated after every epoch as the write-up does.
        if dataloader_idx == 0:
            return self._evaluate(batch, "val", self.val_loss, self.val_acc)
        return self._evaluate(batch, "test", self.test_loss, self.test_acc)

    def on_test_epoch_start(self) -> None:
        self.test_class_acc.reset()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        logits = self._evaluate(batch, "test", self.test_loss, self.test_acc)
        self.test_class_acc.update(logits, batch[1])
        return logits

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(images).softmax(dim=1)

    @torch.inference_mode()
    def probabilities(self, images: Tensor, batch_size: int = 1000) -> Tensor:
        """Class probabilities (N, 10) for raw images, computed on the module's device in batches, in eval mode."""
        self.eval()
        chunks = [self(chunk.to(self.device)).float().softmax(dim=1).cpu() for chunk in images.split(batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, NUM_CLASSES)

    def _evaluate(
        self, batch: tuple[Tensor, Tensor], stage: str, loss: MeanMetric, accuracy: MulticlassAccuracy
    ) -> Tensor:
        images, labels = batch
        # Each epoch's evaluation during fit classifies the images alone: test-time shifts would multiply its cost.
        logits = self._network_logits(images) if self.trainer.state.fn == "fit" else self(images)
        loss.update(F.cross_entropy(logits, labels, reduction="none"))
        accuracy.update(logits, labels)
        options = dict(on_step=False, on_epoch=True, add_dataloader_idx=False)
        self.log(f"{stage}/loss", loss, **options)
        self.log(f"{stage}/acc", accuracy, **options)
        return logits

    def configure_optimizers(self) -> Any:
        parameters = self.parameters()
        optimizer = self.optimizer(parameters) if self.optimizer else torch.optim.Adam(parameters, lr=1e-3)
        if self.scheduler is None:
            return optimizer
        # Named so that Lightning's LearningRateMonitor logs the rate as train/lr.
        if not takes_total_steps(self.scheduler):
            schedule = {"scheduler": self.scheduler(optimizer), "interval": "epoch", "name": "train/lr"}
            return {"optimizer": optimizer, "lr_scheduler": schedule}
        length = (
            {"total_steps": int(self.trainer.estimated_stepping_batches)} if sized_by_the_run(self.scheduler) else {}
        )
        schedule = {"scheduler": self.scheduler(optimizer, **length), "interval": "step", "name": "train/lr"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}
