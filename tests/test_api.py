"""The Python API as Lightning's docs show it: the module and data module in a user's own script."""

import csv
import functools

import pytest
import torch
from pytorch_lightning import Trainer
from pytorch_lightning.loggers import CSVLogger

from lightning_app.data.datamodule import MNISTDataModule
from lightning_app.model.classifier import MNISTClassifier
from lightning_app.model.network import MNISTCNN

from conftest import SMALL_VAL


def test_fit_validate_test_and_predict_return_and_log_what_a_user_expects(small_mnist, tmp_path):
    datamodule = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL)
    model = MNISTClassifier()
    trainer = Trainer(
        max_epochs=2,
        logger=CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=datamodule)

    [tested] = trainer.test(model, datamodule=datamodule, verbose=False)
    assert tested.keys() == {"test/loss", "test/acc"} and tested["test/acc"] > 0.9
    [validated] = trainer.validate(model, datamodule=datamodule, verbose=False)
    assert validated.keys() == {"val/loss", "val/acc"} and validated["val/acc"] > 0.9  # no test figures mixed in

    batches = trainer.predict(model, datamodule=datamodule)
    probabilities = torch.cat(batches)
    assert probabilities.shape == (1000, 10)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(1000))
    labels = datamodule.test_set.labels
    assert (probabilities.argmax(dim=1) == labels).float().mean().item() == tested["test/acc"]

    with open(trainer.logger.log_dir + "/metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert [float(row["test/acc"]) for row in rows if row.get("test/acc")][-1] == tested["test/acc"]
    epochs = [row for row in rows if row.get("train/acc")]
    assert len(epochs) == 2  # the training figures of each epoch


def test_the_logged_training_loss_of_an_epoch_weighs_each_image_once(small_mnist, tmp_path):
    # 3,500 images in batches of 256: 13 full batches and one of 172. A mean of batch means would count each image
    # of the short batch 1.5 times as much as the others. The weights barely move (a tiny rate, no dropout), so the
    # logged figure must equal the mean over all images of the loss of the initial network.
    datamodule = MNISTDataModule(str(small_mnist), val_size=SMALL_VAL, batch_size=256)
    model = MNISTClassifier(network=MNISTCNN(dropout=0.0), optimizer=functools.partial(torch.optim.SGD, lr=1e-12))
    datamodule.setup("fit")
    images, labels = datamodule.train_set.images, datamodule.train_set.labels
    with torch.no_grad():
        per_image = torch.nn.functional.cross_entropy(model(images), labels)
    trainer = Trainer(
        max_epochs=1,
        logger=CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        enable_checkpointing=False,
    )
    trainer.fit(model, datamodule=datamodule)
    with open(trainer.logger.log_dir + "/metrics.csv") as file:
        [logged] = [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]
    assert logged == pytest.approx(per_image.item(), rel=1e-4)
