"""After training: the test figures of the final model and of the best checkpoint, logged and said once.

The final model is the one training ended with; the best checkpoint is chosen by validation (``--checkpoint.monitor``),
never by test. Each is tested once: the final model by the last epoch's evaluation when it ran with the final
weights, else by a test pass; the best checkpoint only when it holds other weights than the final model.
"""

import warnings
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint, WeightAveraging
from pytorch_lightning.loggers import TensorBoardLogger

from lightning_app.training.atomic_checkpoint_io import AtomicCheckpointIO
from lightning_app.training.console import say
from lightning_app.training.weights import holds_weights


def test_figures(trainer: "pl.Trainer") -> tuple[float, float]:
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


def test_final_and_best(
    trainer: "pl.Trainer", datamodule: "pl.LightningDataModule", best: ModelCheckpoint | None, final_tested: bool
) -> dict[str, Any]:
    """Test the final model (unless ``final_tested``) and the best checkpoint; log and print both; return them."""
    model = trainer.lightning_module
    if not final_tested:
        trainer.test(model, datamodule=datamodule, verbose=False)
    final_acc, final_loss = test_figures(trainer)
    best_acc, best_loss, best_path = final_acc, final_loss, ""
    if best is not None and best.best_model_path:
        best_path = best.best_model_path
        checkpoint = trainer.strategy.checkpoint_io.load_checkpoint(best_path, weights_only=True)
        if not holds_weights(trainer, checkpoint["state_dict"]):  # a test pass only when it is another model
            if isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO):
                trainer.strategy.checkpoint_io.hand_over(best_path, checkpoint)  # the test pass takes it
            # Without the loggers, so that the per-epoch test curve gets no point from another model. Without weight
            # averaging's callbacks too: loading a checkpoint, they put back the weights being trained (its
            # "current_model_state") in place of the averaged ones, which the checkpoint's state_dict holds and its
            # validation score is of.
            loggers, callbacks = trainer.loggers, trainer.callbacks
            trainer.loggers = []
            trainer.callbacks = [callback for callback in callbacks if not isinstance(callback, WeightAveraging)]
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks")
                    trainer.test(model, datamodule=datamodule, ckpt_path=best_path, weights_only=True, verbose=False)
            finally:
                trainer.loggers, trainer.callbacks = loggers, callbacks
            best_acc, best_loss = test_figures(trainer)
    result = {
        "final_test_acc": final_acc,
        "final_test_loss": final_loss,
        "best_test_acc": best_acc,
        "best_test_loss": best_loss,
        "best_ckpt": best_path,
    }
    # Said, as the per-epoch test figures before it are of the network alone.
    shifted = " with its test-time shifts" if getattr(model, "answers_otherwise_after_fit", False) else ""
    lines = [f"Final model{shifted}: test accuracy {final_acc:.2%}, test loss {final_loss:.4f}"]
    if best_path:
        score = best_score(best)
        lines.append(f"Best by {score}: test accuracy {best_acc:.2%}, test loss {best_loss:.4f}\n  {best_path}")
    log_best(trainer, result, "\n".join(lines))
    if trainer.is_global_zero:
        for line in lines:
            say(trainer, line)
    return result


def log_best(trainer: "pl.Trainer", result: dict[str, Any], summary: str) -> None:
    """Keep the final and best figures with the run: TensorBoard's Text tab (a one-point curve would be the first
    chart a person sees), the other loggers' metrics."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            if trainer.is_global_zero:
                logger.experiment.add_text("results", summary.replace("\n", "  \n"), trainer.global_step)
        else:
            figures = {"best/test_acc": result["best_test_acc"], "best/test_loss": result["best_test_loss"]}
            logger.log_metrics(figures, step=trainer.global_step)
        logger.save()
