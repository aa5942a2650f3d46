"""The fast lane: the two operations every approval makes, without FastAPI's request machinery.

POST /api/process-instances and POST /api/tasks/{id}/actions/{action} are most of djflow's
traffic. FastAPI's routing, dependency solving, per-parameter validation and exception middleware
cost about 2.7 M instructions per request here, more than a third of the whole request with the
engine's own work (bench/api.py, callgrind). This layer recognises a well-formed request to one of
the two, parses it (orjson, then the route's own pydantic body model), authenticates it through
the route's own `Authorized` dependency, and calls the route function itself: one implementation of
each operation, whichever way a request comes in.

Anything it is not sure of goes on to FastAPI unchanged (the body it read is replayed): a body
that is not a JSON object or fails the model, an id out of range, an unknown action, an odd
header. So every error a client can cause by the shape of its request is FastAPI's, word for
word; what this layer answers itself are the route's results and the engine's problems (the same
`engine_problem` FastAPI's handler uses). tests/api/test_fastlane.py holds the two ways to the same
answers.
"""
from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from api.errors import engine_problem, problem
from api.instances.routes import start as start_route
from api.tasks.routes import Action
from api.tasks.routes import act as act_route
from engine import EngineError

_ACT_PATH = re.compile(r"^/api/tasks/([1-9][0-9]{0,18})/actions/([a-z_]{1,20})$")
_START_PATH = "/api/process-instances"
_ACTIONS = frozenset(typing.get_args(Action))
_MAX_ID = 2**63 - 1
_MAX_IDEMPOTENCY_KEY = 200  # the routes' Header(max_length=...)


def _dependency(route, name: str):
    """The dependency object a route declares for parameter `name` (its `Depends(...)`)."""
    return typing.get_type_hints(route, include_extras=True)[name].__metadata__[0].dependency


def _body_model(route) -> type[BaseModel]:
    return typing.get_type_hints(route)["body"]


class FastLane:
    def __init__(self, app):
        self.app = app
        self.enabled = True
        self.served = 0  # requests answered here (the tests check the lane is taken)
        self._act = (_dependency(act_route, "principal"), _body_model(act_route))
        self._start = (_dependency(start_route, "principal"), _body_model(start_route))

    def wants(self, scope) -> bool:
        if scope["method"] != "POST" or not self.enabled:
            return False
        path = scope["path"]
        return path == _START_PATH or (path.startswith("/api/tasks/") and _ACT_PATH.match(path) is not None)

    async def __call__(self, scope, receive, send, fallback: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:  # a chunked body that did not declare its length, over the limit
                response = problem(413, "Payload too large", f"请求内容超过 {max_bytes // 1024} KB")
                return await response(scope, receive, send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replay = _replay(body, receive)
        call = self._parse(scope, body)
        if call is None:
            return await fallback(scope, replay, send)
        scope["app"] = self.app
        request = Request(scope, replay)
        try:
            response = await call(request)
        except EngineError as exc:
            response = engine_problem(exc)
        self.served += 1
        await response(scope, replay, send)

    def _parse(self, scope, body: bytes):
        """The route call for a well-formed request; None to leave it to FastAPI."""
        headers = scope["headers"]
        ctype = key = None
        keys = 0
        for name, value in headers:
            if name == b"content-type":
                ctype = value
            elif name == b"idempotency-key":
                key, keys = value, keys + 1
        if ctype is None or not ctype.split(b";")[0].strip() == b"application/json" or keys > 1:
            return None
        try:
            idem = None if key is None else key.decode("latin-1")
            data = orjson.loads(body)
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or (idem is not None and len(idem) > _MAX_IDEMPOTENCY_KEY):
            return None
        path = scope["path"]
        if path == _START_PATH:
            authorized, model, route, kw = *self._start, start_route, {}
        else:
            m = _ACT_PATH.match(path)
            task_id, action = int(m.group(1)), m.group(2)
            if task_id > _MAX_ID or action not in _ACTIONS:
                return None
            authorized, model, route, kw = *self._act, act_route, {"task_id": task_id, "action": action}
        try:
            parsed = model.model_validate(data)
        except ValidationError:
            return None
        engine = self.app.state.engine

        async def call(request: Request):
            principal = await authorized(request)
            return await route(request, body=parsed, engine=engine, principal=principal, idempotency_key=idem, **kw)
        return call


def _replay(body: bytes, receive):
    """A `receive` that gives `body` first, then whatever the client still sends."""
    pending = True

    async def replayed():
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed
