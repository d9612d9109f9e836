"""Every Trainer flag that Lightning documents behaves as documented, in real short runs; impossible requests get
the one-paragraph error."""

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app.fit import main

from conftest import STEPS_PER_EPOCH

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
    "max_steps ends mid-epoch": (["--trainer.max_steps=30"], lambda run: last_step(run) == 30),
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
    ],
)
def test_an_impossible_request_is_a_one_paragraph_error(options, expected, fit_args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args("--trainer.max_epochs=1", *options))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert expected in line and "--trainer." in line and "Traceback" not in err
