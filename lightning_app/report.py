"""Write a run's figures as PNG files and to TensorBoard: ``python -m lightning_app.report RUN_DIR``."""

import argparse
from pathlib import Path

import torch
import yaml
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.functional.classification import multiclass_confusion_matrix

from lightning_app.checkpoints import best_or_last, load_classifier
from lightning_app.data import load_split
from lightning_app.errors import UserError, report_user_errors
from lightning_app.model import NUM_CLASSES
from lightning_app.module import MNISTClassifier
from lightning_app.plots import confusion_figure, curves_figure, predictions_figure, read_epoch_metrics, save

GRID_SIZE = 32


def write_report(
    run_dir: str | Path, model: MNISTClassifier, images: Tensor, labels: Tensor, writer: SummaryWriter, step: int
) -> list[Path]:
    """Draw the five figures of a run from its event files and the model's test predictions; return the PNG paths."""
    run_dir = Path(run_dir)
    metrics = read_epoch_metrics(run_dir)
    probabilities = model.probabilities(images)
    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted != labels).nonzero().squeeze(1)
    worst = wrong[confidence[wrong].argsort(descending=True)][:GRID_SIZE]
    figures = {
        "loss_curves": curves_figure(metrics, "loss"),
        "accuracy_curves": curves_figure(metrics, "acc"),
        "test_predictions": predictions_figure(
            images[:GRID_SIZE], labels[:GRID_SIZE], probabilities[:GRID_SIZE],
            "Test images: prediction (probability), true label",
        ),
        "confusion_matrix": confusion_figure(multiclass_confusion_matrix(predicted, labels, NUM_CLASSES)),
        "confident_mistakes": predictions_figure(
            images[worst], labels[worst], probabilities[worst],
            f"The {len(worst)} most confidently wrong of {len(wrong)} mistakes on {len(labels)} test images",
        ),
    }
    paths = []
    for name, figure in figures.items():
        writer.add_figure(f"report/{name}", figure, global_step=step, close=False)
        paths.append(save(figure, run_dir / f"{name}.png"))
    writer.flush()
    return paths


def run_data_dir(run_dir: Path) -> str:
    """The data folder a run was trained on, from the config.yaml that fit saved in it."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise UserError(
            f"{run_dir} has no config.yaml, so it is not a run folder of `python -m lightning_app.fit` (those are "
            f"logs/<name>/version_N). Pass such a folder, or give the data folder with --data_dir."
        )
    return yaml.safe_load(config.read_text())["data"]["data_dir"]


@report_user_errors
def main(args: list[str] | None = None) -> list[Path]:
    """Redraw the figures of an earlier run from its event files and its best checkpoint."""
    parser = argparse.ArgumentParser(prog="python -m lightning_app.report", description=main.__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder, such as logs/mnist/version_0")
    parser.add_argument("--ckpt_path", type=Path, help="checkpoint to draw predictions with (default: the run's best)")
    parser.add_argument("--data_dir", help="folder holding MNIST/raw/ (default: the one the run was trained on)")
    options = parser.parse_args(args)
    if not options.run_dir.is_dir():
        raise UserError(f"{options.run_dir} is not a folder. Pass a run folder such as logs/mnist/version_0.")
    ckpt_path = options.ckpt_path or best_or_last(options.run_dir / "checkpoints")
    model, step = load_classifier(ckpt_path, "cuda" if torch.cuda.is_available() else "cpu")
    images, labels = load_split(options.data_dir or run_data_dir(options.run_dir), train=False)
    with SummaryWriter(str(options.run_dir)) as writer:
        paths = write_report(options.run_dir, model, images, labels, writer, step)
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
