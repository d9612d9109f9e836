"""The plain PyTorch network: shapes, layers, and settings refused with the parameter's name."""

import pytest
import torch

from lightning_app.model.network import MNISTCNN
from lightning_app.model.stacked_network import StackedCNN


def test_maps_images_to_ten_logits_with_the_write_ups_layers():
    model = MNISTCNN(conv1_channels=8, conv2_channels=16, hidden_units=32, dropout=0.2)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert [type(layer).__name__ for layer in model.features] == ["Conv2d", "MaxPool2d", "ReLU"] * 2
    assert any(isinstance(layer, torch.nn.Dropout) and layer.p == 0.2 for layer in model.classifier)


def test_two_kernel_sizes_give_the_fast_recipes_800_features():
    model = MNISTCNN(conv1_channels=24, conv2_channels=32, kernel_sizes=(5, 3), hidden_units=256)
    assert model.classifier[2].in_features == 800
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"kernel_sizes": (13, 13)}, "kernel_sizes [13, 13] do not fit"),
        ({"hidden_units": 0}, "hidden_units must be at least 1 (got 0)"),
        ({"conv1_channels": -2}, "conv1_channels must be at least 1 (got -2)"),
        ({"dropout": 1.0}, "dropout must be in [0, 1) (got 1.0)"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_parameters_name(settings, message):
    with pytest.raises(ValueError) as error:
        MNISTCNN(**settings)
    assert str(error.value).startswith(message)


def test_batch_norm_variant_normalises_after_each_convolution_and_the_hidden_layer():
    model = MNISTCNN(batch_norm=True)
    norms = [type(layer).__name__ for layer in model.modules() if "BatchNorm" in type(layer).__name__]
    assert norms == ["BatchNorm2d", "BatchNorm2d", "BatchNorm1d"]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_stacked_network_stacks_normalised_convolutions_with_pooling_where_asked():
    model = StackedCNN(channels=(8, 8, 16), kernel_size=3, pool_after=(2,), hidden_units=32)
    kinds = [type(layer).__name__ for layer in model.features]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["MaxPool2d"] + ["Conv2d", "BatchNorm2d", "ReLU"]
    # 28 -> 26 -> 24, pooled to 12 -> 10: 16 channels of 10x10 into the hidden layer
    assert model.classifier[2].in_features == 16 * 10 * 10
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert StackedCNN(kernel_size=5, pool_after=(2,), hidden_units=0)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"channels": (32,) * 6, "kernel_size": 5}, "5 convolutions of kernel_size 5"),
        ({"pool_after": (5,)}, "pool_after [5]: count the convolutions from 1 to 4"),
        ({"channels": ()}, "channels must be a list"),
        ({"dropout": -0.1}, "dropout must be in [0, 1)"),
    ],
)
def test_stacked_settings_that_cannot_work_are_refused(settings, message):
    with pytest.raises(ValueError) as error:
        StackedCNN(**settings)
    assert str(error.value).startswith(message)
