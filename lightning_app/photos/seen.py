"""A picture of what the model saw: the photo with the digits' boxes, and the 28x28 inputs with the answers."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from lightning_app.errors import UserError
from lightning_app.photos.mnist_style import Digits

SHOWN_SIDE = 480  # pixels: the photo's longer side in the pictures of what the model saw


SHOWN_INPUT = 4  # times: how much the 28x28 inputs are enlarged in them


def picture_of_what_was_seen(digits: Digits, result: dict, path: Path) -> None:
    """Write a picture of what the model saw: the photo with the digits' boxes, and its inputs with its answers."""
    scale = SHOWN_SIDE / max(digits.photo.size)
    photo = digits.photo.resize(
        (round(digits.photo.width * scale), round(digits.photo.height * scale)), Image.Resampling.BILINEAR
    ).convert("RGB")
    font = ImageFont.load_default(size=14)
    side = 28 * SHOWN_INPUT
    per_row = max(1, photo.width // (side + 8))
    rows = -(-len(digits.inputs) // per_row)
    picture = Image.new("RGB", (max(photo.width, side + 8), photo.height + rows * (side + 28) + 4), "white")
    picture.paste(photo, (0, 0))
    draw = ImageDraw.Draw(picture)
    # The boxes are in the image's own pixels; the photo shown is scaled by digits.scale, then by scale.
    for index, (box, reading) in enumerate(zip(digits.boxes, result["digits"])):
        left, top, right, bottom = (round(v * digits.scale * scale) for v in box)
        draw.rectangle((left - 2, top - 2, right + 1, bottom + 1), outline=(230, 60, 0), width=2)
        draw.text((left, max(0, top - 18)), str(index + 1), fill=(230, 60, 0), font=font)
        x = (index % per_row) * (side + 8) + 4
        y = photo.height + 4 + (index // per_row) * (side + 28)
        enlarged = Image.fromarray(digits.inputs[index]).resize((side, side), Image.Resampling.NEAREST)
        picture.paste(enlarged.convert("RGB"), (x, y))
        label = f"{index + 1}: {reading['digit']} ({reading['probability']:.0%})"
        draw.text((x, y + side + 4), label, fill=(0, 0, 0), font=font)
    try:
        picture.save(path)
    except OSError as err:
        raise UserError(f"cannot write {path} for --show: {err.strerror or err}") from None
