"""Where a run's files live, whatever the logger: its folder, its checkpoints, and how `last` and `best` are found.

A run folder is Lightning's own layout for checkpoints: ``<save_dir>/<name>/<version>`` of the first logger
(TensorBoard's and CSV's ``logs/mnist/version_N``), or the Trainer's ``default_root_dir`` without a logger. The run
keeps ``config.yaml``, the figures and ``checkpoints/`` (``last.ckpt`` and ``best-*.ckpt``) there.
"""

import argparse
import glob
import os
from pathlib import Path

import pytorch_lightning as pl

from lightning_app.errors import UserError

CHECKPOINTS = "checkpoints"
LAST = "last"  # file name stem of the run's latest state
BEST = "best-epoch={epoch:02d}-val_acc={val/acc:.4f}"  # file name pattern of the best checkpoint by validation
EXTENSION = ".ckpt"
CONFIG = "config.yaml"


def run_dir(trainer: "pl.Trainer") -> Path:
    """The run's folder; a collective call under DDP (rank zero decides, as Lightning does for checkpoints)."""
    if trainer.loggers:
        logger = trainer.loggers[0]
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        path = os.path.join(logger.save_dir or trainer.default_root_dir, str(logger.name or ""), version)
    else:
        path = trainer.default_root_dir
    return Path(trainer.strategy.broadcast(str(path)))


def checkpoint_dir(trainer: "pl.Trainer") -> Path:
    """Where the run's checkpoints go: the folder of its checkpoint callbacks, else ``<run folder>/checkpoints``."""
    for callback in trainer.checkpoint_callbacks:
        if getattr(callback, "dirpath", None):
            return Path(callback.dirpath)
    return run_dir(trainer) / CHECKPOINTS


def is_best(path: Path) -> bool:
    """Whether a file is a best-by-validation checkpoint of a run."""
    return path.name.startswith(BEST.split("{")[0]) and path.suffix == EXTENSION


def find(spec: str, root: Path) -> Path:
    """A ``--ckpt_path`` value as a file: ``last`` or ``best`` of the most recently written run under ``root``,
    or an existing path."""
    if spec in ("last", "best"):
        candidates = [p for p in root.glob(f"**/{CHECKPOINTS}/*{EXTENSION}") if p.is_file()]
        if spec == "last":
            candidates = [p for p in candidates if p.stem == LAST]
        else:
            # The best of the newest run: the run whose last or best checkpoint was written most recently.
            candidates = [p for p in candidates if is_best(p)]
        if candidates:
            return max(candidates, key=os.path.getmtime)
        pattern = f"{LAST}{EXTENSION}" if spec == "last" else "best-*.ckpt"
        raise UserError(
            f"--ckpt_path {spec} asks for the newest run's checkpoint, but no run folder under {root} holds a "
            f"{CHECKPOINTS}/{pattern}. Train first with `python -m lightning_app.fit`, check the logger's save_dir "
            f"and name, or pass the checkpoint file itself with --ckpt_path PATH."
        )
    path = Path(spec)
    if not path.is_file():
        raise UserError(
            f"--ckpt_path {spec}: no such checkpoint file. Pass an existing .ckpt file (runs keep them in "
            f"<run folder>/{CHECKPOINTS}/, by default logs/mnist/version_N/{CHECKPOINTS}/), or 'last' or 'best' for "
            f"the newest run's checkpoints."
        )
    return path


def find_all(spec: str, root: Path) -> list[Path]:
    """Like ``find``, and a pattern with ``*``, ``?`` or ``[`` matches every checkpoint file it names, in order."""
    if not any(char in spec for char in "*?["):
        return [find(spec, root)]
    matches = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    if not matches:
        raise UserError(f"--ckpt_path {spec}: the pattern matches no checkpoint file. Check the path and the quotes.")
    return matches


def run_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint file belongs to, or None when it lies outside a run's ``checkpoints/``."""
    folder = checkpoint.resolve().parent
    return folder.parent if folder.name == CHECKPOINTS else None


def best_or_last(run: Path) -> Path:
    """A run's best checkpoint by validation, or its last one if it has no best."""
    folder = run / CHECKPOINTS
    best = sorted((p for p in folder.glob(f"*{EXTENSION}") if is_best(p)), key=os.path.getmtime)
    last = folder / f"{LAST}{EXTENSION}"
    if best:
        return best[-1]
    if last.is_file():
        return last
    raise UserError(
        f"{run} holds no checkpoint ({CHECKPOINTS}/best-*.ckpt or {CHECKPOINTS}/{LAST}{EXTENSION}), so it is not "
        f"a run folder of `python -m lightning_app.fit`. Pass such a folder (logs/mnist/version_N by default)."
    )


def add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    """The options that name the checkpoints a command uses (``predict``, ``serve``, ``export``)."""
    parser.add_argument(
        "--ckpt_path",
        required=True,
        action="append",
        help="A .ckpt file, or 'last' / 'best' for the newest run's last or best checkpoint. Given more than once, "
        "or as a quoted pattern such as 'logs/ensemble/member_*/checkpoints/last.ckpt', the checkpoints answer "
        "together as an ensemble.",
    )
    parser.add_argument("--logs_dir", default="logs", help="The folder `fit` writes runs to, for 'last' and 'best'.")
    parser.add_argument("--name", default="mnist", help="The runs' name under --logs_dir, for 'last' and 'best'.")


def checkpoint_files(options: argparse.Namespace) -> list[Path]:
    """The checkpoint files that ``add_checkpoint_options``' options name, in order."""
    root = Path(options.logs_dir) / options.name
    return [path for spec in options.ckpt_path for path in find_all(spec, root)]
