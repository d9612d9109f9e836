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
# The figures drawn by each of the processes that draw a run's figures side by side, of about equal work.
SHARES = (("test_predictions", "confident_mistakes", "loss_curves"), ("confusion_matrix", "accuracy_curves"))
GRID_SIZE = 32
PAYLOAD = ".figures.npz"  # what a background drawing process reads, in the run folder


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
    """A grid of digits, each titled with the prediction, its probability and the true label; mistakes in red.

    The digits are one image with the labels written over it: a grid of 32 subplots takes several times as long to
    lay out and save, and the command waits for its figures.
    """
    side, gap, label = 28, 8, 26  # in the digits' pixels: a digit, the space between two, the two lines above one
    rows = max(1, -(-len(images) // columns))
    sheet = np.zeros((rows * (side + label), columns * (side + gap)), dtype=np.uint8)
    for index, image in enumerate(images):
        top, left = (index // columns) * (side + label) + label, (index % columns) * (side + gap) + gap // 2
        sheet[top : top + side, left : left + side] = image
    width = 1.45 * columns
    figure = pyplot().figure(figsize=(width, width * sheet.shape[0] / sheet.shape[1] + 0.5))
    axes = figure.add_axes((0, 0, 1, 1 - 0.5 / figure.get_figheight()))
    axes.imshow(sheet, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    axes.axis("off")
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    for index in range(len(images)):
        wrong = predicted[index] != labels[index]
        axes.text(
            (index % columns) * (side + gap) + (side + gap) / 2,
            (index // columns) * (side + label) + label - 2,
            f"{predicted[index]} ({confidence[index]:.0%})\ntrue {labels[index]}" + (" ✗" if wrong else ""),
            fontsize=9,
            color="crimson" if wrong else "black",
            ha="center",
            va="bottom",
        )
    figure.suptitle(title, y=1 - 0.08 / figure.get_figheight(), va="top")
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
    folder: Path,
    history: list[dict[str, float]],
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    names: tuple[str, ...] = FIGURES,
) -> dict[str, Any]:
    """Draw the figures ``names`` (all five by default) and write them as PNGs into ``folder``; return them by name."""
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:GRID_SIZE]
    makers = {
        "loss_curves": lambda: curves_figure(history, "loss"),
        "accuracy_curves": lambda: curves_figure(history, "acc"),
        "test_predictions": lambda: predictions_figure(
            images[:GRID_SIZE],
            labels[:GRID_SIZE],
            probabilities[:GRID_SIZE],
            "Test images: prediction (probability), true label",
        ),
        "confusion_matrix": lambda: confusion_figure(confusion_matrix(labels, predicted)),
        "confident_mistakes": lambda: predictions_figure(
            images[worst],
            labels[worst],
            probabilities[worst],
            f"The {len(worst)} most confidently wrong of {len(wrong)} mistakes on {len(labels)} test images",
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    figures = {name: makers[name]() for name in names}
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=100)
    return figures


def write_tensorboard(log_dir: Path, step: int, paths: list[Path]) -> None:
    """Add the figures' PNG files to TensorBoard's Images tab of the run logged in ``log_dir``."""
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as writer:
        for path in paths:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            # Under a name that sorts after the stages (test, train, val): TensorBoard opens on the curves.
            writer.add_image(f"write-up/{path.stem}", pixels, global_step=step, dataformats="HWC")


def close(figures: dict[str, Any]) -> None:
    """Release the figures' memory."""
    for figure in figures.values():
        pyplot().close(figure)


def main(args: list[str] | None = None) -> None:
    """Draw a run's figures from the payload a training process left in its folder, in a process of their own while
    the training process finishes its other work.

    The payload's path is the argument (all five figures), or else the first line of the standard input, with the
    names of the figures to draw after it: the training process starts this one (several, each with a share of the
    figures) before its predictions exist, so that matplotlib is imported by then, and ends it by closing the input
    without a line when there is nothing to draw.
    """
    given = args if args is not None else sys.argv[1:]
    pyplot()
    line = given[0] if given else sys.stdin.readline().strip()
    if not line:
        return
    payload, _, names = line.partition(" ")
    with np.load(payload) as data:
        history = json.loads(str(data["history"]))
        figures = draw(
            Path(payload).parent,
            history,
            data["images"],
            data["labels"],
            data["probabilities"],
            tuple(names.split(",")) if names else FIGURES,
        )
    close(figures)


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
