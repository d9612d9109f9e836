"""Turn a person's own image of one handwritten digit into a 28x28 digit prepared the way MNIST's were.

MNIST's digits were scaled to fit a 20x20 box, keeping their aspect ratio and antialiased, then placed in the
28x28 field so that their centre of mass is at its centre, white ink on black. ``load_digit`` does the same to
a PNG or JPEG of any size, in colour or grey, with dark ink on light paper or light ink on a dark background.
Its errors describe the file without naming it, so that a caller can put the name in front.
"""

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lightning_app.errors import UserError
from lightning_app.network import IMAGE_SIZE

BOX = 20  # MNIST scaled every digit to fit 20x20 pixels
CENTRE = 14.0  # where MNIST's centres of mass lie, in rows and columns (the data set's means are 13.99 and 14.00)
MIN_CONTRAST = 25.0  # grey levels (of 255): anything fainter than this against the background is not a digit
NOISE = 0.2  # of the strongest ink: fainter marks are paper texture, shading or JPEG artefacts, not strokes


def load_digit(path: str | os.PathLike) -> np.ndarray:
    """Read an image file of one handwritten digit and return it MNIST-style: uint8 (28, 28), bright ink on black."""
    return centre(fit_box(crop(ink_map(read_grey(path)))))


def read_grey(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into float grey levels from 0 (black) to 255 (white)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UserError(f"cannot read the file: {err.strerror}") from None
    if not data:
        raise UserError("the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)  # phones store photos sideways and say so in EXIF
            if image.has_transparency_data:
                # A transparent background (drawing apps) counts as white paper.
                image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
            grey = np.asarray(image.convert("F"), dtype=np.float32)
            # 16-bit greyscale PNGs decode to integer modes with levels up to 65535.
            return grey / 257 if image.mode.startswith("I") else grey
    except UnidentifiedImageError:
        raise UserError("not an image file that Pillow can read (save the digit as PNG or JPEG)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # truncated data, odd modes, huge sizes
        raise UserError(f"the image cannot be decoded ({err})") from None


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Turn grey levels into ink from 0 (background or faint marks) to 1 (the strongest stroke), dark or light."""
    edges = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    # The frame is mostly background even when the digit touches it, so its median is the background's level.
    background = float(np.median(edges))
    dark_ink = background - grey.min() > grey.max() - background
    ink = background - grey if dark_ink else grey - background
    strongest = float(ink.max())
    if strongest < MIN_CONTRAST:
        raise UserError("the image is blank: it has no marks that stand out from the background")
    return np.clip((ink / strongest - NOISE) / (1 - NOISE), 0, 1)


def crop(ink: np.ndarray) -> np.ndarray:
    """Cut the ink map down to the bounding box of its ink."""
    rows, cols = np.nonzero(ink)
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


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
