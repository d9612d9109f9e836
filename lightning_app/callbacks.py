"""Callbacks the training run adds to Lightning's: epoch summary line, last.ckpt, random state, graceful stop."""

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
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


class LastCheckpoint(ModelCheckpoint):
    """Keep ``last.ckpt`` current: every epoch (or every ``every_n_train_steps``), and at the end of training.

    A plain ModelCheckpoint with ``every_n_train_steps`` would leave the final steps out of last.ckpt when the
    run does not end on a multiple of N.
    """

    def __init__(self, filename: str = "last", enable_version_counter: bool = False, **kwargs: Any) -> None:
        super().__init__(filename=filename, monitor=None, save_top_k=1, enable_version_counter=enable_version_counter,
                         **kwargs)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save the final state unless the last scheduled save already holds it (or this is a dry run)."""
        super().on_train_end(trainer, pl_module)
        if trainer.fast_dev_run:
            return
        if self.dirpath and self._last_global_step_saved != trainer.global_step:
            trainer.save_checkpoint(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}")


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


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint of the exact position."""

    def __init__(self, signum: int, checkpoint: str, step: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}")
        self.signum = signum
        self.checkpoint = checkpoint
        self.step = step


class GracefulStop(Callback):
    """On SIGINT (Ctrl-C) or SIGTERM, finish the current step, save a resumable checkpoint, and stop.

    A second Ctrl-C exits at once: checkpoints are written atomically, so nothing can be left half-written.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._saved: Path | None = None
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.received, self._saved = None, None
        if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            if signum == signal.SIGINT:
                os._exit(128 + signum)
            return
        self.received = signum
        print(f"\n{signal.Signals(signum).name} received: stopping after this step and saving a checkpoint "
              f"(press Ctrl-C again to quit at once).", file=sys.stderr, flush=True)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        # Saved here, where Lightning's own mid-epoch checkpoints are saved, so that the resumed loops continue
        # with the next batch and the same logging steps.
        if self.received is not None and self._saved is None:
            self._saved = self.checkpoint_path(trainer)
            trainer.save_checkpoint(self._saved)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        # Stopped only now, after Lightning has written the finished step's TensorBoard point, so that the
        # resumed run's curve has no gap.
        if self._saved is not None:
            raise TrainingInterrupted(self.received, str(self._saved), trainer.global_step)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    @staticmethod
    def checkpoint_path(trainer: pl.Trainer) -> Path:
        """Where the run's last.ckpt lives: the folder of its checkpoint callbacks, else the run folder."""
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                return Path(callback.dirpath) / "last.ckpt"
        return Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints" / "last.ckpt"
