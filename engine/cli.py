"""The `djflow` command (DESIGN.md §6). Every command takes --json for machine-readable output.

Exit codes: 0 success; 1 a problem was found or the action was refused (the message says why);
2 usage errors (Typer's own).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from engine.config import get_settings
from engine.db import Database
from engine.errors import DefinitionInvalid, EngineError

app = typer.Typer(help="djflow：面向党建与行政单位的 BPMN 流程平台", no_args_is_help=True, add_completion=False)
instance_app = typer.Typer(help="流程实例", no_args_is_help=True)
task_app = typer.Typer(help="待办任务", no_args_is_help=True)
audit_app = typer.Typer(help="审计日志", no_args_is_help=True)
users_app = typer.Typer(help="人员与组织（Excel 导入导出）", no_args_is_help=True)
account_app = typer.Typer(help="账号（在服务器上由运维人员执行，记入审计日志）", no_args_is_help=True)
app.add_typer(instance_app, name="instance")
app.add_typer(task_app, name="task")
app.add_typer(audit_app, name="audit")
app.add_typer(account_app, name="account")
app.add_typer(users_app, name="users")
calendar_app = typer.Typer(help="工作日历（法定节假日与调休，本单位的调整）", no_args_is_help=True)
app.add_typer(calendar_app, name="calendar")

# soft_wrap: a problem line `file:line: code message` must stay one line when piped to grep or an editor.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _check_settings() -> None:
    """Refuse to run on invalid settings, naming each variable and why (not a traceback; never the
    value, which may be a key or a password)."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        for e in exc.errors():
            name = "DJFLOW_" + "_".join(str(part) for part in e["loc"]).upper() if e["loc"] else "设置"
            err.print(f"错误：{name} 无效：{e['msg']}", markup=False)
        raise typer.Exit(2) from None


JsonOpt = Annotated[bool, typer.Option("--json", help="以 JSON 输出")]
AsUser = Annotated[str, typer.Option("--as", help="以此用户名操作")]

OUTCOMES = {"approved": "同意", "rejected": "驳回", "submitted": "提交", None: ""}
STATUSES = {"running": "审批中", "completed": "已通过", "rejected": "已驳回", "withdrawn": "已撤回",
            "cancelled": "已取消", "error": "出错"}
TASK_STATUSES = {"open": "待办", "completed": "已处理", "cancelled": "已取消"}


def _local(ts: str | None) -> str:
    """An API timestamp (UTC ISO 8601) as Beijing time for people."""
    from datetime import datetime

    from engine.clock import local

    return local(datetime.fromisoformat(ts)).strftime("%Y-%m-%d %H:%M") if ts else ""


def _db(*, ready: bool = True) -> Database:
    """The configured database; unless `ready=False`, refuse one whose schema is missing or old."""
    settings = get_settings()
    db = Database(settings.database_url, echo=settings.sql_echo)
    if ready:
        from engine.migrate import pending_revisions

        pending = pending_revisions(db)
        if pending:
            err.print(f"错误：数据库 {settings.database_url} 尚未初始化或不是最新结构"
                      f"（待执行迁移：{', '.join(pending)}）。请先运行 djflow init", markup=False, highlight=False)
            raise typer.Exit(1)
    return db


def _engine():
    from engine.runtime.engine import WorkflowEngine

    return WorkflowEngine(_db(), get_settings())


def _emit(as_json: bool, value, human) -> None:
    if as_json:
        sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        human()


def _fail(exc: EngineError, as_json: bool) -> None:
    problems = getattr(exc, "problems", [])
    if as_json:
        sys.stdout.write(json.dumps({"error": type(exc).__name__, "message": exc.message,
                                     "errors": [e.as_dict() for e in exc.errors],
                                     "problems": [p.as_dict() for p in problems]}, ensure_ascii=False, indent=2)
                         + "\n")
    else:
        for p in problems:
            err.print(str(p), markup=False, highlight=False)
        err.print(f"错误：{exc.message}", markup=False, highlight=False)
        for e in exc.errors:
            err.print(f"  - {e.field or '(表单)'}: {e.reason}", markup=False, highlight=False)
    raise typer.Exit(1)


def _parse_data(data: str | None, as_json: bool) -> dict | None:
    if data is None:
        return None
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        from engine.errors import InvalidInput

        _fail(InvalidInput(f"--data 不是合法 JSON（第 {exc.lineno} 行第 {exc.colno} 列）：{exc.msg}"), as_json)
    return value


@app.command()
def init(demo: Annotated[bool, typer.Option("--demo", help="同时创建演示单位与人员")] = False,
         as_json: JsonOpt = False) -> None:
    """创建或升级数据库结构，同步 process_definitions/ 与 forms/，创建首个管理员。"""
    from engine.setup import init as run_init

    settings = get_settings()
    say = (lambda _m: None) if as_json else (lambda m: err.print(f"[dim]·[/dim] {m}"))
    try:
        report = run_init(_db(ready=False), settings, demo=demo, on_step=say)
    except EngineError as exc:
        _fail(exc, as_json)

    def human() -> None:
        for d in report.deployed:
            state = "新版本" if d.created else "未变化"
            out.print(f"{'流程' if d.kind == 'process' else '表单'} {d.key} v{d.version}（{state}）")
        if report.passwords:
            out.print("[bold yellow]以下初始密码只显示这一次，请立即记录并在首次登录后修改：[/bold yellow]")
            for user, pw in report.passwords.items():
                out.print(f"  {user}: {pw}", markup=False, highlight=False)
        out.print(f"数据库就绪：{settings.database_url}", markup=False)
        key = report.audit_key
        out.print(f"审计签名密钥：{key.key_id}（{key.alg}，{settings.audit_key_dir}）。请备份该目录，"
                  "并把密钥编号告知审计员，供离线校验时核对。", markup=False)

    key = report.audit_key
    _emit(as_json, {"migrations": report.migrations, "deployed": [d.__dict__ for d in report.deployed],
                    "passwords": report.passwords, "demo_created": report.demo_created,
                    "audit_key": {"key_id": key.key_id, "alg": key.alg}}, human)


@app.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="BPMN 文件、流程目录或表单目录")],
             as_json: JsonOpt = False) -> None:
    """检查 BPMN 与表单；无问题退出 0，有问题逐条输出 file:line: code message 并退出 1。"""
    from engine.definitions import validate_paths

    problems = validate_paths(paths, get_settings())
    _emit(as_json, {"ok": not problems, "problems": [p.as_dict() for p in problems]},
          lambda: [out.print(str(p), markup=False, highlight=False) for p in problems] or
          out.print(f"通过：{len(paths)} 个路径没有问题"))
    if problems:
        raise typer.Exit(1)


@app.command()
def deploy(paths: Annotated[list[Path], typer.Argument(help="流程目录、表单目录或其上级目录")],
           as_user: Annotated[str | None, typer.Option("--as", help="发布人用户名（记入审计日志）")] = None,
           as_json: JsonOpt = False) -> None:
    """发布新版本（内容未变化的不产生新版本）。"""
    from sqlalchemy import select

    from engine.definitions import deploy_paths
    from engine.errors import NotFound
    from engine.models import User

    db = _db()
    try:
        with db.unit_of_work() as s:
            actor_id = None
            if as_user is not None:
                actor_id = s.scalar(select(User.id).where(User.username == as_user))
                if actor_id is None:
                    raise NotFound(f"用户 {as_user} 不存在")
            with Progress(TextColumn("检查并部署 {task.description}"), BarColumn(), MofNCompleteColumn(),
                          console=err, disable=as_json, transient=True) as bar:
                job = bar.add_task("", total=None)
                results = deploy_paths(s, paths, get_settings(), actor_id=actor_id,
                                       progress=lambda n, total, name: bar.update(job, completed=n, total=total,
                                                                                  description=name))
    except (EngineError, DefinitionInvalid) as exc:
        _fail(exc, as_json)
    _emit(as_json, [r.__dict__ for r in results], lambda: [out.print(
        f"{'流程' if r.kind == 'process' else '表单'} {r.key} v{r.version}（{'新版本' if r.created else '未变化'}）")
        for r in results])


@instance_app.command("start")
def instance_start(key: str, as_user: AsUser,
                   data: Annotated[str | None, typer.Option("--data", help="发起表单数据（JSON）")] = None,
                   title: Annotated[str | None, typer.Option("--title")] = None,
                   business_key: Annotated[str | None, typer.Option("--business-key")] = None,
                   as_json: JsonOpt = False) -> None:
    """发起流程；带 --data 时同时提交发起人的申请表单。输出实例编号。"""
    try:
        result = _engine().start(key=key, username=as_user, data=_parse_data(data, as_json), title=title,
                                 business_key=business_key)
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, result.as_dict(), lambda: out.print(result.instance_id))


@instance_app.command("show")
def instance_show(instance_id: int, as_json: JsonOpt = False) -> None:
    """查看流程实例及其审批记录。"""
    try:
        view = _engine().instance(instance_id=instance_id)
    except EngineError as exc:
        _fail(exc, as_json)

    def human() -> None:
        out.print(f"[bold]#{view.id} {view.title}[/bold]  {view.definition_key} v{view.definition_version}  "
                  f"{STATUSES.get(view.status, view.status)}  发起人 {view.initiator_name}（{view.initiator}）")
        submitted = next((t.data for t in view.tasks if t.outcome == "submitted" and t.data), None)
        if submitted:
            out.print("申请内容：" + "；".join(f"{k}={v}" for k, v in submitted.items()), markup=False,
                      highlight=False)
        table = Table("任务", "节点", "处理人", "状态", "结果", "意见", "完成时间")
        for t in view.tasks:
            table.add_row(str(t.id), t.node_name, t.assignee_name or "", TASK_STATUSES.get(t.status, t.status),
                          OUTCOMES.get(t.outcome, t.outcome or ""), t.comment or "", _local(t.completed_at))
        out.print(table)

    _emit(as_json, view.as_dict(), human)


@task_app.command("list")
def task_list(as_user: AsUser,
              status: Annotated[str, typer.Option("--status", help="open 待办 / done 已办")] = "open",
              as_json: JsonOpt = False) -> None:
    """列出某人的待办（或已办）任务。"""
    try:
        tasks = _engine().list_tasks(username=as_user, status=status)
    except EngineError as exc:
        _fail(exc, as_json)

    def human() -> None:
        if not tasks:
            out.print("没有任务")
            return
        table = Table("任务", "实例", "事项", "节点", "流程", "创建时间")
        for t in tasks:
            table.add_row(str(t.id), str(t.instance_id), t.instance_title, t.node_name, t.definition_key,
                          _local(t.created_at))
        out.print(table)

    _emit(as_json, [t.as_dict() for t in tasks], human)


@task_app.command("act")
def task_act(task_id: int,
             action: Annotated[str, typer.Argument(help="submit | approve | reject | return | withdraw | transfer | "
                                                        "delegate | resolve | add_sign | remove_sign | cc | urge | claim")],
             as_user: AsUser,
             data: Annotated[str | None, typer.Option("--data", help="表单数据（JSON）")] = None,
             comment: Annotated[str | None, typer.Option("--comment", help="审批意见")] = None,
             to: Annotated[str | None, typer.Option("--to", help="转办、委派：接收人用户名")] = None,
             users: Annotated[str | None, typer.Option("--users", help="加签、抄送：用户名，逗号分隔")] = None,
             position: Annotated[str | None, typer.Option("--position", help="加签：before 或 after")] = None,
             target: Annotated[str | None, typer.Option("--target", help="退回：目标节点 id")] = None,
             as_json: JsonOpt = False) -> None:
    """处理一个任务：同意、驳回、退回、撤回、转办、委派、加签、减签、抄送、催办……"""
    from engine import ActionInput

    inp = ActionInput(comment=comment, data=_parse_data(data, as_json), to=to,
                      users=[u.strip() for u in (users or "").split(",") if u.strip()], position=position,
                      target=target)
    try:
        result = _engine().act(task_id=task_id, action=action, username=as_user, inp=inp)
    except EngineError as exc:
        _fail(exc, as_json)

    def human() -> None:
        out.print(f"实例 #{result.instance_id}：{STATUSES.get(result.instance_status, result.instance_status)}")
        for t in result.new_tasks:
            out.print(f"  新待办 {t.id}「{t.node_name}」→ {t.assignee_name}（{t.assignee}）")

    _emit(as_json, result.as_dict(), human)


@audit_app.command("verify")
def audit_verify(from_checkpoint: Annotated[int | None, typer.Option(
                     "--from-checkpoint", help="增量校验：从此检查点起（其签名与状态先经核对）")] = None,
                 as_json: JsonOpt = False) -> None:
    """重新计算审计哈希链、各检查点的 Merkle 根与签名：完整退出 0；被改动、删除、插入、重排或截断时退出 1 并指出第一个有问题的序号。"""
    from engine.audit import verify
    from engine.models import AuditHead

    db = _db()
    with db.read() as s:
        head = s.get(AuditHead, 1)
        total = head.seq if head else 0
        # auto_refresh off: no refresh thread, so the verifier may fork its worker processes
        with Progress(TextColumn("校验审计链"), BarColumn(), MofNCompleteColumn(), console=err, auto_refresh=False,
                      disable=as_json or total < 5000) as progress:
            bar = progress.add_task("verify", total=total)
            try:
                result = verify(s, get_settings(), from_checkpoint=from_checkpoint,
                                progress=lambda n: progress.update(bar, completed=n, refresh=True))
            except EngineError as exc:
                _fail(exc, as_json)
    payload = {"ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq,
               "reason": result.reason, "head_seq": result.head_seq, "from_seq": result.from_seq,
               "checkpoints": result.checkpoints, "last_checkpoint": result.last_checkpoint,
               "untrusted_root": result.untrusted_root, "archived_through": result.archived_through}

    def human() -> None:
        if not result.ok:
            out.print(f"审计链被篡改：第一个有问题的事件 seq={result.first_bad_seq}：{result.reason}", markup=False)
            return
        out.print(f"审计链完整：事件 {result.from_seq}–{result.head_seq}（{result.checked} 条），"
                  f"{result.checkpoints} 个签名检查点核对无误", markup=False)
        if result.archived_through:
            out.print(f"事件 1–{result.archived_through} 已归档：请用 djflow audit verify-bundle 校验归档文件",
                      markup=False)
        if result.untrusted_root:
            out.print(f"注意：密钥目录中没有本日志的密钥，以数据库中的首个密钥 {', '.join(result.untrusted_root)} "
                      "为信任起点", markup=False)

    _emit(as_json, payload, human)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(as_json: JsonOpt = False) -> None:
    """立即签发一个检查点（覆盖到当前最后一条事件）。"""
    from engine.audit import checkpoints

    try:
        cp = checkpoints.write(_db(), get_settings(), force=True)
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, cp, lambda: out.print(
        "自上一个检查点以来没有新事件" if cp is None else
        f"检查点 {cp['seq']}：{cp['tree_size']} 条事件，根哈希 {cp['root']}，密钥 {cp['key_id']}", markup=False))


@audit_app.command("rotate-key")
def audit_rotate_key(alg: Annotated[str | None, typer.Option("--alg", help="新密钥算法：ed25519 或 sm2")] = None,
                     force: Annotated[bool, typer.Option("--force", help="当前私钥已丢失时，启用不经背书的新密钥")] = False,
                     as_json: JsonOpt = False) -> None:
    """更换审计签名密钥：新密钥由当前密钥签名背书，旧密钥只保留公钥用于校验。"""
    from engine.audit import keys

    if alg not in (None, "ed25519", "sm2"):
        _fail(_invalid(f"--alg 只能是 ed25519 或 sm2，而不是 {alg!r}"), as_json)
    try:
        key = keys.rotate(_db(), get_settings(), alg=alg, force=force)
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, {"key_id": key.key_id, "alg": key.alg}, lambda: out.print(
        f"新的审计签名密钥：{key.key_id}（{key.alg}）。请把新编号告知审计员。", markup=False))


@audit_app.command("proof")
def audit_proof(seq: Annotated[int | None, typer.Option("--seq", help="事件序号：给出其包含证明")] = None,
                checkpoint: Annotated[int | None, typer.Option("--checkpoint", help="证明所依据的检查点（缺省为最新）")] = None,
                first: Annotated[int | None, typer.Option("--from-checkpoint", help="一致性证明：较早的检查点")] = None,
                as_json: JsonOpt = False) -> None:
    """包含证明（--seq）或两个检查点之间的一致性证明（--from-checkpoint [--checkpoint]），以 JSON 输出。"""
    from engine.audit import checkpoints

    if (seq is None) == (first is None):
        _fail(_invalid("请给出 --seq（包含证明）或 --from-checkpoint（一致性证明）之一"), as_json)
    try:
        with _db().read() as s:
            proof = (checkpoints.inclusion(s, seq, checkpoint) if seq is not None
                     else checkpoints.consistency(s, first, checkpoint))
    except EngineError as exc:
        _fail(exc, as_json)
    sys.stdout.write(json.dumps(proof, ensure_ascii=False, indent=2) + "\n")


def _with_progress(label: str, as_json: bool, run):
    """`run(progress)` under a progress bar on stderr (none with --json); progress(done, total)."""
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=err, disable=as_json) as bar:
        task = bar.add_task(label, total=None)
        return run(lambda done, total: bar.update(task, completed=done, total=total))


def _invalid(message: str):
    from engine.errors import InvalidInput

    return InvalidInput(message)


def _bound(value: str | None, name: str):
    """--from/--to: an event seq (integer) or a date/time (Beijing time when none is given)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    from datetime import datetime

    from engine.clock import beijing_to_utc

    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        _fail(_invalid(f"{name} 应为事件序号或日期时间（如 2026-01-01 或 2026-01-01T08:00），而不是 {value!r}"), False)
    return beijing_to_utc(ts)


@audit_app.command("export")
def audit_export(out_file: Annotated[Path, typer.Option("--out", help="导出包文件（.zip）")],
                 since: Annotated[str | None, typer.Option("--from", help="起：事件序号或日期时间（含）")] = None,
                 until: Annotated[str | None, typer.Option("--to", help="止：事件序号（含）或日期时间（不含）")] = None,
                 as_json: JsonOpt = False) -> None:
    """导出审计日志（事件、检查点、公钥、中文校验说明与校验程序），供离线校验；导出本身记入审计日志。"""
    from engine.audit import bundle

    lo, hi = _bound(since, "--from"), _bound(until, "--to")
    try:
        result = _with_progress("导出审计日志", as_json, lambda progress: bundle.export(
            _db(), get_settings(), out_file, since=lo, until=hi, progress=progress))
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, result.__dict__, lambda: out.print(
        f"已导出事件 {result.first_seq}–{result.last_seq}（{result.events} 条，{result.checkpoints} 个检查点）到 "
        f"{result.path}（{result.bytes} 字节，SHA-256 {result.sha256}）", markup=False))


@audit_app.command("archive")
def audit_archive(out_dir: Annotated[Path, typer.Option("--dir", help="归档文件（冷存储）目录")],
                  before: Annotated[str | None, typer.Option("--before", help="只归档此日期之前的（另须满 180 天）")] = None,
                  as_json: JsonOpt = False) -> None:
    """把满 180 天（DJFLOW_AUDIT_ARCHIVE_MIN_DAYS）的已签名检查点区间移入归档文件：先写出并离线校验导出包，再在一个事务中登记并删除这些事件。须以数据库属主身份运行。"""
    from engine.audit.archive import archive

    bound = _bound(before, "--before")
    if isinstance(bound, int):
        _fail(_invalid("--before 应为日期时间"), as_json)
    try:
        result = _with_progress("归档审计日志", as_json, lambda progress: archive(
            _db(), get_settings(), out_dir, before=bound, progress=progress))
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, result.__dict__ if result else None, lambda: out.print(
        "没有满归档年限的检查点区间" if result is None else
        f"已归档事件 {result.first_seq}–{result.last_seq}（至检查点 {result.checkpoint_seq}）到 {result.file}"
        f"（{result.bytes} 字节，SHA-256 {result.sha256}），并从数据库移除", markup=False))


@audit_app.command("verify-bundle")
def audit_verify_bundle(file: Annotated[Path, typer.Argument(help="导出包文件")],
                        trust: Annotated[list[str] | None, typer.Option(
                            "--trust", help="受信任的密钥编号（本单位公布的），可多次给出")] = None,
                        as_json: JsonOpt = False) -> None:
    """离线校验导出包（不需要数据库与配置）：通过退出 0；发现问题退出 1 并指出第一个有问题的序号。"""
    from engine.audit.offline import Problem, describe, verify_bundle

    try:
        r = verify_bundle(str(file), trust or None)
    except Problem as p:
        _emit(as_json, {"ok": False, "first_bad_seq": p.seq, "reason": p.reason},
              lambda: out.print(describe(p), markup=False))
        raise typer.Exit(1)
    _emit(as_json, {"ok": True, **r.__dict__}, lambda: out.print(describe(r), markup=False))


def _principal_of(db: Database, username: str | None):
    """The Principal for --as (its permissions and scope apply); None: the console operator."""
    if username is None:
        return None
    from sqlalchemy import select

    from engine.identity.principal import load_principal
    from engine.models import User

    with db.read() as s:
        user_id = s.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            from engine.errors import NotFound

            raise NotFound(f"用户 {username} 不存在")
        return load_principal(s, user_id, client=None)


@users_app.command("import")
def users_import(file: Annotated[Path, typer.Argument(help="Excel 工作簿（组织、人员、职务、分管）")],
                 dry_run: Annotated[bool, typer.Option("--dry-run", help="只检查，不写入")] = False,
                 as_user: Annotated[str | None, typer.Option("--as", help="以此用户的权限与范围导入")] = None,
                 as_json: JsonOpt = False) -> None:
    """导入组织与人员：先检查每一行，全部无误才在一个事务中写入；有问题时逐条输出 文件:工作表:行:列: 原因 并退出 1。"""
    from engine.org.workbook import import_workbook

    db = _db()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err,
                  disable=as_json, transient=True) as bar:
        job = bar.add_task("读取工作簿", total=None)
        try:
            report = import_workbook(db, get_settings(), file, principal=_principal_of(db, as_user), dry_run=dry_run,
                                     progress=lambda stage, n, total: bar.update(job, description=stage, completed=n,
                                                                                 total=total or None))
        except EngineError as exc:
            _fail(exc, as_json)

    def human() -> None:
        for p in report.problems:
            out.print(f"{file}:{p.location}: {p.reason}" if p.location else f"{file}: {p.reason}",
                      markup=False, highlight=False)
        if report.problems:
            err.print(f"错误：{len(report.problems)} 处问题，未写入任何数据", markup=False)
            return
        for sheet, c in report.counts.items():
            out.print(f"{sheet}：新增 {c['created']}，更新 {c['updated']}，未变化 {c['unchanged']}", markup=False)
        out.print("检查通过（未写入，--dry-run）" if dry_run else "已全部写入")

    _emit(as_json, report.as_dict(), human)
    if report.problems:
        raise typer.Exit(1)


@users_app.command("export")
def users_export(out_file: Annotated[Path, typer.Option("--out", help="输出的 .xlsx 文件")],
                 unmask: Annotated[bool, typer.Option(
                     "--unmask", help="导出完整身份证号和手机号（需 --as 的用户有查看权限）")] = False,
                 as_user: Annotated[str | None, typer.Option("--as", help="以此用户的权限与范围导出")] = None,
                 as_json: JsonOpt = False) -> None:
    """按导入的格式导出组织与人员；身份证号和手机号默认脱敏。每次导出记入审计日志。"""
    from engine.errors import Forbidden
    from engine.org.workbook import export_workbook

    db = _db()
    try:
        principal = _principal_of(db, as_user)
        if unmask and principal is None:
            raise Forbidden("导出完整身份证号需用 --as 指明有查看权限的用户")
        counts = export_workbook(db, get_settings(), out_file, principal=principal, unmask=unmask)
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, {"file": str(out_file), **counts}, lambda: out.print(
        f"已导出 {counts['orgs']} 个组织、{counts['people']} 名人员到 {out_file}", markup=False))


@users_app.command("template")
def users_template(out_file: Annotated[Path, typer.Option("--out", help="输出的 .xlsx 文件")],
                   sample_branches: Annotated[int, typer.Option("--sample-branches",
                                                                help="生成示例数据：党支部数")] = 0,
                   sample_members: Annotated[int, typer.Option("--sample-members", help="生成示例数据：人员数")] = 0,
                   seed: Annotated[int, typer.Option("--seed")] = 7,
                   as_json: JsonOpt = False) -> None:
    """生成导入模板（含说明与示例行）；带 --sample-* 时生成指定规模的示例工作簿。"""
    if sample_branches or sample_members:
        from engine.org.synthetic import write_sample

        counts = write_sample(out_file, max(sample_branches, 1), sample_members, seed=seed)
    else:
        from engine.org.workbook import write_template

        write_template(out_file)
        counts = {}
    _emit(as_json, {"file": str(out_file), "rows": counts}, lambda: out.print(f"已生成 {out_file}", markup=False))


@account_app.command("reset-password")
def account_reset_password(username: str, as_json: JsonOpt = False) -> None:
    """为账号生成新的初始口令（只显示这一次，首次登录须修改），并解除锁定。"""
    from engine.org.people import People

    people = People(_db(), get_settings())
    try:
        password = people.reset_password(None, people.id_of(username))
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, {"username": username, "initial_password": password}, lambda: out.print(
        f"{username} 的新初始口令（只显示这一次）：{password}", markup=False, highlight=False))


@account_app.command("unlock")
def account_unlock(username: str, as_json: JsonOpt = False) -> None:
    """解除因连续输错口令造成的账号锁定。"""
    from engine.org.people import People

    people = People(_db(), get_settings())
    try:
        people.unlock(None, people.id_of(username))
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, {"username": username, "unlocked": True}, lambda: out.print(f"{username} 已解除锁定"))


@account_app.command("rekey")
def account_rekey(as_json: JsonOpt = False) -> None:
    """轮换数据密钥后执行：用新的 DJFLOW_DATA_KEY 重新加密全部身份证号和手机号（旧密钥放在
    DJFLOW_DATA_KEY_PREVIOUS）。全部成功或全部不变。"""
    from engine.org.people import People

    people = People(_db(), get_settings())
    with Progress(TextColumn("重新加密"), BarColumn(), MofNCompleteColumn(), console=err, disable=as_json) as bar:
        job = bar.add_task("rekey", total=None)
        try:
            result = people.rekey(progress=lambda n, total: bar.update(job, completed=n, total=total))
        except (EngineError, ValueError) as exc:
            _fail(exc if isinstance(exc, EngineError) else EngineError(str(exc)), as_json)
    _emit(as_json, result, lambda: out.print(f"已用新密钥重新加密 {result['records']} 份人员档案"))


@app.command()
def openapi(out: Annotated[Path | None, typer.Option("--out", help="写入此文件；省略时输出到标准输出")] = None) -> None:
    """输出 REST API 的 OpenAPI 文档（管理界面的类型化客户端由它生成）。不连接数据库。"""
    from api.main import create_app

    text = json.dumps(create_app().openapi(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"已写入 {out}", markup=False)


@app.command()
def serve(host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port")] = 8000,
          workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="工作进程数")] = 1,
          reuse_port: Annotated[bool, typer.Option("--reuse-port", hidden=True)] = False,
          as_json: JsonOpt = False) -> None:
    """启动 API（/api/health）与管理界面。"""
    if workers > 1:
        _serve_workers(host, port, workers, as_json)
        return
    import uvicorn

    from api.main import create_app

    app = create_app()
    _start_ticker(app)
    switch_ms = app.state.engine.settings.gil_switch_interval_ms
    if switch_ms > 0:  # see engine/config.py
        sys.setswitchinterval(switch_ms / 1000)
    if not reuse_port:
        if as_json:
            sys.stdout.write(json.dumps({"url": f"http://{host}:{port}"}) + "\n")
        else:
            out.print(f"djflow 运行于 http://{host}:{port}  （Ctrl+C 退出）")
        uvicorn.run(app, host=host, port=port, log_level="info")
        return
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[_listening_socket(host, port)])


def _celery():
    settings = get_settings()
    if not settings.redis_url:
        err.print("错误：未设置 DJFLOW_REDIS_URL；没有 Redis 时 djflow serve 自己处理定时器，无需 worker/beat",
                  markup=False)
        raise typer.Exit(1)
    from engine.scheduler.worker import make_celery

    return make_celery(settings)


@app.command()
def worker(concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=64, help="并发进程数")] = 2,
           name: Annotated[str | None, typer.Option("--name", help="worker 名称（默认 主机名）")] = None) -> None:
    """运行 Celery worker：触发到期的定时器（需 DJFLOW_REDIS_URL）。"""
    args = ["worker", "--loglevel=INFO", "--pool=prefork", f"--concurrency={concurrency}", "--without-gossip",
            "--without-mingle"]
    if name:
        args.append(f"--hostname={name}")
    _celery().worker_main(args)


@app.command()
def beat(schedule: Annotated[Path, typer.Option("--schedule", help="beat 的状态文件")] = Path("var/celerybeat-schedule")
         ) -> None:
    """运行 Celery beat：每 DJFLOW_TIMER_TICK_SECONDS 秒检查一次到期的定时器（需 DJFLOW_REDIS_URL；只运行一个）。"""
    schedule.parent.mkdir(parents=True, exist_ok=True)
    _celery().start(["beat", "--loglevel=INFO", f"--schedule={schedule}"])


def _start_ticker(app) -> None:
    """Without Redis, this process fires due timers itself (engine/scheduler/ticker.py)."""
    settings = app.state.engine.settings
    if settings.redis_url is None and settings.timer_tick_seconds > 0:
        from engine.scheduler.ticker import Ticker

        Ticker(app.state.engine, settings.timer_tick_seconds).start()


def _listening_socket(host: str, port: int):
    """A TCP listening socket shared with the other workers through SO_REUSEPORT (the kernel spreads
    connections over them). Created with proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on every
    connection: uvicorn's own --workers socket has proto 0, asyncio then leaves Nagle on, and each
    response waits for the client's delayed ACK (measured: 44 ms for /api/health instead of 2 ms)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _serve_workers(host: str, port: int, workers: int, as_json: bool) -> None:
    """Run `workers` single-process servers on one port; stop them all on Ctrl+C or SIGTERM."""
    import signal
    import subprocess

    cmd = [sys.executable, "-m", "engine.cli", "serve", "--host", host, "--port", str(port), "--reuse-port"]
    procs = [subprocess.Popen(cmd) for _ in range(workers)]
    if as_json:
        sys.stdout.write(json.dumps({"url": f"http://{host}:{port}", "workers": workers}) + "\n")
    else:
        out.print(f"djflow 运行于 http://{host}:{port}，{workers} 个工作进程（Ctrl+C 退出）")
    sys.stdout.flush()

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            try:
                procs[0].wait(1)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for p in procs:
            p.wait(30)
    failed = [p.returncode for p in procs if p.returncode not in (0, -signal.SIGTERM)]
    if failed:
        raise typer.Exit(1)


WEEKDAYS = "一二三四五六日"


def _day(text: str):
    from datetime import date

    from engine.errors import FieldProblem, InvalidInput

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"日期 {text!r} 无效，应为 YYYY-MM-DD", errors=[FieldProblem("day", text)]) from None


@calendar_app.command("show")
def calendar_show(year: Annotated[int, typer.Argument(help="年份")],
                  org: Annotated[str | None, typer.Option("--org", help="按此组织（编码）的工作日历")] = None,
                  all_days: Annotated[bool, typer.Option("--all", help="列出每一天（默认只列非常规的日子）")] = False,
                  as_json: JsonOpt = False) -> None:
    """一年的工作日历：节假日、调休上班日和本单位的调整；该年没有官方安排时给出提示。"""
    from engine.scheduler import CalendarDays

    try:
        days, coverage = CalendarDays(_db(), get_settings()).year(year, org_code=org)
    except EngineError as exc:
        _fail(exc, as_json)
    # the days that are not an ordinary Monday-to-Friday week
    unusual = [d for d in days if all_days or d.workday != (d.weekday <= 5) or d.source == "local"]

    def human() -> None:
        t = Table("日期", "星期", "", "节日", "来源", "说明")
        for d in unusual:
            t.add_row(d.day, WEEKDAYS[d.weekday - 1], "上班" if d.workday else "休息", d.holiday or "",
                      {"official": "国务院安排", "weekend": "按周末", "local": f"本地调整 {d.org_code or '（全局）'}"}
                      [d.source], d.note)
        out.print(t)
        worked = sum(d.workday for d in days)
        out.print(f"{year} 年：工作日 {worked} 天，休息日 {len(days) - worked} 天", markup=False)
        if not coverage.official:
            err.print(f"注意：内置日历没有 {year} 年的国务院节假日安排，现按周一至周五计算工作日"
                      + (f"，已录入 {coverage.overrides} 天本地调整" if coverage.overrides else
                         "；安排公布后请用 djflow calendar set 录入"), markup=False)

    _emit(as_json, {"year": year, "official": coverage.official, "overrides": coverage.overrides,
                    "days": [d.__dict__ for d in unusual]}, human)


@calendar_app.command("set")
def calendar_set(day: Annotated[str, typer.Argument(help="日期，如 2027-01-01")],
                 kind: Annotated[str, typer.Argument(help="work（上班）或 off（休息）")],
                 as_user: AsUser,
                 note: Annotated[str, typer.Option("--note", help="说明，如「元旦」「单位调休」")] = "",
                 org: Annotated[str | None, typer.Option("--org", help="只调整此组织（编码）及其下级")] = None,
                 as_json: JsonOpt = False) -> None:
    """录入一天的调整（覆盖国务院安排）：全局或某单位；记入审计日志。"""
    from engine.errors import FieldProblem, InvalidInput
    from engine.scheduler import CalendarDays

    db = _db()
    try:
        if kind not in ("work", "off"):
            raise InvalidInput("第二个参数应为 work 或 off", errors=[FieldProblem("kind", kind)])
        when = _day(day)
        view = CalendarDays(db, get_settings()).set(_principal_of(db, as_user), when, workday=kind == "work",
                                                    note=note, org_code=org)
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, view.__dict__, lambda: out.print(
        f"{view.day}（星期{WEEKDAYS[view.weekday - 1]}）设为{'上班' if view.workday else '休息'}"
        f"{'，' + view.org_code + ' 及其下级' if view.org_code else '，全局'}", markup=False))


@calendar_app.command("unset")
def calendar_unset(day: Annotated[str, typer.Argument(help="日期")], as_user: AsUser,
                   org: Annotated[str | None, typer.Option("--org", help="组织编码")] = None,
                   as_json: JsonOpt = False) -> None:
    """删除一天的调整，恢复国务院安排；记入审计日志。"""
    from engine.scheduler import CalendarDays

    db = _db()
    try:
        when = _day(day)
        CalendarDays(db, get_settings()).unset(_principal_of(db, as_user), when, org_code=org)
    except EngineError as exc:
        _fail(exc, as_json)
    _emit(as_json, {"day": day, "removed": True}, lambda: out.print(f"已删除 {day} 的调整", markup=False))


if __name__ == "__main__":  # pragma: no cover
    app()
