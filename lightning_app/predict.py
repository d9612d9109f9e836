"""Classify your own images of handwritten digits: ``python -m lightning_app.predict --ckpt_path last IMAGE...``."""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lightning_app import checkpoints, runs
from lightning_app.errors import EXIT_USER_ERROR, UserError, report_user_errors
from lightning_app.images import load_digit


def parse_args(args: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning_app.predict",
        description="Classify images (PNG, JPEG, ...) that each show one handwritten digit, with a trained checkpoint.",
    )
    parser.add_argument(
        "--ckpt_path",
        required=True,
        help="A .ckpt file, or 'last' / 'best' for the newest run's last or best checkpoint.",
    )
    parser.add_argument("--logs_dir", default="logs", help="The folder `fit` writes runs to, for 'last' and 'best'.")
    parser.add_argument("--name", default="mnist", help="The runs' name under --logs_dir, for 'last' and 'best'.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu, cuda, ...")
    parser.add_argument("--json", action="store_true", help="Print a JSON list instead of one line per image.")
    parser.add_argument("images", nargs="+", help="Image files, each showing one digit.")
    return parser.parse_args(args)


def check_device(name: str) -> torch.device:
    """The torch device named by --device, after checking that this machine has it."""
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:  # torch raises either, depending on how it was built
        raise UserError(
            f"--device {name} is not available here ({str(err).strip().splitlines()[0]}). Use --device cpu, "
            f"or cuda on a machine with an NVIDIA GPU and a CUDA build of PyTorch."
        ) from None
    return device


def top_two(probabilities: Tensor) -> dict[str, int | float]:
    """The most likely digit and the runner-up, with their probabilities."""
    values, digits = probabilities.topk(2)
    return {
        "digit": int(digits[0]),
        "probability": round(float(values[0]), 4),
        "runner_up": int(digits[1]),
        "runner_up_probability": round(float(values[1]), 4),
    }


def format_line(result: dict) -> str:
    """One image's result as a line of text."""
    if "error" in result:
        return f"{result['file']}: error: {result['error']}"
    return (
        f"{result['file']}: {result['digit']} ({result['probability']:.1%})  "
        f"runner-up {result['runner_up']} ({result['runner_up_probability']:.1%})"
    )


@report_user_errors
def main(args: list[str] | None = None) -> list[dict]:
    """Classify each image and print the results; exit with status 2 at the end if any image could not be read.

    Returns one dict per image, in the order given: the file and its digit, probability, runner-up and
    runner-up probability, or the file and an error.
    """
    options = parse_args(args)
    device = check_device(options.device)
    # Checkpoints are read with weights_only, so a crafted file cannot run code.
    path = runs.find(options.ckpt_path, Path(options.logs_dir) / options.name)
    model = checkpoints.load_classifier(path, device)
    results, digits = [], []
    for file in options.images:
        try:
            digits.append(load_digit(file))
            results.append({"file": file})
        except UserError as err:  # one unreadable image should not cost the others their answers
            results.append({"file": file, "error": str(err)})
    readable = [result for result in results if "error" not in result]
    if digits:
        for result, probabilities in zip(readable, model.probabilities(torch.from_numpy(np.stack(digits)))):
            result.update(top_two(probabilities))
    print(json.dumps(results, indent=2) if options.json else "\n".join(map(format_line, results)), flush=True)
    if len(readable) < len(results):
        raise SystemExit(EXIT_USER_ERROR)
    return results


if __name__ == "__main__":
    main()
