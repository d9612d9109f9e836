"""MNIST for Lightning: the IDX files, the data module, the resumable sampling and the augmentation of batches."""

from lightning_app.data.datamodule import MNISTDataModule
from lightning_app.data.idx_files import load_split, raw_folder

__all__ = ["MNISTDataModule", "load_split", "raw_folder"]
