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
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == 0.01
    assert isinstance(scheduler, torch.optim.lr_scheduler.ExponentialLR) and scheduler.gamma == 0.8
    assert isinstance(MNISTClassifier(lr_schedule="constant").configure_optimizers(), torch.optim.Adam)
    module.eval()
    probabilities = module.predict_step((torch.randn(3, 1, 28, 28), torch.zeros(3)), 0)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(3))


def test_batch_norm_variant_normalises_after_each_convolution_and_the_hidden_layer():
    model = MNISTCNN(batch_norm=True)
    norms = [type(layer).__name__ for layer in model.modules() if "BatchNorm" in type(layer).__name__]
    assert norms == ["BatchNorm2d", "BatchNorm2d", "BatchNorm1d"]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_channels_last_keeps_the_state_dict_of_the_plain_network():
    fast, plain = MNISTClassifier(channels_last=True), MNISTClassifier(channels_last=False)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    assert fast.model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain.load_state_dict(fast.state_dict())
    images = torch.randn(2, 1, 28, 28)
    fast.eval(), plain.eval()
    torch.testing.assert_close(fast(images), plain(images), rtol=1e-4, atol=1e-5)
