"""Measure the prediction service under load: throughput and latency of ``python -m lightning_app.serve``.

The script starts the real server on a free loopback port with the given checkpoint, with batching on and off and
with one worker and one per core, and 16 concurrent clients post uploads over keep-alive connections:

- user-style digits: held-out MNIST test digits drawn dark on white, scaled up to 140x140, as PNG;
- photos of numbers: 1000x800 JPEGs of 3 held-out digits on paper, rendered by the tests' photo renderer.

The clients are one asyncio loop in this process that sends each request's bytes, built beforehand, and reads the
answer: about a tenth of a millisecond of CPU a request, so that the server, not the load, is measured on a machine
they share. The script prints requests per second and the median (p50) and 99th-percentile (p99) latency of each
setting, and the CPU each process of the server spent per request, which says where the time goes. Then, measured
in this process: decoding the image, preparing its digits (finding them, scaling and centring them MNIST's way) and
the model. Only loopback traffic, a bounded number of requests. Run from the repository root with the project
installed::

    python benchmarks/serve.py --ckpt_path logs/mnist/version_0/checkpoints/best-epoch=09-val_acc=0.9936.ckpt \\
        --data_dir ../shared/data
"""

import argparse
import asyncio
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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
    parser.add_argument("--digits", type=int, default=3000, help="Digit uploads per measurement.")
    parser.add_argument("--photos", type=int, default=320, help="Photo uploads per measurement.")
    parser.add_argument("--batch", type=int, default=16, help="--max_batch_size with batching on.")
    parser.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="--workers of the server: one per core."
    )
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

    def processes(self) -> dict[int, str]:
        """The server's processes, its own and its descendants', with their command lines."""
        parents, commands = {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat, open(f"/proc/{entry}/cmdline", "rb") as command:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
                    commands[int(entry)] = command.read().decode(errors="replace")
            except OSError:  # ended meanwhile
                continue
        family = {self.process.pid}
        while True:
            grown = family | {pid for pid, parent in parents.items() if parent in family}
            if grown == family:
                return {pid: commands[pid] for pid in family if pid in commands}
            family = grown

    def workers(self) -> list[int]:
        """The inference workers: the processes LitServe spawns (the HTTP servers and its queues are forked)."""
        return [pid for pid, command in self.processes().items() if "spawn_main" in command]

    def cpu_seconds(self) -> dict[int, float]:
        """The CPU time (user and system) each process of the server has spent so far."""
        seconds = {}
        for pid in self.processes():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return seconds

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.log.close()


def post(port: int, upload: bytes) -> bytes:
    """The bytes of an HTTP/1.1 request that posts ``upload`` as the form's file field ``image``."""
    boundary = b"benchmark-boundary-7f3a"
    body = b"".join(
        [
            b"--" + boundary + b"\r\n",
            b'Content-Disposition: form-data; name="image"; filename="upload"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\n",
            upload,
            b"\r\n--" + boundary + b"--\r\n",
        ]
    )
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def client(port: int, requests: list[bytes], latencies: list[float], statuses: list[int]) -> None:
    """Send requests one after another on one keep-alive connection until none are left."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while requests:
        request = requests.pop()
        start = time.perf_counter()
        writer.write(request)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        statuses.append(status)
    writer.close()
    await writer.wait_closed()


def load(server: "Server", uploads: list[bytes], clients: int) -> dict[str, float]:
    """Post every upload once from ``clients`` connections; throughput, latency percentiles, CPU per request."""
    requests = [post(server.port, upload) for upload in reversed(uploads)]
    latencies: list[float] = []
    statuses: list[int] = []

    async def clients_all() -> None:
        await asyncio.gather(*(client(server.port, requests, latencies, statuses) for _ in range(clients)))

    before, own = server.cpu_seconds(), os.times()
    start = time.perf_counter()
    asyncio.run(clients_all())
    wall = time.perf_counter() - start
    after, own_after = server.cpu_seconds(), os.times()
    workers = sum(after[pid] - before.get(pid, 0) for pid in server.workers() if pid in after)
    others = sum(after.values()) - sum(before.values()) - workers
    per_request = 1000 / len(uploads)
    return {
        "per_s": len(uploads) / wall,
        "p50": 1000 * float(np.percentile(latencies, 50)),
        "p99": 1000 * float(np.percentile(latencies, 99)),
        "failed": sum(status != 200 for status in statuses),
        "workers_ms": workers * per_request,
        "others_ms": others * per_request,
        "client_ms": (own_after.user + own_after.system - own.user - own.system) * per_request,
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
    print(f"{options.clients} clients on loopback; {len(os.sched_getaffinity(0))} CPU cores")
    settings = [("on", options.batch, options.workers), ("off", 1, options.workers)]
    if options.workers > 1:
        settings.append(("on", options.batch, 1))
    rows = []
    for batching, size, workers in settings:
        server = Server(options.ckpt_path, "--max_batch_size", str(size), "--workers", str(workers))
        try:
            load(server, pngs[:200], options.clients)  # warm-up: connections, allocator, first batches
            for kind, uploads in (("digit PNG 140x140", pngs), ("photo JPEG 1000x800", jpegs)):
                if kind.startswith("photo") and workers != options.workers:
                    continue
                result = load(server, uploads, options.clients)
                rows.append((kind, f"{batching} ({size})", workers, len(uploads), result))
                print(f"  {kind}, batching {batching}, {workers} worker(s): {result['per_s']:.0f}/s", flush=True)
        finally:
            server.stop()
    print(
        "\n| uploads | batching (max batch) | workers | requests | per second | p50 | p99 | failed "
        "| CPU ms a request: workers / other server processes / clients |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, batching, workers, count, result in rows:
        print(
            f"| {kind} | {batching} | {workers} | {count} | {result['per_s']:.0f} | {result['p50']:.0f} ms | "
            f"{result['p99']:.0f} ms | {result['failed']} | {result['workers_ms']:.1f} / {result['others_ms']:.1f} / "
            f"{result['client_ms']:.1f} |"
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
