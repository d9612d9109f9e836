"""The plain PyTorch network and the LightningModule around it."""

import pytest
import torch

from lightning_app.model import MNISTCNN
from lightning_app.module import MNISTClassifier


def test_plain_module_maps_images_to_ten_logits():
    model = MNISTCNN(conv1_channels=8, conv2_channels=16, hidden_units=32, dropout=0.2)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert [type(layer).__name__ for layer in model.features] == ["Conv2d", "ReLU", "MaxPool2d"] * 2
    assert any(isinstance(layer, torch.nn.Dropout) and layer.p == 0.2 for layer in model.classifier)


def test_kernel_too_large_for_the_image_is_refused():
    with pytest.raises(ValueError, match="kernel_size=13"):
        MNISTCNN(kernel_size=13)


def test_lightning_module_saves_hyperparameters_and_predicts_probabilities():
    module = MNISTClassifier(hidden_units=64, lr=0.01)
    assert module.hparams.hidden_units == 64 and module.hparams.lr == 0.01
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == 0.01
    module.eval()
    probabilities = module.predict_step((torch.randn(3, 1, 28, 28), torch.zeros(3)), 0)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(3))
