"""Read people's own images of digits: find the digits in a photo or scan and prepare each the way MNIST's were."""

from lightning_app.photos.finding import find_digits
from lightning_app.photos.mnist_style import Digits, load_digit, load_digits

__all__ = ["Digits", "find_digits", "load_digit", "load_digits"]
