"""MNIST as a LightningDataModule: torchvision downloads the files, each split then lives in memory as uint8.

The module hands out raw images (uint8, (N, 28, 28)) and labels, nothing model-specific: the LightningModule
normalises its input itself. With ``augment`` the training batches are distorted on the device and handed out as
floats in [0, 1].
"""

import contextlib
import io
import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.parsing import AttributeDict
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.datasets import MNIST

from lightning_app.data.augmentation import random_distortion
from lightning_app.data.idx_files import IDX_FILES, MNISTFilesError, check_split, load_split, raw_folder
from lightning_app.data.sampling import EvaluationShard, ResumableDataLoader, ResumableSampler


# The data module's settings of the distortions, which matter only with ``augment``.
DISTORTIONS = ("shift", "rotation", "scale", "elastic", "elastic_sigma")


class InMemoryDigits(Dataset):
    """Digits kept as one uint8 tensor, handed out a whole batch at a time by ``__getitems__``."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        # One indexing operation per batch instead of one Python call and one collate per image.
        index = torch.as_tensor(indices)
        return self.images[index], self.labels[index]


def keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collate function for ``InMemoryDigits``: its ``__getitems__`` already returns a batch."""
    return batch


class MNISTDataModule(pl.LightningDataModule):
    """MNIST: 55,000 training and 5,000 validation images split from the training set, and the 10,000 test images.

    Args:
        data_dir: Folder holding MNIST/raw/ with the four IDX files; they are downloaded there if missing.
        batch_size: Training batch size.
        eval_batch_size: Batch size for validation, test and prediction (no gradients, so larger is faster).
        val_size: How many training images are held out for validation (chosen with ``split_seed``).
        split_seed: Seed of the fixed train/validation split. The shuffling follows ``seed_everything``.
        test_every_epoch: During fit, evaluate the test set after every epoch too, as the write-up does (a second
            validation loader, logged as ``test/``); checkpoints are still chosen by the validation split alone.
        augment: Randomly shift, rotate and scale training batches on the device (off: the write-up has none).
        shift: Largest shift in pixels, with ``augment``.
        rotation: Largest rotation in degrees, with ``augment``.
        scale: Largest relative change of size, with ``augment``.
        elastic: Strength in pixels of elastic distortions (Simard et al. 2003) with ``augment``; 0 for none.
        elastic_sigma: Smoothness in pixels of the elastic distortions' random field.
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 100,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        split_seed: int = 42,
        test_every_epoch: bool = True,
        augment: bool = False,
        shift: float = 2.0,
        rotation: float = 10.0,
        scale: float = 0.1,
        elastic: float = 0.0,
        elastic_sigma: float = 5.0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size}); the write-up uses 100.")
        if eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be at least 1 (got {eval_batch_size}).")
        if val_size < 1:
            raise ValueError(f"val_size must be at least 1 (got {val_size}); the default is 5000.")
        if elastic < 0 or elastic_sigma <= 0:
            raise ValueError(
                f"elastic must be 0 or more and elastic_sigma more than 0 (got {elastic}, {elastic_sigma})."
            )
        self.save_hyperparameters()
        self.train_set: InMemoryDigits | None = None
        self.val_set: InMemoryDigits | None = None
        self.test_set: InMemoryDigits | None = None

    @property
    def hparams_initial(self) -> AttributeDict:
        """The hyperparameters sent to the loggers: those in effect (no distortion settings without ``augment``),
        without LightningCLI's private entries (``_instantiator``)."""
        unused = () if self.hparams.augment else DISTORTIONS
        return AttributeDict(
            {k: v for k, v in super().hparams_initial.items() if not k.startswith("_") and k not in unused}
        )

    def prepare_data(self) -> None:
        """Download the four IDX files with torchvision unless they are already in ``data_dir``; check them."""
        self._download()
        n_train = check_split(self.hparams.data_dir, train=True)  # headers and sizes only: a few bytes per file
        check_split(self.hparams.data_dir, train=False)
        if not self.hparams.val_size < n_train:
            raise MNISTFilesError(
                f"val_size {self.hparams.val_size} does not fit the {n_train} training images in "
                f"{raw_folder(self.hparams.data_dir)}: choose a number between 1 and {n_train - 1}."
            )

    def _download(self) -> None:
        folder = raw_folder(self.hparams.data_dir)
        names = [name for pair in IDX_FILES.values() for name in pair]
        if all((folder / name).is_file() for name in names):
            return
        # What was there before, so that a failed download leaves the tree exactly as it found it.
        chain = [Path(self.hparams.data_dir), folder.parent, folder]
        existed = {path for path in chain if path.exists()} | (set(folder.iterdir()) if folder.is_dir() else set())
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                for train in (True, False):
                    MNIST(self.hparams.data_dir, train=train, download=True)
        except Exception as err:  # torchvision raises RuntimeError, URLError or OSError depending on the failure
            for path in folder.iterdir() if folder.is_dir() else ():
                if path not in existed and path.is_file():
                    path.unlink()
            for path in reversed(chain):
                if path not in existed and path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
            missing = ", ".join(name for name in names if not (folder / name).is_file())
            reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
            raise MNISTFilesError(
                f"data_dir {self.hparams.data_dir}: could not download MNIST into {folder} ({reason}). Training "
                f"needs the four MNIST files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
                f"and t10k-labels-idx1-ubyte (uncompressed, or as the original .gz files) in that folder; missing "
                f"now: {missing}. Either run once with network access, copy the files into {folder}, or point "
                f"data_dir at a folder that has them in MNIST/raw/."
            ) from None

    def setup(self, stage: str) -> None:
        """Load the splits into memory once; later calls (fit, then test) reuse them."""
        if stage in ("fit", "validate") and self.train_set is None:
            images, labels = load_split(self.hparams.data_dir, train=True)
            if not self.hparams.val_size < len(labels):
                raise MNISTFilesError(f"val_size {self.hparams.val_size} does not fit the {len(labels)} training images.")
            generator = torch.Generator().manual_seed(self.hparams.split_seed)
            order = torch.randperm(len(labels), generator=generator)
            val_index, train_index = order[: self.hparams.val_size], order[self.hparams.val_size :]
            self.train_set = InMemoryDigits(images[train_index], labels[train_index])
            self.val_set = InMemoryDigits(images[val_index], labels[val_index])
        # The test split is read only when something will look at it (a search never does).
        needs_test = stage in ("test", "predict") or (stage == "fit" and self.hparams.test_every_epoch)
        if needs_test and self.test_set is None:
            self.test_set = InMemoryDigits(*load_split(self.hparams.data_dir, train=False))

    def _shard(self) -> tuple[int, int]:
        """This process's rank and the number of processes (1 without a Trainer)."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world_size = self._shard()
        # The order depends only on the seed and the epoch, so that a resumed run sees the same batches; Lightning's
        # own seed (from seed_everything), as its distributed sampler uses.
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        sampler = ResumableSampler(self.train_set, num_replicas=world_size, rank=rank, seed=seed)
        return self._loader(ResumableDataLoader, self.train_set, self.hparams.batch_size, sampler)

    @staticmethod
    def _loader(cls: type[DataLoader], dataset: Dataset, batch_size: int, sampler: Sampler | None) -> DataLoader:
        # A private generator: otherwise every new iterator draws a seed from the global generator, and a resumed
        # run (which creates iterators at other moments) would continue with different dropout masks.
        return cls(dataset, batch_size=batch_size, sampler=sampler, collate_fn=keep_batch, generator=torch.Generator())

    def _eval_loader(self, dataset: InMemoryDigits) -> DataLoader:
        rank, world_size = self._shard()
        sampler = EvaluationShard(dataset, world_size, rank) if world_size > 1 else None
        return self._loader(DataLoader, dataset, self.hparams.eval_batch_size, sampler)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        fitting = self.trainer is not None and self.trainer.state.fn == "fit"
        if fitting and self.hparams.test_every_epoch:
            return [self._eval_loader(self.val_set), self._eval_loader(self.test_set)]
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        # uint8 travels to the device (4x less to copy than float); augmentation happens there.
        if isinstance(batch, Tensor):  # images alone (prediction, Lightning's example input): nothing to augment
            return batch
        images, labels = batch
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            hp = self.hparams
            images = random_distortion(
                images.unsqueeze(1).float().div(255), hp.shift, hp.rotation, hp.scale, hp.elastic, hp.elastic_sigma
            )
        return images, labels
