"""The run's figures as a callback: curves per epoch, test predictions, confusion matrix and confident mistakes.

The figures are PNG files in the run folder, whatever the logger, and images in TensorBoard's Images tab when
TensorBoard logs the run. They show the final model: drawn when fit ends if its last evaluation covered the test set
with the final weights, else after the test pass that follows. The per-epoch figures are kept in the callback's
state, so they travel in every checkpoint: a resumed run draws its whole history, and ``report`` redraws a run's
figures from its checkpoint alone.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor

from lightning_app import runs
from lightning_app.network import NUM_CLASSES

FIGURES = ("loss_curves", "accuracy_curves", "test_predictions", "confusion_matrix", "confident_mistakes")
GRID_SIZE = 32
TEST_LOADER = 1  # the data module's second validation loader during fit is the test set
METRICS = tuple(f"{stage}/{name}" for stage in ("train", "val", "test") for name in ("loss", "acc"))


def draw(
    folder: Path, history: list[dict[str, float]], images: Tensor, labels: Tensor, probabilities: Tensor
) -> dict[str, Any]:
    """Draw the five figures and write them as PNGs into ``folder``; return the matplotlib figures by name."""
    # Imported here: matplotlib and the figure code load only when figures are drawn.
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    from lightning_app import plots

    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted != labels).nonzero().squeeze(1)
    worst = wrong[confidence[wrong].argsort(descending=True)][:GRID_SIZE]
    figures = {
        "loss_curves": plots.curves_figure(history, "loss"),
        "accuracy_curves": plots.curves_figure(history, "acc"),
        "test_predictions": plots.predictions_figure(
            images[:GRID_SIZE],
            labels[:GRID_SIZE],
            probabilities[:GRID_SIZE],
            "Test images: prediction (probability), true label",
        ),
        "confusion_matrix": plots.confusion_figure(multiclass_confusion_matrix(predicted, labels, NUM_CLASSES)),
        "confident_mistakes": plots.predictions_figure(
            images[worst],
            labels[worst],
            probabilities[worst],
            f"The {len(worst)} most confidently wrong of {len(wrong)} mistakes on {len(labels)} test images",
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=100)
    return figures


class RunFigures(Callback):
    """Record each epoch's figures and the test-set predictions, and draw the run's figures for the final model."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.drawn: list[Path] = []
        self._evaluated: dict[str, float] = {}
        self._batches: list[tuple[Tensor, Tensor, Tensor]] = []
        self._predictions: tuple[Tensor, Tensor, Tensor] | None = None
        self._predictions_step = -1

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    # ---- per-epoch figures ----

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
            self._batches.append((images.cpu(), labels.cpu(), outputs.detach().float().softmax(dim=1).cpu()))

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
        self._predictions_step = trainer.global_step

    @property
    def has_final_predictions(self) -> bool:
        """Whether the last evaluation of the test set used the final weights (so no test pass is needed to draw)."""
        return self._predictions is not None and self._predictions_step == self._final_step

    # ---- drawing ----

    def on_validation_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking:
            self._finish_collecting(trainer)

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._final_step = trainer.global_step
        if self.has_final_predictions:
            self._draw(trainer)

    def on_test_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._finish_collecting(trainer)

    def on_test_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self.drawn and self._predictions is not None:
            self._draw(trainer)

    _final_step = -2

    def _draw(self, trainer: "pl.Trainer") -> None:
        if trainer.fast_dev_run:  # a dry run writes nothing, as Lightning's loggers and checkpoints do
            return
        folder = runs.run_dir(trainer)  # collective under DDP
        if not trainer.is_global_zero:
            return
        figures = draw(folder, self.history, *self._predictions)
        self.drawn = [folder / f"{name}.png" for name in figures]
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                for name, figure in figures.items():
                    logger.experiment.add_figure(f"report/{name}", figure, global_step=trainer.global_step)
                logger.experiment.flush()
        import matplotlib.pyplot as plt

        for figure in figures.values():
            plt.close(figure)


def gather_unequal(trainer: "pl.Trainer", part: Tensor) -> Tensor:
    """Concatenate every process's tensor (their first dimensions may differ) in rank order."""
    sizes = trainer.strategy.all_gather(torch.tensor(len(part), device=trainer.strategy.root_device)).tolist()
    padded = torch.zeros((max(sizes), *part.shape[1:]), dtype=part.dtype)
    padded[: len(part)] = part
    gathered = trainer.strategy.all_gather(padded.to(trainer.strategy.root_device)).cpu()
    return torch.cat([gathered[rank, :size] for rank, size in enumerate(sizes)])


def show(paths: list[Path]) -> str:
    """Open the figures in the system's image viewer without waiting for it; return what was done, in a sentence.

    Without a display (a server, a container, an SSH session without X forwarding) nothing is opened and the
    sentence says where the files are.
    """
    folder = paths[0].parent if paths else Path(".")
    if sys.platform == "darwin":
        viewer = ["open"]
    elif sys.platform == "win32":
        viewer = None
    elif not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return f"No display here ($DISPLAY is not set), so the figures are not shown; they are in {folder}/."
    elif shutil.which("xdg-open"):
        viewer = ["xdg-open"]
    else:
        return f"No image viewer found (xdg-open is not installed), so the figures are not shown; see {folder}/."
    for path in paths:
        if viewer is None:
            os.startfile(path)  # noqa: S606 - Windows opens the file with its default viewer
        else:
            # A session of its own, so that the viewer outlives this command and Ctrl-C here does not close it.
            subprocess.Popen(
                [*viewer, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
    return f"Opened the {len(paths)} figures in the image viewer."
