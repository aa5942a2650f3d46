"""Schema migrations: `upgrade()` brings any database to the newest revision, reporting each step."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from engine.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def pending_revisions(db: Database) -> list[str]:
    """Revision ids not yet applied to `db`, oldest first."""
    from alembic.runtime.migration import MigrationContext

    script = ScriptDirectory.from_config(alembic_config(db.url))
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    revisions = []
    for rev in script.walk_revisions():
        if rev.revision in current:
            break
        revisions.append(rev)
    return [f"{r.revision} {r.doc}" for r in reversed(revisions)]


def upgrade(db: Database, on_step: Callable[[str], None] | None = None) -> None:
    """Apply every pending revision; `on_step` hears "<rev> <title>" as each one is applied."""
    cfg = alembic_config(db.url)

    def _applied(*, step, **_kw):
        if on_step is not None:
            on_step(f"{step.up_revision.revision} {step.up_revision.doc}")

    cfg.attributes["on_version_apply"] = _applied
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    db.schema_changed()
