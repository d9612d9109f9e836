"""A logger without version folders: its log_dir is its save_dir, as for MLflow's and W&B's loggers."""

import json
import uuid
from pathlib import Path

from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only


class FlatLogger(Logger):
    """Write metrics as JSON lines into ``save_dir/metrics.jsonl``; each run is named by a random id, as MLflow does."""

    def __init__(self, save_dir: str = "logs") -> None:
        super().__init__()
        self._save_dir = save_dir
        self._run_id = uuid.uuid4().hex[:8]

    @property
    def name(self) -> str:
        return "flat"

    @property
    def version(self) -> str:
        return self._run_id

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def log_dir(self) -> str:
        return self._save_dir

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        Path(self._save_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(self._save_dir) / "metrics.jsonl", "a") as file:
            file.write(json.dumps({"step": step, **{k: float(v) for k, v in metrics.items()}}) + "\n")
