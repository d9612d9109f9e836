"""The LitAPI: an uploaded image in, the same answer as ``predict --json`` out, many uploads read in one batch."""

import base64
import io
from dataclasses import dataclass

import litserve as ls
import numpy as np
import torch
from fastapi.responses import JSONResponse
from PIL import Image

from lightning_app.errors import UserError
from lightning_app.model.loading import load_model
from lightning_app.photos.answers import answer
from lightning_app.photos.image_files import ImageTooLarge
from lightning_app.photos.mnist_style import Digits, digits_from_bytes
from lightning_app.serving.processes import follow_server

FIELD = "image"  # the form field that holds the upload


@dataclass
class Refusal:
    """A request that cannot be answered, with its HTTP status and what is wrong."""

    status: int
    message: str


@dataclass
class Reading:
    """An upload's digits, with what the caller asked for; ``probabilities`` once the model has read them."""

    digits: Digits
    details: bool
    probabilities: list[torch.Tensor] | None = None


class DigitsAPI(ls.LitAPI):
    """Read the digits in uploaded images with one trained checkpoint, or several as an ensemble.

    Args:
        checkpoints: The checkpoint files, already checked by the command.
        max_batch_size: The most uploads read in one pass of the model.
        batch_timeout: Seconds to wait for a batch to fill; 0 reads what is waiting at once.
        threads: Torch's threads in each worker on a CPU; None leaves torch's default.
    """

    def __init__(
        self, checkpoints: list[str], max_batch_size: int = 1, batch_timeout: float = 0.0, threads: int | None = None
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path="/predict")
        self.checkpoints = [str(path) for path in checkpoints]
        self.threads = threads

    def setup(self, device: str) -> None:
        follow_server()
        if device == "cpu" and self.threads:
            torch.set_num_threads(self.threads)
        self.model = load_model(self.checkpoints, device)

    def decode_request(self, request) -> Reading | Refusal:
        # A refusal is returned, not raised: LitServe answers a whole batch with the error raised by one request.
        upload = request.get(FIELD) if hasattr(request, "get") else None
        if upload is None:
            return Refusal(
                400,
                f"the form has no field '{FIELD}': send the image as the file field '{FIELD}' of a "
                f"multipart form (curl -F {FIELD}=@photo.jpg)",
            )
        if not hasattr(upload, "file"):
            return Refusal(400, f"the field '{FIELD}' holds text, not a file: send the image file itself")
        single = str(request.get("single_digit", "")).lower() in ("1", "true", "on", "yes")
        details = str(request.get("details", "")).lower() in ("1", "true", "on", "yes")
        try:
            return Reading(digits_from_bytes(upload.file.read(), single), details)
        except ImageTooLarge as err:
            return Refusal(413, str(err))
        except UserError as err:
            return Refusal(422, str(err))

    def predict(self, x):
        # Without batching LitServe hands over one request, with it a list.
        return self.read(x) if self.max_batch_size > 1 else self.read([x])[0]

    def read(self, items: list[Reading | Refusal]) -> list[Reading | Refusal]:
        """Run every digit of every readable upload through the model at once."""
        readings = [item for item in items if isinstance(item, Reading)]
        inputs = [digit for reading in readings for digit in reading.digits.inputs]
        if inputs:
            probabilities = iter(self.model.probabilities(torch.from_numpy(np.stack(inputs))))
            for reading in readings:
                reading.probabilities = [next(probabilities) for _ in reading.digits.inputs]
        return items

    def encode_response(self, output: Reading | Refusal):
        if isinstance(output, Refusal):
            return JSONResponse({"error": output.message}, status_code=output.status)
        result = answer(output.probabilities, output.digits.boxes)
        if output.details:  # for the page: the ten bars, and the 28x28 inputs the model saw
            result["probabilities"] = [[round(float(p), 4) for p in row] for row in output.probabilities]
            result["inputs"] = [png_data_url(digit) for digit in output.digits.inputs]
        return result


def png_data_url(digit: np.ndarray) -> str:
    """A 28x28 input as a PNG data URL that a page can show."""
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
