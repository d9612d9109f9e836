"""Validate and test saved checkpoints: ``python -m lightning_app.evaluate --ckpt_path PATH|last|best``.

Several checkpoints (a list or a pattern) are evaluated as an ensemble that averages their probabilities.
"""

from typing import ClassVar

from pytorch_lightning.cli import LightningArgumentParser

from lightning_app.cli.lightning_cli import MNISTCLI
from lightning_app.errors import UserError, report_user_errors
from lightning_app.model.loading import load_model
from lightning_app.model.shift_averaging import MOST_TEST_TIME_SHIFTS


class EvaluateCLI(MNISTCLI):
    """fit's options and config files; the model comes from the checkpoints, and the Trainer writes no run folder."""

    program: ClassVar[str] = "python -m lightning_app.evaluate"
    description: ClassVar[str] = "Validate and test saved checkpoints (several answer together, as an ensemble)."
    trainer_overrides: ClassVar[dict] = {"logger": False, "enable_checkpointing": False}
    resumes_training = False
    draws_figures = False

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument(
            "--test_time_shifts",
            type=int | None,
            default=None,
            help="Also classify copies of each digit moved by up to this many pixels each way and average them, "
            f"whatever the checkpoints were trained with: 0 for none, at most {MOST_TEST_TIME_SHIFTS}. By default each "
            "checkpoint's own (--model.test_time_shifts when it was trained).",
        )


@report_user_errors
def main(args: list[str] | None = None) -> dict[str, float | list[float]]:
    """Print the validation accuracy, test loss, accuracy and per-class accuracy of a checkpoint (or an ensemble of
    several); return them.

    Each checkpoint is loaded with its own network and settings, whatever the config says of the model.
    """
    cli = EvaluateCLI(args=args, save_config_callback=None)
    trainer = cli.trainer
    if not cli.ckpt_paths:
        raise UserError("evaluate needs --ckpt_path: a .ckpt file, or 'last' or 'best' for the newest run's.")
    if trainer.barebones:
        raise UserError(
            "--trainer.barebones turns off the logging that evaluate reads its figures from: leave it out (evaluate "
            "writes no run folder and keeps no checkpoint anyway)."
        )
    shifts = cli.config.get("test_time_shifts")
    if shifts is not None and not 0 <= shifts <= MOST_TEST_TIME_SHIFTS:
        raise UserError(
            f"--test_time_shifts {shifts}: give a number of pixels from 0 (no shifted copies) to "
            f"{MOST_TEST_TIME_SHIFTS}, or leave it out to use what each checkpoint was trained with."
        )
    model = load_model(cli.ckpt_paths, test_time_shifts=shifts)
    result = {}
    with cli.data_errors_as_flags():
        # The validation figure first: what settings (members, epochs, test-time shifts) may be chosen by.
        [validated] = trainer.validate(model, datamodule=cli.datamodule, verbose=False)
        result["val_acc"] = validated["val/acc"]
        trainer.test(model, datamodule=cli.datamodule, verbose=False)
    result.update(
        test_loss=float(trainer.callback_metrics["test/loss"]),
        test_acc=float(trainer.callback_metrics["test/acc"]),
        class_acc=model.test_class_acc.compute().tolist(),
    )
    if trainer.is_global_zero:
        for path in cli.ckpt_paths:
            print(f"Checkpoint {path}")
        which = f"ensemble of {len(cli.ckpt_paths)}" if len(cli.ckpt_paths) > 1 else "checkpoint"
        print(f"{which}: validation accuracy {result['val_acc']:.2%}")
        print(f"test loss {result['test_loss']:.4f}  test accuracy {result['test_acc']:.2%}")
        print("per-class accuracy: " + "  ".join(f"{d}: {acc:.2%}" for d, acc in enumerate(result["class_acc"])))
    return result


if __name__ == "__main__":
    main()
