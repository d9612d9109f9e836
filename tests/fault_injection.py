"""Callbacks for subprocess tests: send a real signal at a chosen step, record each process's shard and pid."""

import json
import os
import signal
from pathlib import Path

from pytorch_lightning.callbacks import Callback


class SignalAtStep(Callback):
    """Send ``signal_name`` to this process ``count`` times once step ``step`` is done (only on ``rank`` if given)."""

    def __init__(self, step: int, signal_name: str = "SIGTERM", count: int = 1, rank: int | None = None) -> None:
        self.step = step
        self.signum = getattr(signal, signal_name)
        self.count = count
        self.rank = rank
        self.sent = False

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step and not self.sent and self.rank in (None, trainer.global_rank):
            self.sent = True
            for _ in range(self.count):
                os.kill(os.getpid(), self.signum)


class RecordShard(Callback):
    """Write the indices this rank's sampler yields in each epoch, and its pid, into ``folder``."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        sampler = trainer.train_dataloader.sampler
        indices = [int(i) for i in sampler]
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"shard_{trainer.current_epoch}_{trainer.global_rank}.json").write_text(json.dumps(indices))
        (self.folder / f"pid_{trainer.global_rank}").write_text(str(os.getpid()))
