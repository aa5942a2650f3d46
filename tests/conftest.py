"""Shared fixtures: a fresh database per test, on SQLite and (when reachable) PostgreSQL.

PostgreSQL tests create their own database `djflow_test_<random>` and drop it afterwards; they
never touch data that is not theirs. Without a server they skip with the reason, unless
DJFLOW_REQUIRE_SERVICES=1 (CI), where they fail instead.
"""
from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine import Database, Settings, WorkflowEngine
from engine.config import REPO_ROOT
from engine.setup import init

PG_ADMIN_URL = os.environ.get("DJFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_SERVICES = os.environ.get("DJFLOW_REQUIRE_SERVICES") == "1"
DEMO_PASSWORD = "Demo-pass-2026"
# The audit signing keys of the test databases (each log's keys have their own ids).
AUDIT_KEY_DIR = Path(tempfile.mkdtemp(prefix="djflow-audit-keys-"))
atexit.register(shutil.rmtree, AUDIT_KEY_DIR, True)


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


def require_service(reason: str | None) -> None:
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"DJFLOW_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def pg_url():
    require_service(_pg_available())
    name = f"djflow_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'djflow.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def make_settings(url: str, **overrides) -> Settings:
    values = dict(database_url=url, environment="test", demo_password=DEMO_PASSWORD,
                  admin_password="Admin-pass-2026", process_dir=REPO_ROOT / "process_definitions",
                  forms_dir=REPO_ROOT / "forms", argon2_time_cost=1, argon2_memory_kib=8192,
                  audit_key_dir=AUDIT_KEY_DIR)
    values.update(overrides)
    return Settings(**values)


_TEMPLATES: dict[str, str] = {}  # "sqlite": a file, "postgres": a database name, made once per session
_TEMPLATE_KEYS: dict[str, list[Path]] = {}


def _restore_keys(kind: str) -> None:
    for saved in _TEMPLATE_KEYS.get(kind, []):
        shutil.copy2(saved, AUDIT_KEY_DIR / saved.name)
        (AUDIT_KEY_DIR / saved.name).with_suffix(".pub").unlink(missing_ok=True)


def _template(kind: str) -> str:
    """A database made by `init --demo` with the default test settings, once per test session."""
    if kind in _TEMPLATES:
        return _TEMPLATES[kind]
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="djflow-demo-template-"))
        atexit.register(shutil.rmtree, folder, True)
        url = f"sqlite:///{folder / 'djflow.db'}"
    else:
        name = f"djflow_test_template_{secrets.token_hex(6)}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()

        def drop():
            dropper = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with dropper.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            dropper.dispose()
        atexit.register(drop)
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    before = set(AUDIT_KEY_DIR.iterdir())
    database = Database(url)
    init(database, make_settings(url), demo=True)
    database.dispose()
    # the log key init made: a test that rotates it deletes its private half from the shared key
    # directory, so every copy of the template puts it back (engine/audit/keys.py)
    keep = Path(tempfile.mkdtemp(prefix="djflow-template-keys-"))
    atexit.register(shutil.rmtree, keep, True)
    for made in set(AUDIT_KEY_DIR.iterdir()) - before:
        shutil.copy2(made, keep / made.name)
    _TEMPLATE_KEYS[kind] = sorted(keep.iterdir())
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(folder / "djflow.db") as conn:  # everything into the file itself
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _TEMPLATES[kind] = str(folder / "djflow.db")
    else:
        _TEMPLATES[kind] = name
    return _TEMPLATES[kind]


def init_demo(db: Database, settings: Settings) -> None:
    """Make the database of `settings` what `djflow init --demo` makes. With the default test
    settings (most tests) it is a copy of one database init made at the start of the session —
    a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL — instead of running the
    migrations and deploying the whole library again for every test; otherwise it is init itself."""
    url = settings.database_url
    default = make_settings(url)
    target = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if settings.model_dump() != default.model_dump() or (target is not None and target.exists()
                                                          and target.stat().st_size):
        init(db, settings, demo=True)
        return
    if target is not None:
        shutil.copyfile(_template("sqlite"), target)
        _restore_keys("sqlite")
        return
    name = url.rsplit("/", 1)[1]
    template = _template("postgres")
    db.dispose()  # no connection may be open to the database being replaced
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    _restore_keys("postgres")


@pytest.fixture
def settings(db_url) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def db(settings):
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def engine(db, settings) -> WorkflowEngine:
    """A database initialised like `djflow init --demo`, and an engine on it."""
    init_demo(db, settings)
    return WorkflowEngine(db, settings)


@pytest.fixture
def sqlite_engine(sqlite_url) -> WorkflowEngine:
    """The demo database on SQLite only, for tests whose subject is not the database."""
    settings = make_settings(sqlite_url)
    database = Database(sqlite_url)
    init_demo(database, settings)
    yield WorkflowEngine(database, settings)
    database.dispose()
