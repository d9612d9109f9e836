"""Redraw a run's figures from its folder: ``python -m lightning_app.report RUN_DIR``."""

import argparse
from pathlib import Path

import torch
import yaml

from lightning_app.data.idx_files import MNISTFilesError, load_split
from lightning_app.errors import UserError, report_user_errors
from lightning_app.model.loading import classifier_from, read_checkpoint
from lightning_app.reports.drawing import close, draw, show, write_tensorboard
from lightning_app.reports.figures_callback import RunFigures
from lightning_app.training import run_folder


def run_data_dir(run_dir: Path) -> str:
    """The data folder a run was trained on, from the config.yaml that fit saved in it."""
    config = run_dir / run_folder.CONFIG
    if not config.is_file():
        raise UserError(
            f"{run_dir} has no {run_folder.CONFIG}, so the data folder it was trained on is unknown. Give it with "
            f"--data_dir DIR."
        )
    return (yaml.safe_load(config.read_text()).get("data") or {}).get("data_dir", "data")


def history_of(checkpoint: dict) -> list[dict[str, float]]:
    """The per-epoch figures that the run's RunFigures callback kept in a checkpoint."""
    return checkpoint.get("callbacks", {}).get(RunFigures.__qualname__, {}).get("history", [])


@report_user_errors
def main(args: list[str] | None = None) -> list[Path]:
    """Redraw the figures of an earlier run from its final checkpoint (its per-epoch figures and weights)."""
    parser = argparse.ArgumentParser(prog="python -m lightning_app.report", description=main.__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder, such as logs/mnist/version_0")
    parser.add_argument("--ckpt_path", type=Path, help="checkpoint to draw with (default: the run's last.ckpt)")
    parser.add_argument("--data_dir", help="folder holding MNIST/raw/ (default: the one the run was trained on)")
    parser.add_argument("--show", action="store_true", help="open the figures in the image viewer (with a display)")
    options = parser.parse_args(args)
    if not options.run_dir.is_dir():
        raise UserError(f"{options.run_dir} is not a folder. Pass a run folder such as logs/mnist/version_0.")
    last = options.run_dir / run_folder.CHECKPOINTS / f"{run_folder.LAST}{run_folder.EXTENSION}"
    ckpt_path = options.ckpt_path or (last if last.is_file() else run_folder.best_or_last(options.run_dir))
    checkpoint = read_checkpoint(ckpt_path)  # once: its weights and the run's per-epoch figures
    model = classifier_from(checkpoint, "cuda" if torch.cuda.is_available() else "cpu", str(ckpt_path))
    try:
        images, labels = load_split(options.data_dir or run_data_dir(options.run_dir), train=False)
    except MNISTFilesError as err:
        raise UserError(f"{err} Give the folder holding MNIST/raw/ with --data_dir DIR.") from None
    probabilities = model.probabilities(images)
    figures = draw(options.run_dir, history_of(checkpoint), images.numpy(), labels.numpy(), probabilities.numpy())
    close(figures)
    paths = [options.run_dir / f"{name}.png" for name in figures]
    if any(options.run_dir.glob("events.out.tfevents.*")):  # a run that TensorBoard logged: its Images tab too
        write_tensorboard(options.run_dir, int(checkpoint.get("global_step", 0)), paths)
    for path in paths:
        print(path)
    if options.show:
        print(show(paths))
    return paths


if __name__ == "__main__":
    main()
