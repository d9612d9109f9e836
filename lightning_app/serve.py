"""Serve a trained model over HTTP with LitServe: ``python -m lightning_app.serve --ckpt_path best``.

``POST /predict`` reads the digits in an uploaded image (the multipart form field ``image``) and answers with the
JSON that ``predict --json`` prints for it; ``GET /`` is a page to draw a digit on or upload a photo; ``GET /health``
answers 200 once the model is loaded, ``GET /info`` names the checkpoints, their recorded test accuracy and the
devices. Ctrl-C or SIGTERM lets the requests in flight finish, then stops every process of the server.
"""

import argparse
import errno
import os
import socket

from lightning_app.errors import UserError, first_line, report_user_errors
from lightning_app.training import run_folder

HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # the addresses LitServe can listen on


def parse_args(args: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning_app.serve",
        description="Serve a trained checkpoint over HTTP: a drawing page at /, POST /predict with an image.",
    )
    run_folder.add_checkpoint_options(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        choices=HOSTS,
        help="Where to listen: 127.0.0.1 (this machine only, the default), or 0.0.0.0 / :: for every network.",
    )
    parser.add_argument("--port", type=int, default=8000, help="The TCP port, 1024 to 65535.")
    parser.add_argument(
        "--max_batch_size",
        type=int,
        default=16,
        help="The most uploads read in one pass of the model (1: no batching).",
    )
    parser.add_argument(
        "--batch_timeout",
        type=float,
        default=0.002,
        help="Seconds a worker gathers uploads into a batch. With 0, LitServe's workers poll their queue without "
        "pause, which costs each a quarter of a core while the server is idle.",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Inference workers per device, each with the model. On a CPU, one per core: each worker reads its "
        "uploads' digits on its own core, the costly part of a request (README, 'Serving').",
    )
    parser.add_argument("--accelerator", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="The device.")
    parser.add_argument("--devices", default="auto", help="How many GPUs to use (with cuda), or auto for all.")
    parser.add_argument("--log_level", default="warning", help="LitServe's and uvicorn's logging: warning, info...")
    options = parser.parse_args(args)
    if not 1024 <= options.port <= 65535:
        raise UserError(f"--port {options.port}: LitServe listens on ports 1024 to 65535. Pass one of those.")
    for name in ("max_batch_size", "workers"):
        if getattr(options, name) < 1:
            raise UserError(f"--{name} {getattr(options, name)}: it must be 1 or more.")
    if options.batch_timeout < 0:
        raise UserError(f"--batch_timeout {options.batch_timeout}: it cannot be negative.")
    if options.devices != "auto":
        if not options.devices.isdigit() or int(options.devices) < 1:
            raise UserError(f"--devices {options.devices}: pass a number of devices (1 or more) or auto.")
        options.devices = int(options.devices)
    return options


def check_port(host: str, port: int) -> None:
    """Refuse a port that another program listens on, before the model is loaded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closed port is free
        try:
            probe.bind((host, port))
        except OSError as err:
            reason = "another program listens on it" if err.errno == errno.EADDRINUSE else err.strerror
            raise UserError(f"--port {port}: cannot listen on {host}:{port} ({reason}). Pass another --port.") from None


def cpu_threads(workers: int) -> int:
    """Torch's threads for each worker on a CPU: the cores left by the HTTP process, shared among the workers."""
    # More threads than cores make the workers' threads wait for each other, each spinning on its core.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, (cores - 1) // workers)


def address(host: str, port: int) -> str:
    """The address to open in a browser."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}/"


@report_user_errors
def main(args: list[str] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    options = parse_args(args)
    check_port(options.host, options.port)
    # Imported after the cheap checks: torch and LitServe take seconds to import.
    from lightning_app.serving.api import DigitsAPI
    from lightning_app.serving.app import build_server
    from lightning_app.serving.model_info import describe_checkpoints
    from lightning_app.serving.processes import end_children, interrupt_on_sigterm

    paths = run_folder.checkpoint_files(options)
    info = describe_checkpoints(paths)
    api = DigitsAPI(
        paths,
        max_batch_size=options.max_batch_size,
        batch_timeout=options.batch_timeout,
        threads=cpu_threads(options.workers),
    )
    try:
        server = build_server(
            api,
            info,
            address(options.host, options.port),
            accelerator=options.accelerator,
            devices=options.devices,
            workers=options.workers,
        )
    except (ValueError, RuntimeError) as err:  # LitServe's refusal of an accelerator or device count
        raise UserError(f"LitServe cannot serve with these settings: {first_line(err)}") from None
    interrupt_on_sigterm()
    print(f"Loading {len(paths)} checkpoint(s) in {options.workers} worker(s) per device...", flush=True)
    try:
        server.run(
            host=options.host,
            port=options.port,
            log_level=options.log_level,
            generate_client_file=False,
        )
    except KeyboardInterrupt:  # while the workers were starting; once serving, LitServe handles it itself
        pass
    except RuntimeError as err:  # a worker failed to load the model
        raise UserError(f"the server could not start: {first_line(err)}") from None
    finally:
        end_children()
    print("Server stopped.", flush=True)


if __name__ == "__main__":
    main()
