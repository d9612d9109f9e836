"""Read an image safely: a regular file no larger than a photo can be, decoded in grey at a working size."""

import io
import os
import stat
import warnings

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from lightning_app.errors import UserError

MAX_BYTES = 50 * 2**20  # a phone's largest photos are a few tens of megabytes


MAX_PIXELS = 120_000_000  # and at most 108 megapixels


WORK_SIDE = 512  # the longer side, in pixels, that larger images are reduced to before the digits are looked for


class ImageTooLarge(UserError):
    """An image with more bytes or pixels than a phone's photo has (a server answers it 413, not 422)."""


FILE_KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a named pipe",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


def read_photo(path: str | os.PathLike) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an image file into grey ("L"), its longer side reduced to at most ``WORK_SIDE``, and its own size."""
    return open_photo(read_file(path))


def open_photo(data: bytes) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an image's bytes (a file's, or a request's body) like ``read_photo``, with the same limits."""
    if not data:
        raise UserError("the image is empty")
    if len(data) > MAX_BYTES:
        raise ImageTooLarge(too_large(len(data)))
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
        raise ImageTooLarge(too_many_pixels(f"more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")) from None
    except Exception as err:  # truncated or corrupt data raises any of many types in Pillow's decoders
        raise UserError(f"the image cannot be decoded ({type(err).__name__}: {err})") from None


def decode(image: Image.Image) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an opened image into grey, reduced to at most ``WORK_SIDE``, after checking its declared size."""
    longest = max(image.size)
    if image.width * image.height > MAX_PIXELS:
        raise ImageTooLarge(too_many_pixels(f"{image.width} x {image.height} pixels"))
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
        raise ImageTooLarge(too_large(len(data)))
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
        raise ImageTooLarge(too_large(info.st_size))


def too_large(size: int) -> str:
    """The error for a file larger than any photo."""
    return (
        f"the file is {size / 2**20:.0f} MB, larger than a phone's photo can be ({MAX_BYTES // 2**20} MB at most): "
        f"scale it down or crop it to the digits"
    )
