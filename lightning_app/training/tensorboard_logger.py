"""TensorBoard logging with the HParams tab tied to the metric the model logs as ``hp_metric``."""

from argparse import Namespace
from typing import Any

from lightning_fabric.utilities.logger import _convert_params, _flatten_dict
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams


class HParamsTensorBoardLogger(TensorBoardLogger):
    """A TensorBoardLogger that registers ``hp_metric`` for the HParams tab without logging a placeholder value.

    Lightning's default writes ``hp_metric = -1`` at step 0 so that the HParams tab has a metric; that point then
    sits at the start of the curve. Here the tab is told the metric's name only, and the model logs the real
    value (validation accuracy) every epoch.

    Args:
        save_dir: Folder under which runs are written, as ``save_dir/name/version_N``.
        name: Experiment name: the folder between ``save_dir`` and the run folders.
        version: Run number to write to; by default the next free one.
        default_hp_metric: Lightning's placeholder ``hp_metric = -1`` at step 0 (off here, see above).
    """

    def __init__(
        self,
        save_dir: str = "logs",
        name: str = "mnist",
        version: int | str | None = None,
        default_hp_metric: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(save_dir=save_dir, name=name, version=version, default_hp_metric=default_hp_metric, **kwargs)

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, metrics: dict[str, Any] | None = None, step: int | None = None
    ) -> None:
        super().log_hyperparams(params, metrics, step)
        if metrics is None and not self._default_hp_metric:
            flat = self._sanitize_params(_flatten_dict(_convert_params(params)))
            writer = self.experiment._get_file_writer()
            for summary in hparams(flat, {"hp_metric": 0.0}):
                writer.add_summary(summary)
