"""Service tasks: `<spiffworkflow:serviceTaskOperator id="…">` on a bpmn:serviceTask.

Operators:

- `http/request` (url, method, headers, body): an outbound HTTP call. It never runs inside an
  instance's transaction: when the task becomes READY, djflow evaluates its parameters against the
  task data and writes a `timer_jobs` row (kind 'service', one per task); a worker (`djflow worker`
  with Redis, else `djflow serve`'s tick) claims it, calls out with no lock held, then records the
  outcome in the instance's own transaction. 2xx: the response goes to the result variable and the
  instance moves on. 5xx, 429, a timeout or a refused connection: retried with exponential
  back-off (`service_retries`, `service_backoff_seconds`, or the operator's own
  `<spiffworkflow:retry retries="" backoff_base="">`). Another 4xx, a refused host, or the last
  retry failing: the instance goes to `error` with the reason, and an administrator's retry
  (`POST /api/process-instances/{id}/retry`) runs the call again. Only hosts in
  `service_allowed_hosts` are called (deny by default), redirects are not followed, the response
  is read up to `service_max_response_bytes`. Every call carries `Idempotency-Key: djflow-<job>-
  <attempt>`, since a worker that dies mid-call means the call is made again.
- `notify/send` (to, title, body), `points/award` (member, points, reason) and
  `archive/snapshot` (name): djflow's own tables only, so they run at once, in the transaction
  that reached the task: exactly once, together with the state change.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable
from urllib.parse import urlsplit

from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.util.task import TaskState

from engine.scheduler import timers
from engine.sql import Sql

KIND = "service"
HTTP = "http/request"
# operator → its parameters; the built-in ones (everything but http/request) also have a function
OPERATORS: dict[str, dict] = {
    HTTP: {"required": ("url",), "optional": ("method", "headers", "body", "timeout")},
}
BUILTINS: dict[str, Callable] = {}


def builtin(name: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()):
    """Register `fn(unit, t, params, settings) -> dict` as the built-in operator `name`: it runs in
    the transaction that reached the service task (djflow's own tables only, never the network),
    its result goes to the task's result variable, and a ValueError refuses it with the reason."""
    def register(fn: Callable) -> Callable:
        if name in OPERATORS:
            raise ValueError(f"service operator {name!r} is already registered")
        OPERATORS[name] = {"required": tuple(required), "optional": tuple(optional)}
        BUILTINS[name] = fn
        return fn
    return register
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_BACKOFF_SECONDS = 3600


class ServiceFailure(Exception):
    """A call that did not succeed; `retry`: worth trying again later."""

    def __init__(self, reason: str, *, retry: bool, status: int | None = None):
        super().__init__(reason)
        self.reason, self.retry, self.status = reason, retry, status


def is_service(task_spec) -> bool:
    return isinstance(task_spec, ServiceTask)


def make_asynchronous(specs) -> bool:
    """Mark every service task manual, so do_engine_steps stops at it and djflow runs it; True
    when there is any."""
    found = False
    for spec in specs:
        for ts in spec.task_specs.values():
            if is_service(ts):
                ts.manual = True
                found = True
    return found


def ready(workflow) -> list:
    return [t for t in workflow.get_tasks(state=TaskState.READY, manual=True) if is_service(t.task_spec)]


def describe(t) -> dict:
    return {"node": t.task_spec.bpmn_id or t.task_spec.name, "name": t.task_spec.bpmn_name or "",
            "operator": t.task_spec.operation_name}


def params(t) -> dict:
    """The operator's parameters evaluated against the task's data (restricted expressions)."""
    return {name: p["value"] for name, p in t.task_spec.evaluate_params(t).items()}


def complete(t, result) -> None:
    """Store the operator's result and complete the task (without Spiff running the operator)."""
    t.data[t.task_spec.result_variable] = result
    t.complete()


# -- the http/request job ------------------------------------------------------------------------
@dataclass
class Call:
    job_id: int
    instance_id: int
    ref: str
    attempt: int
    payload: dict


def sync(sql: Sql, instance_id: int, workflow, at: datetime, settings) -> None:
    """A job for every READY http/request task that has none; the jobs of tasks that moved on
    (cancelled by a boundary event or by the instance ending) end (deferred writes)."""
    jobs = []
    for t in ready(workflow):
        if t.task_spec.operation_name != HTTP:
            continue
        spec = t.task_spec
        jobs.append((str(t.id), at, {
            **describe(t), "params": params(t),
            "retries": spec.retries if spec.retries is not None else settings.service_retries,
            "backoff": spec.retry_backoff_base if spec.retry_backoff_base is not None
            else settings.service_backoff_seconds}))
    timers.keep_jobs(sql, instance_id, KIND, jobs, at, ending=("waiting", "error"))


def lease(sql: Sql, job_id: int, at: datetime, *, seconds: float, worker: str) -> Call | None:
    """Take the job for one call: its attempt number goes up and it is not due again for `seconds`
    (a worker that dies mid-call leaves it to be called again after that)."""
    row = sql.row("UPDATE timer_jobs SET attempts = attempts + 1, due_at = ?, locked_by = ?, updated_at = ? "
                  "WHERE id = ? AND status = 'waiting' RETURNING id, instance_id, ref, attempts, payload",
                  (sql.ts(at + timedelta(seconds=seconds)), worker[:100], sql.ts(at), job_id))
    if row is None:
        return None
    return Call(row[0], row[1], row[2], row[3], Sql.from_json(row[4]))


def current(sql: Sql, call: Call):
    """The job as it is now, row-locked: (status, attempts), None when gone."""
    return sql.row("SELECT status, attempts FROM timer_jobs WHERE id = ?" + sql.for_update(), (call.job_id,))


def backoff(call: Call) -> float:
    return min(MAX_BACKOFF_SECONDS, float(call.payload.get("backoff") or 1) * 2 ** (call.attempt - 1))


def again_at(sql: Sql, call: Call, due: datetime, reason: str, at: datetime) -> None:
    sql.run("UPDATE timer_jobs SET due_at = ?, last_error = ?, locked_by = NULL, updated_at = ? WHERE id = ?",
            (sql.ts(due), reason[:2000], sql.ts(at), call.job_id))


def give_up(sql: Sql, call: Call, reason: str, at: datetime) -> None:
    sql.run("UPDATE timer_jobs SET status = 'error', last_error = ?, locked_by = NULL, updated_at = ? WHERE id = ?",
            (reason[:2000], sql.ts(at), call.job_id))


def rearm(sql: Sql, instance_id: int, at: datetime) -> int:
    """An administrator's retry: the instance's failed calls are due now, with their attempts reset."""
    return sql.run("UPDATE timer_jobs SET status = 'waiting', attempts = 0, due_at = ?, last_error = NULL, "
                   "updated_at = ? WHERE instance_id = ? AND kind = 'service' AND status = 'error'",
                   (sql.ts(at), sql.ts(at), instance_id))


def last_errors(sql: Sql, instance_id: int) -> list[str]:
    return [r[0] for r in sql.rows("SELECT last_error FROM timer_jobs WHERE instance_id = ? AND kind = 'service' "
                                   "AND status = 'error' AND last_error IS NOT NULL ORDER BY id", (instance_id,))]


# -- the outbound call ---------------------------------------------------------------------------
def allowed(url: str, allow: list[str]) -> str | None:
    """Why `url` may not be called (None: it may). An entry is `host`, `host:port` or `*.domain`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"只允许 http/https 地址，不允许 '{parts.scheme or url}'"
    host = (parts.hostname or "").lower()
    if not host:
        return f"地址 '{url}' 没有主机名"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"地址 '{url}' 的端口无效"
    for entry in allow:
        entry = entry.strip().lower()
        if not entry:
            continue
        name, want = entry.split(":") if entry.count(":") == 1 else (entry, "")
        if want and want != str(port):
            continue
        if name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return None
    return f"主机 {host}:{port} 不在服务调用白名单（DJFLOW_SERVICE_ALLOWED_HOSTS）中"


def call_http(p: dict, settings, *, idempotency_key: str) -> dict:
    """Make the call; the result stored in task data, or ServiceFailure."""
    import httpx

    url = str(p.get("url") or "")
    refused = allowed(url, settings.service_allowed_hosts)
    if refused:
        raise ServiceFailure(refused, retry=False)
    method = str(p.get("method") or "GET").upper()
    if method not in METHODS:
        raise ServiceFailure(f"不支持的 HTTP 方法 {method}", retry=False)
    headers = {str(k): str(v) for k, v in (p.get("headers") or {}).items()}
    headers.setdefault("Idempotency-Key", idempotency_key)
    headers.setdefault("User-Agent", "djflow")
    body = p.get("body")
    content = None
    if body is not None:
        content = body.encode() if isinstance(body, str) else json.dumps(body, ensure_ascii=False).encode()
        if not isinstance(body, str):
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
    timeout = min(float(p.get("timeout") or settings.service_timeout_seconds), settings.service_timeout_seconds)
    limit = settings.service_max_response_bytes
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client, \
                client.stream(method, url, headers=headers, content=content) as resp:
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ServiceFailure(f"响应超过 {limit} 字节", retry=False, status=resp.status_code)
                chunks.append(chunk)
            raw = b"".join(chunks)
    except httpx.TimeoutException:
        raise ServiceFailure(f"{method} {url} 超时（{timeout:g} 秒）", retry=True) from None
    except httpx.HTTPError as exc:
        raise ServiceFailure(f"{method} {url} 连接失败：{type(exc).__name__}", retry=True) from None
    status = resp.status_code
    if not 200 <= status < 300:
        retry = status >= 500 or status == 429
        snippet = raw[:200].decode("utf-8", "replace")
        raise ServiceFailure(f"{method} {url} 返回 {status}" + (f"：{snippet}" if snippet else ""), retry=retry,
                             status=status)
    ctype = resp.headers.get("content-type", "")
    text = raw.decode(resp.encoding or "utf-8", "replace")
    parsed = text
    if "json" in ctype and text:
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ServiceFailure(f"{method} {url} 返回的 JSON 无法解析", retry=False, status=status) from None
    return {"status": status, "body": parsed, "content_type": ctype}


# -- built-in operators (in the transaction that reached the task) -------------------------------
MAX_POINTS = 10000


def run_builtin(unit, t, settings) -> dict:
    """Run the built-in operator of READY task `t` of `unit`; its result (stored in task data).
    A bad parameter raises ValueError with the reason (the caller names the node)."""
    op = t.task_spec.operation_name
    fn = BUILTINS.get(op)
    if fn is None:
        raise ValueError(f"未知的服务操作 {op}")
    return fn(unit, t, params(t), settings)


@builtin("notify/send", required=("to", "title"), optional=("body",))
def _notify_send(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    names = p.get("to")
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names or [])
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError("to 应为用户名或用户名列表")
    found = dict(sql.rows(f"SELECT username, id FROM users WHERE username IN ({', '.join('?' * len(names))})",
                          names))
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"用户不存在：{', '.join(missing)}")
    title = str(p.get("title") or "")[:300]
    if not title:
        raise ValueError("title 不能为空")
    for n in names:
        unit.notify(found[n], "service.notify", title, None if p.get("body") is None else str(p["body"]))
    return {"sent": len(names)}


def member_id(sql: Sql, member) -> int:
    """A person named by user id or username; ValueError when there is none."""
    col = "id" if isinstance(member, int) and not isinstance(member, bool) else "username"
    row = sql.row(f"SELECT id FROM users WHERE {col} = ?", (member,)) if member not in (None, "") else None
    if row is None:
        raise ValueError(f"人员 {member!r} 不存在")
    return row[0]


@builtin("points/award", required=("member", "points", "reason"))
def _points_award(unit, t, p: dict, settings) -> dict:
    sql = unit.sql
    member, points, reason = p.get("member"), p.get("points"), str(p.get("reason") or "").strip()
    user_id = member_id(sql, member)
    if isinstance(points, bool) or not isinstance(points, int) or not -MAX_POINTS <= points <= MAX_POINTS \
            or points == 0:
        raise ValueError(f"points 应为 ±{MAX_POINTS} 以内的非零整数，而不是 {points!r}")
    if not reason or len(reason) > 200:
        raise ValueError("reason 应为 1 到 200 字")
    entry = sql.row("INSERT INTO points_ledger (user_id, points, reason, instance_id, node_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (user_id, points, reason, unit.inst.id, describe(t)["node"], sql.ts(unit.at)))[0]
    return {"entry": entry, "member": user_id, "points": points}


@builtin("archive/snapshot", optional=("name",))
def _archive_snapshot(unit, t, p: dict, settings) -> dict:
    from engine.runtime import attachments

    sql = unit.sql
    name = str(p.get("name") or f"instance-{unit.inst.id}-archive")[:120]
    data = {k: v for k, v in t.data.items() if not k.startswith("spiff__")}
    secret = unit.d.confidential
    if secret and isinstance(data.get("approvals"), dict):  # a secret ballot stays secret in the archive
        data["approvals"] = {
            node: ({**a, "data": None, "votes": [{k: v for k, v in vote.items() if k != "data"}
                                                  for vote in a.get("votes") or []]} if node in secret else a)
            for node, a in data["approvals"].items()}
    content = json.dumps({"instance_id": unit.inst.id, "title": unit.inst.title, "definition": unit.d.key,
                          "version": unit.d.version, "archived_at": unit.at.isoformat(), "data": data},
                         ensure_ascii=False, sort_keys=True, indent=2, default=str).encode("utf-8")
    aid = attachments.insert(sql, settings, instance_id=unit.inst.id, task_id=None, filename=f"{name}.json",
                             content_type="application/json", content=content, purpose="archive",
                             user_id=unit.inst.initiator.id, at=unit.at,
                             uploaded=False)
    sha = sql.row("SELECT sha256 FROM attachments WHERE id = ?", (aid,))[0]
    return {"attachment_id": aid, "sha256": sha, "size": len(content)}


import engine.party  # noqa: E402,F401  (registers the domain operators)
