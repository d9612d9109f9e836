"""What a person sees on the console: the model summary, one line per epoch, and nothing to ignore."""

import logging
import time
import warnings
from typing import Any

import pytorch_lightning as pl
import torchmetrics
import torchmetrics.classification
from pytorch_lightning.callbacks import Callback, ModelSummary, TQDMProgressBar
from pytorch_lightning.utilities import rank_zero_only
from torchmetrics import Metric
from tqdm import tqdm

STAGES = ("train", "val", "test")


def say(trainer: "pl.Trainer", line: str) -> None:
    """Print a line above the progress bars (tqdm.write, which redraws them below it), or plainly without them."""
    if isinstance(trainer.progress_bar_callback, TQDMProgressBar):
        tqdm.write(line)
    else:
        print(line, flush=True)


class EpochSummary(Callback):
    """Print one line per epoch with the training, validation and test loss and accuracy, and the epoch's time."""

    def __init__(self) -> None:
        self._start = 0.0
        self._train_start = 0.0
        self.training_seconds = 0.0
        self._evaluated = False

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._train_start = self._start = time.perf_counter()  # a run resumed mid-epoch starts no epoch
        self._evaluated = False

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.training_seconds = time.perf_counter() - self._train_start
        if trainer.is_global_zero:
            say(
                trainer,
                f"trained to epoch {trainer.current_epoch}, step {trainer.global_step} in "
                f"{self.training_seconds:.1f} s",
            )

    def on_train_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._start = time.perf_counter()
        self._evaluated = False

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._evaluated = True

    @rank_zero_only
    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        metrics = trainer.callback_metrics
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs not in (None, -1) else ""
        parts = [f"epoch {trainer.current_epoch + 1}{epochs}"]
        # The evaluation's figures stay among the callback metrics until the next evaluation: only an epoch that
        # evaluated shows them (not one that check_val_every_n_epoch skips).
        for stage in STAGES if self._evaluated else STAGES[:1]:
            if f"{stage}/loss" in metrics and f"{stage}/acc" in metrics:
                loss, acc = float(metrics[f"{stage}/loss"]), float(metrics[f"{stage}/acc"])
                parts.append(f"{stage} loss {loss:.4f} acc {acc:.2%}")
        parts.append(f"{time.perf_counter() - self._start:.1f} s")
        say(trainer, " | ".join(parts))


class EpochBar(TQDMProgressBar):
    """Lightning's progress bar, counting epochs from 1 as the epoch line does, without the logger's run number."""

    def on_train_epoch_start(self, trainer: "pl.Trainer", *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        total = f"/{trainer.max_epochs}" if trainer.max_epochs not in (None, -1) else ""
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}{total}")

    def get_metrics(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> dict[str, Any]:
        return {key: value for key, value in super().get_metrics(trainer, pl_module).items() if key != "v_num"}


class NetworkSummary(ModelSummary):
    """Lightning's model summary without the metric objects (rows of zero parameters that a reader must skip)."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], *args: Any, **kwargs: Any) -> None:
        types = dict(summary_data).get("Type", [])
        keep = [row for row, name in enumerate(types) if not is_metric(name)]
        rows = [(column, [values[row] for row in keep]) for column, values in summary_data if column != " "]
        ModelSummary.summarize([(" ", [str(row) for row in range(len(keep))]), *rows], *args, **kwargs)


def is_metric(class_name: str) -> bool:
    """Whether a class name, as the model summary shows it, is one of torchmetrics' metrics."""
    found = getattr(torchmetrics, class_name, None) or getattr(torchmetrics.classification, class_name, None)
    return isinstance(found, type) and issubclass(found, Metric)


# Lightning's tip for a cloud logging service printed by every Trainer, and notes on its own internal steps.
_NOISE = (
    "💡 Tip:",
    "Trainer already configured with model summary callbacks",
    "Loading `train_dataloader` to estimate number of stepping batches",  # its own step, for OneCycleLR
    "`Trainer.fit` stopped",  # the epoch line and "trained to epoch N" say it, and it would land on the bar's line
)


def _not_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_NOISE)


def quiet_lightning() -> None:
    """Silence, precisely, what Lightning prints that says nothing about this run."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if _not_noise not in logger.filters:
        logger.addFilter(_not_noise)
    # A deprecated torch API called by Lightning's own code (Lightning #21326).
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Lightning's all_gather calls a deprecated torch API; the results are right.
    warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.all_gather is deprecated")
    # The entry points' main(args) hand LightningCLI their arguments on purpose (tests, tune, ensemble).
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended to run from within Python")
    # A resumed run continues in its own run folder, whose checkpoints are those it continues.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # The module's configure_model only compiles the network; it shards nothing that weight averaging would miss.
    warnings.filterwarnings("ignore", message=r"You're using the WeightAveraging callback with a model that overrides")
    # Barebones mode turns logging off on purpose, and says so when it starts.
    warnings.filterwarnings("ignore", message=r"You are trying to `self\.log\(\)` but `Trainer\(barebones=True\)`")
    # The summary sizes the parameters as float32, which they are under mixed precision.
    warnings.filterwarnings("ignore", message=r"Precision (bf)?16-mixed is not supported by the model summary")
