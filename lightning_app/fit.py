"""Train the MNIST CNN: ``python -m lightning_app.fit [--config FILE] [--trainer.max_epochs N] [--ckpt_path last]``."""

import signal
import sys
from typing import Any

from pytorch_lightning.utilities.exceptions import SIGTERMException

from lightning_app.cli.lightning_cli import MNISTCLI
from lightning_app.errors import UserError, report_user_errors
from lightning_app.reports.figures_callback import RunFigures
from lightning_app.training.console import say
from lightning_app.training.final_and_best import test_final_and_best
from lightning_app.training.graceful_stop import TrainingInterrupted, tell_how_to_continue


@report_user_errors
def main(args: list[str] | None = None) -> dict[str, Any]:
    """Train; report the final model's and the best checkpoint's (by ``--checkpoint.monitor``) test figures.

    Returns the final model's and the best checkpoint's test accuracy and loss, and the best checkpoint's path;
    nothing in barebones mode or after an interruption, which test nothing.
    """
    return train(MNISTCLI(args=args))


def train(cli: MNISTCLI) -> dict[str, Any]:
    """``main``'s work with a command line already built (``ensemble`` builds its members' with their loggers)."""
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    figures = next((callback for callback in trainer.callbacks if isinstance(callback, RunFigures)), None)
    if figures is not None:
        figures.wait_later = True  # drawn while the best checkpoint is tested
    try:
        with cli.data_errors_as_flags():
            trainer.fit(model, datamodule=datamodule, ckpt_path=cli.ckpt_path, weights_only=True)
        if trainer.interrupted:
            return {}
        if trainer.barebones:
            say(trainer, "Barebones mode logs no figures and keeps no checkpoint: nothing was tested or saved.")
            return {}
        final_tested = figures is not None and figures.has_final_predictions
        result = test_final_and_best(trainer, datamodule, cli.best_checkpoint, final_tested)
    except FloatingPointError as err:
        raise UserError(
            f"Stopped: {err} Pure 16-bit weights (--trainer.precision {trainer.precision}) cannot hold small "
            f"updates, and too high a learning rate diverges: use --trainer.precision bf16-mixed, 16-mixed or 32-true, "
            f"or a lower --model.optimizer.lr. The checkpoints of the epochs before are kept."
        ) from None
    except TrainingInterrupted as stop:
        tell_how_to_continue(trainer, stop)
        raise SystemExit(128 + stop.signum) from None
    except SIGTERMException:  # Lightning's own stop, for a SIGTERM before training starts or after it ends
        print("Stopped by SIGTERM outside training: nothing was saved that had not been.", file=sys.stderr, flush=True)
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        if figures is not None:
            figures.wait()  # the figures are drawn while the best checkpoint is tested; none outlives the command
    if figures is not None and figures.drawn and trainer.is_global_zero:
        say(trainer, f"Figures: {figures.drawn[0].parent}/*.png")
    return result


if __name__ == "__main__":
    main()
