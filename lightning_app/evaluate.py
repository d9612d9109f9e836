"""Evaluate a saved checkpoint on the test set: ``python -m lightning_app.evaluate --ckpt_path PATH|last|best``."""

from typing import ClassVar

from lightning_app.cli import MNISTCLI
from lightning_app.errors import UserError, report_user_errors


class EvaluateCLI(MNISTCLI):
    """The training CLI's options and config files, with a Trainer that only tests and writes no run folder."""

    trainer_overrides: ClassVar[dict] = {"logger": False, "enable_checkpointing": False}
    resumes_training = False


@report_user_errors
def main(args: list[str] | None = None) -> dict[str, float | list[float]]:
    """Print test loss, accuracy and per-class accuracy of a checkpoint; return them."""
    cli = EvaluateCLI(args=args, save_config_callback=None)
    if cli.ckpt_path is None:
        raise UserError("evaluate needs --ckpt_path: a .ckpt file, or 'last' or 'best' for the newest run's.")
    trainer, model = cli.trainer, cli.model
    trainer.test(model, datamodule=cli.datamodule, ckpt_path=cli.ckpt_path, weights_only=True, verbose=False)
    result = {
        "test_loss": float(trainer.callback_metrics["test/loss"]),
        "test_acc": float(trainer.callback_metrics["test/acc"]),
        "class_acc": model.test_class_acc.compute().tolist(),
    }
    if trainer.is_global_zero:
        print(f"Checkpoint {cli.ckpt_path}")
        print(f"test loss {result['test_loss']:.4f}  test accuracy {result['test_acc']:.2%}")
        print("per-class accuracy: " + "  ".join(f"{d}: {acc:.2%}" for d, acc in enumerate(result["class_acc"])))
    return result


if __name__ == "__main__":
    main()
