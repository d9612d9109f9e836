"""Measure the prediction service under load: throughput and latency of ``python -m lightning_app.serve``.

The script starts the real server on a free loopback port with the given checkpoint, once with batching on and once
off, and 16 concurrent clients (threads, each with its own keep-alive connection) post:

- user-style digits: held-out MNIST test digits drawn dark on white, scaled up to 140x140, as PNG;
- photos of numbers: 1000x800 JPEGs of 3 held-out digits on paper, rendered by the tests' photo renderer.

It prints requests per second and the median (p50) and 99th-percentile (p99) latency of each, then where one
request's time goes, measured in this process: decoding the image, preparing its digits (finding them, scaling
and centring them MNIST's way), the model, and what is left of the served latency for HTTP, the form and the
queues between LitServe's processes. Only loopback traffic, a bounded number of requests. Run from the repository
root with the project installed::

    python benchmarks/serve.py --ckpt_path logs/mnist/version_0/checkpoints/best-epoch=09-val_acc=0.9936.ckpt \\
        --data_dir ../shared/data
"""

import argparse
import io
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.datasets import MNIST

from lightning_app.model.loading import load_model
from lightning_app.photos.image_files import open_photo
from lightning_app.photos.mnist_style import digits_in

from photos import import_renderer  # benchmarks/photos.py, beside this script

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="A checkpoint written by `python -m lightning_app.fit`.")
    parser.add_argument("--data_dir", required=True, help="The folder holding MNIST/raw (its test set is used).")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent clients.")
    parser.add_argument("--digits", type=int, default=1600, help="Digit uploads per measurement.")
    parser.add_argument("--photos", type=int, default=320, help="Photo uploads per measurement.")
    parser.add_argument("--batch", type=int, default=16, help="--max_batch_size with batching on.")
    parser.add_argument("--workers", type=int, default=1, help="--workers of the server.")
    return parser.parse_args()


def digit_pngs(images: np.ndarray) -> list[bytes]:
    """Digits as users draw or scan them: dark ink on white, 140x140, PNG."""
    pngs = []
    for image in images:
        buffer = io.BytesIO()
        ImageOps.invert(Image.fromarray(image)).resize((140, 140), Image.Resampling.BICUBIC).save(buffer, "PNG")
        pngs.append(buffer.getvalue())
    return pngs


def photo_jpegs(images: np.ndarray, count: int) -> list[bytes]:
    """1000x800 JPEG photos of numbers of 3 held-out digits, each taken with a random look."""
    renderer = import_renderer()
    rng = np.random.default_rng(0)
    jpegs = []
    for index in range(count):
        look = renderer.random_look(rng)
        photo, _ = renderer.render(list(images[3 * index : 3 * index + 3]), look, rng, size=(1000, 800))
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=look.jpeg)
        jpegs.append(buffer.getvalue())
    return jpegs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """The serve command in a child process, on a free loopback port, until ``stop``."""

    def __init__(self, ckpt: str, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop, after the server has ended)
        command = [sys.executable, "-m", "lightning_app.serve", "--ckpt_path", ckpt, "--port", str(self.port)]
        self.process = subprocess.Popen([*command, *options], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise SystemExit(f"the server did not start:\n{self.log.read().decode()}")
            try:
                if httpx.get(self.url + "health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.log.close()


def load(url: str, uploads: list[bytes], clients: int) -> dict[str, float]:
    """Post every upload once from ``clients`` threads; throughput and latency percentiles."""
    latencies: list[float] = []
    failures = []
    next_index = iter(range(len(uploads)))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=60) as session:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                start = time.perf_counter()
                response = session.post(url + "predict", files={"image": ("upload", uploads[index])})
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    failures.append(response.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {
        "per_s": len(uploads) / wall,
        "p50": 1000 * float(np.percentile(latencies, 50)),
        "p99": 1000 * float(np.percentile(latencies, 99)),
        "failed": len(failures),
    }


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def profile(ckpt: str, pngs: list[bytes], jpegs: list[bytes], batch: int) -> dict[str, dict[str, float]]:
    """Milliseconds per upload of each stage, in this process, one thread per stage as in a worker."""
    model = load_model([ckpt], "cpu")
    return {
        name: stage_times(model, uploads, batch)
        for name, uploads in (("digit PNG", pngs[:50]), ("photo JPEG", jpegs[:20]))
    }


def stage_times(model, uploads: list[bytes], batch: int) -> dict[str, float]:
    """Milliseconds per upload to decode, prepare and read it (alone, and in batches of ``batch`` uploads)."""
    decoded = [open_photo(data) for data in uploads]
    digits = [digits_in(*photo, single=False) for photo in decoded]
    inputs = torch.from_numpy(np.stack([digit for found in digits for digit in found.inputs]))
    per_upload = len(inputs) / len(uploads)
    chunks = inputs.split(max(1, int(batch * per_upload)))
    return {
        "decode": median_ms(lambda: [open_photo(data) for data in uploads], 3) / len(uploads),
        "prepare": median_ms(lambda: [digits_in(*photo, single=False) for photo in decoded], 3) / len(uploads),
        "model, alone": median_ms(
            lambda: [model.probabilities(found) for found in inputs.split(max(1, round(per_upload)))], 3
        )
        / len(uploads),
        f"model, batches of {batch}": median_ms(lambda: [model.probabilities(chunk) for chunk in chunks], 3)
        / len(uploads),
    }


def main() -> None:
    options = parse_args()
    test = MNIST(options.data_dir, train=False, download=False)
    images = test.data.numpy()
    pngs = digit_pngs(images[: options.digits])
    jpegs = photo_jpegs(images[options.digits :], options.photos)
    print(f"{options.clients} clients on loopback; {torch.get_num_threads()} CPU threads; {options.workers} worker(s)")
    rows = []
    for batching, size in (("on", options.batch), ("off", 1)):
        server = Server(options.ckpt_path, "--max_batch_size", str(size), "--workers", str(options.workers))
        try:
            load(server.url, pngs[:64], options.clients)  # warm-up: connections, allocator, first batches
            for kind, uploads in (("digit PNG 140x140", pngs), ("photo JPEG 1000x800", jpegs)):
                result = load(server.url, uploads, options.clients)
                rows.append((kind, f"{batching} ({size})", len(uploads), result))
                print(f"  {kind}, batching {batching}: {result['per_s']:.0f}/s", flush=True)
        finally:
            server.stop()
    print("\n| uploads | batching (max batch) | requests | per second | p50 | p99 | failed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for kind, batching, count, result in rows:
        print(
            f"| {kind} | {batching} | {count} | {result['per_s']:.0f} | {result['p50']:.0f} ms | "
            f"{result['p99']:.0f} ms | {result['failed']} |"
        )
    torch.set_num_threads(1)  # as each stage gets about one core in the served case
    stages = profile(options.ckpt_path, pngs, jpegs, options.batch)
    names = list(next(iter(stages.values())))
    print("\nWhere one upload's time goes (ms, one thread, in this process):\n")
    print("| uploads | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for kind, times in stages.items():
        print(f"| {kind} | " + " | ".join(f"{times[name]:.2f}" for name in names) + " |")


if __name__ == "__main__":
    main()
