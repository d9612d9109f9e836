"""A callback that prints when each phase of a fit begins and ends, for benchmark.py's breakdown of a whole command."""

import time

from pytorch_lightning.callbacks import Callback


def mark(name: str) -> None:
    print(f"PHASE {name} {time.time():.3f}", flush=True)


class PhaseTimer(Callback):
    """Print ``PHASE <name> <unix time>`` lines: built (imports and the config done), fit, training and test."""

    def __init__(self) -> None:
        mark("built")

    def on_fit_start(self, trainer, pl_module) -> None:
        mark("fit_start")  # the data module's setup and the model's have run

    def on_train_start(self, trainer, pl_module) -> None:
        mark("train_start")

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:  # each evaluation pass during training: validation, and the per-epoch test
            mark("validation_start")

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            mark("validation_end")

    def on_train_end(self, trainer, pl_module) -> None:
        mark("train_end")

    def on_test_start(self, trainer, pl_module) -> None:
        mark("test_start")

    def on_test_end(self, trainer, pl_module) -> None:
        mark("test_end")
