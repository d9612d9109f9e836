"""MNIST's four IDX files: where they live, checks of their headers and sizes, and reading one split."""

import os
from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets import MNIST

IDX_IMAGES_MAGIC = 2051


IDX_LABELS_MAGIC = 2049


IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


_REFETCH = (
    "Replace it with the original file (delete it and its folder's other MNIST files and run again with network "
    "access to download them, or copy them from a good copy)."
)


class MNISTFilesError(ValueError):
    """The MNIST files in ``data_dir`` cannot serve the settings: missing, truncated, corrupt, or too few images."""


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
        raise MNISTFilesError(f"data_dir: cannot read the MNIST file {path}: {err.strerror}.") from None
    size = path.stat().st_size
    if len(header) < 4 + 4 * ndim or int.from_bytes(header[:4], "big") != magic:
        raise MNISTFilesError(
            f"data_dir: the MNIST file {path} is corrupt: it does not start with the IDX header (magic number "
            f"{magic}) that this file must have. {_REFETCH}"
        )
    dims = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = len(header) + torch.Size(dims).numel()
    if ndim == 3 and dims[1:] != [28, 28]:
        raise MNISTFilesError(
            f"data_dir: the MNIST file {path} holds {dims[1]}x{dims[2]} images, not 28x28. {_REFETCH}"
        )
    if size != expected:
        raise MNISTFilesError(
            f"data_dir: the MNIST file {path} is truncated or corrupt: its header announces {dims[0]} items "
            f"({expected} bytes) but the file has {size} bytes. {_REFETCH}"
        )
    return dims[0]


def check_split(data_dir: str | os.PathLike, train: bool) -> int:
    """Check one split's image and label files (headers, sizes, matching counts); return its number of images."""
    folder = raw_folder(data_dir)
    images_name, labels_name = IDX_FILES[train]
    n_images = check_idx_file(folder / images_name, IDX_IMAGES_MAGIC)
    n_labels = check_idx_file(folder / labels_name, IDX_LABELS_MAGIC)
    if n_images != n_labels:
        raise MNISTFilesError(
            f"data_dir: the MNIST files {images_name} ({n_images} images) and {labels_name} ({n_labels} labels) in "
            f"{folder} do not belong together. Replace them with the matching original files."
        )
    return n_images


def load_split(data_dir: str | os.PathLike, train: bool) -> tuple[Tensor, Tensor]:
    """Read one split as uint8 images (N, 28, 28) and int64 labels (N,), after checking both files."""
    check_split(data_dir, train)
    dataset = MNIST(str(data_dir), train=train)
    return dataset.data, dataset.targets
