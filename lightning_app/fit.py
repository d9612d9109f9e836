"""Train the MNIST CNN: ``python -m lightning_app.fit [--config FILE] [--trainer.max_epochs N] [--ckpt_path last]``."""

from pytorch_lightning import Trainer
from pytorch_lightning.loggers import TensorBoardLogger

import sys

from lightning_app.callbacks import TrainingInterrupted
from lightning_app.cli import MNISTCLI
from lightning_app.errors import UserError, report_user_errors
from lightning_app.report import write_report


def test_figures(trainer: Trainer) -> tuple[float, float]:
    """The test accuracy and loss of the most recent evaluation pass."""
    return float(trainer.callback_metrics["test/acc"]), float(trainer.callback_metrics["test/loss"])


@report_user_errors
def main(args: list[str] | None = None) -> dict[str, float | str]:
    """Train, evaluate the best checkpoint (by validation accuracy) on the test set, and draw the run's figures.

    Returns the final epoch's and the best checkpoint's test figures, which are also printed.
    """
    cli = MNISTCLI(args=args)
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cli.ckpt_path, weights_only=True)
    except TrainingInterrupted as stop:
        log_dir = trainer.log_dir
        config = f" --config {log_dir}/config.yaml" if log_dir else ""
        print(f"Training {stop} and saved {stop.checkpoint}. To continue exactly where it stopped, run:\n"
              f"  python -m lightning_app.fit{config} --ckpt_path {stop.checkpoint}", file=sys.stderr, flush=True)
        raise SystemExit(128 + stop.signum) from None
    if trainer.interrupted:
        return {}
    if "test/acc" not in trainer.callback_metrics:
        raise UserError(
            f"No evaluation ran during this fit, so there are no test figures to report: the run had already "
            f"reached --trainer.max_epochs {trainer.max_epochs} (raise it to train further), or evaluation is "
            f"switched off (--trainer.limit_val_batches 0)."
        )
    # The last epoch already evaluated the final weights on the test set (the data module's second
    # validation loader); only the best checkpoint needs a pass of its own.
    final_acc, final_loss = test_figures(trainer)
    best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None, weights_only=True, verbose=False)
    best_acc, best_loss = test_figures(trainer)
    log_dir = trainer.log_dir  # a collective call under DDP: every rank must make it
    if trainer.is_global_zero:
        val_acc = trainer.checkpoint_callback.best_model_score if best_path else None
        print(f"Final epoch's model: test accuracy {final_acc:.2%}, test loss {final_loss:.4f}")
        if best_path:
            print(f"Best by validation (val accuracy {float(val_acc):.2%}): test accuracy {best_acc:.2%}, "
                  f"test loss {best_loss:.4f}\n  {best_path}")
        if isinstance(trainer.logger, TensorBoardLogger):
            test_set = datamodule.test_set
            write_report(log_dir, model, test_set.images, test_set.labels, trainer.logger.experiment,
                         trainer.global_step)
            print(f"Run folder with figures: {log_dir}  (tensorboard --logdir {trainer.logger.save_dir})")
    return {"final_test_acc": final_acc, "final_test_loss": final_loss,
            "best_test_acc": best_acc, "best_test_loss": best_loss, "best_ckpt": best_path}


if __name__ == "__main__":
    main()
