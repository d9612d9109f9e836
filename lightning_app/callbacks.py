"""Callbacks the training run adds to Lightning's: a one-line epoch summary and resumable random state."""

import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, TQDMProgressBar
from pytorch_lightning.utilities import rank_zero_only


class EpochSummary(Callback):
    """Print one line per epoch with the training, validation and test loss and accuracy, and the training time."""

    def __init__(self) -> None:
        self._start = 0.0
        self._train_start = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._train_start = time.perf_counter()

    @rank_zero_only
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds = time.perf_counter() - self._train_start
        self._print(trainer, f"trained to epoch {trainer.current_epoch}, step {trainer.global_step} in {seconds:.1f} s")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        for stage in ("train", "val", "test"):
            if f"{stage}/loss" in metrics and f"{stage}/acc" in metrics:
                loss, acc = float(metrics[f"{stage}/loss"]), float(metrics[f"{stage}/acc"])
                parts.append(f"{stage} loss {loss:.4f} acc {acc:.2%}")
        parts.append(f"{time.perf_counter() - self._start:.1f} s")
        self._print(trainer, " | ".join(parts))

    @staticmethod
    def _print(trainer: pl.Trainer, line: str) -> None:
        bar = trainer.progress_bar_callback
        # tqdm.write keeps the line above the progress bar instead of tearing it.
        (bar.print if isinstance(bar, TQDMProgressBar) else print)(line)


class RNGState(Callback):
    """Save the random number generators' state in checkpoints and restore it on resume.

    Dropout draws from the global generators, so without this a resumed run would continue with different
    random masks than an uninterrupted one, and the two would not end with the same weights.
    """

    def state_dict(self) -> dict[str, Any]:
        # Tensors only, so that checkpoints stay loadable with torch.load(weights_only=True).
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict.get("cuda")
        if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
