"""A callback that records which training images each DDP rank is given, for the sharding test."""

import json
from pathlib import Path

from pytorch_lightning.callbacks import Callback


class RecordShard(Callback):
    """Write the indices this rank's sampler yields in each epoch to ``folder/shard_<epoch>_<rank>.json``."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        indices = [int(i) for i in trainer.train_dataloader.sampler]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"shard_{trainer.current_epoch}_{trainer.global_rank}.json"
        path.write_text(json.dumps(indices))
