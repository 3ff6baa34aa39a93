"""Serve a model over HTTP: ``run_ner_predict --serve``, the same model and predictor as the file command.

``POST /predict`` takes ``{"text": "..."}`` (one record back) or ``{"texts": ["...", ...]}`` (a list), and answers
with the record ``run_ner_predict`` writes per raw-text line, ``{"text", "entities": [{start, end, label, text,
score}]}``: the model is loaded by ``load_backend`` and run by ``NerPredictor`` from the same ``PredictArguments``,
so a text gets the entities and scores that the command gives it as a line of a file. ``GET /health`` describes the
model (kind, labels, size on disk, and test F1 and unique parameters from the run's results.json); ``/`` is a page
to try it (``runtime/static/``); ``/docs`` and ``/openapi.json`` are FastAPI's.

Concurrent requests share model calls: the first waits up to ``--batch_window_ms`` for others (up to
``--max_batch_texts`` texts in all), then one predictor call in a worker thread tags them together
(``MicroBatcher``; ``--batch_window_ms 0``: each request calls the predictor alone). Batching changes the padding of
a call, not what a text gets. Bad input is a JSON error ``{"error", "status"}`` with a 4xx status and one line in the
server log; a failure inside the model is a 500; the server keeps serving either way.

FastAPI and uvicorn are imported only here, when ``--serve`` is given (the ``http`` extra of the serve package).

```python
>>> args = parse_predict_args(["--model", "outputs/teacher/onnx/model_int8.onnx", "--serve", "--port", "8000"])
>>> serve(args)   # curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"text": "Mara Velden ..."}'
>>> client = TestClient(build_app(args))   # in tests: the same app without a socket
```
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations (Request, imported in
# create_app) as objects.
import asyncio
import json
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .backends import load_backend
from .formats import text_record
from .windows import NerPredictor

HTTP_EXTRA = "pip install 'bert-ner-compress-serve[http]'"
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".onnx.data")
# A run folder's onnx/ files -> their results.json variant (export/evaluate_variants.py writes both)
ONNX_VARIANTS = {"model.onnx": "onnx", "model_int8.onnx": "onnx_int8"}
JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "a boolean", type(None): "null"}
BODY_SHAPE = 'expected {"text": "..."} or {"texts": ["...", ...]}'

log = logging.getLogger("run_ner_predict.serve")


def import_http():
    """(fastapi, uvicorn), or one ImportError that says which extra to install."""
    try:
        import fastapi
        import uvicorn
    except ImportError as err:
        raise ImportError(f"--serve needs fastapi and uvicorn ({err}): {HTTP_EXTRA}") from None
    return fastapi, uvicorn


@dataclass(frozen=True)
class ServeLimits:
    batch_window_ms: int = 5
    max_batch_texts: int = 32
    max_body_bytes: int = 1_048_576
    max_text_chars: int = 100_000

    @classmethod
    def from_args(cls, args) -> "ServeLimits":
        return cls(args.batch_window_ms, args.max_batch_texts, args.max_body_bytes, args.max_text_chars)


class BadRequest(Exception):
    """Input the server refuses: ``status`` (4xx) and a message for the caller and the log."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# ----------------------------------------------------------------------------------------------------------------
# The request body, checked without FastAPI


def check_content_type(content_type: str | None) -> None:
    media, *params = [part.strip().lower() for part in (content_type or "").split(";")]
    if media != "application/json" and not media.endswith("+json"):
        raise BadRequest(415, f"Content-Type {content_type or '(none)'!r}: send application/json")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            raise BadRequest(415, f"Content-Type {content_type!r}: the body must be UTF-8 JSON")


def parse_texts(body: bytes, max_text_chars: int) -> tuple[list[str], bool]:
    """The texts of a ``/predict`` body, and whether it gave a list; ``BadRequest`` names what is wrong."""
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(400, f"the body is not UTF-8 text (byte {err.start}: {body[err.start:err.start + 1]!r})"
                         ) from None
    try:
        payload = json.loads(decoded)
    except json.JSONDecodeError as err:
        raise BadRequest(400, f"malformed JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
    except RecursionError:
        raise BadRequest(400, "malformed JSON: nested too deeply") from None
    if not isinstance(payload, dict):
        raise BadRequest(422, f"the body is {JSON_TYPES.get(type(payload), 'a value')}: {BODY_SHAPE}")
    unknown = sorted(set(payload) - {"text", "texts"})
    if unknown:
        raise BadRequest(422, f"unknown field {unknown[0]!r}: {BODY_SHAPE}")
    if ("text" in payload) == ("texts" in payload):
        raise BadRequest(422, f"give one of \"text\" and \"texts\": {BODY_SHAPE}")
    is_list = "texts" in payload
    if is_list:
        texts, names = payload["texts"], [f'"texts"[{i}]' for i in range(len(payload["texts"]))]
        if not isinstance(texts, list):
            raise BadRequest(422, f'"texts" is {JSON_TYPES.get(type(texts), "a value")}: it must be an array of '
                                  "strings")
        if not texts:
            raise BadRequest(422, '"texts" is an empty array: give at least one string')
    else:
        texts, names = [payload["text"]], ['"text"']
    for name, text in zip(names, texts):
        if not isinstance(text, str):
            raise BadRequest(422, f"{name} is {JSON_TYPES.get(type(text), 'a value')}: it must be a string")
        if len(text) > max_text_chars:
            raise BadRequest(413, f"{name} has {len(text)} characters, over the limit of {max_text_chars} "
                                  "(--max_text_chars)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:  # a lone surrogate escape such as "\ud800"
            raise BadRequest(422, f"{name} holds a lone surrogate at character {err.start}: not text") from None
    return texts, is_list


# ----------------------------------------------------------------------------------------------------------------
# The model: the file command's predictor, and batching across callers


class TextTagger:
    """``tagger(texts)``: the ``{"text", "entities"}`` record of each text, as ``run_ner_predict`` writes it."""

    def __init__(self, predictor: NerPredictor):
        self.predictor = predictor

    def __call__(self, texts: list[str]) -> list[dict]:
        return [text_record(text, words) for text, words in zip(texts, self.predictor.tag_text(texts))]


class MicroBatcher:
    """``await batcher.submit(texts)``: the texts of requests that arrive within ``window_s`` of the first waiting
    one (at most ``max_texts`` in all, a request's texts never split) are tagged by one ``tag`` call in a worker
    thread; each request gets its own records back, in order. Calls run one at a time: the predictor's own threads
    use the cores. Started on first use in the running event loop."""

    def __init__(self, tag: Callable[[list[str]], list[dict]], window_s: float, max_texts: int):
        self.tag, self.window_s, self.max_texts = tag, window_s, max_texts
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ner-batch")
        self.calls = 0  # tag calls made: fewer than requests when batching did something
        self._loop = None

    def _start(self, loop) -> None:
        self._loop, self._waiting, self._arrived = loop, deque(), asyncio.Event()
        self._task = loop.create_task(self._gather())  # held: a task nobody refers to may be collected

    async def submit(self, texts: list[str]) -> list[dict]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._start(loop)
        future = loop.create_future()
        self._waiting.append((texts, future))
        self._arrived.set()
        return await future

    async def _next_batch(self) -> list[tuple[list[str], asyncio.Future]]:
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window_s
        batch = [self._waiting.popleft()]
        count = len(batch[0][0])
        while count < self.max_texts:
            if self._waiting:
                if count + len(self._waiting[0][0]) > self.max_texts:
                    break
                batch.append(self._waiting.popleft())
                count += len(batch[-1][0])
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return [(texts, future) for texts, future in batch if not future.done()]  # a gone caller is dropped

    async def _gather(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            texts = [text for request, _ in batch for text in request]
            try:
                self.calls += 1
                records = await loop.run_in_executor(self.executor, self.tag, texts)
            except Exception as err:  # every caller of the batch gets the error (a 500), and the loop goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            start = 0
            for request, future in batch:
                if not future.done():
                    future.set_result(records[start:start + len(request)])
                start += len(request)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


# ----------------------------------------------------------------------------------------------------------------
# /health: what the model is


def weights_size_bytes(model: str) -> int | None:
    """Bytes of an .onnx file (with its external data), or of a folder's weight files; None for a Hub id."""
    if os.path.isfile(model):
        external = model + ".data"
        return os.path.getsize(model) + (os.path.getsize(external) if os.path.isfile(external) else 0)
    if os.path.isdir(model):
        return sum(os.path.getsize(os.path.join(model, name)) for name in os.listdir(model)
                   if name.endswith(WEIGHT_SUFFIXES) and os.path.isfile(os.path.join(model, name)))
    return None


def run_results(model: str) -> tuple[str | None, dict]:
    """The results.json of the run that made ``model`` (its folder; for an .onnx file, its folder or the run folder
    above ``onnx/``) and its contents; (None, {}) when there is none or it does not parse."""
    if model.endswith(".onnx"):
        here = os.path.dirname(os.path.abspath(model))
        folders = [here, os.path.dirname(here)]
    else:
        folders = [model]
    for folder in folders:
        path = os.path.join(folder, "results.json")
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError):
                return path, {}
            return path, data if isinstance(data, dict) else {}
    return None, {}


def _number(value) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def model_info(model: str, id2label: dict[int, str]) -> dict:
    """``GET /health``'s description of ``model``: test F1 is the ONNX variant's own when results.json has it."""
    kind = "onnx" if model.endswith(".onnx") else "pytorch"
    labels = [id2label[i] for i in sorted(id2label)]
    results_path, results = run_results(model)
    test_f1, f1_of = _number(results.get("test_f1")), "model" if results.get("test_f1") is not None else None
    variant = (results.get("variants") or {}).get(ONNX_VARIANTS.get(os.path.basename(model), "")) if (
        kind == "onnx" and isinstance(results.get("variants"), dict)) else None
    if isinstance(variant, dict) and _number(variant.get("test_f1")) is not None:
        test_f1, f1_of = variant["test_f1"], ONNX_VARIANTS[os.path.basename(model)]
    return {
        "status": "ok",
        "model": os.path.abspath(model) if os.path.exists(model) else model,
        "kind": kind,
        "labels": labels,
        "entity_types": sorted({tag[2:] for tag in labels if tag[:2] in ("B-", "I-")}),
        "size_bytes": weights_size_bytes(model),
        "test_f1": test_f1,
        "test_f1_of": f1_of if test_f1 is not None else None,
        "num_parameters": _number(results.get("num_parameters")),
        "results": results_path,
    }


# ----------------------------------------------------------------------------------------------------------------
# The app


def error_response(status: int, message: str, request, headers=None):
    from fastapi.responses import JSONResponse

    log.warning("%s %s %s: %s", status, request.method, request.url.path, message)
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


async def read_body(request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit`` bytes: a declared Content-Length, or the bytes read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the body is {int(declared)} bytes, over the limit of {limit} (--max_body_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"the body is over the limit of {limit} bytes (--max_body_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


PREDICT_OPENAPI = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
         "additionalProperties": False},
        {"type": "object", "properties": {"texts": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
         "required": ["texts"], "additionalProperties": False},
    ]}, "example": {"text": "Mara Velden joined Norvane Bank in Port Aldane ."}}}}}


def create_app(tag: Callable[[list[str]], list[dict]], info: dict, limits: ServeLimits = ServeLimits(),
               on_shutdown: Callable[[], None] | None = None):
    """The FastAPI app around ``tag`` (``TextTagger``, or any texts -> records callable) and ``info`` (/health)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel
    from starlette.exceptions import HTTPException

    class Entity(BaseModel):
        start: int
        end: int
        label: str
        text: str
        score: float

    class Record(BaseModel):
        text: str
        entities: list[Entity]

    class Error(BaseModel):
        error: str
        status: int

    batcher = MicroBatcher(tag, limits.batch_window_ms / 1000, limits.max_batch_texts) if (
        limits.batch_window_ms > 0) else None

    @asynccontextmanager
    async def lifespan(app):
        yield
        if batcher is not None:
            batcher.close()
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(title="bert-ner-compress", version="0.1.0", lifespan=lifespan,
                  description="Named entities with a model made by bert-ner-compress (run_ner_predict --serve).")
    app.state.batcher = batcher
    health = {**info, "batching": {"window_ms": limits.batch_window_ms, "max_texts": limits.max_batch_texts},
              "limits": {"max_body_bytes": limits.max_body_bytes, "max_text_chars": limits.max_text_chars}}
    errors = {code: {"model": Error} for code in (400, 413, 415, 422, 500)}

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = {404: f"no such path {request.url.path}: try POST /predict, GET /health, / or /docs",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return error_response(exc.status_code, message, request, getattr(exc, "headers", None))

    @app.post("/predict", response_model=None, openapi_extra=PREDICT_OPENAPI,
              responses={200: {"model": Record | list[Record]}, **errors},
              summary="Entities of one text, or of a list of texts")
    async def predict(request: Request):
        try:
            check_content_type(request.headers.get("content-type"))
            texts, is_list = parse_texts(await read_body(request, limits.max_body_bytes), limits.max_text_chars)
        except BadRequest as bad:
            return error_response(bad.status, bad.message, request)
        try:
            records = await (batcher.submit(texts) if batcher is not None else asyncio.to_thread(tag, texts))
        except Exception as err:
            detail = " ".join(str(err).splitlines())
            log.error("500 %s %s: prediction failed (%s: %s)", request.method, request.url.path,
                      type(err).__name__, detail)
            return JSONResponse({"error": f"prediction failed ({type(err).__name__}); see the server log",
                                 "status": 500}, status_code=500)
        return JSONResponse(records if is_list else records[0])

    @app.get("/health", summary="The model: path, kind, labels, size on disk, test F1 and parameters")
    async def get_health():
        return health

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def build_app(args):
    """The app for ``PredictArguments`` ``args``: ``load_backend`` and ``NerPredictor`` as ``predict_file`` makes them."""
    import_http()
    backend, tokenizer = load_backend(args)
    predictor = NerPredictor(backend, tokenizer, args.max_seq_length, args.stride, args.batch_size,
                             workers=getattr(backend, "parallel_calls", 1))
    return create_app(TextTagger(predictor), model_info(args.model, backend.id2label), ServeLimits.from_args(args),
                      on_shutdown=predictor.close)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or one OSError naming the flag (a port in use, an address not of this machine)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise OSError(f"--host {host}: not an address of this machine ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise OSError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(args, out=None) -> None:
    """Load the model, then serve it until Ctrl-C; one line says where."""
    out = out or sys.stderr
    _, uvicorn = import_http()  # before the model loads: a missing extra is one line at once
    if not log.handlers:
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter("run_ner_predict: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    app = build_app(args)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    batching = (f"batching {args.batch_window_ms} ms / {args.max_batch_texts} texts" if args.batch_window_ms
                else "no batching")
    log.info("serving %s on http://%s:%s (%s; page at /, API at /docs)",
             args.model, f"[{host}]" if ":" in host else host, port, batching)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
