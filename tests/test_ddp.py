"""Data-parallel training for real: two CPU processes with the gloo backend, on real digits."""

import json
import math
import os
import signal
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app import evaluate

from conftest import FIT_ONLY, SMALL_TRAIN, SMALL_VAL, assert_same_weights, fit_options, run_module

pytestmark = pytest.mark.subprocess

DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
STEPS_PER_EPOCH = math.ceil((SMALL_TRAIN - SMALL_VAL) / 2 / 100)  # each step sees one batch per process


def callback(class_name: str, **init_args) -> str:
    return f"--trainer.callbacks+={json.dumps({'class_path': f'fault_injection.{class_name}', 'init_args': init_args})}"


def fit(args: list[str], cwd) -> None:
    done = run_module("lightning_app.fit", args, cwd, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def ddp_run(small_mnist, tmp_path_factory):
    """Two epochs with two processes, recording each rank's shard."""
    folder = tmp_path_factory.mktemp("ddp")
    common = [*fit_options(small_mnist, folder / "logs"), *FIT_ONLY, *DDP, "--trainer.max_epochs=2"]
    done = fit([*common, callback("RecordShard", folder=str(folder / "shards"))], folder)
    return folder, common, done


def test_each_rank_trains_on_its_own_shard_and_together_they_cover_the_split(ddp_run):
    folder, _, _ = ddp_run
    shards = [set(json.loads((folder / "shards" / f"shard_0_{rank}.json").read_text())) for rank in (0, 1)]
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(range(SMALL_TRAIN - SMALL_VAL))


def test_rank_zero_alone_writes_one_run_folder_one_config_and_one_set_of_checkpoints(ddp_run):
    folder, _, done = ddp_run
    runs = folder / "logs" / "mnist"
    assert sorted(p.name for p in runs.iterdir()) == ["version_0"]
    run = runs / "version_0"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[1] == "last.ckpt" and checkpoints[0].startswith("best-")
    assert len(list(run.glob("config.yaml"))) == 1 and len(list(run.glob("*.png"))) == 5
    assert done.stdout.count("epoch 2/2 |") == 1  # the summary line comes from rank zero only


def test_logged_test_accuracy_equals_a_single_process_evaluation_of_the_checkpoint(ddp_run, small_mnist):
    folder, _, _ = ddp_run
    run = folder / "logs" / "mnist" / "version_0"
    events = EventAccumulator(str(run))
    events.Reload()
    logged = [event.value for event in events.Scalars("test/acc")][-1]
    single = evaluate.main(
        [*fit_options(small_mnist, folder / "logs"), f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"]
    )
    # Same weights and images; only the batch composition differs, which may move a borderline bf16 logit.
    assert single["test_acc"] == pytest.approx(logged, abs=0.0015)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("signalled", ["the launching process", "both processes"])
def test_sigterm_stops_both_processes_at_once_with_a_checkpoint_that_continues_exactly(
    signalled, ddp_run, small_mnist, tmp_path
):
    reference = ddp_run[0] / "logs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt"
    common = [*fit_options(small_mnist, tmp_path / "logs"), *FIT_ONLY, *DDP, "--trainer.max_epochs=2"]
    rank = 0 if signalled == "the launching process" else None
    start = time.monotonic()
    done = run_module(
        "lightning_app.fit",
        [
            *common,
            callback("SignalAtStep", step=STEPS_PER_EPOCH + 5, rank=rank),
            callback("RecordShard", folder=str(tmp_path / "shards")),
        ],
        tmp_path,
        timeout=300,
    )
    assert done.returncode == 128 + signal.SIGTERM, done.stdout[-2000:] + done.stderr[-3000:]
    assert time.monotonic() - start < 120
    child = int((tmp_path / "shards" / "pid_1").read_text())
    deadline = time.monotonic() + 10
    while not process_gone(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process_gone(child), "the second process is still running"
    last = tmp_path / "logs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == STEPS_PER_EPOCH + 5
    assert done.stderr.count("To continue exactly where it stopped") == 1

    # Resuming reads the run's config.yaml, which holds the fault injected into it: the resumed run leaves it out.
    fit([*common, "--trainer.callbacks=[]", "--ckpt_path=last"], tmp_path)
    assert torch.load(last, weights_only=True)["global_step"] == 2 * STEPS_PER_EPOCH
    assert_same_weights(last, reference)


def test_a_ddp_run_resumes_on_one_process_from_the_end_of_an_epoch(ddp_run, small_mnist, tmp_path):
    folder, _, _ = ddp_run
    logs = tmp_path / "logs"
    os.makedirs(logs)
    import shutil

    shutil.copytree(folder / "logs" / "mnist", logs / "mnist")
    # The run's own config.yaml says two processes: the command line says one.
    one_process = ["--trainer.devices=1", "--trainer.strategy=auto"]
    fit(
        [*fit_options(small_mnist, logs), *FIT_ONLY, *one_process, "--trainer.max_epochs=3", "--ckpt_path=last"],
        tmp_path,
    )
    last = logs / "mnist" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2 * STEPS_PER_EPOCH + (SMALL_TRAIN - SMALL_VAL) // 100
    assert sorted(p.name for p in (logs / "mnist").iterdir()) == ["version_0"]
