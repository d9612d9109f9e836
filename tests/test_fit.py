"""Training end to end on real digits: the run folder, learning, resuming, and the command line."""

from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from lightning_app.fit import main

from conftest import STEPS_PER_EPOCH, assert_same_weights, run_module

EPOCH_TAGS = {"train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"}


def scalars(run_dir: Path) -> dict[str, list]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def hparams_tab(run_dir: Path) -> tuple[set[str], dict]:
    """The metrics TensorBoard's HParams tab lists for a run, and the run's settings as it shows them."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    return {info.name.tag for info in experiment.metric_infos}, dict(session.session_start_info.hparams)


def test_smoke_fast_dev_run(fit_args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = main(fit_args("--trainer.fast_dev_run=true"))
    assert 0.0 <= result["final_test_acc"] <= 1.0
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.ckpt"))  # a dry run writes nothing


def test_run_folder_holds_events_hparams_config_and_current_checkpoints(fit_args, tmp_path):
    # mode=min makes the first epoch the "best" forever, so last.ckpt must be refreshed without new bests.
    main(fit_args("--trainer.max_epochs=3", "--checkpoint.mode=min"))
    run = tmp_path / "logs" / "mnist" / "version_0"
    assert sorted(p.name for p in (tmp_path / "logs" / "mnist").iterdir()) == ["version_0"]

    tags = scalars(run)
    assert tags.keys() >= EPOCH_TAGS
    for tag in EPOCH_TAGS:
        assert len(tags[tag]) == 3, tag  # one point per epoch
    assert len(tags["train/loss_step"]) == 3 * STEPS_PER_EPOCH // 5
    val_acc = [point.value for point in tags["val/acc"]]
    # TensorBoard opens on the stages' curves: no placeholder hp_metric, no epoch curve, no one-point best/ curve.
    assert not {tag for tag in tags if tag.split("/")[0] not in ("train", "val", "test")}
    metrics, settings = hparams_tab(run)
    assert metrics >= {"val/acc", "test/acc"}  # HParams shows each run's final validation and test accuracy
    assert settings["augment"].string_value == "false" and "rotation" not in settings  # no setting that was off
    assert settings["network"].string_value == "MNISTCNN" and settings["network.dropout"].number_value == 0.5

    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["optimizer"]["init_args"]["lr"] == 0.001
    assert hparams["network"]["init_args"]["dropout"] == 0.5
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 3 and config["data"]["batch_size"] == 100

    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == [f"best-epoch=00-val_acc={val_acc[0]:.4f}.ckpt", "last.ckpt"]
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 3 * STEPS_PER_EPOCH


def test_learns_real_digits(trained_run):
    # 1,000 held-out real digits after 3 epochs on 3,500; chance is 10%.
    assert trained_run.result["final_test_acc"] >= 0.93
    assert trained_run.result["best_test_acc"] >= 0.93


def test_resume_continues_the_same_run_and_matches_an_uninterrupted_one(fit_args, tmp_path):
    main(fit_args("--trainer.max_epochs=4", f"--trainer.logger.init_args.save_dir={tmp_path / 'straight'}"))
    main(fit_args("--trainer.max_epochs=2"))
    main(fit_args("--trainer.max_epochs=4", "--ckpt_path=last"))

    runs = tmp_path / "logs" / "mnist"
    assert sorted(p.name for p in runs.iterdir()) == ["version_0"]
    run, reference = runs / "version_0", tmp_path / "straight" / "mnist" / "version_0"
    steps = [point.step for point in scalars(run)["train/loss_step"]]
    assert steps == [point.step for point in scalars(reference)["train/loss_step"]]  # no gap, no overlap
    assert [p.step for p in scalars(run)["val/acc"]] == [STEPS_PER_EPOCH * e - 1 for e in range(1, 5)]
    assert_same_weights(run / "checkpoints" / "last.ckpt", reference / "checkpoints" / "last.ckpt")


def test_resume_from_a_checkpoint_file_starts_a_new_run(fit_args, tmp_path):
    main(fit_args("--trainer.max_epochs=1"))
    [best] = (tmp_path / "logs" / "mnist" / "version_0" / "checkpoints").glob("best-*.ckpt")
    main(fit_args("--trainer.max_epochs=2", f"--ckpt_path={best}"))
    last = torch.load(tmp_path / "logs" / "mnist" / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["global_step"] == 2 * STEPS_PER_EPOCH


def test_missing_checkpoint_is_a_clear_error(fit_args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args("--ckpt_path=last"))
    assert exit_info.value.code == 2
    assert "no run folder under" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(fit_args(f"--ckpt_path={tmp_path / 'nope.ckpt'}"))
    assert "no such checkpoint file" in capsys.readouterr().err


@pytest.mark.subprocess
def test_cli_prints_the_write_ups_defaults(tmp_path):
    config = yaml.safe_load(run_module("lightning_app.fit", ["--print_config"], tmp_path).stdout)
    assert config["trainer"]["max_epochs"] == 10
    assert config["trainer"]["accelerator"] == "auto"
    assert config["data"]["batch_size"] == 100
    assert config["model"]["optimizer"]["class_path"] == "torch.optim.Adam"
    assert config["model"]["optimizer"]["init_args"]["lr"] == 0.001
    network = config["model"]["network"]
    assert network["class_path"] == "lightning_app.model.network.MNISTCNN"
    assert network["init_args"]["hidden_units"] == 256 and network["init_args"]["dropout"] == 0.5
    assert config["seed_everything"] == 42


@pytest.mark.subprocess
@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_help_is_short_names_the_command_and_says_how_to_choose_a_network(command, tmp_path):
    done = run_module(f"lightning_app.{command}", ["--help"], tmp_path, COLUMNS="80")
    assert done.returncode == 0 and done.stdout.startswith(f"usage: python -m lightning_app.{command} "), done.stdout[
        :200
    ]
    assert len(done.stdout.splitlines()) <= 300
    assert "torchvision" not in done.stdout and "known subclasses" not in done.stdout  # no list of every nn.Module
    assert "--model.network my_module.MyNet" in " ".join(done.stdout.split())
    assert "--model.network.help CLASS_PATH" in " ".join(done.stdout.split())
    network = run_module(
        f"lightning_app.{command}", ["--model.network.help", "lightning_app.model.network.MNISTCNN"], tmp_path
    )
    assert network.stdout.startswith(f"usage: python -m lightning_app.{command}") and "--model.network.dropout" in (
        network.stdout
    )


@pytest.mark.subprocess
def test_cli_trains_and_prints_a_summary_line_per_epoch(fit_args, tmp_path):
    done = run_module(
        "lightning_app.fit",
        fit_args("--trainer.max_epochs=2", "--model.optimizer.lr=0.002", "--model.network.hidden_units=128"),
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(" | ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    for stage in ("train", "val", "test"):
        assert f"{stage} loss " in lines[-1] and f"{stage} loss " in lines[0]
    assert "Final model: test accuracy" in done.stdout
    config = yaml.safe_load((tmp_path / "logs" / "mnist" / "version_0" / "config.yaml").read_text())
    assert config["model"]["optimizer"]["init_args"]["lr"] == 0.002
    assert config["model"]["network"]["init_args"]["hidden_units"] == 128


@pytest.mark.slow
def test_one_default_epoch_on_the_full_data_set_reaches_98_5_percent(full_mnist_dir, tmp_path):
    result = main(
        [
            f"--data.data_dir={full_mnist_dir}",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
            "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert result["final_test_acc"] >= 0.985
    assert result["best_test_acc"] >= 0.985


def test_resuming_a_finished_run_says_so(fit_args, capsys):
    main(fit_args("--trainer.max_epochs=1"))
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args("--trainer.max_epochs=1", "--ckpt_path=last"))
    assert exit_info.value.code == 2
    assert "already reached --trainer.max_epochs 1" in capsys.readouterr().err
