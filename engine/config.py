"""One Settings class for the whole of djflow; every value comes from a DJFLOW_ variable."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
_DEV_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DJFLOW_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite:///./var/djflow.db"
    redis_url: str | None = None
    secret_key: str = _DEV_SECRET
    data_key: str | None = None
    audit_hash: Literal["sm3", "sha256"] = "sm3"
    admin_password: str | None = None
    demo_password: str | None = None

    process_dir: Path = REPO_ROOT / "process_definitions"
    forms_dir: Path = REPO_ROOT / "forms"
    bpmn_max_bytes: int = 5 * 1024 * 1024
    form_max_bytes: int = 512 * 1024
    script_time_limit: float = 1.0
    sql_echo: bool = False
    # argon2id cost; the defaults are argon2-cffi's RFC 9106 "low memory" profile. Tests lower them.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> "Settings":
        # A forgotten placeholder in production would let anyone forge sessions.
        if self.environment == "production" and self.secret_key == _DEV_SECRET:
            raise ValueError("DJFLOW_SECRET_KEY must be set to a real secret in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
