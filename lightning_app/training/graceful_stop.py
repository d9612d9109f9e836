"""Stop on Ctrl-C or SIGTERM after the current step, with a checkpoint of the exact position."""

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from lightning_app.training import run_folder


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint of the exact position."""

    def __init__(self, signum: int, checkpoint: Path | None, step: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}")
        self.signum = signum
        self.checkpoint = checkpoint
        self.step = step


class GracefulStop(Callback):
    """On SIGINT (Ctrl-C) or SIGTERM, finish the current step, save a resumable checkpoint, and stop.

    Under DDP the processes agree after every step whether any of them was signalled (as Lightning does before
    acting on a signal), so that all save at the same step and none waits for the others. A second Ctrl-C exits at
    once: checkpoints are written atomically, so nothing is left half-written.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.saved: Path | None = None
        self.stopping = False
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.received, self.saved, self.stopping = None, None, False
        if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            if signum == signal.SIGINT:
                os._exit(128 + signum)
            return
        self.received = signum
        print(
            f"\n{signal.Signals(signum).name} received: stopping after this step and saving a checkpoint "
            f"(press Ctrl-C again to quit at once).",
            file=sys.stderr,
            flush=True,
        )

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Only where an optimizer step has just been taken: gradients accumulated over part of a step are in no
        # checkpoint. Saved here, where Lightning's own mid-epoch checkpoints are saved, so that the resumed loops
        # continue with the next batch and the same logging steps.
        if self.stopping:
            return
        if (batch_idx + 1) % trainer.accumulate_grad_batches and not trainer.is_last_batch:
            return
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            self.received = self.received or signal.SIGTERM
            self.stopping = True
            if trainer.checkpoint_callbacks:  # with --trainer.enable_checkpointing false, nothing is saved
                self.saved = run_folder.checkpoint_dir(trainer) / f"{run_folder.LAST}{run_folder.EXTENSION}"
                trainer.save_checkpoint(self.saved, weights_only=False)

    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", *args: Any) -> None:
        # Stopped only now, after Lightning has written the finished step's logs, so that the resumed run's curves
        # have no gap.
        if self.stopping:
            raise TrainingInterrupted(self.received, self.saved, trainer.global_step)

    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        # Lightning skips the teardown hooks when fit ends in an exception (a pruned trial, a stop, an error):
        # the handlers of a finished fit must not catch the signals meant for what runs next.
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def tell_how_to_continue(trainer: "pl.Trainer", stop: TrainingInterrupted) -> None:
    """Say where a run stopped on a signal was saved, and the command that continues it exactly."""
    if not trainer.is_global_zero:
        return
    if stop.checkpoint is None:
        print(f"Training {stop}; checkpointing is off, so nothing was saved.", file=sys.stderr, flush=True)
        return
    print(
        f"Training {stop} and saved {stop.checkpoint}. To continue exactly where it stopped, run:\n"
        f"  python -m lightning_app.fit --ckpt_path {stop.checkpoint}",
        file=sys.stderr,
        flush=True,
    )
