"""The LightningModule: raw images in, an injected network, optimizer and schedule, and self-contained checkpoints."""

import functools
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_app.data.idx_files import load_split
from lightning_app.model.classifier import MNISTClassifier
from lightning_app.model.network import MNISTCNN


def test_raw_uint8_and_unit_float_images_give_the_same_logits():
    module = MNISTClassifier().eval()
    digits = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    as_float = digits.float().div(255)
    torch.testing.assert_close(module(digits), module(as_float))
    torch.testing.assert_close(module(digits), module(as_float.unsqueeze(1)))


def test_default_is_the_write_ups_cnn_trained_by_adam_at_0_001():
    module = MNISTClassifier()
    assert isinstance(module.network, MNISTCNN)
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == 0.001


def test_an_injected_network_optimizer_and_schedule_are_used():
    network = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    module = MNISTClassifier(
        network=network,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        scheduler=functools.partial(torch.optim.lr_scheduler.ExponentialLR, gamma=0.5),
    )
    assert module.network is network and "network" not in module.hparams  # a module is no hyperparameter
    configured = module.configure_optimizers()
    assert isinstance(configured["optimizer"], torch.optim.SGD)
    assert configured["lr_scheduler"]["interval"] == "epoch"
    assert module(torch.zeros(2, 28, 28, dtype=torch.uint8)).shape == (2, 10)


def test_a_schedule_sized_in_steps_gets_the_runs_length_and_steps_every_step():
    module = MNISTClassifier(scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.01))
    module.trainer = SimpleNamespace(estimated_stepping_batches=123)  # what the Trainer computes for a run
    configured = module.configure_optimizers()
    assert configured["lr_scheduler"]["scheduler"].total_steps == 123
    assert configured["lr_scheduler"]["interval"] == "step"


def test_label_smoothing_outside_its_range_is_refused_with_the_parameters_name():
    with pytest.raises(ValueError, match=r"^label_smoothing must be in \[0, 1\)"):
        MNISTClassifier(label_smoothing=1.5)


def test_a_checkpoint_loaded_in_plain_python_classifies_raw_uint8_digits(trained_run, small_mnist):
    model = MNISTClassifier.load_from_checkpoint(
        trained_run.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    images, labels = load_split(small_mnist, train=False)  # uint8, as in any image file
    assert images.dtype == torch.uint8
    model.eval()
    with torch.inference_mode():
        predicted = model(images).argmax(dim=1)
    accuracy = (predicted == labels).float().mean().item()
    assert accuracy == pytest.approx(trained_run.result["final_test_acc"], abs=0.003)
    assert accuracy >= 0.93


def test_the_loggers_see_no_private_entries():
    module = MNISTClassifier(network=MNISTCNN(hidden_units=16))
    assert not [key for key in module.hparams_initial if key.startswith("_")]
    assert "network" not in module.hparams_initial
