"""A callback that sends a real signal to its own training process at a chosen step (for subprocess tests)."""

import os
import signal

from pytorch_lightning.callbacks import Callback


class SignalAtStep(Callback):
    """Send ``signal_name`` to this process ``count`` times once the trainer has finished step ``step``."""

    def __init__(self, step: int, signal_name: str = "SIGTERM", count: int = 1) -> None:
        self.step = step
        self.signum = getattr(signal, signal_name)
        self.count = count

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            for _ in range(self.count):
                os.kill(os.getpid(), self.signum)
