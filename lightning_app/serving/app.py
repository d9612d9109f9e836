"""The server around the LitAPI: the drawing page, the model-info and health routes, and bad requests as JSON."""

from contextlib import asynccontextmanager
from pathlib import Path

import litserve as ls
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser

from lightning_app.serving.api import DigitsAPI
from lightning_app.serving.processes import follow_server

MAX_BODY = 20 * 2**20  # bytes of a request: a phone's photo fits, a flood does not


PAGE = Path(__file__).parent / "page"


PAGE_FILES = {"/": "index.html", "/app.js": "app.js", "/style.css": "style.css"}


MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}


# The form travels to the inference worker pickled; starlette keeps uploads up to this size in memory and writes
# larger ones to a temporary file, which cannot be pickled. The body limit bounds what is kept.
MultiPartParser.spool_max_size = MAX_BODY


class UploadLimits:
    """Refuse, before it is read, a prediction request that is not a form or whose body is over ``MAX_BODY``.

    Args:
        app: The ASGI application behind it.
        path: The route it guards.
    """

    def __init__(self, app, path: str = "/predict") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            message = (
                f"send the image as the file field 'image' of a multipart form (curl -F image=@photo.jpg), "
                f"not as {kind or 'a body without a Content-Type'}"
            )
            await JSONResponse({"error": message}, status_code=415)(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_BODY:
            await JSONResponse({"error": too_large(int(declared))}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:  # a body sent in chunks, without a length
                raise HTTPException(413, too_large(received))
            return message

        await self.app(scope, counted, send)


def too_large(size: int) -> str:
    """The error for a request body over the limit."""
    return f"the request is {size / 2**20:.1f} MB, over the limit of {MAX_BODY // 2**20} MB: send a smaller image"


async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    """Every HTTP error as JSON that says what is wrong, under ``error``."""
    return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """A request FastAPI could not parse, as JSON."""
    return JSONResponse({"error": f"the request cannot be read: {error.errors()}"}, status_code=400)


def page_route(name: str):
    """A route that answers with one of the page's files, read once: no path from a request is ever opened."""
    body = (PAGE / name).read_bytes()
    media_type = MEDIA_TYPES[Path(name).suffix]

    async def page(request: Request) -> Response:
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return page


def build_server(
    api: DigitsAPI,
    info: dict,
    address: str,
    accelerator: str = "auto",
    devices: int | str = "auto",
    workers: int = 1,
    graceful_seconds: float = 5.0,
) -> ls.LitServer:
    """The LitServer for the API, with the page at ``/``, the model's description at ``/info``, errors as JSON.

    Args:
        api: The LitAPI.
        info: What ``GET /info`` says about the model (LitServe's model metadata).
        address: The address printed once the server is ready.
        accelerator: LitServe's accelerator: auto, cpu, cuda or mps.
        devices: How many devices (GPUs) to use, or auto for all.
        workers: Inference workers per device, each with its own copy of the model.
        graceful_seconds: How long a stopping server waits for the requests it holds.
    """
    server = ls.LitServer(
        api,
        accelerator=accelerator,
        devices=devices,
        workers_per_device=workers,
        model_metadata=info,
        middlewares=[(UploadLimits, {})],
    )
    server.uvicorn_graceful_timeout = graceful_seconds
    app: FastAPI = server.app
    # LitServe answers GET / with a line of text; the page takes its place.
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", None) != "/"]
    for path, name in PAGE_FILES.items():
        app.add_api_route(path, page_route(name), methods=["GET"], include_in_schema=False)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    litserve_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Runs in each HTTP process LitServe forks: it ends with the main process, which alone takes Ctrl-C.
        follow_server()
        async with litserve_lifespan(app):
            if app.response_queue_id == 0:
                print(
                    f"Serving {address} : open it to draw a digit; POST {address}predict with -F image=@FILE",
                    flush=True,
                )
            yield

    app.router.lifespan_context = lifespan
    return server
