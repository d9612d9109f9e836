"""One trial of a search: fit with the sampled settings into its own run folder and return its validation figure."""

import argparse
import signal
from pathlib import Path
from typing import Any

from lightning_app.errors import UserError
from lightning_app.search.space import Parameter
from lightning_app.training.graceful_stop import GracefulStop, TrainingInterrupted


class Objective:
    """One trial: fit with the sampled settings into its own run folder; return its validation figure."""

    def __init__(self, options: argparse.Namespace, fit_args: list[str], parameters: list[Parameter], folder: Path):
        self.options = options
        self.fit_args = fit_args
        self.parameters = parameters
        self.folder = folder
        self.stopped: int | None = None  # the signal that ends the search, once one has arrived
        self.study: Any = None

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM outside training: finish what is being done, then end the search (only flags are set here)."""
        self.stopped = signum
        if self.study is not None:
            self.study.stop()

    def __call__(self, trial: Any) -> float:
        import optuna
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        from lightning_app.cli.lightning_cli import MNISTCLI
        from lightning_app.search.pruning import OptunaPruning
        from lightning_app.training.console import EpochSummary
        from lightning_app.training.tensorboard_logger import HParamsTensorBoardLogger

        # The sampled settings are fit options, as the search space names them; the test set is never read.
        settings = [parameter.flag(parameter.suggest(trial)) for parameter in self.parameters]
        quiet_trial = {
            "logger": HParamsTensorBoardLogger(save_dir=str(self.folder), name="", version=f"trial_{trial.number}"),
            "enable_progress_bar": False,
            "enable_model_summary": False,
        }
        pruning = [OptunaPruning(trial, "val/acc")] if self.options.objective == "val_acc" else []
        try:
            cli = MNISTCLI(
                args=[*self.fit_args, *settings, "--data.test_every_epoch=false"],
                callbacks=pruning,
                trainer=quiet_trial,
            )
        except UserError as err:  # a combination fit refuses (a kernel too large, say): this trial fails alone
            raise optuna.TrialPruned(f"fit refused these settings: {err}") from None
        if self.stopped is not None:  # the signal came while this trial was being set up
            raise TrainingInterrupted(self.stopped, None, 0)
        try:
            with cli.data_errors_as_flags():
                cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        except SIGTERMException:  # Lightning's own stop, for a SIGTERM in its sanity check or a validation
            raise TrainingInterrupted(signal.SIGTERM, None, 0) from None
        finally:
            # A signal that fit received but did not stop on (it came during the final validation, or the trial was
            # pruned first) still ends the search once this trial is recorded.
            graceful = next(c for c in cli.trainer.callbacks if isinstance(c, GracefulStop))
            if graceful.received is not None:
                self.stopped = graceful.received
                trial.study.stop()
        if "val/acc" not in cli.trainer.callback_metrics:
            raise optuna.TrialPruned("no validation ran (check --trainer.limit_val_batches)")
        accuracy = float(cli.trainer.callback_metrics["val/acc"])
        seconds = next(c for c in cli.trainer.callbacks if isinstance(c, EpochSummary)).training_seconds
        trial.set_user_attr("val_acc", accuracy)
        trial.set_user_attr("training_seconds", seconds)
        if self.options.objective == "val_acc":
            return accuracy
        # Optuna's constrained optimisation: a trial short of the target is infeasible, so it never ranks above one
        # that reached it however fast it was, and the sampler learns where the target is reached.
        trial.set_constraint("target", self.options.target - accuracy)
        return seconds
