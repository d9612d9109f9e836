"""The run's ``config.yaml``: the resolved configuration, saved in the run folder."""

from typing import Any

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.cli import SaveConfigCallback

from lightning_app.training import run_folder


class RunConfig(SaveConfigCallback):
    """Save the resolved config as ``config.yaml`` in the run folder; keep the original when continuing that run."""

    def __init__(self, *args: Any, continuing_run: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.continuing_run = continuing_run

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        path = run_folder.run_dir(trainer) / self.config_filename
        if trainer.is_global_zero and not (self.continuing_run and path.is_file()):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, path, skip_none=False, overwrite=True, multifile=self.multifile)
        self.already_saved = True
