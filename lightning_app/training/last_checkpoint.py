"""``last.ckpt``, kept current every epoch (or every N steps) and at the end of training."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_app.training import run_folder
from lightning_app.training.weights import fingerprint, unchanged


class LastCheckpoint(ModelCheckpoint):
    """Keep ``last.ckpt`` current: every epoch (or every ``every_n_train_steps``), and at the end of training.

    A plain ModelCheckpoint with ``every_n_train_steps`` would leave the final steps out of ``last.ckpt`` when the
    run does not end on a multiple of N.
    """

    def __init__(self, filename: str = run_folder.LAST, enable_version_counter: bool = False, **kwargs: Any) -> None:
        super().__init__(
            filename=filename, monitor=None, save_top_k=1, enable_version_counter=enable_version_counter, **kwargs
        )

    saved_step: int | None = None  # the step and the weights that this callback's latest save held
    saved_weights: torch.Tensor | None = None
    _own_save = False

    # ModelCheckpoint saves from these hooks: a save made while one runs is this callback's own, and
    # on_save_checkpoint, which every save calls, records what it held.

    def on_train_batch_end(self, trainer: "pl.Trainer", *args: Any, **kwargs: Any) -> None:
        with self._saving():
            super().on_train_batch_end(trainer, *args, **kwargs)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        with self._saving():
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        with self._saving():
            super().on_validation_end(trainer, pl_module)

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        self._own_save = True
        try:
            yield
        finally:
            self._own_save = False

    def on_save_checkpoint(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", checkpoint: dict) -> None:
        if self._own_save:
            self.saved_step, self.saved_weights = trainer.global_step, fingerprint(pl_module)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """Save the final state unless the last scheduled save already holds it (or this is a dry run).

        The last save may be of this step and still not hold it (``lightning_app.training.weights`` says why);
        checkpoint callbacks run after the others.
        """
        super().on_train_end(trainer, pl_module)
        if trainer.fast_dev_run or not self.dirpath:
            return
        same = unchanged(trainer, self.saved_weights)  # every process asks: it is a collective call
        if self.saved_step == trainer.global_step and same:
            return
        trainer.save_checkpoint(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}", weights_only=False)
        self.saved_step, self.saved_weights = trainer.global_step, fingerprint(pl_module)
