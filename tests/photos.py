"""Render real MNIST digits as phone photos of handwriting on paper, for the tests and benchmarks/photos.py.

A ``Look`` says how one photo is taken: the paper's tint and the gradient of light across it, the pen's colour
and width, the tilt, ruled lines, specks, a shadow at the border, sensor noise and JPEG. ``render`` draws one or
more digits side by side with that look and returns the photo with each digit's box, so that a test can check
both the answer and where it was found. Everything is drawn from the 28x28 digits themselves, so the untouched
digit is the reference: a perfect preparation gives the model back what MNIST gave it.
"""

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PAPERS = {"white": (250, 250, 248), "off-white": (238, 232, 216), "blue": (220, 230, 242), "pink": (244, 226, 228)}
INKS = {"black": (28, 28, 34), "blue": (30, 48, 150), "pencil": (105, 105, 112)}


@dataclass(frozen=True)
class Look:
    """How a photo is taken; the default is a clean scan: white paper, black ink, nothing else."""

    paper: str = "white"
    ink: str = "black"
    light: float = 0.0  # how much darker the dim side of the gradient of light is than the bright side (0 to 1)
    pen: float = 0.0  # change of stroke width, in MNIST pixels on each side: below 0 thinner, above 0 thicker
    tilt: float = 0.0  # degrees, anticlockwise
    noise: float = 0.0  # standard deviation of the sensor noise, in grey levels
    jpeg: int | None = None  # JPEG quality, or None for a lossless photo
    ruled: bool = False  # faint ruled lines across the page and a margin line
    specks: int = 0  # small dark dots of dirt
    shadow: bool = False  # a dark shadow along one edge of the photo
    broken: bool = False  # a gap across each digit's strokes, as when a pen skips
    light_on_dark: bool = False  # chalk on a blackboard: the photo's grey levels inverted


def random_look(rng: np.random.Generator, **fixed) -> Look:
    """A photo as people take them: every condition at once, each drawn at random (``fixed`` overrides any)."""
    look = Look(
        paper=str(rng.choice(list(PAPERS))),
        ink=str(rng.choice(list(INKS))),
        light=float(rng.uniform(0.1, 0.45)),
        pen=float(rng.uniform(-0.5, 0.8)),
        tilt=float(rng.uniform(-5, 5)),
        noise=float(rng.uniform(2, 7)),
        jpeg=int(rng.integers(60, 95)),
    )
    return replace(look, **fixed)


def ink_alpha(digit: np.ndarray, height: int, look: Look, rng: np.random.Generator) -> Image.Image:
    """The digit's ink as an "L" mask ``height`` pixels tall, with the pen's width, tilt and breaks applied."""
    box = Image.fromarray(digit).getbbox()
    digit = digit[box[1] : box[3], box[0] : box[2]]
    scale = height / digit.shape[0]
    size = (max(1, round(digit.shape[1] * scale)), height)
    # Antialiased MNIST strokes become smooth pen strokes when enlarged.
    alpha = Image.fromarray(digit).resize(size, Image.Resampling.BICUBIC)
    width = round(abs(look.pen) * scale)
    if width:
        grow = ImageFilter.MaxFilter if look.pen > 0 else ImageFilter.MinFilter
        room = Image.new("L", (alpha.width + 2 * width, alpha.height + 2 * width))  # for the strokes to grow into
        room.paste(alpha, (width, width))
        alpha = room.filter(grow(2 * width + 1)).filter(ImageFilter.BoxBlur(1))
        alpha = alpha.crop(alpha.getbbox())
    if look.broken:
        # A gap across the middle third: the pieces above and below it still overlap horizontally.
        gap = np.asarray(alpha).copy()
        top = int(alpha.height * rng.uniform(0.35, 0.6))
        gap[top : top + max(2, round(alpha.height * 0.06))] = 0
        alpha = Image.fromarray(gap)
    if look.tilt:
        alpha = alpha.rotate(look.tilt, resample=Image.Resampling.BICUBIC, expand=True)
    return alpha.crop(alpha.point(lambda level: 255 if level > 40 else 0).getbbox())  # the box of its ink


def render(
    digits: list[np.ndarray], look: Look, rng: np.random.Generator, size=(480, 360), height: float | None = None
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A photo of the digits written side by side, and each digit's (left, top, right, bottom) box in it.

    ``height`` is the digits' height as a fraction of the photo's; by default it is drawn at random, smaller for
    longer numbers so that they fit.
    """
    width_px, height_px = size
    if height is None:
        height = rng.uniform(0.3, 0.6) if len(digits) == 1 else rng.uniform(0.22, 0.35)
    alphas = [ink_alpha(digit, round(height * height_px), look, rng) for digit in digits]
    gaps = [round(height * height_px * rng.uniform(0.1, 0.3)) for _ in alphas[1:]]  # a "1" is narrow, a gap not
    total = sum(alpha.width for alpha in alphas) + sum(gaps)
    if total > 0.9 * width_px:  # too wide: write smaller
        return render(digits, look, rng, size, height * 0.85 * width_px / total)
    ink = Image.new("L", size, 0)
    x = int(rng.integers(round(0.05 * width_px), round(0.95 * width_px - total) + 1))
    boxes = []
    for alpha, gap in zip(alphas, [*gaps, 0]):
        y = int(rng.integers(round(0.08 * height_px), round(0.92 * height_px) - alpha.height + 1))
        ink.paste(255, (x, y), alpha)  # where the strokes of close digits meet, the ink adds up
        boxes.append((x, y, x + alpha.width, y + alpha.height))
        x += alpha.width + gap
    return photograph(np.asarray(ink, dtype=np.float32) / 255, look, rng, boxes), boxes


def photograph(ink: np.ndarray, look: Look, rng: np.random.Generator, boxes) -> Image.Image:
    """Put the ink on paper and take the photo: lines, specks, light, shadow and noise (JPEG is for ``save``)."""
    height, width = ink.shape
    marks = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(marks)
    if look.ruled:
        # Faint lines, tilted with the page, every tenth of its height, and a margin line near the left edge.
        slope = np.tan(np.radians(-look.tilt)) * width
        for y in np.arange(rng.uniform(0, height / 10), height, height / 10):
            draw.line([(0, y), (width, y + slope)], fill=90, width=2)
        draw.line([(0.08 * width, 0), (0.08 * width - slope * height / width, height)], fill=120, width=2)
    dirt = Image.new("L", (width, height), 0)
    for _ in range(look.specks):
        x, y, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(1, 2.5)
        ImageDraw.Draw(dirt).ellipse([x - r, y - r, x + r, y + r], fill=200)
    colour = np.array(INKS[look.ink], dtype=np.float32)
    if look.ink == "pencil":
        ink = ink * rng.uniform(0.55, 1.0, ink.shape)  # graphite leaves a grainy stroke
    paper = np.array(PAPERS[look.paper], dtype=np.float32)
    lines = np.asarray(marks, dtype=np.float32)[..., None] / 255
    specks = np.asarray(dirt, dtype=np.float32)[..., None] / 255
    image = paper * (1 - lines) + np.array([150, 175, 215], dtype=np.float32) * lines  # light blue
    image = image * (1 - specks) + 60 * specks
    alpha = ink[..., None]
    image = image * (1 - alpha) + colour * alpha
    rows, cols = np.indices((height, width), dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * cols / width + np.sin(angle) * rows / height
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    light = 1 - look.light * ramp
    if look.shadow:
        # A hand or the phone casts a soft-edged shadow along the edge with the most room beside the digits.
        lefts, tops, rights, bottoms = np.array(boxes).T
        room = [lefts.min() / width, 1 - rights.max() / width, tops.min() / height, 1 - bottoms.max() / height]
        side = int(np.argmax(room))
        depth = [cols / width, 1 - cols / width, rows / height, 1 - rows / height][side]
        edge = min(0.16, room[side] * 0.6)
        light = light * (1 - 0.5 / (1 + np.exp((depth - edge) * 30)))
    image = image * light[..., None]
    if look.noise:
        image = image + rng.normal(0, look.noise, image.shape)
    if look.light_on_dark:
        image = 255 - image
    return Image.fromarray(np.clip(np.round(image), 0, 255).astype(np.uint8))


def save(photo: Image.Image, look: Look, path) -> str:
    """Save a photo as its look says: JPEG at its quality, or PNG; returns the file's path with its suffix."""
    path = f"{path}.{'jpg' if look.jpeg else 'png'}"
    if look.jpeg:
        photo.save(path, quality=look.jpeg)
    else:
        photo.save(path)
    return path
