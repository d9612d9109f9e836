"""Read your own images of handwritten digits: ``python -m lightning_app.predict --ckpt_path last IMAGE...``.

Each image may show one digit or a number written side by side (a house number, a year, a code); photos of
digits on paper work as well as clean scans. ``--show DIR`` writes, for each image, a picture of what the model
saw: the photo with the digits' boxes, and the 28x28 inputs it received with its answers.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightning_app.errors import EXIT_USER_ERROR, UserError, report_user_errors
from lightning_app.model.loading import load_model
from lightning_app.photos.answers import answer, format_line
from lightning_app.photos.mnist_style import load_digits
from lightning_app.photos.seen import picture_of_what_was_seen
from lightning_app.training import run_folder


def parse_args(args: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning_app.predict",
        description="Read handwritten digits, or numbers, in images (scans or photos) with a trained checkpoint.",
    )
    run_folder.add_checkpoint_options(parser)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu, cuda, ...")
    parser.add_argument("--json", action="store_true", help="Print a JSON list instead of one line per image.")
    parser.add_argument(
        "--single_digit",
        action="store_true",
        help="Each image shows one digit: read all of its ink as one digit instead of looking for a number.",
    )
    parser.add_argument(
        "--show",
        metavar="DIR",
        help="Write, for each image, DIR/<name>-seen.png: the photo with the boxes of the digits found, and the "
        "28x28 inputs the model received with its answers.",
    )
    parser.add_argument(
        "images",
        nargs="+",
        help="Image files, each showing one digit or a number (PNG, JPEG, ...), or folders of them.",
    )
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


NO_IMAGES = "it is a folder with no image files in it (PNG, JPEG, ...)"


def image_files(arguments: list[str]) -> list[tuple[str, str | None]]:
    """The images to read, each with the problem that keeps it from being read, if one is known already.

    An argument that is a folder stands for the image files in it, by name; a folder without any, or one that
    cannot be listed, stays in the list with its problem.
    """
    extensions = set(Image.registered_extensions())
    files: list[tuple[str, str | None]] = []
    for argument in arguments:
        folder = Path(argument)
        if not folder.is_dir():
            files.append((argument, None))
            continue
        try:
            inside = sorted(path for path in folder.iterdir() if path.suffix.lower() in extensions)
        except OSError as err:
            files.append((argument, f"the folder cannot be listed: {err.strerror or err}"))
            continue
        images = [(str(path), None) for path in inside if not path.name.startswith(".")]
        files.extend(images or [(argument, NO_IMAGES)])
    return files


def picture_paths(folder: Path, files: list[str]) -> list[Path]:
    """Where --show writes each image's picture: <name>-seen.png, numbered when two images share a name."""
    paths, taken = [], set()
    for file in files:
        stem, number = Path(file).stem, 1
        path = folder / f"{stem}-seen.png"
        while path in taken:
            number += 1
            path = folder / f"{stem}-{number}-seen.png"
        taken.add(path)
        paths.append(path)
    return paths


@report_user_errors
def main(args: list[str] | None = None) -> list[dict]:
    """Read each image and print the results; exit with status 2 at the end if any image could not be read.

    Returns one dict per image, in the order given: the file, the number read (``number``, its digits left to
    right) and each digit (``digits``: digit, probability, runner-up, runner-up probability, and box as left,
    top, right, bottom in the image's pixels); for an image of one digit, also that digit's fields at the top
    level, as before numbers were read; with --show, the path of the picture (``picture``). Or the file and an
    error.
    """
    options = parse_args(args)
    device = check_device(options.device)
    files = image_files(options.images)
    if options.show:
        folder = Path(options.show)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"--show {folder}: the folder cannot be created ({err.strerror or err}).") from None
        pictures = picture_paths(folder, [file for file, _ in files])
    # Checkpoints are read with weights_only, so a crafted file cannot run code.
    paths = run_folder.checkpoint_files(options)
    model = load_model(paths, device)
    results, found = [], []
    for file, problem in files:
        try:
            if problem:
                raise UserError(problem)
            found.append(load_digits(file, single=options.single_digit))
            results.append({"file": file})
        except UserError as err:  # one unreadable image should not cost the others their answers
            found.append(None)
            results.append({"file": file, "error": str(err)})
    inputs = [digit for digits in found if digits is not None for digit in digits.inputs]
    if inputs:
        probabilities = iter(model.probabilities(torch.from_numpy(np.stack(inputs))))
        for index, (result, digits) in enumerate(zip(results, found)):
            if digits is None:
                continue
            result.update(answer([next(probabilities) for _ in digits.inputs], digits.boxes))
            if options.show:
                picture_of_what_was_seen(digits, result, pictures[index])
                result["picture"] = str(pictures[index])
    print(json.dumps(results, indent=2) if options.json else "\n".join(map(format_line, results)), flush=True)
    if any("error" in result for result in results):
        raise SystemExit(EXIT_USER_ERROR)
    return results


if __name__ == "__main__":
    main()
