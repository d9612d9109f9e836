"""The data module: the fixed split, batches of whole tensors, and clear errors for missing or broken files."""

import pytest
import torch

from lightning_app.data.augmentation import random_affine
from lightning_app.data.datamodule import MNISTDataModule
from lightning_app.data.idx_files import load_split

from conftest import SMALL_TRAIN, SMALL_VAL, run_module


def test_split_is_fixed_disjoint_and_covers_the_training_set(small_mnist):
    first, second = (
        MNISTDataModule(str(small_mnist), val_size=SMALL_VAL),
        MNISTDataModule(str(small_mnist), val_size=SMALL_VAL),
    )
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


def test_batches_are_whole_uint8_tensors_of_raw_digits(small_mnist):
    module = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL)
    module.setup("fit")
    images, labels = next(iter(module.train_dataloader()))
    assert images.shape == (100, 28, 28) and images.dtype == torch.uint8 and labels.shape == (100,)
    # Nothing model-specific: without augmentation the batch reaches the model as it was read.
    assert module.on_after_batch_transfer((images, labels), 0)[0] is images
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
    assert torch.equal(next(iter(module.train_dataloader()))[1], first)  # a new loader: the same order


def test_the_loader_continues_after_the_batches_a_checkpoint_says_were_done(small_mnist):
    module = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL)
    module.setup("fit")
    loader = module.train_dataloader()
    loader.sampler.set_epoch(2)
    iterator = iter(loader)
    seen = [next(iterator)[1] for _ in range(7)]
    state = loader.state_dict()
    assert state == {"epoch": 2, "batches": 7}
    rest = [labels for _, labels in iterator]

    resumed = module.train_dataloader()
    resumed.sampler.set_epoch(2)
    resumed.load_state_dict(state)
    continued = [labels for _, labels in resumed]
    assert len(continued) == len(rest) and all(torch.equal(a, b) for a, b in zip(continued, rest))
    assert resumed.state_dict()["batches"] == len(seen) + len(rest)  # counts on from the saved position


@pytest.mark.subprocess
def test_without_data_or_network_the_job_fails_with_one_clear_paragraph(tmp_path):
    # A proxy on a closed local port makes every download fail at once, as on a machine without network.
    proxy = "http://127.0.0.1:9"
    done = run_module(
        "lightning_app.fit",
        ["--data.data_dir", "nowhere"],
        tmp_path,
        http_proxy=proxy,
        https_proxy=proxy,
        HTTP_PROXY=proxy,
        HTTPS_PROXY=proxy,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in error[0]
    assert "nowhere/MNIST/raw" in error[0] and "--data.data_dir" in error[0]
    assert not (tmp_path / "logs").exists()


class _Stage:
    def __init__(self, training: bool) -> None:
        self.training = training
        self.world_size, self.global_rank = 1, 0


def test_augmentation_moves_training_batches_only(small_mnist):
    module = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL, augment=True)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    plain = batch[0].unsqueeze(1).float().div(255)
    module.trainer = _Stage(training=False)
    assert module.on_after_batch_transfer(batch, 0)[0] is batch[0]
    module.trainer = _Stage(training=True)
    augmented = module.on_after_batch_transfer(batch, 0)[0]
    assert augmented.shape == plain.shape and augmented.dtype == torch.float32 and not torch.allclose(augmented, plain)
    assert augmented.min() >= 0 and augmented.max() <= 1  # still raw [0, 1] digits: the model normalises
    # Shifts, small rotations and scaling move ink around but keep about as much of it (no flips, no crops).
    ratio = (augmented > 0.5).float().sum() / (plain > 0.5).float().sum()
    assert 0.8 < ratio < 1.25


def test_random_affine_without_movement_is_the_identity():
    images = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(random_affine(images, 0.0, 0.0, 0.0), images, atol=1e-5, rtol=0)
