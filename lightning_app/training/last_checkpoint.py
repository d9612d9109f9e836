"""``last.ckpt``, kept current every epoch (or every N steps) and at the end of training."""

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

    _saved_weights: torch.Tensor | None = None

    def _save_checkpoint(self, trainer: "pl.Trainer", filepath: str) -> None:
        # ModelCheckpoint saves only through this protected method, and Lightning has no public hook that follows
        # a callback's own save: what the save held is recorded here.
        super()._save_checkpoint(trainer, filepath)
        self._saved_weights = fingerprint(trainer.lightning_module)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """Save the final state unless the last scheduled save already holds it (or this is a dry run).

        The last save may be of this step and still not hold it (``lightning_app.weights`` says why); checkpoint
        callbacks run after the others.
        """
        super().on_train_end(trainer, pl_module)
        if trainer.fast_dev_run or not self.dirpath:
            return
        same = unchanged(trainer, self._saved_weights)  # every process asks: it is a collective call
        if self._last_global_step_saved == trainer.global_step and same:
            return
        trainer.save_checkpoint(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}", weights_only=False)
        self._last_global_step_saved, self._saved_weights = trainer.global_step, fingerprint(pl_module)
