"""Exact resume: runs stopped by real signals (SIGTERM, Ctrl-C, kill -9) continue as if never stopped."""

import json
import signal
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app.fit import main

from conftest import FIT_ONLY, STEPS_PER_EPOCH, assert_same_weights, fit_options, run_module

ONECYCLE = ["--model.scheduler=torch.optim.lr_scheduler.OneCycleLR", "--model.scheduler.max_lr=0.01"]
CASES = {
    # name: (options, epochs, step at which the signal comes; all mid-epoch)
    "onecycle": (ONECYCLE, 3, 50),
    "accumulate_grad_batches": (["--trainer.accumulate_grad_batches=2"], 3, 25),
    "limit_train_batches": ([*ONECYCLE, "--trainer.limit_train_batches=20"], 3, 27),
}


# Resuming reads the run's config.yaml, which holds the fault injected into it: the resumed run leaves it out.
NO_FAULT = "--trainer.callbacks=[]"


def with_signal(step: int, name: str = "SIGTERM", count: int = 1) -> str:
    spec = {
        "class_path": "fault_injection.SignalAtStep",
        "init_args": {"step": step, "signal_name": name, "count": count},
    }
    return f"--trainer.callbacks+={json.dumps(spec)}"


def state(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)


def step_events(run_dir: Path, tag: str) -> list[int]:
    # purge_orphaned_data=False: show every point written, so a duplicated step would be seen.
    events = EventAccumulator(str(run_dir), purge_orphaned_data=False)
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def last(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def uninterrupted(small_mnist, tmp_path_factory):
    """Each case's run without interruption, keyed by case name (run folders)."""
    runs = {}
    for name, (options, epochs, _) in CASES.items():
        logs = tmp_path_factory.mktemp(f"uninterrupted_{name}")
        main(fit_options(small_mnist, logs, *FIT_ONLY, *options, f"--trainer.max_epochs={epochs}"))
        runs[name] = logs / "mnist" / "version_0"
    return runs


@pytest.mark.subprocess
@pytest.mark.parametrize("case", CASES)
def test_a_run_stopped_by_sigterm_mid_epoch_resumes_to_the_same_weights_and_step(
    case, fit_args, tmp_path, uninterrupted
):
    options, epochs, step = CASES[case]
    args = fit_args(*options, f"--trainer.max_epochs={epochs}")
    done = run_module("lightning_app.fit", [*args, with_signal(step)], tmp_path)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-3000:]
    run = tmp_path / "logs" / "mnist" / "version_0"
    assert f"--ckpt_path {last(run)}" in done.stderr and "Traceback" not in done.stderr
    stopped_at = state(last(run))["global_step"]
    assert step <= stopped_at <= step + 1  # at the signal's step, or the next whole optimizer step

    main([*args, NO_FAULT, "--ckpt_path=last"])
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    reference = uninterrupted[case]
    assert state(last(run))["global_step"] == state(last(reference))["global_step"]
    assert_same_weights(last(run), last(reference))
    for tag in ("train/loss_step", "val/acc", "test/acc", "train/loss"):
        assert step_events(run, tag) == step_events(reference, tag), tag  # no gap, no duplicate
    events = {tag: EventAccumulator(str(path)) for tag, path in (("resumed", run), ("reference", reference))}
    for accumulator in events.values():
        accumulator.Reload()
    # The resumed epoch's training figures cover all its batches, those before the stop too.
    resumed, straight = (
        [point.value for point in events[key].Scalars("train/loss")] for key in ("resumed", "reference")
    )
    assert resumed == pytest.approx(straight, rel=1e-5)


@pytest.mark.subprocess
def test_sigterm_in_the_last_batch_of_an_epoch_resumes_exactly(fit_args, tmp_path, uninterrupted):
    args = fit_args(*ONECYCLE, "--trainer.max_epochs=3")
    done = run_module("lightning_app.fit", [*args, with_signal(STEPS_PER_EPOCH)], tmp_path)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-3000:]
    main([*args, NO_FAULT, "--ckpt_path=last"])
    run = tmp_path / "logs" / "mnist" / "version_0"
    assert_same_weights(last(run), last(uninterrupted["onecycle"]))
    assert step_events(run, "val/acc") == step_events(uninterrupted["onecycle"], "val/acc")


@pytest.mark.subprocess
def test_sigint_saves_and_a_second_ctrl_c_exits_at_once(fit_args, tmp_path):
    done = run_module("lightning_app.fit", [*fit_args("--trainer.max_epochs=2"), with_signal(40, "SIGINT")], tmp_path)
    assert done.returncode == 128 + signal.SIGINT and "--ckpt_path" in done.stderr
    checkpoints = tmp_path / "logs" / "mnist" / "version_0" / "checkpoints"
    assert state(checkpoints / "last.ckpt")["global_step"] == 40

    twice = run_module(
        "lightning_app.fit",
        [*fit_args("--trainer.max_epochs=2", "--trainer.logger.init_args.version=1"), with_signal(40, "SIGINT", 2)],
        tmp_path,
    )
    assert twice.returncode == 128 + signal.SIGINT
    second = tmp_path / "logs" / "mnist" / "version_1" / "checkpoints"
    # Out at once: the epoch-1 checkpoint is still the last one, whole and loadable; no temporary file is left.
    assert state(second / "last.ckpt")["global_step"] == STEPS_PER_EPOCH
    assert not [p for p in second.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.subprocess
def test_kill_9_loses_at_most_n_steps_and_resumes_exactly(fit_args, tmp_path, uninterrupted):
    every = [*ONECYCLE, "--last_checkpoint.every_n_train_steps=10", "--trainer.max_epochs=3"]
    done = run_module("lightning_app.fit", [*fit_args(*every), with_signal(57, "SIGKILL")], tmp_path)
    assert done.returncode == -signal.SIGKILL
    checkpoint = last(tmp_path / "logs" / "mnist" / "version_0")
    assert 57 - state(checkpoint)["global_step"] <= 10

    main(fit_args(*every, NO_FAULT, "--ckpt_path=last"))
    assert state(checkpoint)["global_step"] == 3 * STEPS_PER_EPOCH
    assert_same_weights(checkpoint, last(uninterrupted["onecycle"]))
