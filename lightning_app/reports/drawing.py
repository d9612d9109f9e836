"""The write-up's figures: loss and accuracy curves, predictions on test images, confusion matrix, worst mistakes.

NumPy arrays in, PNG files out. Neither torch nor Lightning is imported, and matplotlib only when a figure is drawn,
so that ``python -m lightning_app.reports.drawing RUN_DIR/.figures.npz`` (how a finished training run draws its
figures in a process of their own) starts quickly.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

FIGURES = ("loss_curves", "accuracy_curves", "test_predictions", "confusion_matrix", "confident_mistakes")
GRID_SIZE = 32
PAYLOAD = ".figures.npz"  # what a background drawing process reads, in the run folder
LOG = ".figures.log"  # what it prints there; removed when all went well


def pyplot():
    """matplotlib's pyplot, drawing to files only (never needs a display, never blocks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


STAGES = {"train": "training", "val": "validation", "test": "test"}
STAGE_STYLE = {"train": "-o", "val": "--s", "test": "-^"}


def curves_figure(history: list[dict[str, float]], name: str) -> Any:
    """Training, validation and test curves of one metric (``loss`` or ``acc``) against the epoch.

    ``history`` holds one dict per epoch: its ``epoch`` and the figures measured in it (``val/acc`` and so on).
    """
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    figure, axes = pyplot().subplots(figsize=(6, 4), layout="constrained")
    for stage, label in STAGES.items():
        points = [(row["epoch"], row[f"{stage}/{name}"]) for row in history if f"{stage}/{name}" in row]
        if points:
            axes.plot(*zip(*points), STAGE_STYLE[stage], label=label, markersize=4)
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if name == "acc":
        axes.set_ylabel("accuracy")
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
        axes.set_title("Accuracy per epoch")
    else:
        axes.set_ylabel("cross-entropy loss")
        axes.set_title("Loss per epoch")
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend()
    return figure


def predictions_figure(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, title: str, columns: int = 8
) -> Any:
    """A grid of digits, each titled with the prediction, its probability and the true label; mistakes in red."""
    rows = max(1, -(-len(images) // columns))
    figure, grid = pyplot().subplots(
        rows, columns, figsize=(1.45 * columns, 1.65 * rows + 0.4), layout="constrained", squeeze=False
    )
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    for index, axes in enumerate(grid.flat):
        axes.axis("off")
        if index >= len(images):
            continue
        axes.imshow(images[index], cmap="gray_r")
        wrong = predicted[index] != labels[index]
        axes.set_title(
            f"{predicted[index]} ({confidence[index]:.0%})\ntrue {labels[index]}" + (" ✗" if wrong else ""),
            fontsize=9,
            color="crimson" if wrong else "black",
        )
    figure.suptitle(title)
    return figure


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """Counts of (true, predicted) pairs, true label down and prediction across."""
    return np.bincount(labels * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def confusion_figure(confusion: np.ndarray) -> Any:
    """The test confusion matrix, counts per cell, true label down and prediction across."""
    from matplotlib.colors import LogNorm

    figure, axes = pyplot().subplots(figsize=(6.4, 5.6), layout="constrained")
    shown = axes.imshow(confusion, cmap="Blues", norm=LogNorm(vmin=1, clip=True))
    for true in range(confusion.shape[0]):
        for predicted in range(confusion.shape[1]):
            count = int(confusion[true, predicted])
            if count:
                axes.text(
                    predicted,
                    true,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if true == predicted else "black",
                )
    axes.set_xticks(range(10))
    axes.set_yticks(range(10))
    axes.set_xlabel("predicted digit")
    axes.set_ylabel("true digit")
    accuracy = confusion.diagonal().sum() / confusion.sum()
    axes.set_title(f"Confusion matrix on the test set (accuracy {accuracy:.2%})")
    figure.colorbar(shown, ax=axes, label="images (log scale)")
    return figure


def draw(
    folder: Path, history: list[dict[str, float]], images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
) -> dict[str, Any]:
    """Draw the five figures and write them as PNGs into ``folder``; return the matplotlib figures by name."""
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:GRID_SIZE]
    figures = {
        "loss_curves": curves_figure(history, "loss"),
        "accuracy_curves": curves_figure(history, "acc"),
        "test_predictions": predictions_figure(
            images[:GRID_SIZE],
            labels[:GRID_SIZE],
            probabilities[:GRID_SIZE],
            "Test images: prediction (probability), true label",
        ),
        "confusion_matrix": confusion_figure(confusion_matrix(labels, predicted)),
        "confident_mistakes": predictions_figure(
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


def write_tensorboard(log_dir: Path, figures: dict[str, Any], step: int) -> None:
    """Add the figures to TensorBoard's Images tab of the run logged in ``log_dir``."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as writer:
        for name, figure in figures.items():
            # Under a name that sorts after the stages (test, train, val), so that TensorBoard opens on the curves.
            writer.add_figure(f"write-up/{name}", figure, global_step=step, close=False)


def close(figures: dict[str, Any]) -> None:
    """Release the figures' memory."""
    for figure in figures.values():
        pyplot().close(figure)


def main(args: list[str] | None = None) -> None:
    """Draw a run's figures from the payload a training process left in its folder, so that the training process can
    end without waiting for them; the payload is removed when the figures are written."""
    payload = Path((args if args is not None else sys.argv[1:])[0])
    with np.load(payload) as data:
        history = json.loads(str(data["history"]))
        figures = draw(payload.parent, history, data["images"], data["labels"], data["probabilities"])
        if str(data["tensorboard_dir"]):
            write_tensorboard(Path(str(data["tensorboard_dir"])), figures, int(data["step"]))
        if bool(data["show"]):
            show([payload.parent / f"{name}.png" for name in figures])
    close(figures)
    payload.unlink()
    (payload.parent / LOG).unlink(missing_ok=True)


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
            os.startfile(path)
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


if __name__ == "__main__":
    main()
