"""Stop unpromising trials of a hyperparameter search early, by their validation figure (Optuna's pruners).

Optuna's own Lightning callback (optuna-integration) supports the ``lightning`` package only; this one is for
``pytorch_lightning``.
"""

from typing import Any

import optuna
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


class OptunaPruning(Callback):
    """Report ``monitor`` to an Optuna trial after every validation, and stop the trial when its pruner says so.

    Args:
        trial: The Optuna trial this run is.
        monitor: The logged validation figure to report (what the study optimises, or its progress).
    """

    def __init__(self, trial: optuna.Trial, monitor: str = "val/acc") -> None:
        self.trial = trial
        self.monitor = monitor

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, step=trainer.global_step)
        prune = self.trial.should_prune()
        if trainer.world_size > 1:  # all processes stop together, or none does
            prune = trainer.strategy.reduce_boolean_decision(prune, all=False)
        if prune:
            raise optuna.TrialPruned(f"{self.monitor} {value:.4f} at step {trainer.global_step}")

    def state_dict(self) -> dict[str, Any]:
        return {"trial": self.trial.number}
