"""What the model-info route says about the checkpoints: which files, their epoch, and their recorded accuracy."""

from pathlib import Path

from lightning_app.model.loading import classifier_from, read_checkpoint


def describe_checkpoints(paths: list[Path]) -> dict:
    """Check that each checkpoint loads as this project's model, and describe it for ``GET /info``."""
    described = []
    for path in paths:
        checkpoint = read_checkpoint(path)
        model = classifier_from(checkpoint, "cpu", str(path))  # refused here, with its reason, not in a worker
        described.append(
            {
                "path": str(path),
                "epoch": checkpoint.get("epoch"),
                "global_step": checkpoint.get("global_step"),
                "test_accuracy": recorded_test_accuracy(checkpoint),
                "test_time_shifts": model.hparams.test_time_shifts,
            }
        )
    return {"checkpoints": described, "ensemble": len(described) > 1}


def recorded_test_accuracy(checkpoint: dict) -> float | None:
    """The test accuracy that training recorded for the checkpoint's weights, or None if it recorded none: that of
    the epoch's evaluation, which classifies each digit alone (without the model's test-time shifts)."""
    # The figures callback keeps every epoch's figures in its state; the row of the checkpoint's step is its own.
    history = checkpoint.get("callbacks", {}).get("RunFigures", {}).get("history", [])
    for row in history:
        if row.get("step") == checkpoint.get("global_step") and "test/acc" in row:
            return round(float(row["test/acc"]), 4)
    return None
