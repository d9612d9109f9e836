"""The run's figures as a callback: curves per epoch, test predictions, confusion matrix and confident mistakes.

The figures are PNG files in the run folder, whatever the logger, and images in TensorBoard's Images tab when
TensorBoard logs the run. They show the final model: drawn when fit ends if its last evaluation covered the test set
with the final weights and answered as the final model does, else after the test pass that follows. The per-epoch
figures are kept in the callback's state, so they travel in every checkpoint: a resumed run draws its whole history,
and ``report`` redraws a run's figures from its checkpoint alone.
"""

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor

from lightning_app.reports.drawing import FIGURES, PAYLOAD, SHARES
from lightning_app.training import run_folder
from lightning_app.training.weights import fingerprint, unchanged

TEST_LOADER = 1  # the data module's second validation loader during fit is the test set
METRICS = tuple(f"{stage}/{name}" for stage in ("train", "val", "test") for name in ("loss", "acc"))


class RunFigures(Callback):
    """Record each epoch's figures and the test-set predictions, and draw the run's figures for the final model.

    Args:
        background: Draw in two processes of their own, started with the last epoch's evaluation, while the command
            finishes its other work (the best checkpoint's test pass); the command waits for them before it returns.
        show: Open the figures in the image viewer once drawn (where there is a display).
    """

    def __init__(self, background: bool = True, show: bool = False) -> None:
        self.background = background
        self.show = show
        self.history: list[dict[str, float]] = []
        self.drawn: list[Path] = []
        self._evaluated: dict[str, float] = {}
        self._batches: list[tuple[Tensor, Tensor, Tensor]] = []
        self._predictions: tuple[Tensor, Tensor, Tensor] | None = None
        self._predictions_weights: Tensor | None = None
        self._final = False
        self._drawing: list[subprocess.Popen] = []
        self._drawing_log: Any = None
        self._payload: Path | None = None
        self.wait_later = False  # set by a command that calls wait() itself, after its other work
        self._tensorboard: tuple[Path, int] | None = None  # the TensorBoard run to add the figures to, and the step

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    # ---- per-epoch figures ----

    def on_validation_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # The drawing process starts with the last epoch's evaluation, so that it has imported matplotlib by the time
        # the final model's predictions come (the command then waits only for the drawing itself), and so that it
        # takes no time from the training steps. Only where the test set is evaluated during fit (the data module's
        # second validation loader): a search never draws.
        last = trainer.max_epochs not in (None, -1) and trainer.current_epoch == trainer.max_epochs - 1
        loaders = trainer.val_dataloaders
        evaluates_test = isinstance(loaders, (list, tuple)) and len(loaders) > TEST_LOADER
        fitting = trainer.state.fn == "fit" and not trainer.sanity_checking and not trainer.fast_dev_run
        if self.background and last and evaluates_test and fitting and trainer.is_global_zero:
            self._start_drawing()

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = trainer.callback_metrics
        self._evaluated = {key: float(metrics[key]) for key in METRICS[2:] if key in metrics}

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step}
        row.update({key: float(metrics[key]) for key in METRICS[:2] if key in metrics})
        row.update(self._evaluated)
        self._evaluated = {}
        # A resumed epoch is recorded again: keep its latest figures.
        self.history = [old for old in self.history if old["epoch"] != row["epoch"]] + [row]

    # ---- test-set predictions ----

    def _collect(self, outputs: Any, batch: Any) -> None:
        if isinstance(outputs, Tensor):
            images, labels = batch
            probabilities = outputs.detach().float().softmax(dim=1)
            self._batches.append((images.cpu(), labels.cpu(), probabilities.cpu()))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if dataloader_idx == TEST_LOADER and not trainer.sanity_checking:
            self._collect(outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(outputs, batch)

    def _finish_collecting(self, trainer: "pl.Trainer") -> None:
        if not self._batches:
            return
        parts = [torch.cat(column) for column in zip(*self._batches)]
        self._batches = []
        if trainer.world_size > 1:
            parts = [gather_unequal(trainer, part) for part in parts]
        self._predictions = tuple(parts)
        self._predictions_weights = fingerprint(trainer.lightning_module)

    @property
    def has_final_predictions(self) -> bool:
        """Whether the last evaluation of the test set used the final weights (so no test pass is needed to draw).

        Compared by the weights themselves, not the step (see ``lightning_app.training.weights``).
        """
        return self._final

    # ---- drawing ----

    def on_validation_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking:
            self._finish_collecting(trainer)

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # A model that answers otherwise after fit (test-time shifts) is drawn from the test pass that follows.
        alike = not getattr(pl_module, "answers_otherwise_after_fit", False)
        self._final = alike and unchanged(trainer, self._predictions_weights) and self._predictions is not None
        if self.has_final_predictions:
            self._draw(trainer)

    def on_test_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._finish_collecting(trainer)

    def on_test_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self.drawn and self._predictions is not None:
            self._draw(trainer)

    def _draw(self, trainer: "pl.Trainer") -> None:
        if trainer.fast_dev_run or trainer.barebones:  # runs that write nothing, as Lightning's loggers do then
            return
        folder = run_folder.run_dir(trainer)  # collective under DDP
        if not trainer.is_global_zero:
            return
        images, labels, probabilities = (part.numpy() for part in self._predictions)
        tensorboard = next((logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)), None)
        self._tensorboard = (Path(tensorboard.log_dir), trainer.global_step) if tensorboard is not None else None
        self.drawn = [folder / f"{name}.png" for name in FIGURES]
        if self.background:
            folder.mkdir(parents=True, exist_ok=True)
            payload = folder / PAYLOAD
            np.savez(
                payload,
                images=images,
                labels=labels,
                probabilities=probabilities,
                history=json.dumps(self.history),
            )
            self._start_drawing()
            for process, names in zip(self._drawing, SHARES):
                with contextlib.suppress(BrokenPipeError):  # one that died already: wait() says why
                    process.stdin.write(f"{payload} {','.join(names)}\n".encode())
                    process.stdin.close()
            self._payload = payload
            return
        from lightning_app.reports import drawing

        drawing.close(drawing.draw(folder, self.history, images, labels, probabilities))
        self._finish()

    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        # fit's own command waits later, after the best checkpoint's test pass; a script of a user's that calls
        # trainer.fit or trainer.test gets its figures when that returns.
        if not self.wait_later:
            self.wait()

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        self.wait()

    def _start_drawing(self) -> None:
        """Start the processes that draw the figures side by side once given the payload's path on their input."""
        if self._drawing:
            return
        # No handle on this command's terminal or pipes: what waits for this command's output does not wait for
        # the drawing. What they print, if anything goes wrong, is said when the command waits for them.
        self._drawing_log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by wait()
        self._drawing = [
            subprocess.Popen(
                [sys.executable, "-m", "lightning_app.reports.drawing"],
                stdin=subprocess.PIPE,
                stdout=self._drawing_log,
                stderr=subprocess.STDOUT,
            )
            for _ in SHARES
        ]

    def wait(self) -> None:
        """Wait for the figures being drawn in separate processes (ending them if nothing was given them to draw);
        say so if they could not be drawn."""
        drawing, self._drawing = self._drawing, []
        if not drawing:
            return
        for process in drawing:
            if not process.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.close()  # nothing to draw: it ends
        failed = any([process.wait() for process in drawing])
        self._drawing_log.seek(0)
        printed = self._drawing_log.read().decode(errors="replace").strip()
        self._drawing_log.close()
        payload, self._payload = self._payload, None
        if payload is None:
            return
        payload.unlink(missing_ok=True)
        if not failed:
            self._finish()
            return
        print(f"warning: the figures could not be drawn: {printed[-2000:]}", file=sys.stderr, flush=True)
        self.drawn = []

    def _finish(self) -> None:
        """Put the drawn figures into TensorBoard's Images tab (this process has torch's writer loaded already),
        and open them if asked."""
        from lightning_app.reports import drawing

        if self._tensorboard is not None:
            drawing.write_tensorboard(*self._tensorboard, self.drawn)
        if self.show:
            print(drawing.show(self.drawn), flush=True)


def gather_unequal(trainer: "pl.Trainer", part: Tensor) -> Tensor:
    """Concatenate every process's tensor (their first dimensions may differ) in rank order."""
    sizes = trainer.strategy.all_gather(torch.tensor(len(part), device=trainer.strategy.root_device)).tolist()
    padded = torch.zeros((max(sizes), *part.shape[1:]), dtype=part.dtype)
    padded[: len(part)] = part
    gathered = trainer.strategy.all_gather(padded.to(trainer.strategy.root_device)).cpu()
    return torch.cat([gathered[rank, :size] for rank, size in enumerate(sizes)])
