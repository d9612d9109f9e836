"""What a person sees on the console: one summary line per epoch and the training time."""

import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, TQDMProgressBar
from pytorch_lightning.utilities import rank_zero_only

STAGES = ("train", "val", "test")


def say(trainer: "pl.Trainer", line: str) -> None:
    """Print a line above the progress bar (tqdm.write), or plainly without one."""
    bar = trainer.progress_bar_callback
    (bar.print if isinstance(bar, TQDMProgressBar) else print)(line)


class EpochSummary(Callback):
    """Print one line per epoch with the training, validation and test loss and accuracy, and the epoch's time."""

    def __init__(self) -> None:
        self._start = 0.0
        self._train_start = 0.0
        self.training_seconds = 0.0

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._train_start = self._start = time.perf_counter()  # a run resumed mid-epoch starts no epoch

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

    @rank_zero_only
    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        metrics = trainer.callback_metrics
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs not in (None, -1) else ""
        parts = [f"epoch {trainer.current_epoch + 1}{epochs}"]
        for stage in STAGES:
            if f"{stage}/loss" in metrics and f"{stage}/acc" in metrics:
                loss, acc = float(metrics[f"{stage}/loss"]), float(metrics[f"{stage}/acc"])
                parts.append(f"{stage} loss {loss:.4f} acc {acc:.2%}")
        parts.append(f"{time.perf_counter() - self._start:.1f} s")
        say(trainer, " | ".join(parts))
