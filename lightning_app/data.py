"""MNIST as a LightningDataModule: torchvision downloads the files, each split then lives in memory as uint8."""

import contextlib
import io
import math
import os
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.datasets import MNIST

from lightning_app.errors import UserError, require

# The training set's pixel statistics, as used by torchvision's and PyTorch's MNIST examples.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def to_unit_float(images: Tensor) -> Tensor:
    """uint8 images (N, 28, 28) as floats in [0, 1] of shape (N, 1, 28, 28)."""
    return images.unsqueeze(1).float().div_(255)


def standardize(images: Tensor) -> Tensor:
    """Shift and scale [0, 1] images by the training set's mean and standard deviation (in place)."""
    return images.sub_(MNIST_MEAN).div_(MNIST_STD)


def normalize(images: Tensor) -> Tensor:
    """Turn uint8 images of shape (N, 28, 28) into the float (N, 1, 28, 28) input the network was trained on."""
    return standardize(to_unit_float(images))


def random_affine(images: Tensor, shift: float, rotation: float, scale: float) -> Tensor:
    """Shift (pixels), rotate (degrees) and scale (fraction) each image of a batch at random, on its device.

    No flips: a mirrored digit is another glyph, or no digit at all.
    """
    n, _, height, width = images.shape
    uniform = lambda *size: torch.rand(*size, device=images.device).mul_(2).sub_(1)  # noqa: E731
    angle = uniform(n) * math.radians(rotation)
    zoom = 1 + uniform(n) * scale
    offset = uniform(n, 2) * shift * 2 / torch.tensor([width, height], device=images.device)
    # affine_grid maps output to input coordinates, so the inverse transform goes into theta.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def raw_folder(data_dir: str | os.PathLike) -> Path:
    """The folder in which torchvision keeps (and looks for) the four MNIST IDX files."""
    return Path(data_dir) / "MNIST" / "raw"


def check_idx_file(path: Path, magic: int) -> int:
    """Check an IDX file's header against its size and return the number of items it holds."""
    ndim = magic & 0xFF
    try:
        with open(path, "rb") as file:
            header = file.read(4 + 4 * ndim)
    except OSError as err:
        raise UserError(f"Cannot read the MNIST file {path}: {err.strerror}.") from None
    size = path.stat().st_size
    refetch = (
        f"Replace it with the original file (delete it and its folder's other MNIST files and run again with "
        f"network access to download them, or copy them from a good copy)."
    )
    if len(header) < 4 + 4 * ndim or int.from_bytes(header[:4], "big") != magic:
        raise UserError(
            f"The MNIST file {path} is corrupt: it does not start with the IDX header "
            f"(magic number {magic}) that this file must have. {refetch}"
        )
    dims = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = len(header) + torch.Size(dims).numel()
    if ndim == 3 and dims[1:] != [28, 28]:
        raise UserError(f"The MNIST file {path} holds {dims[1]}x{dims[2]} images, not 28x28. {refetch}")
    if size != expected:
        raise UserError(
            f"The MNIST file {path} is truncated or corrupt: its header announces {dims[0]} items "
            f"({expected} bytes) but the file has {size} bytes. {refetch}"
        )
    return dims[0]


def check_split(data_dir: str | os.PathLike, train: bool) -> None:
    """Check one split's image and label files: headers, sizes, and that they hold the same number of items."""
    folder = raw_folder(data_dir)
    images_name, labels_name = IDX_FILES[train]
    n_images = check_idx_file(folder / images_name, IDX_IMAGES_MAGIC)
    n_labels = check_idx_file(folder / labels_name, IDX_LABELS_MAGIC)
    if n_images != n_labels:
        raise UserError(
            f"The MNIST files {images_name} ({n_images} images) and {labels_name} ({n_labels} labels) in "
            f"{folder} do not belong together. Replace them with the matching original files."
        )


def load_split(data_dir: str | os.PathLike, train: bool) -> tuple[Tensor, Tensor]:
    """Read one split as uint8 images (N, 28, 28) and int64 labels (N,), after checking both files."""
    check_split(data_dir, train)
    dataset = MNIST(str(data_dir), train=train)
    return dataset.data, dataset.targets


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


class EpochShuffleSampler(Sampler[int]):
    """Random order that depends only on a seed and the epoch, so a resumed run sees the same batches."""

    def __init__(self, size: int, seed: int, skip: int = 0) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.skip = skip  # indices of the next pass already trained on (a run resumed mid-epoch)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every training epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        # The whole epoch even when resuming mid-way: Lightning counts the epoch's batches from this.
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator)[self.skip :]
        self.skip = 0
        return iter(order.tolist())


class MNISTDataModule(pl.LightningDataModule):
    """MNIST digits: 55,000 training and 5,000 validation images split from the training set, and the 10,000 test images.

    Args:
        data_dir: Folder holding MNIST/raw/ with the four IDX files; they are downloaded there if missing.
        batch_size: Training batch size.
        eval_batch_size: Batch size for validation, test and prediction (no gradients, so larger is faster).
        val_size: How many training images are held out for validation (chosen with ``split_seed``).
        split_seed: Seed of the fixed train/validation split and of the shuffling order (``seed_everything``
            sets the initial weights and dropout; under DDP Lightning's sampler shuffles with it instead).
        augment: Randomly shift, rotate and scale training batches on the device (off: the write-up has none).
        shift: Largest shift in pixels, with ``augment``.
        rotation: Largest rotation in degrees, with ``augment``.
        scale: Largest relative change of size, with ``augment``.
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 100,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        split_seed: int = 42,
        augment: bool = False,
        shift: float = 2.0,
        rotation: float = 10.0,
        scale: float = 0.1,
    ) -> None:
        super().__init__()
        require(batch_size >= 1, f"--data.batch_size must be at least 1 (got {batch_size}); the write-up uses 100.")
        require(eval_batch_size >= 1, f"--data.eval_batch_size must be at least 1 (got {eval_batch_size}).")
        require(val_size >= 1, f"--data.val_size must be at least 1 (got {val_size}); the default is 5000.")
        self.save_hyperparameters()
        self.train_set: InMemoryDigits | None = None
        self.val_set: InMemoryDigits | None = None
        self.test_set: InMemoryDigits | None = None

    def prepare_data(self) -> None:
        """Download the four IDX files with torchvision unless they are already in ``data_dir``; check them."""
        self._download()
        for train in (True, False):
            check_split(self.hparams.data_dir, train)  # headers and sizes only: a few bytes read per file

    def _download(self) -> None:
        folder = raw_folder(self.hparams.data_dir)
        names = [name for pair in IDX_FILES.values() for name in pair]
        if all((folder / name).is_file() for name in names):
            return
        created = not folder.exists()
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                for train in (True, False):
                    MNIST(self.hparams.data_dir, train=train, download=True)
        except Exception as err:  # torchvision raises RuntimeError, URLError or OSError depending on the failure
            if created and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
            missing = ", ".join(name for name in names if not (folder / name).is_file())
            raise UserError(
                f"Could not download MNIST into {folder} ({type(err).__name__}: {str(err).strip().splitlines()[0]}). "
                f"Training needs the four MNIST files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                f"t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (uncompressed, or as the original .gz files) "
                f"in that folder; missing now: {missing}. Either run once with network access, copy the files "
                f"into {folder}, or point to a folder that has them in MNIST/raw/ with --data.data_dir DIR."
            ) from None

    def setup(self, stage: str) -> None:
        """Load the splits into memory once; later calls (fit, then test) reuse them."""
        if stage in ("fit", "validate"):
            self._setup_train_val()
        if self.test_set is None:
            self.test_set = InMemoryDigits(*load_split(self.hparams.data_dir, train=False))

    def _setup_train_val(self) -> None:
        if self.train_set is not None:
            return
        images, labels = load_split(self.hparams.data_dir, train=True)
        val_size = self.hparams.val_size
        if not 0 < val_size < len(labels):
            raise UserError(
                f"--data.val_size {val_size} does not fit the {len(labels)} training images in "
                f"{raw_folder(self.hparams.data_dir)}: choose a number between 1 and {len(labels) - 1}."
            )
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.hparams.split_seed))
        val_index, train_index = order[:val_size], order[val_size:]
        self.train_set = InMemoryDigits(images[train_index], labels[train_index])
        self.val_set = InMemoryDigits(images[val_index], labels[val_index])

    def train_dataloader(self) -> DataLoader:
        batch_size = self.hparams.batch_size
        sampler = EpochShuffleSampler(len(self.train_set), seed=self.hparams.split_seed)
        sampler.skip = self._batches_done_this_epoch() * batch_size
        return self._loader(self.train_set, batch_size, sampler=sampler)

    def _batches_done_this_epoch(self) -> int:
        """How far into the current epoch a resumed run's checkpoint was saved (0 at an epoch boundary).

        With one batch per optimizer step and whole epochs, the restored global step tells: the batches of this
        epoch before it were trained on already and must not be seen twice.
        """
        if self.trainer is None or self.trainer.world_size > 1:
            return 0  # under DDP the shards are cut after this sampler; a mid-epoch resume repeats that epoch
        per_epoch = math.ceil(len(self.train_set) / self.hparams.batch_size)
        done = self.trainer.global_step - self.trainer.current_epoch * per_epoch
        return done if 0 < done < per_epoch else 0

    def _loader(self, dataset: InMemoryDigits, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
        # A private generator: otherwise every new iterator draws a seed from the global generator, and a resumed
        # run (which creates iterators at other moments) would continue with different dropout masks.
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, collate_fn=keep_batch, generator=torch.Generator()
        )

    def _eval_loader(self, dataset: InMemoryDigits) -> DataLoader:
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default DistributedSampler pads the shards to equal length by repeating images, which
            # would count some twice; this one gives each image to exactly one rank.
            trainer = self.trainer
            sampler = UnrepeatedDistributedSampler(dataset, trainer.world_size, trainer.global_rank, shuffle=False)
        return self._loader(dataset, self.hparams.eval_batch_size, sampler=sampler)

    def val_dataloader(self) -> list[DataLoader]:
        # The write-up evaluates on the test set after every epoch: a second validation loader does that in the
        # same pass, while checkpoint selection looks only at the first (the validation split).
        return [self._eval_loader(self.val_set), self._eval_loader(self.test_set)]

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        # uint8 travels to the device (4x less to copy than float) and is normalised (and augmented) there.
        images, labels = batch
        images = to_unit_float(images)
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            hp = self.hparams
            images = random_affine(images, hp.shift, hp.rotation, hp.scale)
        return standardize(images), labels
