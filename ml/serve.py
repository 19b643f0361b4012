"""`mlplat serve`: the SageMaker container's HTTP contract around the real handler, on one machine.

The server loads a model artifact the way the SageMaker scikit-learn container does: it extracts
`model.tar.gz` into a private directory, puts the artifact's `code/` directory first on `sys.path`,
imports `inference` from there (so `code/ml/...` is the feature code that runs, not this
checkout's), and calls `model_fn(<extracted dir>)`. Then it answers:

* `GET /ping`: 200 once the model is loaded;
* `POST /invocations`: the body goes through `input_fn(body, Content-Type)`, `predict_fn`,
  `output_fn(prediction, Accept)`; `Accept` missing or `*/*` means `application/json`, and a
  missing `Content-Type` means `application/json`, as in the inference toolkit. JSON and CSV bodies
  reach `input_fn` as text, others as bytes. `output_fn` may return the body or
  `(body, content_type)`.

Errors: an exception with an HTTP `status_code` (the toolkit's `GenericInferenceToolkitError`, or
anything shaped like it) answers that status with its `message` as a plain-text body; any other
exception answers 500 with a short message (the traceback goes to the server log, never to the
client). Bodies above `max_body_bytes` (6 MB, SageMaker's limit) answer 413 once read and dropped
(up to 64 MB; larger ones unread), so the client can read the answer.

Requests are served concurrently (one thread per connection, HTTP/1.1 keep-alive); `predict_fn`
runs under a lock, so a model that is not thread-safe is still safe, while parsing and
serialization run in parallel.

Handler modules are imported once, at load: while they import, the artifact's `inference` and
`ml` packages stand in for any already imported; afterwards this process's modules are put back,
the handler keeping references to its own.

`environment` is the container's environment (a SageMaker model's `Environment`): it is in
`os.environ` while the handler imports and `model_fn` loads, then the process's own is put back.
That is where the handler reads what it keeps for every answer: with `MLPLAT_MODEL_VERSION` (the
model package ARN an endpoint serves) each JSON answer names that version, without it
`"unregistered"` (`ml.inference`). `mlplat serve` passes none: the variable, when exported in the
shell, is read as the container would read it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("ml.serve")

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time InvokeEndpoint payload limit
# A body above the limit but at most this large is read and dropped before the 413 (the client
# can read the answer); a larger one is answered unread and the connection closed.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
JSON = "application/json"
TEXT_TYPES = ("application/json", "text/csv")  # decoded to str, as the inference toolkit does
IDLE_TIMEOUT_SECONDS = 60.0
# Top-level modules that come from the artifact's `code/` rather than from this process.
_ARTIFACT_MODULES = ("inference", "ml")


class ServeError(RuntimeError):
    """The model cannot be served (missing artifact, no handler, model_fn failed)."""


@dataclass(frozen=True, slots=True)
class Handler:
    """The four handler functions of an artifact and the model `model_fn` returned."""

    model: Any
    input_fn: Callable[[Any, str], Any]
    predict_fn: Callable[[Any, Any], Any]
    output_fn: Callable[[Any, str], Any]
    model_dir: Path


# --- loading ------------------------------------------------------------------------------------


def extract_artifact(archive: Path, dest: Path) -> Path:
    """Extract `model.tar.gz` into `dest` (refusing absolute paths, `..` and links out of it)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ServeError(f"cannot extract {archive}: {exc}") from exc
    return dest


def _is_artifact_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in _ARTIFACT_MODULES)


_IMPORT_LOCK = threading.Lock()


@contextlib.contextmanager
def _environment(values: Mapping[str, str] | None) -> Iterator[None]:
    """`values` in `os.environ` for the duration of the block, then the previous values back."""
    saved = {name: os.environ.get(name) for name in values or {}}
    os.environ.update(values or {})
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def load_handler(model_dir: Path, environment: Mapping[str, str] | None = None) -> Handler:
    """Import `code/inference.py` from an extracted artifact and load its model, with the
    container's `environment` (see the module docstring) in place while it does."""
    code = model_dir / "code"
    if not (code / "inference.py").is_file():
        raise ServeError(
            f"{model_dir} has no code/inference.py: not a model artifact for the scikit-learn "
            "container (package it with `ml.package.build_model_tarball`)"
        )
    with _IMPORT_LOCK, _environment(environment):
        saved = {n: m for n, m in sys.modules.items() if _is_artifact_module(n)}
        for name in saved:
            del sys.modules[name]
        sys.path.insert(0, str(code))
        importlib.invalidate_caches()
        try:
            module = importlib.import_module("inference")
            missing = [
                f
                for f in ("model_fn", "input_fn", "predict_fn", "output_fn")
                if not callable(getattr(module, f, None))
            ]
            if missing:
                raise ServeError(f"{code / 'inference.py'} defines no {', '.join(missing)}")
            try:
                model = module.model_fn(str(model_dir))
            except Exception as exc:
                raise ServeError(
                    f"model_fn({model_dir}) failed: {type(exc).__name__}: {exc}"
                ) from exc
        except ServeError:
            raise
        except Exception as exc:
            raise ServeError(
                f"cannot import {code / 'inference.py'}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            sys.path.remove(str(code))
            for name in [n for n in sys.modules if _is_artifact_module(n)]:
                del sys.modules[name]
            sys.modules.update(saved)
    return Handler(model, module.input_fn, module.predict_fn, module.output_fn, model_dir)


# --- the HTTP server ------------------------------------------------------------------------------


class InferenceServer(ThreadingHTTPServer):
    """A threading HTTP server holding one loaded handler."""

    daemon_threads = True
    block_on_close = False
    # The listen backlog: connections the kernel holds until a thread accepts them. socketserver's
    # default of 5 resets clients in a burst that opens a connection per request.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], handler: Handler, max_body_bytes: int) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.predict_lock = threading.Lock()
        self.ready = True
        super().__init__(address, _RequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{self.port}"


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlplat-serve"
    timeout = IDLE_TIMEOUT_SECONDS  # idle keep-alive connections do not hold threads forever
    disable_nagle_algorithm = True  # small responses must not wait for the client's delayed ACK
    wbufsize = -1  # buffered: headers and body leave in one write, flushed after each request
    server: InferenceServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        close: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, close: bool = False) -> None:
        self._send(status, (message.rstrip() + "\n").encode("utf-8"), close=close)

    def do_GET(self) -> None:
        if self.path == "/ping":
            if self.server.ready:
                self._send(HTTPStatus.OK, b"\n")
            else:
                self._error(HTTPStatus.SERVICE_UNAVAILABLE, "model not loaded")
        elif self.path == "/invocations":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "POST your records to /invocations")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no {self.path}: use GET /ping, POST /invocations")

    def do_POST(self) -> None:
        if self.path != "/invocations":
            drain = self.path == "/ping"
            status = HTTPStatus.METHOD_NOT_ALLOWED if drain else HTTPStatus.NOT_FOUND
            self._error(
                status, f"no POST {self.path}: use GET /ping, POST /invocations", close=True
            )
            return
        body = self._read_body()
        if body is None:
            return
        content_type = self.headers.get("Content-Type") or JSON
        accept = self.headers.get("Accept") or JSON
        if accept.strip() == "*/*":
            accept = JSON
        self._invoke(body, content_type, accept)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._error(
                HTTPStatus.LENGTH_REQUIRED,
                "send a Content-Length (chunked bodies are not supported)",
                close=True,
            )
            return None
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self._error(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length header", close=True)
            return None
        if length > self.server.max_body_bytes:
            # Read and drop the body (up to a bound) before answering, so the client, still
            # sending, gets to read the 413 instead of a reset; then close the connection.
            if length <= DRAIN_LIMIT_BYTES:
                self._discard(length)
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body is {length} bytes; the limit is {self.server.max_body_bytes} "
                "bytes: send fewer records per request",
                close=True,
            )
            return None
        return self.rfile.read(length)

    def _discard(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                return
            left -= len(chunk)

    def _invoke(self, body: bytes, content_type: str, accept: str) -> None:
        handler = self.server.handler
        try:
            data: Any = body
            if content_type in TEXT_TYPES:
                try:
                    data = body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self._error(HTTPStatus.BAD_REQUEST, f"the body is not UTF-8 text: {exc}")
                    return
            parsed = handler.input_fn(data, content_type)
            with self.server.predict_lock:
                prediction = handler.predict_fn(parsed, handler.model)
            result = handler.output_fn(prediction, accept)
            response, response_type = result if isinstance(result, tuple) else (result, accept)
            if isinstance(response, str):
                payload = response.encode("utf-8")
            elif isinstance(response, bytes | bytearray):
                payload = bytes(response)
            else:
                raise TypeError(f"output_fn returned {type(response).__name__}, not str or bytes")
        except RecursionError:
            self._error(HTTPStatus.BAD_REQUEST, "the body nests too deeply to parse")
            return
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and 400 <= status <= 599:
                message = getattr(exc, "message", None) or str(exc)
                log.info("invocation refused (%d): %s", status, message)
                self._error(status, str(message))
            else:
                log.exception("invocation failed")
                self._error(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    f"internal error while predicting ({type(exc).__name__}); see the server log",
                )
            return
        self._send(HTTPStatus.OK, payload, str(response_type))


# --- starting and stopping ------------------------------------------------------------------------


class ModelServer:
    """A loaded artifact behind an `InferenceServer`; `start()` serves in a background thread."""

    def __init__(
        self,
        model: Path,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        max_body_bytes: int = MAX_BODY_BYTES,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ServeError(f"max_body_bytes {max_body_bytes}: expected a positive size")
        if not 0 <= port <= 65535:
            raise ServeError(f"port {port}: expected 0-65535 (0 picks a free port)")
        model = Path(model)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if model.is_dir():
            model_dir = model
        elif model.is_file():
            self._tmp = tempfile.TemporaryDirectory(prefix="mlplat-serve-")
            model_dir = extract_artifact(model, Path(self._tmp.name))
        else:
            raise ServeError(f"no model at {model}: pass a model.tar.gz (or its extracted dir)")
        try:
            handler = load_handler(model_dir, environment)
            self.server = InferenceServer((host, port), handler, max_body_bytes)
        except OSError as exc:
            self._cleanup()
            raise ServeError(f"cannot listen on {host}:{port}: {exc}") from exc
        except BaseException:
            self._cleanup()
            raise
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the one the OS picked when started with port 0)."""
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> ModelServer:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="mlplat-serve", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server.server_close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def serving(
    model: Path,
    host: str = DEFAULT_HOST,
    port: int = 0,
    max_body_bytes: int = MAX_BODY_BYTES,
    environment: Mapping[str, str] | None = None,
) -> Iterator[ModelServer]:
    """Serve `model` in a background thread for the duration of the block."""
    server = ModelServer(model, host, port, max_body_bytes, environment).start()
    try:
        yield server
    finally:
        server.close()
