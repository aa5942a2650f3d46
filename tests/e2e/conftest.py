"""The web app in a real browser: `djflow serve` on a fresh SQLite database with the demo data,
driven by Playwright through Debian's Chromium (no browser download; this machine has no outside
network). Without the built app (`make ui`) or without /usr/bin/chromium the tests skip with the
reason, and fail under DJFLOW_REQUIRE_SERVICES=1.

Every page is watched for console errors and uncaught exceptions; a test that saw one fails.
Screenshots of each page go to tests/e2e/artifacts/, and the phone's first load of the inbox to
tests/e2e/artifacts/timings.json."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from engine.config import REPO_ROOT
from tests.conftest import DEMO_PASSWORD, require_service

CHROMIUM = os.environ.get("DJFLOW_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("DJFLOW_E2E_ARTIFACTS", Path(__file__).parent / "artifacts"))
NEW_PASSWORD = "Djflow-e2e-2026!"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A `djflow serve` of its own (one process, embedded scheduler) on a fresh database."""
    # DJFLOW_UI_DIR serves another build (e.g. `npx vite build --outDir /tmp/x`), as djflow serve does.
    dist = Path(os.environ.get("DJFLOW_UI_DIR", REPO_ROOT / "admin_ui" / "dist")) / "index.html"
    require_service(None if dist.is_file() else f"the web app is not built ({dist} missing; run `make ui`)")
    require_service(None if Path(CHROMIUM).is_file()
                    else f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "DJFLOW_DATABASE_URL": f"sqlite:///{home / 'djflow.db'}",
           "DJFLOW_DEMO_PASSWORD": DEMO_PASSWORD,
           "DJFLOW_ADMIN_PASSWORD": "Admin-pass-2026", "DJFLOW_AUDIT_KEY_DIR": str(home / "keys"),
           "DJFLOW_ATTACHMENTS_DIR": str(home / "files"), "DJFLOW_ENVIRONMENT": "test",
           "DJFLOW_ARGON2_TIME_COST": "1", "DJFLOW_ARGON2_MEMORY_KIB": "8192"}
    env.pop("DJFLOW_REDIS_URL", None)
    djflow = [str(Path(sys.executable).parent / "djflow")]
    subprocess.run([*djflow, "init", "--demo"], env=env, cwd=home, check=True, capture_output=True)
    port = _free_port()
    log = open(home / "serve.log", "wb")
    proc = subprocess.Popen([*djflow, "serve", "--port", str(port)], env=env, cwd=home, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("djflow serve did not start: " + (home / "serve.log").read_text(errors="replace")[-2000:])
        time.sleep(0.2)
    yield {"url": url, "changed": set()}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), ARTIFACTS / "timings.json"]:  # this run's screenshots and figures only
        old.unlink(missing_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


class Pages:
    """New browser contexts for a test (desktop or phone), each page watched for console errors."""

    def __init__(self, browser, server, name: str):
        self.browser, self.server, self.name = browser, server, name
        self.contexts, self.errors, self.shots = [], [], 0
        # Console messages a test expects (e.g. the 401s of wrong passwords); nothing else is allowed.
        self.expected: list[re.Pattern] = []

    def expect_console(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]

    def open(self, *, phone: bool = False, lang: str | None = None, storage_state: dict | None = None):
        """A page in a new browser context (its own cookies and an empty cache); `storage_state`
        carries a signed-in session over from another context."""
        opts = dict(PHONE) if phone else {"viewport": {"width": 1366, "height": 900}}
        if storage_state is not None:
            opts["storage_state"] = storage_state
        ctx = self.browser.new_context(base_url=self.server["url"], locale="zh-CN", timezone_id="Asia/Shanghai", **opts)
        ctx.set_default_timeout(15_000)
        if lang:
            ctx.add_init_script(f"localStorage.setItem('djflow.lang', {json.dumps(lang)})")
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"{page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        return page

    def shot(self, page, label: str) -> None:
        self.shots += 1
        page.screenshot(path=str(ARTIFACTS / f"{self.name}-{self.shots:02d}-{label}.png"), full_page=True)

    def sign_in(self, page, username: str) -> None:
        """Sign in; on the first sign-in the forced password change comes first."""
        page.goto("/")
        page.get_by_label("用户名").or_(page.get_by_label("Username")).fill(username)
        first = username not in self.server["changed"]
        page.get_by_label("密码", exact=True).or_(page.get_by_label("Password", exact=True)).fill(
            DEMO_PASSWORD if first else NEW_PASSWORD)
        page.locator("button[type=submit]").click()
        if first:
            page.get_by_label("原密码").or_(page.get_by_label("Current password")).fill(DEMO_PASSWORD)
            page.get_by_label("新密码", exact=True).or_(page.get_by_label("New password", exact=True)).fill(NEW_PASSWORD)
            page.get_by_label("确认新密码").or_(page.get_by_label("Confirm new password")).fill(NEW_PASSWORD)
            self.shot(page, f"{username}-password")
            page.locator("button[type=submit]").click()
            self.server["changed"].add(username)
        page.get_by_test_id("user-menu").wait_for()

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


@pytest.fixture
def pages(browser, server, request):
    p = Pages(browser, server, request.node.name.replace("[", "-").replace("]", ""))
    yield p
    p.close()
    unexpected = p.unexpected_errors()
    assert unexpected == [], "console errors: " + "\n".join(unexpected)


def record_timing(name: str, value: float) -> None:
    """One figure of the run into artifacts/timings.json (reported, never asserted: see bench/)."""
    path = ARTIFACTS / "timings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = round(value, 1)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1))
