"""TensorBoard logging that opens on the run's curves, and whose HParams tab sets its settings beside its results."""

from argparse import Namespace
from typing import Any

from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams

# The figures the HParams tab shows beside each run's settings: the latest point of each of these curves.
RESULTS = ("val/acc", "test/acc", "val/loss", "test/loss")


class HParamsTensorBoardLogger(TensorBoardLogger):
    """A TensorBoardLogger whose HParams tab shows each run's final validation and test figures beside its settings.

    Lightning's TensorBoardLogger puts a placeholder ``hp_metric = -1`` at step 0 as the HParams tab's only metric,
    and an ``epoch`` curve beside every logged figure; both would be the first charts a person sees. Here the tab is
    told the names of the stage curves (``val/acc``, ``test/acc``, ...), whose latest points it shows, and no
    ``epoch`` curve is written.

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
        self.placeholder_metric = default_hp_metric
        self.settings_written = False

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, metrics: dict[str, Any] | None = None, step: int | None = None
    ) -> None:
        super().log_hyperparams(params, metrics, step)  # hparams.yaml
        # Once: Lightning logs the hyperparameters again for each later stage (the final test), when fit's writer is
        # already closed.
        if metrics is None and not self.placeholder_metric and not self.settings_written:
            self.settings_written = True
            for summary in hparams(shown(params), dict.fromkeys(RESULTS, 0.0)):
                self.experiment.file_writer.add_summary(summary)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        # Lightning adds the epoch to every call; the x axis already tells it.
        super().log_metrics({key: value for key, value in metrics.items() if key != "epoch"}, step)


def shown(params: dict[str, Any] | Namespace, prefix: str = "") -> dict[str, int | float | str]:
    """Settings as the HParams tab shows them: nested ones flattened (``network.hidden_units``), a class by its name,
    lists and booleans as text (the tab shows a boolean as 0.0000 or 1.0000)."""
    params = vars(params) if isinstance(params, Namespace) else dict(params)
    flat: dict[str, int | float | str] = {}
    for key, value in params.items():
        if isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, dict) and "class_path" in value:
            flat[f"{prefix}{key}"] = str(value["class_path"]).rsplit(".", 1)[-1]
            flat.update(shown(value.get("init_args") or {}, f"{prefix}{key}."))
        elif isinstance(value, dict):
            flat.update(shown(value, f"{prefix}{key}."))
        elif isinstance(value, bool):
            flat[f"{prefix}{key}"] = str(value).lower()
        elif isinstance(value, (int, float, str)):
            flat[f"{prefix}{key}"] = value
        elif value is not None:
            flat[f"{prefix}{key}"] = str(value)
    return flat
