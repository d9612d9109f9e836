"""Measure how well ``predict`` reads held-out MNIST digits photographed on paper, and how fast it prepares a photo.

The digits are MNIST's test set, which the model never trained on, rendered as phone photos by the tests' own
renderer (``tests/photos.py``): tinted paper under a gradient of light, black, blue or pencil ink, thinner or
thicker strokes, a few degrees of tilt, sensor noise and JPEG; some photos also get faint ruled lines and a
margin, specks of dirt, or a shadow along an edge. Printed:

- the model's accuracy on the untouched 28x28 digits, and on the same digits as photos read the way ``predict``
  reads files, in its default mode: a photo counts as right only when exactly one digit, the right one, is
  found in it. Overall, and by condition;
- how often numbers of 2 to 5 separated held-out digits, as photos, are read exactly: every digit, in order,
  and no other;
- the median time to prepare one 1000x800 JPEG photo: reading the file, decoding it, finding and preparing its
  digits (not the model).

Run it from the repository root with the project installed::

    python benchmarks/photos.py --ckpt_path logs/mnist/version_0/checkpoints/last.ckpt --data_dir ../shared/data
"""

import argparse
import importlib.util
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import MNIST

from lightning_app.errors import UserError
from lightning_app.model.loading import load_classifier
from lightning_app.photos.mnist_style import load_digits

ROOT = Path(__file__).resolve().parent.parent


def import_renderer():
    """The tests' photo renderer, tests/photos.py (imported by path: this script is also called photos.py)."""
    spec = importlib.util.spec_from_file_location("photo_renderer", ROOT / "tests" / "photos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="A checkpoint written by `python -m lightning_app.fit`.")
    parser.add_argument("--data_dir", required=True, help="The folder holding MNIST/raw (its test set is used).")
    parser.add_argument("--digits", type=int, default=1000, help="How many held-out digits to photograph.")
    parser.add_argument("--numbers", type=int, default=400, help="How many numbers of 2 to 5 digits to photograph.")
    parser.add_argument("--timings", type=int, default=20, help="How many 1000x800 photos to time (3 runs each).")
    parser.add_argument("--size", type=int, nargs=2, default=[800, 600], help="The photos' width and height.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--photos",
        help="Keep the photos in this folder, and list the misread ones (default: a "
        "temporary folder, deleted at the end).",
    )
    return parser.parse_args()


def conditions(look) -> list[str]:
    """The names of a photo's conditions, to break the accuracy down by."""
    extras = [name for name in ("ruled", "specks", "shadow") if getattr(look, name)]
    tilt = "tilted less than 2.5°" if abs(look.tilt) < 2.5 else "tilted 2.5° to 5°"
    names = [f"{look.ink} ink", "thinner pen" if look.pen < 0 else "thicker pen", tilt]
    return [*names, *(f"with {name}" for name in extras), "with ruled, specks or shadow" if extras else "plain"]


def read(model, files: list[str]) -> tuple[list[str], int]:
    """The number predict reads in each file (empty when it finds none), and how many files held no digit."""
    inputs, counts, failed = [], [], 0
    for file in files:
        try:
            found = load_digits(file).inputs
        except UserError:
            found, failed = [], failed + 1
        inputs.extend(found)
        counts.append(len(found))
    digits = iter(model.probabilities(torch.from_numpy(np.stack(inputs))).argmax(dim=1).tolist())
    return ["".join(str(next(digits)) for _ in range(count)) for count in counts], failed


def main() -> None:
    options = parse_args()
    photos = import_renderer()
    test = MNIST(options.data_dir, train=False)
    images, labels = test.data.numpy(), test.targets.numpy()
    model = load_classifier(options.ckpt_path, "cpu")
    if options.photos:
        Path(options.photos).mkdir(parents=True, exist_ok=True)
        measure(options, photos, images, labels, model, Path(options.photos))
    else:
        with tempfile.TemporaryDirectory(prefix="photos-") as folder:
            measure(options, photos, images, labels, model, Path(folder))


def measure(options: argparse.Namespace, photos, images: np.ndarray, labels: np.ndarray, model, folder: Path) -> None:
    """Photograph the digits and numbers into ``folder``, read them, time the preparation, and print it all."""
    rng = np.random.default_rng(options.seed)
    size = tuple(options.size)

    chosen = rng.choice(len(labels), options.digits, replace=False)
    untouched = model.probabilities(torch.from_numpy(images[chosen])).argmax(dim=1).numpy() == labels[chosen]
    looks, files = [], []
    for i, index in enumerate(chosen):
        extras = {"ruled": rng.random() < 0.25, "specks": int(rng.integers(1, 6)) * (rng.random() < 0.3)}
        look = photos.random_look(rng, shadow=rng.random() < 0.2, **extras)
        photo, _ = photos.render([images[index]], look, rng, size)
        files.append(photos.save(photo, look, folder / f"digit{i}"))
        looks.append(look)
    numbers, failed = read(model, files)
    right = np.array([number == str(label) for number, label in zip(numbers, labels[chosen])])
    print(f"Checkpoint {options.ckpt_path}")
    print(f"{options.digits} held-out MNIST test digits (seed {options.seed}), as {size[0]}x{size[1]} photos:")
    print(f"  untouched 28x28:  {untouched.mean():.2%}")
    print(f"  as photos:        {right.mean():.2%}  ({failed} photos where no digit was found)")
    by_condition = defaultdict(list)
    for look, photo_right, untouched_right in zip(looks, right, untouched):
        for name in conditions(look):
            by_condition[name].append((photo_right, untouched_right))
    for name, pairs in sorted(by_condition.items()):
        as_photos, as_they_are = np.mean(pairs, axis=0)
        print(f"    {name:32} {as_photos:7.2%}  (untouched {as_they_are:.2%}, {len(pairs)} digits)")

    wanted, untouched, files = [], [], []
    for i in range(options.numbers):
        picked = rng.choice(len(labels), int(rng.integers(2, 6)), replace=False)
        look = photos.random_look(rng, ruled=rng.random() < 0.25, shadow=rng.random() < 0.2)
        photo, _ = photos.render(list(images[picked]), look, rng, size)
        files.append(photos.save(photo, look, folder / f"number{i}"))
        wanted.append("".join(map(str, labels[picked])))
        digits = model.probabilities(torch.from_numpy(images[picked])).argmax(dim=1).tolist()
        untouched.append("".join(map(str, digits)))
    read_numbers, _ = read(model, files)
    exact = np.mean([got == want for got, want in zip(read_numbers, wanted)])
    counted = [(got, want) for got, want in zip(read_numbers, wanted) if len(got) == len(want)]
    each = np.mean([a == b for got, want in counted for a, b in zip(got, want)])
    print(f"{options.numbers} numbers of 2-5 held-out digits as {size[0]}x{size[1]} photos:")
    print(f"  read exactly:     {exact:.2%}  (their digits untouched: {np.mean(np.equal(untouched, wanted)):.2%})")
    print(f"  as many digits found as written: {len(counted) / options.numbers:.2%}; of those digits right: {each:.2%}")
    if options.photos:
        for file, got, want in zip(files, read_numbers, wanted):
            if got != want:
                print(f"    {file}: {want} read as {got or 'nothing'}")

    files = []
    for i in range(options.timings):
        look = photos.random_look(rng, ruled=bool(i % 2))
        digits = images[rng.choice(len(labels), 1 + i % 4, replace=False)]
        photo, _ = photos.render(list(digits), look, rng, (1000, 800))
        files.append(photos.save(photo, look, folder / f"timed{i}"))
    seconds = []
    for file in files * 3:
        start = time.perf_counter()
        load_digits(file)
        seconds.append(time.perf_counter() - start)
    print(
        f"Preparing one 1000x800 JPEG photo (reading, decoding, finding and preparing its digits; not the model): "
        f"median {statistics.median(seconds) * 1000:.1f} ms, slowest {max(seconds) * 1000:.1f} ms, "
        f"{len(seconds)} runs of {options.timings} photos"
    )


if __name__ == "__main__":
    main()
