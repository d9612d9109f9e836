"""Any logger: the run folder, config.yaml, figures and `--ckpt_path last/best` work with TensorBoard, CSV, a logger
whose log_dir is its save_dir, and a list of loggers."""

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app import evaluate, report
from lightning_app.fit import main
from lightning_app.reports.drawing import FIGURES

from conftest import STEPS_PER_EPOCH

TENSORBOARD = {
    "class_path": "lightning_app.training.tensorboard_logger.HParamsTensorBoardLogger",
    "init_args": {"name": "mnist"},
}
CSV = {"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"name": "mnist"}}
FLAT = {"class_path": "flat_logger.FlatLogger", "init_args": {}}
LOGGERS = {"tensorboard": [TENSORBOARD], "csv": [CSV], "flat": [FLAT], "tensorboard+csv": [TENSORBOARD, CSV]}


def logger_option(specs: list[dict], save_dir) -> str:
    specs = [{**spec, "init_args": {**spec["init_args"], "save_dir": str(save_dir)}} for spec in specs]
    return f"--trainer.logger={json.dumps(specs if len(specs) > 1 else specs[0])}"


@pytest.mark.parametrize("kind", LOGGERS)
def test_every_logger_gets_run_folders_with_config_figures_and_resumable_checkpoints(kind, fit_args, tmp_path, capsys):
    logs = tmp_path / "logs"
    args = fit_args(logger_option(LOGGERS[kind], logs))
    main([*args, "--trainer.max_epochs=1"])
    main([*args, "--trainer.max_epochs=1"])  # a second run beside the first: no clash over config.yaml
    runs = sorted(path.parent.parent for path in logs.rglob("checkpoints/last.ckpt"))
    assert len(runs) == 2
    for run in runs:
        assert (run / "config.yaml").is_file()
        assert sorted(p.name for p in run.glob("*.png")) == sorted(f"{name}.png" for name in FIGURES)
    newest = max(runs, key=lambda run: (run / "checkpoints" / "last.ckpt").stat().st_mtime)

    main([*args, "--trainer.max_epochs=2", "--ckpt_path=last"])
    resumed = max(logs.rglob("checkpoints/last.ckpt"), key=lambda path: path.stat().st_mtime)
    assert torch.load(resumed, weights_only=True)["global_step"] == 2 * STEPS_PER_EPOCH
    if kind != "flat":  # loggers with version folders continue the run in its own folder
        assert resumed.parent.parent == newest

    shared = [option for option in args if not option.startswith("--figures.")]  # evaluate draws no figures
    assert evaluate.main([*shared, "--ckpt_path=best"])["test_acc"] > 0.5
    assert len(report.main([str(newest)])) == len(FIGURES)
    assert "Traceback" not in capsys.readouterr().err


def test_csv_logs_the_epoch_figures_and_the_learning_rate(fit_args, tmp_path):
    main([*fit_args(logger_option([CSV], tmp_path / "logs")), "--trainer.max_epochs=2"])
    [metrics] = (tmp_path / "logs").rglob("metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc", "train/lr"} <= set(header)


def test_tensorboard_shows_the_learning_rate_per_epoch_and_only_real_hyperparameters(trained_run):
    events = EventAccumulator(str(trained_run.run_dir))
    events.Reload()
    rates = [point.value for point in events.Scalars("train/lr")]
    assert rates[:3] == pytest.approx([0.001, 0.0008, 0.00064])  # the default decay, 0.8 a epoch
    hparams = (trained_run.run_dir / "hparams.yaml").read_text()
    assert "_instantiator" not in hparams and "optimizer" in hparams and "network" in hparams
