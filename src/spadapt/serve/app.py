"""The HTTP API: `create_app(config)` builds a FastAPI app around one base model.

Routes: `POST /v1/classify`, OpenAI-compatible `POST /v1/completions` and
`POST /v1/chat/completions` (greedy at temperature 0, else sampled with `top_p` and a `seed`;
`n` choices; `stop`; `stream: true` for server-sent events; `model` names the adapter, "" or
the base's name = no adapter), `GET /v1/models`, `POST /v1/adapters`,
`DELETE /v1/adapters/{name}`, `GET /healthz`, `GET /metrics` (and the OpenAPI schema and docs).
With an API key configured, every route but `/healthz` needs `Authorization: Bearer <key>`
(a FastAPI security dependency on the `api` router).

Every refusal is JSON `{"error": {"message", "type", "param", "code"}}` (OpenAI's shape) with a
4xx status: 400 invalid JSON,
limits, wrong task or a directory that is not an adapter; 401 API key; 404 unknown adapter or
route; 409 name taken; 413 body too large; 422 schema errors or an adapter whose files fail
verification (when added or loaded); 429 queue full. A 5xx means a bug (and fails only its
own request).
Model work happens in `batcher.Batcher`; this module validates, routes and formats.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import SpadaptError
from ..names import NAME_RULE
from .batcher import Batcher, Row
from .cache import AdapterCache, AdapterEntry, read_entry
from .config import REGISTRY_PREFIX, ServeConfig, is_adapter_reference
from .errors import ServeError
from .metrics import CONTENT_TYPE, Metrics
from .runner import Sampling, ServedBase
from .streaming import IncrementalText, stream

log = logging.getLogger("spadapt.serve")


# Request bodies ---------------------------------------------------------------------------------
class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    adapter: StrictStr  # adapter name, NAME or NAME@VERSION
    texts: list[StrictStr]


class CompletionRequest(BaseModel):  # OpenAI fields we do not use are accepted and ignored
    model_config = ConfigDict(extra="allow")
    model: StrictStr = ""
    prompt: StrictStr | list[StrictStr]
    max_tokens: int | None = 16
    n: int = 1  # choices per prompt
    stream: bool = False
    stop: StrictStr | list[StrictStr] | None = None
    temperature: float | None = None  # None or 0: greedy
    top_p: float | None = None
    seed: int | None = None  # sampling: the same seed and prompt give the same text


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: StrictStr | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: StrictStr = ""
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int = 1
    stream: bool = False
    stop: StrictStr | list[StrictStr] | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None


class LoadAdapterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = None  # default: the registry reference or the directory's name
    path: StrictStr | None = None  # an adapter directory on the server's disk
    registry: StrictStr | None = None  # NAME or NAME@VERSION in the server's registry


# The server -------------------------------------------------------------------------------------
def bad_request(message: str, type: str = "invalid_request_error") -> ServeError:
    return ServeError(400, type, message)


class Server:
    """What the routes share: config, base model, adapter cache, batcher, metrics."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.base = ServedBase(config.model, config.max_length)
        self.metrics = Metrics()
        self.cache = AdapterCache(self.base.build, config.max_resident_adapters)
        self.batcher = Batcher(self.base, self.cache, self.metrics, config.max_batch_size,
                               config.max_batch_wait_ms, config.max_queued_rows)
        self.created = int(time.time())
        self._watch_metrics()
        for name, source in config.adapters.items():
            self.cache.add(self._entry(name, source))
        if config.load_at_start:  # fail at start, not at the first request
            for name in self.cache.names()[: config.max_resident_adapters]:
                self.cache.ensure(name, set())

    # Adapters (the _methods run on the model thread) ----------------------------------------
    def _resolve(self, reference: str):
        from ..registry import Registry  # optional: only when a registry reference is used

        return Registry(self.config.registry).resolve(reference)

    def _entry(self, name: str, source: str) -> AdapterEntry:
        if not source.startswith(REGISTRY_PREFIX):
            return read_entry(name, source, source, self.base)
        reference = source.removeprefix(REGISTRY_PREFIX)
        if self.config.registry is None:
            raise bad_request(f"adapter {name!r} is a registry reference but this server has "
                              "no registry (start it with --registry PATH)")
        try:
            directory = self._resolve(reference)
        except ImportError:
            raise ServeError(404, "adapter_not_found", f"cannot resolve {reference!r}: this "
                             "spadapt has no registry module") from None
        except (SpadaptError, LookupError, OSError) as error:
            raise ServeError(404, "adapter_not_found",
                             f"registry has no adapter {reference!r}: {error}") from None
        return read_entry(name, directory, source, self.base)

    def _add(self, name: str, source: str, load: bool) -> AdapterEntry:
        """Register (and with `load`, load now) an adapter; a failed load registers nothing."""
        known = self.cache.lookup(name)
        if known is not None and not load:  # registered meanwhile by another request
            return known
        entry = self._entry(name, source)
        self.cache.add(entry)
        if load:
            try:
                self.cache.ensure(name, {name})
            except Exception:
                self.cache.remove(name)
                raise
        return entry

    async def entry(self, name: str) -> AdapterEntry:
        """A known adapter, or one found in the registry (registered on first use)."""
        known = self.cache.lookup(name)
        if known is not None:
            return known
        if self.config.registry is not None and is_adapter_reference(name):
            return await self.batcher.call(self._add, name, REGISTRY_PREFIX + name, False)
        return self.cache.get(name)  # raises the 404

    async def route(self, model: str, task: str) -> str | None:
        """The adapter named by an OpenAI `model` field (None = the base), checked for `task`."""
        if model in self.base.names:
            if task != "causal_lm":
                raise bad_request("the base model has no labels; name a classification "
                                  "adapter", "wrong_task")
            if not self.base.causal:
                raise bad_request(f"the base model {self.base.reference!r} is not a causal "
                                  "language model; it cannot complete text", "wrong_task")
            return None
        entry = await self.entry(model)
        if entry.task != task:
            what = {"classification": "/v1/classify", "causal_lm": "/v1/completions"}
            raise bad_request(f"adapter {model!r} is a {entry.task} adapter; use "
                              f"{what[entry.task]} for it", "wrong_task")
        return model

    def describe(self) -> list[dict]:
        base = {"id": self.base.reference, "object": "model", "created": self.created,
                "owned_by": "spadapt", "parent": None,
                "task": "causal_lm" if self.base.causal else "encoder"}
        out = [base]
        for entry in self.cache.entries():
            out.append({"id": entry.name, "object": "model", "created": self.created,
                        "owned_by": "spadapt", "parent": self.base.reference,
                        "root": self.base.reference, "task": entry.task,
                        "method": entry.method, "labels": entry.labels,
                        "source": entry.source,
                        "resident": self.cache.is_resident(entry.name)})
        return out

    def _watch_metrics(self) -> None:
        """Expose the numbers the cache and the batcher own, read at every scrape."""
        cache, watch = self.cache, self.metrics.watch
        watch("spadapt_resident_adapters", "gauge", "Adapters loaded in the model now.",
              lambda: len(cache.resident_names()))
        watch("spadapt_known_adapters", "gauge", "Adapters the server can serve.",
              lambda: len(cache))
        watch("spadapt_adapter_cache_hits_total", "counter",
              "Batches whose adapter was already resident.", lambda: cache.hits)
        watch("spadapt_adapter_cache_misses_total", "counter",
              "Adapter loads on demand (not resident when asked).", lambda: cache.misses)
        watch("spadapt_adapter_evictions_total", "counter",
              "Adapters unloaded to make room (LRU).", lambda: cache.evictions)
        watch("spadapt_adapter_load_failures_total", "counter", "Adapter loads that failed.",
              lambda: cache.load_failures)
        watch("spadapt_queued_rows", "gauge", "Rows waiting for the model worker.",
              lambda: self.batcher.queued)

    # Limits -------------------------------------------------------------------------------
    def check_texts(self, texts: list[str], what: str) -> None:
        limit, chars = self.config.max_texts, self.config.max_text_chars
        if not texts:
            raise bad_request(f"{what} is empty; give at least one")
        if len(texts) > limit:
            raise bad_request(f"{what} has {len(texts)} entries; the limit is {limit}")
        for index, text in enumerate(texts):
            if not text.strip():
                raise bad_request(f"{what}[{index}] is empty or only whitespace")
            if len(text) > chars:
                raise bad_request(f"{what}[{index}] has {len(text)} characters; the limit is "
                                  f"{chars}")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:  # JSON allows lone surrogates like "\ud800"
                raise bad_request(f"{what}[{index}] is not valid Unicode text ({error.reason} "
                                  f"at character {error.start})") from None

    def max_tokens(self, value: int | None) -> int:
        cap = self.config.max_new_tokens
        value = cap if value is None else value
        if not 1 <= value <= cap:
            raise bad_request(f"max_tokens must be between 1 and {cap}, got {value}")
        return value


MAX_CHOICES = 16  # most `n` of one request


def _samplings(body: CompletionRequest | ChatRequest) -> list[Sampling]:
    """One Sampling per choice (`n`), checked; choice i of a seeded request uses seed + i."""
    if not 1 <= body.n <= MAX_CHOICES:
        raise bad_request(f"n must be between 1 and {MAX_CHOICES}, got {body.n}")
    temperature = 0.0 if body.temperature is None else body.temperature
    top_p = 1.0 if body.top_p is None else body.top_p
    if not 0.0 <= temperature <= 2.0:
        raise bad_request(f"temperature must be between 0 and 2, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise bad_request(f"top_p must be in (0, 1], got {top_p}")
    return [Sampling(temperature, top_p, None if body.seed is None else body.seed + i)
            for i in range(body.n)]


def _stops(stop: str | list[str] | None) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop or [])


def _cut_at_stop(generated, stop: str | list[str] | None) -> tuple[str, str]:
    stops = _stops(stop)
    text, finish = generated.text, generated.finish_reason
    cuts = [text.find(s) for s in stops if s and s in text]
    if cuts:
        text, finish = text[: min(cuts)], "stop"
    return text, finish


def _usage(outputs) -> dict:
    prompt = sum(o.prompt_tokens for o in outputs)
    completion = sum(o.completion_tokens for o in outputs)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


# Front door: metrics and body size; the API key ------------------------------------------------
def _error_body(status: int, type: str, message: str,
                headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type, "param": None,
                                   "code": type}}, status_code=status, headers=headers)


class FrontDoor:
    """ASGI middleware: counts and times every request, refuses big bodies."""

    def __init__(self, app, server: Server) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def observed_send(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, observed_send)
            else:
                await self.app(scope, receive, observed_send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.server.metrics.observe_request(path, scope["method"], status[0],
                                                time.perf_counter() - start)

    def _refusal(self, scope) -> JSONResponse | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        config = self.server.config
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _error_body(400, "invalid_request_error",
                                   f"Content-Length {length!r} is not a number")
            if int(length) > config.max_body_bytes:
                return _error_body(413, "request_too_large", f"the body has {length} bytes; "
                                   f"the limit is {config.max_body_bytes}")
        return None


def api_key_check(api_key: str):
    """A dependency that refuses a request without the header `Authorization: Bearer <api_key>`
    (401, `authentication_error`), comparing in constant time."""
    bearer = HTTPBearer(auto_error=False, description="The server's API key (--api-key).")
    expected = api_key.encode()

    async def require_api_key(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or not secrets.compare_digest(
                credentials.credentials.encode(), expected):
            raise ServeError(401, "authentication_error", "missing or invalid API key: send "
                             "the header 'Authorization: Bearer <key>'",
                             headers={"WWW-Authenticate": "Bearer"})

    return require_api_key


# The app ----------------------------------------------------------------------------------------
def _validation_message(error: RequestValidationError) -> tuple[int, str, str]:
    errors = error.errors()
    for item in errors:
        if item.get("type") == "json_invalid":
            detail = (item.get("ctx") or {}).get("error", item.get("msg", ""))
            return 400, "invalid_json", f"the request body is not valid JSON ({detail})"
    parts = []
    for item in errors[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {item.get('msg')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, "invalid_request_error", "; ".join(parts) + more


def create_app(config: ServeConfig) -> FastAPI:
    """The FastAPI app; loads the base model (and the first adapters) before returning."""
    server = Server(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        server.batcher.start()
        try:
            yield
        finally:
            await server.batcher.stop()

    # FastAPI's own /openapi.json, /docs and /redoc take no dependencies: they are served on
    # `api` below instead, so that the API key guards every route but /healthz.
    app = FastAPI(title="spadapt", version=__version__, lifespan=lifespan, openapi_url=None,
                  docs_url=None, redoc_url=None)
    app.state.server = server
    app.add_middleware(FrontDoor, server=server)
    keyed = [Depends(api_key_check(config.api_key))] if config.api_key is not None else []
    api = APIRouter(dependencies=keyed)  # every route but /healthz

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, error: ServeError) -> JSONResponse:
        return _error_body(error.status, error.type, error.message, error.headers)

    @app.exception_handler(SpadaptError)
    async def spadapt_error(request: Request, error: SpadaptError) -> JSONResponse:
        return _error_body(400, "invalid_request_error", str(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        status, type, message = _validation_message(error)
        return _error_body(status, type, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        types = {400: "invalid_request_error", 404: "not_found", 405: "method_not_allowed"}
        return _error_body(error.status_code, types.get(error.status_code, "http_error"),
                           str(error.detail))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        return _error_body(500, "internal_error", f"internal error ({type(error).__name__}); "
                           "this is a bug in spadapt, please report it")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "base_model": server.base.reference,
                "known_adapters": len(server.cache),
                "resident_adapters": server.cache.resident_names()}

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict:
        return app.openapi()

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="spadapt - Swagger UI")

    @api.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="spadapt - ReDoc")

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(server.metrics.render(), media_type=CONTENT_TYPE)

    @api.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": server.describe()}

    @api.post("/v1/adapters", status_code=201)
    async def load_adapter(body: LoadAdapterRequest) -> dict:
        if (body.path is None) == (body.registry is None):
            raise bad_request("give exactly one of 'path' (an adapter directory) or "
                              "'registry' (NAME or NAME@VERSION)")
        if body.registry is not None:
            source = REGISTRY_PREFIX + body.registry
            name = body.name or body.registry
        else:
            source = body.path
            name = body.name or body.path.rstrip("/").rsplit("/", 1)[-1]
        if not is_adapter_reference(name):
            raise bad_request(f"adapter name {name!r} is invalid: {NAME_RULE} (NAME@VERSION "
                              "for a registry version)")
        server.cache.require_new(name)
        entry = await server.batcher.call(server._add, name, source, True)
        return next(m for m in server.describe() if m["id"] == entry.name)

    @api.delete("/v1/adapters/{name}")
    async def delete_adapter(name: str) -> dict:
        entry = await server.batcher.call(server.cache.remove, name)
        return {"id": entry.name, "object": "model", "deleted": True}

    @api.post("/v1/classify")
    async def classify(body: ClassifyRequest) -> dict:
        server.check_texts(body.texts, "texts")
        await server.route(body.adapter, "classification")
        labels = server.cache.get(body.adapter).labels
        outputs = await server.batcher.submit(
            [Row(body.adapter, "classify", text) for text in body.texts])
        results = []
        for probabilities in outputs:
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            results.append({"label": labels[best],
                            "probabilities": dict(zip(labels, probabilities, strict=True))})
        return {"model": server.base.reference, "adapter": body.adapter, "labels": labels,
                "results": results}

    @api.post("/v1/completions")
    async def completions(body: CompletionRequest):
        samplings = _samplings(body)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        server.check_texts(prompts, "prompt")
        adapter = await server.route(body.model, "causal_lm")
        max_tokens = server.max_tokens(body.max_tokens)
        rows = [Row(adapter, "generate", p, max_tokens=max_tokens, sampling=sampling)
                for p in prompts for sampling in samplings]
        head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion",
                "created": int(time.time()), "model": body.model or server.base.reference}
        if body.stream:
            def chunk(index: int, text: str, finish: str | None) -> dict:
                return {**head, "choices": [{"index": index, "text": text, "logprobs": None,
                                             "finish_reason": finish}]}

            return await _streamed(server, rows, body.stop, chunk)
        choices, outputs = await _answered(server, rows, body.stop, lambda index, text, finish: {
            "index": index, "text": text, "logprobs": None, "finish_reason": finish})
        return {**head, "choices": choices, "usage": _usage(outputs)}

    @api.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest):
        samplings = _samplings(body)
        server.check_texts([m.text() for m in body.messages], "messages")
        adapter = await server.route(body.model, "causal_lm")
        limit = body.max_completion_tokens if body.max_completion_tokens is not None \
            else body.max_tokens
        max_tokens = server.max_tokens(limit)
        prompt = _chat_prompt(server.base, [{"role": m.role, "content": m.text()}
                                            for m in body.messages])
        rows = [Row(adapter, "generate", prompt, chat=True, max_tokens=max_tokens,
                    sampling=sampling) for sampling in samplings]
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                "model": body.model or server.base.reference}
        if body.stream:
            started: set[int] = set()

            def chunk(index: int, text: str, finish: str | None) -> dict:
                delta = {"content": text} if text or finish is None else {}
                if index not in started:  # a choice's first chunk names the role
                    started.add(index)
                    delta = {"role": "assistant", **delta}
                return {**head, "object": "chat.completion.chunk",
                        "choices": [{"index": index, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}]}

            return await _streamed(server, rows, body.stop, chunk)
        choices, outputs = await _answered(server, rows, body.stop, lambda index, text, finish: {
            "index": index, "message": {"role": "assistant", "content": text},
            "logprobs": None, "finish_reason": finish})
        return {**head, "object": "chat.completion", "choices": choices,
                "usage": _usage(outputs)}

    app.include_router(api)
    return app


def _chat_prompt(base: ServedBase, messages: list[dict[str, Any]]) -> str:
    """The messages through the tokenizer's chat template, ending with the assistant's turn."""
    if not getattr(base.tokenizer, "chat_template", None):
        raise bad_request(f"the base model {base.reference!r} has no chat template; use "
                          "/v1/completions with a plain prompt")
    from jinja2 import TemplateError

    try:
        return base.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)
    except TemplateError as error:  # templates raise for turns they do not accept
        raise bad_request(f"the chat template rejected these messages ({error})") from None


async def _answered(server: Server, rows: list[Row], stop, choice) -> tuple[list[dict], list]:
    """The rows' answers, each cut at `stop`, as `choice(index, text, finish_reason)` dicts,
    with the raw outputs (for the usage counts)."""
    outputs = await server.batcher.submit(rows)
    return [choice(index, *_cut_at_stop(output, stop))
            for index, output in enumerate(outputs)], outputs


async def _streamed(server: Server, rows: list[Row], stop, chunk) -> StreamingResponse:
    """The rows' answers as an event stream (`streaming.stream`)."""
    texts = [IncrementalText(server.base.tokenizer, _stops(stop), row.max_tokens)
             for row in rows]
    events = await stream(server.batcher, rows, texts, chunk,
                          lambda output: _cut_at_stop(output, stop))
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
