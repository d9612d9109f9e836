"""Turn a person's own image of handwritten digits (a scan, a drawing, a phone photo) into MNIST-style 28x28 digits.

MNIST's digits were scaled to fit a 20x20 box, keeping their aspect ratio and antialiased, then placed in the
28x28 field so that their centre of mass is at its centre, white ink on black. ``load_digits`` does the same to
each digit of a PNG or JPEG of any size, in colour or grey, with dark ink on light paper or light ink on a dark
background, after ``lightning_app.photos`` has found the digits, left to right, in uneven light. ``load_digit``
reads an image of one digit.

A file is only read when it is a regular file no larger than a photo can be, and only decoded when its header
declares no more pixels than a phone takes; a large photo is decoded straight at the reduced size the digits are
looked for at. Errors describe the file without naming it, so that a caller can put the name in front.
"""

import io
import os
import stat
import warnings
from dataclasses import dataclass
from math import ceil

import numpy as np
from PIL import ExifTags, Image, ImageFilter, ImageOps, UnidentifiedImageError

from lightning_app.errors import UserError
from lightning_app.network import IMAGE_SIZE
from lightning_app.photos import find_digits

BOX = 20  # MNIST scaled every digit to fit 20x20 pixels
CENTRE = 14.0  # where MNIST's centres of mass lie, in rows and columns (the data set's means are 13.99 and 14.00)
FAINT = 0.02  # of a stroke's ink: fainter is no ink at all (the faint ringing of resampling)
STROKE = (0.08, 0.11)  # the width of MNIST's strokes over the digit's longer side: its middle half of digits
STROKE_SIDE = 56  # pixels, the digit's longer side while its strokes are made thinner or thicker
MAX_BYTES = 50 * 2**20  # a phone's largest photos are a few tens of megabytes
MAX_PIXELS = 120_000_000  # and at most 108 megapixels
WORK_SIDE = 512  # the longer side, in pixels, that larger images are reduced to before the digits are looked for
FILE_KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a named pipe",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


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
    photo, (width, height) = read_photo(path)
    scale = max(photo.size) / max(width, height)
    found = find_digits(np.asarray(photo, dtype=np.float32), single)
    inputs = [centre(fit_box(even_strokes(crop(digit.ink)))) for digit in found]
    boxes = [
        (int(left / scale), int(top / scale), min(ceil(right / scale), width), min(ceil(bottom / scale), height))
        for left, top, right, bottom in (digit.box for digit in found)
    ]
    return Digits(inputs, boxes, photo, scale)


def read_photo(path: str | os.PathLike) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an image file into grey ("L"), its longer side reduced to at most ``WORK_SIDE``, and its own size."""
    data = read_file(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns of huge images (and refuses larger ones) as it opens them; the size is checked here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return decode(Image.open(io.BytesIO(data)))
    except UserError:
        raise
    except UnidentifiedImageError:
        raise UserError("not an image file that Pillow can read (save the digit as PNG or JPEG)") from None
    except Image.DecompressionBombError:
        raise UserError(too_many_pixels(f"more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")) from None
    except Exception as err:  # truncated or corrupt data raises any of many types in Pillow's decoders
        raise UserError(f"the image cannot be decoded ({type(err).__name__}: {err})") from None


def decode(image: Image.Image) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an opened image into grey, reduced to at most ``WORK_SIDE``, after checking its declared size."""
    longest = max(image.size)
    if image.width * image.height > MAX_PIXELS:
        raise UserError(too_many_pixels(f"{image.width} x {image.height} pixels"))
    scale = min(1.0, WORK_SIDE / longest)
    if image.format == "JPEG":
        # Decode in grey at 1/2, 1/4 or 1/8 of the size straight away, never smaller than the size wanted.
        image.draft("L", (round(image.width * scale), round(image.height * scale)))
    # Phones store photos sideways and say so in EXIF.
    size = image.size[::-1] if image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8) else image.size
    image = ImageOps.exif_transpose(image)
    if image.has_transparency_data:
        # A transparent background (drawing apps) counts as white paper.
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    if image.mode.startswith("I"):  # 16-bit greyscale PNGs decode to integer modes with levels up to 65535
        image = image.convert("F").point(lambda level: level / 257)
    image = image.convert("L")
    if scale < 1:
        reduce = round(longest * scale) / max(image.size)
        image = image.resize((round(image.width * reduce), round(image.height * reduce)), Image.Resampling.BOX)
    return image, size


def too_many_pixels(size: str) -> str:
    """The error for an image larger than any photo."""
    return (
        f"the image is {size}, more than a phone's photo has ({MAX_PIXELS // 10**6} megapixels at most): "
        f"scale it down or crop it to the digits"
    )


def read_file(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file no larger than ``MAX_BYTES``; anything else is refused before it is read."""
    try:
        check_file(os.stat(path))
        # O_NONBLOCK: should the path have become a named pipe since, opening it must not wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(descriptor, "rb") as file:
            check_file(os.fstat(file.fileno()))
            data = file.read(MAX_BYTES + 1)  # it may have grown since
    except OSError as err:
        raise UserError(f"cannot read the file: {err.strerror}") from None
    if len(data) > MAX_BYTES:
        raise UserError(too_large(len(data)))
    return data


def check_file(info: os.stat_result) -> None:
    """Refuse what is not a regular file (a folder, pipe or device), is empty, or is larger than a photo can be."""
    for is_kind, kind in FILE_KINDS.items():
        if is_kind(info.st_mode):
            raise UserError(f"it is {kind}, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise UserError("it is not a regular file, so not an image file")
    if info.st_size == 0:
        raise UserError("the file is empty")
    if info.st_size > MAX_BYTES:
        raise UserError(too_large(info.st_size))


def too_large(size: int) -> str:
    """The error for a file larger than any photo."""
    return (
        f"the file is {size / 2**20:.0f} MB, larger than a phone's photo can be ({MAX_BYTES // 2**20} MB at most): "
        f"scale it down or crop it to the digits"
    )


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
