"""Train the MNIST CNN: ``python -m lightning_app.fit [--config FILE] [--trainer.max_epochs N] [--ckpt_path last]``."""

import sys

import torch
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser

from lightning_app.cli.lightning_cli import MNISTCLI
from lightning_app.errors import UserError, report_user_errors
from lightning_app.reports.figures_callback import RunFigures
from lightning_app.training import run_folder
from lightning_app.training.console import say
from lightning_app.training.graceful_stop import TrainingInterrupted
from lightning_app.training.weights import holds_weights


class FitCLI(MNISTCLI):
    """The shared CLI, with the run's figures drawn by a callback (``--figures.*``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_lightning_class_args(RunFigures, "figures")


def test_figures(trainer: Trainer) -> tuple[float, float]:
    """The test accuracy and loss of the most recent evaluation of the test set."""
    return float(trainer.callback_metrics["test/acc"]), float(trainer.callback_metrics["test/loss"])


def best_score(checkpoint: ModelCheckpoint) -> str:
    """What the best checkpoint was chosen by, and its value: ``val/acc 99.36%``, ``val/loss 0.0214``."""
    monitor, score = checkpoint.monitor, checkpoint.best_model_score
    if monitor is None:
        return "the latest checkpoint (--checkpoint.monitor null)"
    if score is None:
        return str(monitor)
    return f"{monitor} {float(score):.2%}" if str(monitor).endswith("acc") else f"{monitor} {float(score):.4f}"


@report_user_errors
def main(args: list[str] | None = None) -> dict[str, float | str]:
    """Train; report the final model's and the best checkpoint's (by ``--checkpoint.monitor``) test figures.

    Returns the final model's and the best checkpoint's test accuracy and loss, and the best checkpoint's path;
    nothing in barebones mode or after an interruption, which test nothing.
    """
    cli = FitCLI(args=args)
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    start_step = torch.load(cli.ckpt_path, map_location="cpu", weights_only=True)["global_step"] if cli.ckpt_path else 0
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cli.ckpt_path, weights_only=True)
    except FloatingPointError as err:
        raise UserError(
            f"Stopped: {err} Pure 16-bit weights (--trainer.precision {trainer.precision}) cannot hold small "
            f"updates, and too high a learning rate diverges: use --trainer.precision bf16-mixed, 16-mixed or 32-true, "
            f"or a lower --model.optimizer.lr. The checkpoints of the epochs before are kept."
        ) from None
    except TrainingInterrupted as stop:
        if trainer.is_global_zero and stop.checkpoint is None:
            print(f"Training {stop}; checkpointing is off, so nothing was saved.", file=sys.stderr, flush=True)
        elif trainer.is_global_zero:
            config = stop.checkpoint.parent.parent / run_folder.CONFIG
            print(
                f"Training {stop} and saved {stop.checkpoint}. To continue exactly where it stopped, run:\n"
                f"  python -m lightning_app.fit --config {config} --ckpt_path {stop.checkpoint}",
                file=sys.stderr,
                flush=True,
            )
        raise SystemExit(128 + stop.signum) from None
    if trainer.interrupted:
        return {}
    if trainer.barebones:
        say(trainer, "Barebones mode logs no figures and keeps no checkpoint: nothing was tested or saved.")
        return {}
    if cli.ckpt_path and trainer.global_step == start_step and not trainer.fast_dev_run:
        raise UserError(
            f"Nothing was trained: {cli.ckpt_path} had already reached --trainer.max_epochs {trainer.max_epochs} "
            f"(or --trainer.max_steps {trainer.max_steps}). Raise it to train further."
        )
    figures = next(callback for callback in trainer.callbacks if isinstance(callback, RunFigures))
    # The final weights were evaluated on the test set by the last epoch's evaluation, unless it did not run.
    if not figures.has_final_predictions:
        trainer.test(model, datamodule=datamodule, verbose=False)
    final_acc, final_loss = test_figures(trainer)
    best_acc, best_loss, best_path = final_acc, final_loss, ""
    checkpoint = cli.best_checkpoint
    if checkpoint is not None and checkpoint.best_model_path:
        best_path = checkpoint.best_model_path
        best_weights = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        if not holds_weights(trainer, best_weights):  # a test pass only when the best is not the final model
            # Without the loggers, so that the per-epoch test curve gets no extra point from another model; the
            # best checkpoint's figures are logged under their own names below.
            loggers, trainer.loggers = trainer.loggers, []
            try:
                trainer.test(model, datamodule=datamodule, ckpt_path=best_path, weights_only=True, verbose=False)
            finally:
                trainer.loggers = loggers
            best_acc, best_loss = test_figures(trainer)
        for logger in trainer.loggers:
            logger.log_metrics({"best/test_acc": best_acc, "best/test_loss": best_loss}, step=trainer.global_step)
            logger.save()
    if trainer.is_global_zero:
        say(trainer, f"Final model: test accuracy {final_acc:.2%}, test loss {final_loss:.4f}")
        if best_path:
            say(
                trainer,
                f"Best by {best_score(checkpoint)}: test accuracy {best_acc:.2%}, test loss {best_loss:.4f}\n"
                f"  {best_path}",
            )
        if figures.drawn:
            later = " (being drawn in the background)" if figures.background else ""
            say(trainer, f"Figures: {figures.drawn[0].parent}/*.png{later}")
    return {
        "final_test_acc": final_acc,
        "final_test_loss": final_loss,
        "best_test_acc": best_acc,
        "best_test_loss": best_loss,
        "best_ckpt": best_path,
    }


if __name__ == "__main__":
    main()
