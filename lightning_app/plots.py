"""The write-up's figures: loss and accuracy curves, predictions on test images, confusion matrix, worst mistakes."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display, never blocks

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from torch import Tensor

STAGES = {"train": "training", "val": "validation", "test": "test"}
STAGE_STYLE = {"train": "-o", "val": "--s", "test": "-^"}


def curves_figure(history: list[dict[str, float]], name: str) -> Figure:
    """Training, validation and test curves of one metric (``loss`` or ``acc``) against the epoch.

    ``history`` holds one dict per epoch: its ``epoch`` and the figures measured in it (``val/acc`` and so on).
    """
    figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
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


def predictions_figure(images: Tensor, labels: Tensor, probabilities: Tensor, title: str, columns: int = 8) -> Figure:
    """A grid of digits, each titled with the prediction, its probability and the true label; mistakes in red."""
    rows = max(1, -(-len(images) // columns))
    figure, grid = plt.subplots(
        rows, columns, figsize=(1.45 * columns, 1.65 * rows + 0.4), layout="constrained", squeeze=False
    )
    confidence, predicted = probabilities.max(dim=1)
    for index, axes in enumerate(grid.flat):
        axes.axis("off")
        if index >= len(images):
            continue
        axes.imshow(images[index].cpu(), cmap="gray_r")
        wrong = predicted[index] != labels[index]
        axes.set_title(
            f"{predicted[index]} ({confidence[index]:.0%})\ntrue {labels[index]}" + (" ✗" if wrong else ""),
            fontsize=9,
            color="crimson" if wrong else "black",
        )
    figure.suptitle(title)
    return figure


def confusion_figure(confusion: Tensor) -> Figure:
    """The test confusion matrix, counts per cell, true label down and prediction across."""
    figure, axes = plt.subplots(figsize=(6.4, 5.6), layout="constrained")
    shown = axes.imshow(confusion.cpu(), cmap="Blues", norm=matplotlib.colors.LogNorm(vmin=1, clip=True))
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


def save(figure: Figure, path: Path) -> Path:
    """Write a figure as PNG and release its memory."""
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
