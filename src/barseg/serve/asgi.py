"""ASGI middlewares of the public service: request checks BentoML 1.4 leaves out, and the
shape of its 4xx errors.

BentoML 1.4 has no request size limit (``api_server.max_request_size`` is gone), and its
multipart parsing answers 500 to a misnamed file field (it JSON-decodes the file's bytes),
to a file sent as a text field (it tries to download it as a URL) and to a body without a
boundary. It also sends a 4xx raised as a ``BentoMLException`` as ``[{"error": ...}]``, a
list, where its other errors and its OpenAPI schema say ``{"error": ...}``
(bentoml/BentoML#4232). Every refusal here names the problem.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from bentoml.exceptions import BentoMLException
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class PayloadTooLarge(BentoMLException):
    """413: the upload, or the image in it, is larger than the service accepts."""

    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


@dataclass(frozen=True)
class FormFields:
    """The fields of one API's form: file uploads, text values, and which are required."""

    files: frozenset[str]
    texts: frozenset[str]
    required: frozenset[str]

    def expected(self) -> str:
        return f"a multipart/form-data form with the photo in the file field '{', '.join(sorted(self.required))}'"

    def problem(self, name: str, is_file: bool) -> str | None:
        if name in self.files and not is_file:
            return f"field '{name}' must be a file upload (curl -F {name}=@photo.jpg), not a text value"
        if name in self.texts and is_file:
            return f"field '{name}' must be a text value, not a file upload"
        if name not in self.files | self.texts:
            return f"unexpected field '{name}'; this endpoint takes {', '.join(sorted(self.files | self.texts))}"
        return None


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class RequestGuard:
    """Reads the request body (at most ``max_bytes``: 413 beyond, refused before reading
    when the client declares its length), checks the form of the routes in ``forms`` (400
    naming the field), then hands the body on to BentoML."""

    def __init__(self, app: App, max_bytes: int, forms: Mapping[str, FormFields]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.forms = forms

    def too_large(self, size: str) -> dict[str, str]:
        return {"error": f"the request body ({size} bytes) is larger than the limit of {self.max_bytes} bytes"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self.too_large(declared.decode()))
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await send_json(send, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self.too_large(f"over {size}"))
                return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        fields = self.forms.get(scope["path"])
        if fields is not None and scope["method"] == "POST":
            media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
            if media_type in FORM_TYPES:
                problem = await form_problem(scope, body, fields)
                if problem is not None:
                    await send_json(send, HTTPStatus.BAD_REQUEST, {"error": problem})
                    return
            elif not body:
                await send_json(
                    send, HTTPStatus.BAD_REQUEST, {"error": f"empty request body; expected {fields.expected()}"}
                )
                return
            elif media_type != "application/json":  # JSON: BentoML's own input, validated by it
                error = f"Content-Type '{media_type}' not accepted; expected {fields.expected()}"
                await send_json(send, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": error})
                return
        await self.app(scope, replay, send)


async def form_problem(scope: Scope, body: bytes, fields: FormFields) -> str | None:
    """What is wrong with the form in ``body``, or None."""

    async def once() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request(scope, once)
    try:
        form = await request.form()
    except MultiPartException as exc:
        return f"unreadable form body: {exc.message}"
    except HTTPException as exc:  # Starlette's wrapping of MultiPartException inside an app
        return f"unreadable form body: {exc.detail}"
    try:
        for name, value in form.multi_items():
            problem = fields.problem(name, isinstance(value, UploadFile))
            if problem is not None:
                return problem
    finally:
        await form.close()
    missing = sorted(fields.required - set(form.keys()))
    return f"missing field '{missing[0]}'; expected {fields.expected()}" if missing else None


class FlatErrors:
    """Sends a 4xx JSON body of the form ``[{"error": ...}]`` as ``{"error": ...}``."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def flatten(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if 400 <= message["status"] < 500 and headers.get(b"content-type", b"").startswith(b"application/json"):
                    held = message  # wait for the body
                    return
            elif held is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                if isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], dict):
                    body = json.dumps(parsed[0]).encode()
                kept = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
                await send({**held, "headers": [*kept, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, flatten)


def form_fields(apis: Mapping[str, Any]) -> dict[str, FormFields]:
    """Route -> form fields of BentoML API methods (``Service.apis``)."""
    out = {}
    for method in apis.values():
        model_fields = method.input_spec.model_fields
        files = frozenset(method.input_spec.multipart_fields)
        required = frozenset(name for name, field in model_fields.items() if field.is_required())
        out[method.route] = FormFields(files, frozenset(model_fields) - files, required)
    return out
