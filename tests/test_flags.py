"""Every Trainer flag that Lightning documents behaves as documented, in real short runs; impossible requests get
the one-paragraph error."""

import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app import evaluate
from lightning_app.fit import main

from conftest import STEPS_PER_EPOCH, fit_options, weights

EARLY_STOP = {
    "class_path": "pytorch_lightning.callbacks.EarlyStopping",
    "init_args": {"monitor": "val/acc", "mode": "max", "patience": 0, "min_delta": 0.5},
}


def last_step(run) -> int:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def val_points(run) -> int:
    events = EventAccumulator(str(run))
    events.Reload()
    return len(events.Scalars("val/acc")) if "val/acc" in events.Tags()["scalars"] else 0


# flag options, then a check of the finished run folder (None: the default location has no run folder)
FLAGS = {
    # The epoch cut short is validated at the limit (Lightning itself validates at epochs' ends only).
    "max_steps ends mid-epoch": (
        ["--trainer.max_steps=30"],
        lambda run: last_step(run) == 30 and val_points(run) == 1 and len(list(run.glob("checkpoints/best-*"))) == 1,
    ),
    "max_time": (["--trainer.max_epochs=200", "--trainer.max_time=00:00:00:03"], lambda run: last_step(run) < 200 * 35),
    "early stopping": (
        ["--trainer.max_epochs=5", f"--trainer.callbacks+={json.dumps(EARLY_STOP)}"],
        lambda run: last_step(run) == 2 * STEPS_PER_EPOCH,
    ),
    "check_val_every_n_epoch beyond the run": (
        ["--trainer.check_val_every_n_epoch=3"],
        lambda run: val_points(run) == 0,
    ),
    "val_check_interval 0.5": (["--trainer.val_check_interval=0.5"], lambda run: val_points(run) == 4),
    "limit_val_batches 0": (["--trainer.limit_val_batches=0"], lambda run: val_points(run) == 0),
    "fast_dev_run": (["--trainer.fast_dev_run=true"], None),
    "overfit_batches": (["--trainer.overfit_batches=2"], lambda run: last_step(run) == 4),
    "accumulate_grad_batches": (["--trainer.accumulate_grad_batches=2"], lambda run: last_step(run) == 2 * 18),
    "enable_checkpointing false": (
        ["--trainer.enable_checkpointing=false"],
        lambda run: (run / "config.yaml").is_file() and not (run / "checkpoints").exists(),
    ),
    "profiler": (
        ["--trainer.profiler=simple", "--trainer.max_epochs=1"],
        lambda run: last_step(run) == STEPS_PER_EPOCH,
    ),
    "deterministic": (["--trainer.deterministic=true"], lambda run: last_step(run) == 2 * STEPS_PER_EPOCH),
    "max_epochs -1 (no limit) with max_steps": (
        ["--trainer.max_epochs=-1", "--trainer.max_steps=40"],
        lambda run: last_step(run) == 40,
    ),
    **{
        f"precision {precision}": (
            [f"--trainer.precision={precision}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=5"],
            lambda run: last_step(run) == 5,
        )
        for precision in ("32-true", "16-mixed", "bf16-true", "64-true")
    },
}


@pytest.mark.parametrize("flag", FLAGS)
def test_a_trainer_flag_trains_tests_the_final_model_and_ends_well(flag, fit_args, tmp_path):
    options, check = FLAGS[flag]
    result = main(fit_args("--trainer.max_epochs=2", *options))  # the flag's own max_epochs comes later and wins
    assert 0.1 < result["final_test_acc"] <= 1.0  # the final model was tested, whether or not fit evaluated it
    if check is not None:
        assert check(tmp_path / "logs" / "mnist" / "version_0"), flag


def test_without_a_logger_the_run_folder_is_the_trainers_root_folder(fit_args, tmp_path):
    root = tmp_path / "root"
    result = main(fit_args("--trainer.max_epochs=1", "--trainer.logger=false", f"--trainer.default_root_dir={root}"))
    assert result["final_test_acc"] > 0.5
    assert (root / "checkpoints" / "last.ckpt").is_file() and len(list(root.glob("*.png"))) == 5
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--trainer.accelerator=gpu"], "No supported gpu backend found"),
        (["--trainer.accelerator=tpu"], "torch_xla"),
        (["--trainer.strategy=deepspeed"], "DeepSpeed"),
        (["--trainer.precision=16-true", "--trainer.limit_train_batches=10"], "training loss is nan"),
        # Refused by Lightning once running: 500 validation images make one batch, and half a batch is none.
        (["--trainer.limit_val_batches=0.5"], "--trainer.limit_val_batches"),
        (["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp_spawn"], "strategy ddp_spawn"),
        (
            [
                "--model.scheduler=torch.optim.lr_scheduler.OneCycleLR",
                "--model.scheduler.max_lr=0.01",
                "--trainer.max_epochs=-1",
            ],
            "gives the run no length",
        ),
    ],
)
def test_an_impossible_request_is_a_one_paragraph_error(options, expected, fit_args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args("--trainer.max_epochs=1", *options))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert expected in line and "--trainer." in line and "Traceback" not in err


def test_an_epoch_cut_short_shows_its_training_figures(fit_args, capsys):
    main(fit_args("--trainer.max_epochs=-1", "--trainer.max_steps=20"))
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch 1 ")]
    assert "train loss" in line and "train/" not in line, line


def test_barebones_mode_trains_and_writes_nothing(fit_args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # without a logger, Lightning's root folder is the working folder
    assert main(fit_args("--trainer.max_epochs=1", "--trainer.barebones=true")) == {}
    assert f"trained to epoch 1, step {STEPS_PER_EPOCH}" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_the_best_checkpoint_is_the_projects_whatever_checkpoints_a_user_adds(fit_args, tmp_path, capsys):
    by_loss = {
        "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
        "init_args": {"monitor": "val/loss", "filename": "by-loss-{epoch}"},
    }
    result = main(fit_args("--trainer.max_epochs=2", f"--trainer.callbacks+={json.dumps(by_loss)}"))
    assert Path(result["best_ckpt"]).name.startswith("best-epoch=")
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Best by")]
    assert line.startswith("Best by val/acc ") and "%:" in line, line


def test_a_callback_that_changes_the_weights_at_the_end_gets_its_final_model_tested_and_saved(
    fit_args, small_mnist, tmp_path
):
    average = {
        "class_path": "pytorch_lightning.callbacks.StochasticWeightAveraging",
        "init_args": {"swa_lrs": 0.001, "swa_epoch_start": 1},
    }
    every_epoch = {
        "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
        "init_args": {"save_top_k": -1, "filename": "every-{epoch}"},
    }
    options = [f"--trainer.callbacks+={json.dumps(average)}", f"--trainer.callbacks+={json.dumps(every_epoch)}"]
    result = main(fit_args("--trainer.max_epochs=3", *options))
    checkpoints = tmp_path / "logs" / "mnist" / "version_0" / "checkpoints"
    # The averaged weights replace the trained ones when training ends, after the last epoch's evaluation.
    averaged, trained = weights(checkpoints / "last.ckpt"), weights(checkpoints / "every-epoch=2.ckpt")
    assert any(not torch.equal(averaged[name], trained[name]) for name in averaged)
    evaluated = evaluate.main([*fit_options(small_mnist, tmp_path / "logs"), "--ckpt_path=last"])
    assert evaluated["test_acc"] == pytest.approx(result["final_test_acc"], abs=1e-6)


def test_an_epoch_without_evaluation_shows_no_figures_of_an_earlier_one(fit_args, capsys):
    main(fit_args("--trainer.max_epochs=3", "--trainer.check_val_every_n_epoch=2"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert ["val loss" in line for line in lines] == [False, True, False], lines
    assert all("train loss" in line for line in lines)


def test_evaluate_in_barebones_mode_says_why_not(trained_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([*trained_run.args, "--ckpt_path=last", "--trainer.barebones=true"])
    assert exit_info.value.code == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert "--trainer.barebones" in line
