"""Where the configured loggers keep their runs, and which run a resumed checkpoint continues."""

import os
from pathlib import Path

from jsonargparse import Namespace

from lightning_app.errors import UserError
from lightning_app.training import run_folder


def logger_init_args(config: Namespace) -> list[Namespace]:
    """The ``init_args`` of each configured logger, in order (none with ``--trainer.logger false``)."""
    loggers = config.trainer.get("logger")
    loggers = loggers if isinstance(loggers, list) else [loggers]
    return [logger.init_args for logger in loggers if getattr(logger, "init_args", None) is not None]


def root_of(init_args: Namespace) -> Path | None:
    """Where a logger keeps its runs: ``save_dir/name``."""
    if not init_args.get("save_dir"):
        return None
    return (Path(init_args.save_dir) / str(init_args.get("name") or "")).resolve()


def runs_root(config: Namespace) -> Path:
    """The folder under which the first logger keeps its runs (the run folders' parent), or the Trainer's root."""
    loggers = logger_init_args(config)
    root = root_of(loggers[0]) if loggers else None
    return root or Path(config.trainer.get("default_root_dir") or ".").resolve()


def check_writable(root: Path) -> None:
    """Fail before training, not after the first epoch, when the run folder cannot be written."""
    existing = next(parent for parent in [root, *root.parents] if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"Cannot write runs under {root}: {existing} is not a writable folder. Change its permissions, or "
            f"write elsewhere with --trainer.logger.init_args.save_dir DIR."
        )


def continued_run(path: Path, config: Namespace) -> Path | None:
    """The run folder that resuming ``path`` continues: that of a run's ``last.ckpt`` under the configured root.

    Any other checkpoint starts a new run folder, so that no run gets two curves over the same steps.
    """
    run = run_folder.run_of(path)
    if path.stem == run_folder.LAST and run is not None and run.parent == runs_root(config):
        return run
    return None


def continue_in(run: Path, config: Namespace) -> None:
    """Point the loggers that write under the runs' root at an existing run folder."""
    for init_args in logger_init_args(config):
        if "version" in init_args and root_of(init_args) == run.parent:
            init_args.version = run.name
