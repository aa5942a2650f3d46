"""One Settings class for the whole of djflow; every value comes from a DJFLOW_ variable."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
_DEV_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DJFLOW_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite:///./var/djflow.db"
    redis_url: str | None = None
    # Without redis_url, `djflow serve` fires due BPMN timers from a thread this often (seconds; 0: never).
    timer_tick_seconds: float = 5.0
    # With redis_url: the Celery queue djflow worker consumes and djflow beat fills, and how long an
    # unacknowledged job waits before Redis hands it to another worker (its worker died).
    celery_queue: str = "djflow"
    celery_visibility_timeout: int = 60
    # A queued timer job not fired within this many seconds (its message died with a worker) is queued again.
    timer_requeue_seconds: int = 60
    # Service tasks (engine/runtime/services.py): the only hosts http/request may call (`host`,
    # `host:port` or `*.domain`; JSON list in DJFLOW_SERVICE_ALLOWED_HOSTS; empty: none), retries with
    # exponential back-off from the base (seconds), the time limit and the largest response read.
    service_allowed_hosts: list[str] = []
    service_retries: int = 3
    service_backoff_seconds: float = 2.0
    service_timeout_seconds: float = 10.0
    service_max_response_bytes: int = 1024 * 1024
    # Webhook deliveries (engine/notify/webhooks.py): attempts in all, and the back-off base (seconds).
    webhook_attempts: int = 5
    webhook_backoff_seconds: float = 10.0
    # E-mail (engine/notify/email.py): off unless smtp_host is set. Port 465 is TLS from the start;
    # smtp_starttls upgrades another port. Which notifications are mailed, and the link they carry.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "djflow@localhost"
    smtp_starttls: bool = False
    email_events: str = ("task.assigned,task.urged,task.returned,task.due_soon,task.overdue,instance.completed,"
                         "instance.rejected,instance.error")
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = _DEV_SECRET
    data_key: str | None = None
    # Comma-separated keys that were DJFLOW_DATA_KEY before a rotation; they only decrypt.
    data_key_previous: str | None = None
    audit_hash: Literal["sm3", "sha256"] = "sm3"
    # Signed checkpoints of the audit log (engine/audit/checkpoints.py): the key files' directory
    # (outside the database; back it up), the signature algorithm of new keys, and how often.
    audit_key_dir: Path = Path("./var/audit-keys")
    audit_sign_alg: Literal["ed25519", "sm2"] = "ed25519"
    audit_checkpoint_events: int = 1000
    audit_checkpoint_seconds: float = 60.0
    # `djflow audit archive` moves only checkpointed ranges older than this many days (never fewer
    # than 180: the database refuses to delete younger events whatever this says).
    audit_archive_min_days: int = Field(180, ge=180)
    admin_password: str | None = None
    demo_password: str | None = None

    process_dir: Path = REPO_ROOT / "process_definitions"
    forms_dir: Path = REPO_ROOT / "forms"
    # The built web app (`make ui`: admin_ui/dist), served at /; absent, djflow serves the API only.
    ui_dir: Path = REPO_ROOT / "admin_ui" / "dist"
    bpmn_max_bytes: int = 5 * 1024 * 1024
    form_max_bytes: int = 512 * 1024
    script_time_limit: float = 1.0
    sql_echo: bool = False
    # Attachments (content-addressed files under attachments_dir) and the request limits of actions.
    attachments_dir: Path = Path("./var/attachments")
    attachment_max_bytes: int = 20 * 1024 * 1024
    attachment_types: str = ("application/pdf,image/png,image/jpeg,text/plain,application/zip,application/ofd,"
                             "application/msword,application/vnd.ms-excel,"
                             "application/vnd.openxmlformats-officedocument.wordprocessingml.document,"
                             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    # A virus-scan hook: a command run on each uploaded file ({path} is replaced); non-zero refuses it.
    attachment_scan_command: str | None = None
    # The font the PDFs djflow writes (the 党员组织关系介绍信) use: a .ttf/.otf/.ttc with Chinese glyphs;
    # unset, Debian's fonts-noto-cjk (or fontconfig's zh-cn choice) is looked up (engine/party/letter.py).
    pdf_font: str | None = None
    request_max_bytes: int = 2 * 1024 * 1024
    # Threads per serving process that run the engine for starts, actions and the inbox (api/deps.py).
    engine_threads: int = 2
    # How soon (ms) a thread back from the database gets the GIL from one that is computing, in each
    # `djflow serve` process (Python's default is 5). A unit of work's COMMIT waits for it while the
    # audit head row is locked. bench/api.py, 50 clients, runs alternating 5 / 0.5 ms (2026-12-03):
    # 160/172, 145/155, 133/175, 165/183, 194/138, 148/173 approval actions/s (medians 154 / 172).
    # 0: leave Python's default.
    gil_switch_interval_ms: float = Field(0.5, ge=0)
    # Restored workflows kept per serving process between actions on the same instance (engine/runtime/states.py); 0: off.
    state_cache_size: int = 256
    # Starts and task actions served without FastAPI's request machinery (api/fastlane.py); off, FastAPI serves them.
    fast_lane: bool = True
    # 催办: at most one urge per approval node in this many minutes.
    urge_interval_minutes: int = 60
    # argon2id cost; the defaults are argon2-cffi's RFC 9106 "low memory" profile. Tests lower them.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536

    # Sessions and the default security policy (a secadmin can change the policy at run time;
    # engine/identity/policy.py). Access tokens are short; the refresh token rotates on use.
    access_token_minutes: int = 15
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    password_min_length: int = 12
    password_min_length_with_classes: int = 8
    password_min_classes: int = 3
    lockout_threshold: int = 5
    lockout_minutes: int = 30
    # Failed logins from one client address within the window before it is refused (429).
    login_client_max_failures: int = 30
    login_client_window_minutes: int = 10
    # Send cookies only over HTTPS; on by default in production.
    cookie_secure: bool | None = None

    # 统一身份认证: an OpenID Connect provider (authorization code flow with PKCE).
    oidc_enabled: bool = False
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = None
    oidc_scopes: str = "openid profile"
    # The claim matched against djflow usernames the first time someone signs in this way.
    oidc_username_claim: str = "preferred_username"

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> "Settings":
        # A forgotten placeholder in production would let anyone forge sessions.
        if self.environment == "production" and self.secret_key == _DEV_SECRET:
            raise ValueError("DJFLOW_SECRET_KEY must be set to a real secret in production")
        # Without it, ID and phone numbers would be encrypted with a key printed in this repository.
        if self.environment == "production" and not self.data_key:
            raise ValueError("DJFLOW_DATA_KEY must be set in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
