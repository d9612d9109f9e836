"""Prepare each digit found in an image the way MNIST's were: ink scaled into a 20x20 box, centred by mass in 28x28."""

import os
from dataclasses import dataclass
from math import ceil

import numpy as np
from PIL import Image, ImageFilter

from lightning_app.model.network import IMAGE_SIZE
from lightning_app.photos.finding import find_digits
from lightning_app.photos.image_files import open_photo, read_photo

BOX = 20  # MNIST scaled every digit to fit 20x20 pixels


CENTRE = 14.0  # where MNIST's centres of mass lie, in rows and columns (the data set's means are 13.99 and 14.00)


FAINT = 0.02  # of a stroke's ink: fainter is no ink at all (the faint ringing of resampling)


STROKE = (0.08, 0.11)  # the width of MNIST's strokes over the digit's longer side: its middle half of digits


STROKE_SIDE = 56  # pixels, the digit's longer side while its strokes are made thinner or thicker


@dataclass
class Digits:
    """The digits found in an image, left to right, as the model receives them, and where they were found."""

    inputs: list[np.ndarray]  # uint8 (28, 28), bright ink on black
    boxes: list[tuple[int, int, int, int]]  # (left, top, right, bottom) in the image's pixels, right and bottom past
    photo: Image.Image  # the image in grey, at the size the digits were looked for at
    scale: float  # that size over the image's own


def load_digit(path: str | os.PathLike) -> np.ndarray:
    """Read an image file of one handwritten digit and return it MNIST-style: uint8 (28, 28), bright ink on black."""
    return load_digits(path, single=True).inputs[0]


def load_digits(path: str | os.PathLike, single: bool = False) -> Digits:
    """Read an image file of one or more handwritten digits side by side; ``single``: all its ink is one digit."""
    return digits_in(*read_photo(path), single)


def digits_from_bytes(data: bytes, single: bool = False) -> Digits:
    """Like ``load_digits``, for an image's bytes (an upload): the same decoding, limits and preparation."""
    return digits_in(*open_photo(data), single)


def digits_in(photo: Image.Image, size: tuple[int, int], single: bool) -> Digits:
    """The digits in a decoded photo (grey, at its working size) whose own size is ``size``, prepared for the model."""
    width, height = size
    scale = max(photo.size) / max(width, height)
    found = find_digits(np.asarray(photo, dtype=np.float32), single)
    inputs = [centre(fit_box(even_strokes(crop(digit.ink)))) for digit in found]
    boxes = [
        (int(left / scale), int(top / scale), min(ceil(right / scale), width), min(ceil(bottom / scale), height))
        for left, top, right, bottom in (digit.box for digit in found)
    ]
    return Digits(inputs, boxes, photo, scale)


def crop(ink: np.ndarray) -> np.ndarray:
    """Cut an ink map down to the bounding box of its ink."""
    rows, cols = np.nonzero(ink > FAINT)
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def even_strokes(ink: np.ndarray) -> np.ndarray:
    """Thin strokes much thicker than MNIST's, and thicken much thinner ones, so that the pen does not matter."""
    mask = ink >= 0.5
    edges = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    # A stroke's area is its length times its width, and its outline is twice its length.
    width = 2 * np.count_nonzero(mask) / max(edges, 1) / max(ink.shape)
    # The crop's own border is not counted as an edge, so solid ink (a drawn bar) looked wider than the digit,
    # and the filter below grew without bound: no stroke is wider than its digit.
    width = min(width, 1.0)
    change = (min(max(width, STROKE[0]), STROKE[1]) - width) * STROKE_SIDE
    grow = round(abs(change) / 2)  # pixels on each side of the strokes, at STROKE_SIDE
    if not grow:
        return ink
    scale = STROKE_SIDE / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS))
    room = Image.fromarray(np.pad(np.clip(small, 0, 1), grow))
    morph = ImageFilter.MaxFilter if change > 0 else ImageFilter.MinFilter
    even = np.asarray(room.filter(morph(2 * grow + 1)))
    # Blots and broken strokes can fool the estimate of the width: never thin a digit away.
    if np.count_nonzero(even >= 0.5) < np.count_nonzero(small >= 0.5) / 3:
        return ink
    return crop(even)


def fit_box(ink: np.ndarray) -> np.ndarray:
    """Scale the cropped ink to fit a 20x20 box, keeping its aspect ratio, with strokes as bright as MNIST's."""
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Float mode keeps a thin stroke from rounding away when a large image shrinks; Lanczos antialiases.
    small = np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0, None)  # Lanczos rings slightly below zero beside strokes
    # Thin pen lines average out grey when shrunk, while MNIST's strokes reach full white.
    return small * (255 / small.max())


def centre(digit: np.ndarray) -> np.ndarray:
    """Place the scaled digit in a black 28x28 field with its centre of mass at MNIST's centre."""
    height, width = digit.shape
    rows, cols = np.indices(digit.shape)
    mass = digit.sum()
    row, col = (rows * digit).sum() / mass, (cols * digit).sum() / mass
    # Whole-pixel shifts, like MNIST's; clamped so that a very lopsided digit stays whole in the field.
    top = min(max(round(CENTRE - row), 0), IMAGE_SIZE - height)
    left = min(max(round(CENTRE - col), 0), IMAGE_SIZE - width)
    field = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    field[top : top + height, left : left + width] = np.round(digit).astype(np.uint8)
    return field
