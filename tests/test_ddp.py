"""Data-parallel training for real: two CPU processes with the gloo backend, on real digits."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app import evaluate

from conftest import SMALL_TRAIN, SMALL_VAL

TESTS = Path(__file__).resolve().parent
DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]


def run_fit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "lightning_app.fit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def ddp_run(small_mnist, tmp_path_factory):
    """One epoch with two processes, recording each rank's shard."""
    folder = tmp_path_factory.mktemp("ddp")
    probe = json.dumps({"class_path": "ddp_probe.RecordShard", "init_args": {"folder": str(folder / "shards")}})
    common = [f"--data.data_dir={small_mnist}", f"--data.val_size={SMALL_VAL}", "--trainer.enable_progress_bar=false",
              f"--trainer.logger.init_args.save_dir={folder / 'logs'}"]
    done = run_fit([*common, *DDP, "--trainer.max_epochs=1", f"--trainer.callbacks+={probe}"], folder)
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
    assert done.stdout.count("epoch 1/1 |") == 1  # the summary line comes from rank zero only


def test_logged_test_accuracy_equals_a_single_process_evaluation_of_the_checkpoint(ddp_run):
    folder, common, _ = ddp_run
    run = folder / "logs" / "mnist" / "version_0"
    events = EventAccumulator(str(run))
    events.Reload()
    [logged] = [event.value for event in events.Scalars("test/acc")]
    single = evaluate.main([*common, f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"])
    # Same weights and images; only the batch composition differs, which may move a borderline bf16 logit.
    assert single["test_acc"] == pytest.approx(logged, abs=0.0015)


def test_a_ddp_run_resumes_with_two_processes_and_with_one(ddp_run, tmp_path):
    folder, common, _ = ddp_run
    steps_per_epoch = math.ceil((SMALL_TRAIN - SMALL_VAL) / 2 / 100)  # each step sees one batch per rank
    run_fit([*common, *DDP, "--trainer.max_epochs=2", "--ckpt_path=last"], folder)
    last = folder / "logs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2 * steps_per_epoch
    run_fit([*common, "--trainer.max_epochs=3", "--ckpt_path=last"], folder)  # now on a single process
    assert torch.load(last, weights_only=True)["global_step"] == 2 * steps_per_epoch + (SMALL_TRAIN - SMALL_VAL) // 100
    assert sorted(p.name for p in (folder / "logs" / "mnist").iterdir()) == ["version_0"]
