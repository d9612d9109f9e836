"""The data module: the fixed split, batches of whole tensors, and clear errors for missing or broken files."""

import os
import subprocess
import sys

import pytest
import torch

from lightning_app.data import MNIST_MEAN, MNIST_STD, MNISTDataModule, load_split, normalize, random_affine, raw_folder
from lightning_app.fit import main

from conftest import SMALL_TRAIN, SMALL_VAL


def test_split_is_fixed_disjoint_and_covers_the_training_set(small_mnist):
    first, second = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL), MNISTDataModule(str(small_mnist), val_size=SMALL_VAL)
    for module in (first, second):
        module.setup("fit")
        module.setup("fit")  # idempotent
    assert len(first.train_set) == SMALL_TRAIN - SMALL_VAL and len(first.val_set) == SMALL_VAL
    assert torch.equal(first.val_set.images, second.val_set.images)
    as_set = lambda images: {bytes(image.numpy()) for image in images}  # noqa: E731
    train, val = as_set(first.train_set.images), as_set(first.val_set.images)
    assert not train & val
    assert train | val == as_set(load_split(small_mnist, train=True)[0])
    assert len(first.test_set) == 1000


def test_batches_are_whole_uint8_tensors_normalised_on_transfer(small_mnist):
    module = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL)
    module.setup("fit")
    images, labels = next(iter(module.train_dataloader()))
    assert images.shape == (100, 28, 28) and images.dtype == torch.uint8 and labels.shape == (100,)
    normalised, _ = module.on_after_batch_transfer((images, labels), 0)
    assert normalised.shape == (100, 1, 28, 28) and normalised.dtype == torch.float32
    assert normalised.min().item() == pytest.approx(-MNIST_MEAN / MNIST_STD, abs=1e-5)
    assert sum(1 for _ in module.train_dataloader()) == (SMALL_TRAIN - SMALL_VAL) // 100


def test_shuffling_depends_on_the_epoch_only(small_mnist):
    module = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL)
    module.setup("fit")
    loader = module.train_dataloader()
    order = lambda: next(iter(loader))[1]  # noqa: E731
    first = order()
    loader.sampler.set_epoch(1)
    second = order()
    loader.sampler.set_epoch(0)
    assert torch.equal(order(), first) and not torch.equal(first, second)


def fail(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_truncated_file_is_named(small_mnist_copy, fit_args, capsys):
    path = raw_folder(small_mnist_copy) / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100_000])
    err = fail(fit_args(data_dir=small_mnist_copy), capsys)
    assert str(path) in err and "truncated" in err


def test_corrupt_header_is_named(small_mnist_copy, fit_args, capsys):
    path = raw_folder(small_mnist_copy) / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00" * 8 + path.read_bytes()[8:])
    err = fail(fit_args(data_dir=small_mnist_copy), capsys)
    assert str(path) in err and "corrupt" in err


def test_without_data_or_network_the_job_fails_with_one_clear_paragraph(tmp_path):
    # A proxy on a closed local port makes every download fail at once, as on a machine without network.
    env = dict(os.environ, http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    done = subprocess.run(
        [sys.executable, "-m", "lightning_app.fit", "--data.data_dir", "nowhere"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in error[0]
    assert "nowhere/MNIST/raw" in error[0] and "--data.data_dir" in error[0]
    assert not (tmp_path / "logs").exists()


class _Stage:
    def __init__(self, training: bool) -> None:
        self.training = training


def test_augmentation_moves_training_batches_only(small_mnist):
    module = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL, augment=True)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    plain = normalize(batch[0])
    module.trainer = _Stage(training=False)
    torch.testing.assert_close(module.on_after_batch_transfer(batch, 0)[0], plain)
    module.trainer = _Stage(training=True)
    augmented = module.on_after_batch_transfer(batch, 0)[0]
    assert augmented.shape == plain.shape and not torch.allclose(augmented, plain)
    # Shifts, small rotations and scaling move ink around but keep about as much of it (no flips, no crops).
    ratio = (augmented > 0).float().sum() / (plain > 0).float().sum()
    assert 0.8 < ratio < 1.25


def test_random_affine_without_movement_is_the_identity():
    images = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(random_affine(images, 0.0, 0.0, 0.0), images, atol=1e-5, rtol=0)
